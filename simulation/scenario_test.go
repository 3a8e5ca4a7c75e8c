package simulation

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestExportScenario: an exported world loads back as a scenario; a bad
// option is an *InputError naming it.
func TestExportScenario(t *testing.T) {
	b, err := ExportScenario(WorldOptions{VMs: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := world.ParseScenario(strings.NewReader(string(b))); err != nil || !strings.HasSuffix(string(b), "\n") {
		t.Fatalf("exported scenario does not load back: %v", err)
	}
	var ie *InputError
	if _, err := ExportScenario(WorldOptions{VMs: 5, Mix: "nonsense"}); !errors.As(err, &ie) || ie.Option != "mix" {
		t.Errorf("bad mix: %v", err)
	}
}

// TestScenarioFromInventoryErrors: a missing or malformed inventory file
// is an *InputError with no option, naming the file.
func TestScenarioFromInventoryErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	_ = os.WriteFile(bad, []byte("{}"), 0o600)
	for _, file := range []string{filepath.Join(dir, "none.json"), bad} {
		var ie *InputError
		_, err := ScenarioFromInventory(file, world.InventoryOptions{Seed: 1, Profile: world.ProfileAll})
		if !errors.As(err, &ie) || ie.Option != "" || !strings.Contains(err.Error(), file) {
			t.Errorf("%s: %v", file, err)
		}
	}
}
