package progress

import (
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"golang.org/x/term"
)

// Width returns a function that says how many columns the terminal w is
// has now (0 when w is no terminal or its size is unknown).
func Width(w io.Writer) func() int {
	return func() int {
		if f, ok := w.(*os.File); ok {
			if cols, _, err := term.GetSize(int(f.Fd())); err == nil {
				return cols
			}
		}
		return 0
	}
}

// Fit returns line cut to at most width columns (runes: the line is
// plain text), ending in "…" when cut, so that a terminal never wraps it
// and "\r" redraws it in place. A width below 1 returns "".
func Fit(line string, width int) string {
	if width < 1 {
		return ""
	}
	if utf8.RuneCountInString(line) <= width {
		return line
	}
	var b strings.Builder
	n := 0
	for _, r := range line {
		if n == width-1 {
			break
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimRight(b.String(), " ·,") + "…"
}

// Redraw is what rewrites a status line in place: carriage return, erase
// the line, then the line fitted to width-1 columns (writing the last
// column makes some terminals wrap).
func Redraw(line string, width int) string {
	return "\r\033[K" + Fit(line, width-1)
}
