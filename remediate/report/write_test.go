package report

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/internal/render"
)

func TestFileName(t *testing.T) {
	tests := []struct {
		tenant string
		want   string // exact, or a prefix when hashed
		hashed bool
	}{
		{"acme", "acme", false},
		{"acme-corp_2", "acme-corp_2", false},
		{"Acme", "acme-", true},
		{"../../etc/passwd", "etc-passwd-", true},
		{"..", "tenant-", true},
		{"", "tenant-", true},
		{"con", "con-", true},
		{"nul.txt", "nul.txt-", true},
		{"株式会社", "tenant-", true},
		{`<script>alert("x")</script>`, "script-alert-x-script-", true},
		{strings.Repeat("a", 100), strings.Repeat("a", 60) + "-", true},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		got := FileName(tt.tenant)
		if !tt.hashed && got != tt.want || tt.hashed && (!strings.HasPrefix(got, tt.want) || len(got) != len(tt.want)+8) {
			t.Errorf("FileName(%q) = %q, want %q%s", tt.tenant, got, tt.want, map[bool]string{true: "<8 hex>"}[tt.hashed])
		}
		if strings.ContainsAny(got, `/\:`) || strings.HasPrefix(got, ".") || filepath.Base(got) != got {
			t.Errorf("FileName(%q) = %q is not a plain file name", tt.tenant, got)
		}
		if other, ok := seen[got]; ok {
			t.Errorf("%q and %q share %q", other, tt.tenant, got)
		}
		seen[got] = tt.tenant
	}
}

func TestWritePerTenant(t *testing.T) {
	res, evs := fixture()
	dir := t.TempDir()
	load := func(tn string) (*Report, error) { return Build(res, evs, nil, tn) }
	files, err := WritePerTenant(dir, Tenants(res), load, render.FormatHTML, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("wrote %v", files)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 3 {
		t.Errorf("%d files in the directory, want 3 (nothing written outside it)", len(entries))
	}
	for p, tn := range files {
		if filepath.Dir(p) != dir {
			t.Errorf("%s written outside %s", p, dir)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		want, _ := load(tn)
		if !bytes.Contains(b, []byte("<svg id=")) || strings.Count(string(b), "<tr class=") != len(want.VMs) {
			t.Errorf("%s: not %q's report (%d VM rows, want %d)", p, tn, strings.Count(string(b), "<tr class="), len(want.VMs))
		}
	}
	if _, err := WritePerTenant(dir, nil, load, render.FormatHTML, ""); err == nil {
		t.Error("no tenants: want an error")
	}
}

func TestWriteTableChoice(t *testing.T) {
	r := build(t, "")
	tests := []struct {
		f       render.Format
		table   string
		wantErr bool
		first   string // first line of the output
	}{
		{render.FormatCSV, "", false, "tenant,account,vm,name,wave,strategy,status,reason_code,reason"},
		{render.FormatCSV, TableTenants, false, "tenant,vms,fixed,healthy_untouched,no_path,failed,not_finished,healthy_p50_seconds,healthy_p90_seconds"},
		{render.FormatCSV, "nope", true, ""},
		{render.FormatHTML, TableVMs, true, ""},
		{render.FormatJSON, TableVMs, true, ""},
		{render.FormatMarkdown, TableEvents, false, "## Events"},
		{render.FormatHTML, "", false, "<!DOCTYPE html>"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		err := r.Write(&buf, tt.f, tt.table)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s --table %q: error %v", tt.f, tt.table, err)
			continue
		}
		if first, _, _ := strings.Cut(buf.String(), "\n"); !tt.wantErr && first != tt.first {
			t.Errorf("%s --table %q: first line %q, want %q", tt.f, tt.table, first, tt.first)
		}
	}
	dir := t.TempDir()
	files, err := r.WriteCSVDir(dir)
	if err != nil || len(files) != len(TableNames()) {
		t.Fatalf("csv dir: %v %v", files, err)
	}
}
