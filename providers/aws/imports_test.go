package aws

import (
	"os/exec"
	"strings"
	"testing"
)

// TestOnlyWiringImportsEC2: the EC2 SDK costs about a minute and 3 GB to
// compile cold, so only this package and the wiring may pull it in (the
// CLI's registry, and the simulated incident, whose aws face opens the real
// provider against the EC2 emulator); every other package builds and tests
// without it.
func TestOnlyWiringImportsEC2(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("the go command is not on PATH")
	}
	pkgs, err := exec.Command("go", "list", "../../...").Output()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{
		"github.com/fixfleet/fixfleet/providers/aws": true,
		"github.com/fixfleet/fixfleet/cmd/fixfleet":  true,
		"github.com/fixfleet/fixfleet/simulation":    true,
		// source is the CLI's provider wiring: the registry of fleet.yaml's
		// clouds.
		"github.com/fixfleet/fixfleet/source": true,
		// simtest runs simulation's incidents on virtual time, for tests.
		"github.com/fixfleet/fixfleet/simulation/simtest": true,
		// bench is the incident benchmark over every face.
		"github.com/fixfleet/fixfleet/simulation/bench": true,
	}
	for _, p := range strings.Fields(string(pkgs)) {
		if allowed[p] {
			continue
		}
		deps, err := exec.Command("go", "list", "-deps", "-f", `{{.ImportPath}}`, p).Output()
		if err != nil {
			t.Fatalf("go list -deps %s: %v", p, err)
		}
		if strings.Contains(string(deps), "github.com/aws/aws-sdk-go-v2/service/ec2\n") {
			t.Errorf("%s pulls in the EC2 SDK", p)
		}
	}
}
