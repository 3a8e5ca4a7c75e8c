package classify

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzReadConsoleReports: the console-report parser never panics; an
// accepted file names each VM once, by a non-empty word without spaces,
// and an error names the source. Seeds: testdata/fuzz/FuzzReadConsoleReports.
func FuzzReadConsoleReports(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		r, err := ReadConsoleReports(bytes.NewReader(data), "reports.txt")
		if err != nil {
			if r != nil {
				t.Fatalf("reports and an error: %v", err)
			}
			if !strings.HasPrefix(err.Error(), "reports.txt") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for vm := range r.notes {
			if vm == "" || strings.ContainsAny(vm, " ") || strings.HasPrefix(vm, "#") {
				t.Fatalf("accepted VM %q", vm)
			}
		}
	})
}
