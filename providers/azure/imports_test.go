package azure

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyWiringImportsAzureSDK: the Azure SDK is slow and heavy to compile
// cold (see docs/providers/azure.md), so only this package and the CLI's
// registry wiring may pull it in; every other package, the ARM emulator
// included, builds and tests without it.
func TestOnlyWiringImportsAzureSDK(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	// One go list: every package with its transitive dependencies.
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Deps " "}}`, "../../...").Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/fixfleet/fixfleet/providers/azure": true,
		"github.com/fixfleet/fixfleet/cmd/fixfleet":    true,
		// simulation's azure face opens this provider on the ARM emulator
		// (its own tests, the Azure demo, run it), as its aws face does.
		"github.com/fixfleet/fixfleet/simulation": true,
		// source is the CLI's provider wiring: the registry of fleet.yaml's
		// clouds.
		"github.com/fixfleet/fixfleet/source": true,
		// simtest runs simulation's incidents on virtual time, for tests.
		"github.com/fixfleet/fixfleet/simulation/simtest": true,
		// bench is the incident benchmark over every face.
		"github.com/fixfleet/fixfleet/simulation/bench": true,
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || allowed[f[0]] {
			continue
		}
		for _, d := range f[1:] {
			if strings.HasPrefix(d, "github.com/Azure/azure-sdk-for-go/") {
				t.Errorf("%s pulls in the Azure SDK (%s)", f[0], d)
				break
			}
		}
	}
}
