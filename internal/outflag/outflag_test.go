package outflag

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/render"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		name     string
		withFile bool
		args     []string
		format   render.Format
		file     string
		warn     bool
		errHas   string
	}{
		{name: "default table", withFile: true, format: render.FormatTable},
		{name: "-o json", withFile: true, args: []string{"-o", "json"}, format: render.FormatJSON},
		{name: "--output csv", args: []string{"--output", "csv"}, format: render.FormatCSV},
		{name: "md alias", args: []string{"-o", "md"}, format: render.FormatMarkdown},
		{name: "old --format", args: []string{"--format", "html"}, format: render.FormatHTML},
		{name: "same twice", args: []string{"-o", "json", "--format", "JSON"}, format: render.FormatJSON},
		{name: "disagree", args: []string{"-o", "json", "--format", "csv"}, errHas: "disagree"},
		{name: "out-file", withFile: true, args: []string{"-o", "json", "--out-file", "p.json"}, format: render.FormatJSON, file: "p.json"},
		{name: "legacy -o FILE", withFile: true, args: []string{"-o", "plan.json"}, format: render.FormatTable, file: "plan.json", warn: true},
		{name: "legacy -o FILE with --format", withFile: true, args: []string{"-o", "plan.json", "--format", "csv"}, format: render.FormatCSV, file: "plan.json", warn: true},
		{name: "legacy and out-file", withFile: true, args: []string{"-o", "a.json", "--out-file", "b.json"}, errHas: "--out-file"},
		{name: "no legacy without a file flag", args: []string{"-o", "plan.json"}, errHas: "valid formats are table, json"},
		{name: "bad --format", args: []string{"--format", "xml"}, errHas: "--format: unknown output format \"xml\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f Flags
			fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
			help := ""
			if tt.withFile {
				help = "write the plan here"
			}
			f.Add(fs, help)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			var warn bytes.Buffer
			format, file, err := f.Resolve(&warn)
			if tt.errHas != "" {
				var ue *UsageError
				if !errors.As(err, &ue) || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("error %v, want a UsageError containing %q", err, tt.errHas)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if format != tt.format || file != tt.file {
				t.Errorf("got (%s, %q), want (%s, %q)", format, file, tt.format, tt.file)
			}
			if got := strings.Contains(warn.String(), "deprecated"); got != tt.warn {
				t.Errorf("deprecation warning %v, want %v: %q", got, tt.warn, warn.String())
			}
		})
	}
}
