// Package render writes fixfleet's reports in the formats the CLI offers:
// table (for a terminal), json, csv, markdown and html.
//
// Callers build one or more Tables (title, headers, rows of strings) for the
// human formats and pass the document they want as JSON (any value that
// encoding/json accepts). Cell text is treated as untrusted (VM names, tags
// and console text come from the cloud): every format escapes it for its
// own syntax, strips terminal control sequences, and CSV cells are guarded
// against spreadsheet formula injection.
package render

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Format is an output format.
type Format string

// The output formats.
const (
	FormatTable    Format = "table"
	FormatJSON     Format = "json"
	FormatCSV      Format = "csv"
	FormatMarkdown Format = "markdown"
	FormatHTML     Format = "html"
)

// Formats lists the valid formats in the order the CLI shows them.
func Formats() []Format {
	return []Format{FormatTable, FormatJSON, FormatCSV, FormatMarkdown, FormatHTML}
}

// FormatNames is Formats as strings, for flag help.
func FormatNames() []string {
	out := make([]string, 0, 5)
	for _, f := range Formats() {
		out = append(out, string(f))
	}
	return out
}

// ParseFormat parses a format name, case-insensitively; "md" is accepted for
// markdown. The error lists the valid formats.
func ParseFormat(s string) (Format, error) {
	n := strings.ToLower(strings.TrimSpace(s))
	if n == "md" {
		n = string(FormatMarkdown)
	}
	for _, f := range Formats() {
		if string(f) == n {
			return f, nil
		}
	}
	return "", fmt.Errorf("unknown output format %q: valid formats are %s", s, strings.Join(FormatNames(), ", "))
}

// String implements fmt.Stringer.
func (f Format) String() string { return string(f) }

// Table is a titled grid of text. Rows may be shorter than Headers (missing
// cells render empty); a Table with no Headers takes its width from its
// longest row.
type Table struct {
	// Name is how --table selects the table (see Select); "" for none.
	Name    string     `json:"-"`
	Title   string     `json:"title,omitempty"`
	Headers []string   `json:"headers"`
	Rows    [][]string `json:"rows"`
}

// width is the number of columns.
func (t Table) width() int {
	n := len(t.Headers)
	for _, r := range t.Rows {
		n = max(n, len(r))
	}
	return n
}

// padded returns r extended with empty cells to n columns.
func padded(r []string, n int) []string {
	if len(r) >= n {
		return r
	}
	out := make([]string, n)
	copy(out, r)
	return out
}

// Render writes doc (FormatJSON) or tables (every other format) to w.
// For JSON, a nil doc writes the tables as a JSON array instead. For the
// other formats, tables are written one after another, each under its title.
func Render(w io.Writer, f Format, doc any, tables ...Table) error {
	switch f {
	case FormatJSON:
		if doc == nil {
			if tables == nil {
				tables = []Table{}
			}
			doc = tables
		}
		return JSON(w, doc)
	case FormatTable:
		return renderText(w, tables)
	case FormatCSV:
		return renderCSV(w, tables)
	case FormatMarkdown:
		return renderMarkdown(w, tables)
	case FormatHTML:
		return renderHTML(w, tables)
	}
	_, err := ParseFormat(string(f))
	return err
}

// JSON writes v as indented JSON followed by a newline. HTML-significant
// characters are escaped (\u003c), so the output is safe to embed.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("render json: %w", err)
	}
	return nil
}

// clean removes terminal control characters from untrusted text: C0 and C1
// controls (ESC, BEL, backspace, CSI, ...) and Unicode bidi overrides become
// U+FFFD; a tab becomes a space; newlines are kept when keepNL is true.
// Carriage returns are dropped ("\r\n" becomes "\n").
func clean(s string, keepNL bool) string {
	if !needsClean(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '\n':
			if keepNL {
				b.WriteRune('\n')
			} else {
				b.WriteRune(' ')
			}
		case r == '\r':
		case r == '\t':
			b.WriteRune(' ')
		case r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || isBidi(r):
			b.WriteRune('\uFFFD')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

func needsClean(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || isBidi(r) {
			return true
		}
	}
	return false
}

// isBidi reports the Unicode bidirectional controls that can make text
// display differently from what it is ("Trojan Source").
func isBidi(r rune) bool {
	return r >= 0x202a && r <= 0x202e || r >= 0x2066 && r <= 0x2069 || r == 0x200e || r == 0x200f || r == 0x061c
}
