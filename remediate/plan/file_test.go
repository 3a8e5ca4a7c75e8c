package plan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadWriteFile: a plan written with WriteFile reads back with
// ReadFile, bytes and all; a missing or invalid file is an error naming it.
func TestReadWriteFile(t *testing.T) {
	p, _, err := ReadFile(filepath.Join("testdata", "plan.golden.json"))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "plan.json")
	if err := WriteFile(file, p); err != nil {
		t.Fatal(err)
	}
	q, raw, err := ReadFile(file)
	if err != nil || q.ID != p.ID {
		t.Fatalf("ReadFile = %v, %v; want plan %s", q, err, p.ID)
	}
	if b, _ := os.ReadFile(file); string(b) != string(raw) {
		t.Error("ReadFile's bytes are not the file's")
	}
	if _, _, err := ReadFile(filepath.Join(t.TempDir(), "none.json")); err == nil || !strings.HasPrefix(err.Error(), "plan: ") {
		t.Errorf("missing file: %v", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.json")
	_ = os.WriteFile(bad, []byte("{}"), 0o600)
	if _, _, err := ReadFile(bad); err == nil || !strings.HasPrefix(err.Error(), "plan "+bad+": ") {
		t.Errorf("invalid file: %v", err)
	}
}
