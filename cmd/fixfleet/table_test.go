package main

import (
	"encoding/csv"
	"strings"
	"testing"
)

// TestCSVOneTable: plan -o csv is one table with the same width on every
// row (the VMs by default, another with --table); an unknown --table is
// an argument error (exit 2) naming the tables.
func TestCSVOneTable(t *testing.T) {
	tests := []struct {
		table, first string
	}{
		{"", "VM"},
		{"estimate", ""},
		{"summary", "What to know first"},
	}
	for _, tt := range tests {
		args := []string{"plan", "--sim", "--vms", "5", "--time-scale", "5000", "-o", "csv"}
		if tt.table != "" {
			args = append(args, "--table", tt.table)
		}
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("plan --table %q: exit %d: %s", tt.table, code, stderr)
		}
		recs, err := csv.NewReader(strings.NewReader(stdout)).ReadAll() // fails on rows of another width
		if err != nil {
			t.Fatalf("--table %q: not one CSV table: %v\n%s", tt.table, err, stdout)
		}
		if recs[0][0] != tt.first {
			t.Errorf("--table %q: header %v, want first column %q", tt.table, recs[0], tt.first)
		}
	}
	code, _, stderr := runCLI(t, "plan", "--sim", "--vms", "5", "--time-scale", "5000", "-o", "csv", "--table", "nope")
	if code != 2 || !strings.Contains(stderr, "vms, estimate, summary") {
		t.Errorf("--table nope: exit %d: %s", code, stderr)
	}
}
