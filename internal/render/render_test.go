package render

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// hostile is a table whose cells come from an attacker who can name VMs.
func hostile() Table {
	return Table{
		Title:   "Fleet <b>report</b> \x1b[2J",
		Headers: []string{"name", "state", "note"},
		Rows: [][]string{
			{"<script>alert(1)</script>", "boot-loop", "line1\nline2"},
			{"=cmd|' /C calc'!A0", "-5", "a|b"},
			{"+SUM(A1:A9)", "@evil", "-2+3"},
			{"[click](javascript:alert(1))", "`code` *em* _u_", "\\| escaped"},
			{"bell\a esc\x1b[31m", "rtl\u202eevil", "tab\there\r\n"},
			{"short"},
		},
	}
}

func plain() Table {
	return Table{Title: "Summary", Headers: []string{"state", "count"}, Rows: [][]string{{"healthy", "12"}, {"boot-loop", "3"}}}
}

func TestGolden(t *testing.T) {
	ext := map[Format]string{FormatTable: "txt", FormatJSON: "json", FormatCSV: "csv", FormatMarkdown: "md", FormatHTML: "html"}
	doc := map[string]any{"vms": []string{"<script>", "a&b"}, "count": 2}
	for _, f := range Formats() {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, f, doc, hostile(), plain(), Table{Title: "Nothing"}); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "hostile."+ext[f])
			if *update {
				if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("output differs from %s:\n%s", golden, buf.String())
			}
		})
	}
}

// TestNoRawHostileContent checks the properties the golden files encode, so
// a careless -update cannot bless a regression.
func TestNoRawHostileContent(t *testing.T) {
	tests := []struct {
		f         Format
		forbidden []string
		required  []string
	}{
		{FormatTable, []string{"\x1b", "\a", "\u202e", "\r"}, []string{"<script>alert(1)</script>", "line1", "line2"}},
		{FormatCSV, []string{"\x1b", "\a", "\u202e", "\n=cmd", ",=cmd", "\n+SUM", ",@evil", ",-2+3"}, []string{"'=cmd|' /C calc'!A0", "'+SUM(A1:A9)", "'@evil", "'-2+3", ",-5,"}},
		{FormatMarkdown, []string{"<script>", "a|b", "\x1b", "](javascript", "`code`", "line1\nline2"}, []string{"&lt;script&gt;", `a\|b`, "line1<br>line2", `\[click\]\(javascript`, "\\`code\\`", `\\\| escaped`}},
		{FormatHTML, []string{"<script>", "<b>report", "\x1b", "\u202e"}, []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;report", "<!DOCTYPE html>", "</html>"}},
	}
	for _, tt := range tests {
		t.Run(string(tt.f), func(t *testing.T) {
			var buf bytes.Buffer
			if err := Render(&buf, tt.f, nil, hostile()); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, s := range tt.forbidden {
				if strings.Contains(out, s) {
					t.Errorf("output contains %q:\n%s", s, out)
				}
			}
			for _, s := range tt.required {
				if !strings.Contains(out, s) {
					t.Errorf("output lacks %q:\n%s", s, out)
				}
			}
		})
	}
}

func TestMarkdownColumns(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, FormatMarkdown, nil, hostile()); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if !strings.HasPrefix(line, "|") {
			continue
		}
		// Count unescaped pipes: every table line must have 4 (3 columns).
		n := 0
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '\\':
				i++
			case '|':
				n++
			}
		}
		if n != 4 {
			t.Errorf("line has %d cell separators, want 4: %s", n, line)
		}
	}
}

func TestCSVRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	if err := Render(&buf, FormatCSV, nil, plain()); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"state", "count"}, {"healthy", "12"}, {"boot-loop", "3"}}
	if len(recs) != len(want) {
		t.Fatalf("got %v", recs)
	}
	for i := range want {
		if strings.Join(recs[i], ",") != strings.Join(want[i], ",") {
			t.Errorf("row %d: got %v want %v", i, recs[i], want[i])
		}
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	doc := struct {
		Name string `json:"name"`
	}{"<x>"}
	if err := Render(&buf, FormatJSON, doc, plain()); err != nil {
		t.Fatal(err)
	}
	if buf.String() != "{\n  \"name\": \"\\u003cx\\u003e\"\n}\n" {
		t.Errorf("got %q", buf.String())
	}
	buf.Reset()
	if err := Render(&buf, FormatJSON, nil, plain()); err != nil {
		t.Fatal(err)
	}
	var back []Table
	if err := json.Unmarshal(buf.Bytes(), &back); err != nil || len(back) != 1 || back[0].Title != "Summary" {
		t.Errorf("tables as JSON: %v %+v", err, back)
	}
	if err := Render(&buf, FormatJSON, func() {}); err == nil {
		t.Error("unencodable doc: want error")
	}
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want Format
		err  bool
	}{
		{"table", FormatTable, false},
		{"JSON", FormatJSON, false},
		{" csv ", FormatCSV, false},
		{"markdown", FormatMarkdown, false},
		{"md", FormatMarkdown, false},
		{"html", FormatHTML, false},
		{"xml", "", true},
		{"", "", true},
	}
	for _, tt := range tests {
		got, err := ParseFormat(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("ParseFormat(%q) = %q, %v", tt.in, got, err)
		}
		if err != nil && !strings.Contains(err.Error(), "table, json, csv, markdown, html") {
			t.Errorf("error does not list formats: %v", err)
		}
	}
	if err := Render(&bytes.Buffer{}, Format("xml"), nil); err == nil {
		t.Error("Render with bad format: want error")
	}
}
