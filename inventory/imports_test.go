package inventory

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLowerLayersImportNoRemediate holds docs/architecture.md's import
// rule: nothing under providers/, inventory/ or internal/ imports
// remediate/, directly or through another package (remediate builds on
// them, never the other way).
func TestLowerLayersImportNoRemediate(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	const mod = "github.com/fixfleet/fixfleet/"
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, "../...").Output()
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], mod)
		if !strings.HasPrefix(pkg, "providers/") && !strings.HasPrefix(pkg, "inventory") && !strings.HasPrefix(pkg, "internal/") {
			continue
		}
		checked++
		for _, dep := range f[1:] {
			if strings.HasPrefix(dep, mod+"remediate/") {
				t.Errorf("%s imports %s", pkg, dep)
			}
		}
	}
	if checked == 0 {
		t.Fatalf("no package under providers/, inventory/ or internal/ listed: the rule checked nothing")
	}
}
