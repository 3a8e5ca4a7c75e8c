package render

import (
	"html/template"
	"io"
)

// page is a complete standalone HTML document. html/template escapes every
// cell for its context; no script is included and none can be injected.
var page = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>{{.Title}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin-bottom: 2em; }
th, td { border: 1px solid #bbb; padding: 0.3em 0.6em; text-align: left; vertical-align: top; white-space: pre-line; }
th { background: #eee; }
tr:nth-child(even) td { background: #f8f8f8; }
</style>
</head>
<body>
{{- range .Tables}}
<section>
{{- if .Title}}
<h2>{{.Title}}</h2>
{{- end}}
{{- if .Width}}
<table>
{{- if .Headers}}
<thead><tr>{{range .Headers}}<th>{{.}}</th>{{end}}</tr></thead>
{{- end}}
<tbody>
{{- range .Rows}}
<tr>{{range .}}<td>{{.}}</td>{{end}}</tr>
{{- end}}
</tbody>
</table>
{{- else}}
<p>(none)</p>
{{- end}}
</section>
{{- end}}
</body>
</html>
`))

type htmlTable struct {
	Title   string
	Width   int
	Headers []string
	Rows    [][]string
}

// renderHTML writes one page holding every table. The page title is the
// first table's title, or "fixfleet report".
func renderHTML(w io.Writer, tables []Table) error {
	data := struct {
		Title  string
		Tables []htmlTable
	}{Title: "fixfleet report"}
	if len(tables) > 0 && tables[0].Title != "" {
		data.Title = clean(tables[0].Title, false)
	}
	for _, t := range tables {
		n := t.width()
		ht := htmlTable{Title: clean(t.Title, false), Width: n}
		if len(t.Headers) > 0 {
			for _, h := range padded(t.Headers, n) {
				ht.Headers = append(ht.Headers, clean(h, false))
			}
		}
		for _, r := range t.Rows {
			row := make([]string, n)
			for j, c := range padded(r, n) {
				row[j] = clean(c, true)
			}
			ht.Rows = append(ht.Rows, row)
		}
		data.Tables = append(data.Tables, ht)
	}
	return page.Execute(w, data)
}
