package render

import (
	"fmt"
	"io"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// cellWidth is the widest a table cell grows before its text wraps onto
// more lines, so that a long reason does not push a table off the screen.
const cellWidth = 48

// renderText draws each table with box characters for a terminal.
// Headers are shown as given (no automatic upper-casing); multi-line cells
// stay multi-line; long cells wrap at word boundaries; control characters
// are neutralised.
func renderText(w io.Writer, tables []Table) error {
	for i, t := range tables {
		if i > 0 {
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if t.Title != "" {
			if _, err := fmt.Fprintln(w, clean(t.Title, false)); err != nil {
				return err
			}
		}
		n := t.width()
		if n == 0 {
			if _, err := io.WriteString(w, "(none)\n"); err != nil {
				return err
			}
			continue
		}
		tbl := tablewriter.NewTable(w,
			tablewriter.WithHeaderAutoFormat(tw.Off),
			tablewriter.WithRowAutoWrap(tw.WrapNormal),
			tablewriter.WithRowMaxWidth(cellWidth),
			tablewriter.WithTrimSpace(tw.Off),
		)
		if len(t.Headers) > 0 {
			hs := make([]any, n)
			for j, h := range padded(t.Headers, n) {
				hs[j] = clean(h, false)
			}
			tbl.Header(hs...)
		}
		for _, r := range t.Rows {
			row := make([]string, n)
			for j, c := range padded(r, n) {
				row[j] = clean(c, true)
			}
			if err := tbl.Append(row); err != nil {
				return fmt.Errorf("render table %q: %w", t.Title, err)
			}
		}
		if err := tbl.Render(); err != nil {
			return fmt.Errorf("render table %q: %w", t.Title, err)
		}
	}
	return nil
}
