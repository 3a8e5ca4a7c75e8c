package render

import (
	"encoding/csv"
	"io"
	"regexp"
)

// plainNumber matches cells a spreadsheet reads as a number and nothing
// else; they need no formula guard ("-3", "+1.5").
var plainNumber = regexp.MustCompile(`^[-+]?[0-9]+(\.[0-9]+)?$`)

// SafeCSVCell guards a cell against spreadsheet formula injection: a cell
// that starts with = + - @, a tab or a carriage return is prefixed with a
// single quote, unless it is a plain number. Terminal control characters
// are then neutralised as in the other formats (newlines are kept).
func SafeCSVCell(s string) string {
	return clean(formulaGuard(s), true)
}

func formulaGuard(s string) string {
	if s == "" || plainNumber.MatchString(s) {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}

// renderCSV writes RFC 4180 CSV. With one table, the output is exactly its
// header row and rows. With several, each is preceded by a one-cell title
// row (if it has a title) and followed by an empty line.
func renderCSV(w io.Writer, tables []Table) error {
	cw := csv.NewWriter(w)
	multi := len(tables) > 1
	for i, t := range tables {
		if multi && i > 0 {
			cw.Flush()
			if _, err := io.WriteString(w, "\n"); err != nil {
				return err
			}
		}
		if multi && t.Title != "" {
			if err := cw.Write([]string{SafeCSVCell(t.Title)}); err != nil {
				return err
			}
		}
		n := t.width()
		if len(t.Headers) > 0 {
			if err := cw.Write(safeRow(t.Headers, n)); err != nil {
				return err
			}
		}
		for _, r := range t.Rows {
			if err := cw.Write(safeRow(r, n)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

func safeRow(r []string, n int) []string {
	out := make([]string, n)
	for j, c := range padded(r, n) {
		out[j] = SafeCSVCell(c)
	}
	return out
}
