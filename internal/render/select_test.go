package render

import (
	"strings"
	"testing"
)

func TestSelect(t *testing.T) {
	tables := []Table{{Name: "vms", Title: "VMs"}, {Name: "summary", Title: "Summary"}, {Title: "unnamed"}}
	tests := []struct {
		f       Format
		table   string
		want    string // titles, or the error's text
		wantErr bool
	}{
		{FormatTable, "", "VMs Summary unnamed", false},
		{FormatCSV, "", "VMs", false}, // one table: the main one
		{FormatCSV, "summary", "Summary", false},
		{FormatMarkdown, "vms", "VMs", false},
		{FormatCSV, "nope", `no table "nope" here: the tables are vms, summary`, true},
		{FormatJSON, "vms", "--table vms goes with -o table, csv or markdown, not json", true},
	}
	for _, tt := range tests {
		got, err := Select(tt.f, tables, tt.table)
		if tt.wantErr {
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Select(%s, %q) = %v, want error %q", tt.f, tt.table, err, tt.want)
			}
			continue
		}
		var titles []string
		for _, tb := range got {
			titles = append(titles, tb.Title)
		}
		if err != nil || strings.Join(titles, " ") != tt.want {
			t.Errorf("Select(%s, %q) = %v, %v, want %s", tt.f, tt.table, titles, err, tt.want)
		}
	}
}
