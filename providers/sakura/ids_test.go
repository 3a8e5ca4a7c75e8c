package sakura_test

import (
	"context"
	"fmt"
	"strconv"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestHandWrittenIDs: a scenario whose VMs and disks are named freely
// (srv-01, srv-01-c) is served with Sakura-shaped IDs (12 digits), and
// the provider stops and starts its servers by the IDs it listed.
func TestHandWrittenIDs(t *testing.T) {
	f := world.Faults{Throttle: world.ThrottleOff}
	sc, err := world.GenerateScenario(world.GenOptions{VMs: 4, Seed: 7, Faults: &f})
	if err != nil {
		t.Fatal(err)
	}
	for i := range sc.VMs {
		v := &sc.VMs[i]
		v.ID = fmt.Sprintf("srv-%02d", i+1)
		if v.OSDisk != nil {
			v.OSDisk.ID = v.ID + "-c"
		}
	}
	w, err := world.Load(sc, world.NewManualClock(sc.Now))
	if err != nil {
		t.Fatal(err)
	}
	p, _ := openOnEmulator(t, w, world.DefaultAccount)
	ctx := context.Background()
	vms, err := p.Enumerator.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(vms) != len(sc.VMs) {
		t.Fatalf("listed %d servers, want %d", len(vms), len(sc.VMs))
	}
	for _, v := range vms {
		if len(v.ID) != 12 {
			t.Errorf("server %s: ID %q is not Sakura-shaped (12 digits)", v.Name, v.ID)
		}
		if _, err := strconv.ParseUint(v.ID, 10, 64); err != nil {
			t.Errorf("server %s: ID %q is not numeric", v.Name, v.ID)
		}
		if v.OSDisk.ID == "" || len(v.OSDisk.ID) != 12 {
			t.Errorf("server %s: disk ID %q is not Sakura-shaped", v.Name, v.OSDisk.ID)
		}
	}
	for _, v := range vms {
		if v.Power != inventory.PowerRunning {
			continue
		}
		ref := providers.VMRef{ID: v.ID, Zone: v.Zone}
		if err := p.Power.Stop(ctx, []providers.VMRef{ref}, true); err != nil {
			t.Fatalf("Stop %s (%s): %v", v.Name, v.ID, err)
		}
		if _, err := p.Disks.Describe(ctx, providers.DiskRef{ID: v.OSDisk.ID, Zone: v.Zone}); err != nil {
			t.Errorf("Describe disk of %s: %v", v.Name, err)
		}
		return
	}
	t.Fatal("no running server to stop")
}
