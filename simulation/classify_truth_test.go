package simulation

import (
	"context"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/fleet"
)

// TestClassificationAgainstTruth checks the classifier against the simulated
// world's own truth, over many seeds and mixes, on virtual time (on the
// scaled clock a loaded machine stretched the assessment's window and
// changed what it saw):
//   - no VM that is not healthy is ever classified healthy;
//   - every VM whose condition the evidence determines (and which did not
//     change condition while it was being assessed) is classified correctly;
//   - every other VM is unknown, with a reason — or, if it changed condition
//     while it was assessed (a natural recovery), classified by its
//     condition before or after the change.
func TestClassificationAgainstTruth(t *testing.T) {
	mixes := []struct {
		name      string
		mix       string
		noConsole bool
	}{
		{name: "default", mix: world.DefaultMixSpec},
		{name: "default-no-console", mix: world.DefaultMixSpec, noConsole: true},
		{name: "loops", mix: "boot-loop=60,stuck=30,healthy=10"},
		{name: "stuck-no-console", mix: "stuck=70,healthy=30", noConsole: true},
		{name: "guest-trouble", mix: "winrm-blocked=40,bad-credentials=40,safe-mode=20"},
		{name: "safe-and-stopped", mix: "safe-mode=50,stopped=30,healthy=20"},
	}
	seeds := []int64{1, 2, 3, 4}
	if testing.Short() {
		seeds = seeds[:2]
	}
	for _, m := range mixes {
		for _, seed := range seeds {
			t.Run(fmt.Sprintf("%s/seed%d", m.name, seed), func(t *testing.T) {
				t.Parallel()
				synctest.Test(t, func(t *testing.T) {
					checkClassification(t, Virtual(Options{World: WorldOptions{VMs: 40, Seed: seed, Mix: m.mix, NoConsole: m.noConsole}}))
				})
			})
		}
	}
}

func checkClassification(t *testing.T, o Options) {
	ctx := context.Background()
	b, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	f, err := b.OpenFleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := b.World()
	spec := map[string]world.VMSpec{}
	before := map[string]string{}
	for _, v := range w.Export().VMs {
		spec[v.ID] = v
		before[v.ID] = v.Truth
	}
	a, err := f.Assess(ctx, fleet.AssessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(a.VMs) != len(spec) {
		t.Fatalf("assessed %d VMs, world has %d", len(a.VMs), len(spec))
	}
	for _, x := range a.VMs {
		id, got := x.VM.ID, x.Classification
		after, ok := w.Truth(id)
		if !ok {
			t.Fatalf("%s: world does not know it", id)
		}
		if got.State == inventory.StateHealthy && after != world.TruthHealthy {
			t.Errorf("%s: classified healthy but is %s (reasons %q)", id, after, got.Reasons)
		}
		if len(got.Reasons) == 0 {
			t.Errorf("%s: %s without a reason", id, got.State)
		}
		stable := before[id] == after
		if want, determined := determinable(spec[id], after, w.ConsoleAvailable()); stable && determined {
			if got.State != want {
				t.Errorf("%s (%+v): classified %s, want %s; reasons %q", id, spec[id].Condition, got.State, want, got.Reasons)
			}
		} else if got.State != inventory.StateUnknown && string(got.State) != after && string(got.State) != before[id] {
			// A VM that changed condition while it was assessed may be
			// classified by either condition, or unknown: nothing else.
			t.Errorf("%s: classified %s, but it was %s before and %s after", id, got.State, before[id], after)
		} else if !stable && got.State == inventory.StateUnknown {
			t.Logf("%s: changed from %s to %s while assessed: unknown (%q)", id, before[id], after, got.Reasons[0])
		}
	}
}

// determinable says whether the evidence fixfleet can gather determines the
// VM's condition, and what the verdict must then be.
func determinable(v world.VMSpec, truth string, console bool) (inventory.State, bool) {
	if v.Power != inventory.PowerRunning {
		return "", false // a powered-off VM shows nothing
	}
	switch truth {
	case world.TruthHealthy:
		return inventory.StateHealthy, v.Condition.WinRM == world.WinRMOpen
	case world.TruthSafeMode:
		return inventory.StateSafeMode, v.Condition.WinRM == world.WinRMOpen
	case world.TruthBootLoop:
		// A cycling VM shows its restarts; a VM stuck at the recovery
		// screen shows only on a console.
		return inventory.StateBootLoop, v.Condition.Loop == world.LoopCycling || console
	}
	return "", false
}
