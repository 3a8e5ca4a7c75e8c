package fleet

import (
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/sim"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/helperpool"
)

// TestPoolsReportKeptHelpers: a helper that cannot be released at the end
// of a run (here: still leased) is not dropped silently: the error names it
// and why; with keep, nothing is reported.
func TestPoolsReportKeptHelpers(t *testing.T) {
	mix, err := world.ParseMix("healthy=100")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := world.GenerateScenario(world.GenOptions{VMs: 5, Seed: 2, Mix: mix})
	if err != nil {
		t.Fatal(err)
	}
	w, err := world.Load(sc, clock.NewScaled(sc.Now, 1e5))
	if err != nil {
		t.Fatal(err)
	}
	prov := sim.New(w, sim.Options{})
	imgs, err := prov.Helpers.Images(t.Context())
	if err != nil || len(imgs) == 0 {
		t.Fatalf("images %v %v", imgs, err)
	}
	pool, err := helperpool.New(prov.Helpers, helperpool.Options{RunID: "run-kept"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := pool.Lease(t.Context(), imgs[0].Zone, inventory.WindowsVersion{Release: imgs[0].Windows.Release}, "sim/sim/vm-x", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := (pools{pool}).ReleaseAll(t.Context(), true); err != nil {
		t.Errorf("keep: %v, want nothing reported", err)
	}
	err = (pools{pool}).ReleaseAll(t.Context(), false)
	if err == nil || !strings.Contains(err.Error(), h.ID) {
		t.Errorf("release with a helper still leased: %v, want an error naming %s", err, h.ID)
	}
}
