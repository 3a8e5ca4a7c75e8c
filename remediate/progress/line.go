package progress

import (
	"strings"
	"unicode/utf8"
)

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
