package render

import (
	"io"
	"strings"
)

// mdEscaper makes untrusted text literal inside a GitHub-flavoured Markdown
// table cell: markdown punctuation is backslash-escaped (no links, images,
// emphasis or code spans can be formed), & < > become entities (no raw
// HTML), and a newline becomes <br>.
var mdEscaper = strings.NewReplacer(
	`\`, `\\`, "|", `\|`, "`", "\\`", "*", `\*`, "_", `\_`,
	"[", `\[`, "]", `\]`, "(", `\(`, ")", `\)`, "{", `\{`, "}", `\}`,
	"#", `\#`, "!", `\!`, "~", `\~`,
	"&", "&amp;", "<", "&lt;", ">", "&gt;",
	"\n", "<br>",
)

func mdCell(s string) string {
	s = mdEscaper.Replace(clean(s, true))
	// A cell's leading or trailing spaces are trimmed by renderers; keep
	// the text as shown.
	return strings.TrimSpace(s)
}

// renderMarkdown writes each table as a GFM pipe table under a level-2
// heading holding its title.
func renderMarkdown(w io.Writer, tables []Table) error {
	var b strings.Builder
	for i, t := range tables {
		if i > 0 {
			b.WriteString("\n")
		}
		if t.Title != "" {
			b.WriteString("## " + mdEscaper.Replace(clean(t.Title, false)) + "\n\n")
		}
		n := t.width()
		if n == 0 {
			b.WriteString("_(none)_\n")
			continue
		}
		// GFM needs a header row; a table without headers gets empty ones.
		writeMDRow(&b, padded(t.Headers, n))
		b.WriteString("|")
		for range n {
			b.WriteString(" --- |")
		}
		b.WriteString("\n")
		for _, r := range t.Rows {
			writeMDRow(&b, padded(r, n))
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeMDRow(b *strings.Builder, cells []string) {
	b.WriteString("|")
	for _, c := range cells {
		b.WriteString(" " + mdCell(c) + " |")
	}
	b.WriteString("\n")
}

// MarkdownText makes untrusted text literal in Markdown prose or a list
// item, as in a table cell (newlines become <br>).
func MarkdownText(s string) string { return mdCell(s) }
