package conformance

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/memnet"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Virtual is a provider to check on virtual time (RunVirtual).
type Virtual struct {
	// Zones are the generated world's zones (default world.DefaultZones).
	Zones []string
	// Open serves the cloud's emulator of w on n and opens the provider on
	// it, as world.DefaultAccount, waiting on w.Clock(). It runs inside a
	// testing/synctest bubble: everything it starts must end by the
	// cleanup it returns (servers closed, connections with them).
	Open func(t *testing.T, w *world.World, n *memnet.Network) (*providers.Provider, func())
	// ID translates a world VM ID into the provider's (nil: the same).
	ID func(worldID string) string
	// Window is the time the provider waits before a power call on purpose
	// (batching), added to the table's durations.
	Window time.Duration
}

// virtualRun is what one run of RunVirtual observes.
type virtualRun struct {
	listed          int
	stopped, booted time.Duration // simulated time of Stop, then of Start
	calls           map[string]int
}

// RunVirtual drives the real provider against its emulator over an
// in-memory network inside a synctest bubble, on a generated world (12 VMs,
// calibrated latency and throttling): list the fleet, stop three broken
// VMs, start them again. It checks that two runs agree to the nanosecond
// (durations and the world's call counts) and that the simulated durations
// lie within the world's table (plus v.Window, and at most a minute of
// polls and calls).
func RunVirtual(t *testing.T, v Virtual) {
	t.Helper()
	id := v.ID
	if id == nil {
		id = func(s string) string { return s }
	}
	run := func(t *testing.T) virtualRun {
		var out virtualRun
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			w, err := world.Generate(world.GenOptions{VMs: 12, Seed: 5, Zones: v.Zones, Clock: clock.NewOffset(world.DefaultOrigin)})
			if err != nil {
				t.Fatal(err)
			}
			p, done := v.Open(t, w, memnet.New())
			defer done()
			clk := w.Clock()
			vms, err := p.Enumerator.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out.listed = len(vms)
			worldID := map[string]string{}
			for _, vm := range w.Export().VMs {
				worldID[id(vm.ID)] = vm.ID
			}
			slices.SortFunc(vms, func(a, b inventory.VM) int { return strings.Compare(a.ID, b.ID) })
			var refs []providers.VMRef
			for _, vm := range vms {
				if tr, _ := w.Truth(worldID[vm.ID]); tr != world.TruthHealthy && len(refs) < 3 {
					refs = append(refs, providers.VMRef{ID: vm.ID, Region: vm.Location.Region, Zone: vm.Location.Zone})
				}
			}
			if len(refs) != 3 {
				t.Fatalf("want 3 broken VMs, have %d", len(refs))
			}
			t0 := clk.Now()
			if err := p.Power.Stop(ctx, refs, true); err != nil {
				t.Fatal(err)
			}
			t1 := clk.Now()
			if err := p.Power.Start(ctx, refs); err != nil {
				t.Fatal(err)
			}
			out.stopped, out.booted = t1.Sub(t0), clk.Now().Sub(t1)
			out.calls = w.Stats().Calls
		})
		return out
	}
	a, b := run(t), run(t)
	if a.listed != 12 {
		t.Errorf("listed %d VMs, want 12", a.listed)
	}
	stop, start := timing.Of(timing.OpStop), timing.Of(timing.OpStart)
	in := func(d time.Duration, r timing.Range) bool {
		return d >= v.Window+r.Min && d <= v.Window+r.Max+time.Minute
	}
	if !in(a.stopped, stop) || !in(a.booted, start) {
		t.Errorf("stop took %v (table %v–%v), start %v (table %v–%v), window %v", a.stopped, stop.Min, stop.Max, a.booted, start.Min, start.Max, v.Window)
	}
	if a.stopped != b.stopped || a.booted != b.booted || !maps.Equal(a.calls, b.calls) {
		t.Errorf("two runs differ:\n%+v\n%+v", a, b)
	}
	t.Logf("stop %v, start %v simulated; world calls %v", a.stopped, a.booted, a.calls)
}
