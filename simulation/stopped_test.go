package simulation_test

import (
	"path/filepath"
	"testing"

	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/simulation"
)

// TestStoppedVMsOffline: powered-off VMs, some carrying the bad file and
// some switched off before it was published, are checked offline through
// the real Sakura client against its emulator, under the default policy
// (stopped_vms: leave-stopped): each ends repaired-stopped (the world's
// truth then counts it healthy: the bad file is gone from its disk) or
// found-clean (its disk put back unchanged, never "fixed"), or with a
// person for a reason the plan gave; none is started, every invariant
// counter is 0.
func TestStoppedVMsOffline(t *testing.T) {
	t.Parallel() // virtual time: CPU contention cannot change its outcome
	o := incident(40, 6)
	o.Face = simulation.FaceSakura
	o.World.Mix = "stopped=40,stopped-clean=30,healthy=30"
	o.Journal = filepath.Join(t.TempDir(), "j.db")
	s := run(t, o)
	checkOutcome(t, s)
	vms, steps := latestRun(t, o.Journal)
	codes := map[apply.Reason]int{}
	for _, v := range vms {
		codes[apply.Reason(v.Code)]++
		for _, st := range steps[v.VMKey] {
			if st.Step == "start" {
				t.Errorf("%s: step %s/start ran under stopped_vms: leave-stopped", v.VMKey, st.Strategy)
			}
		}
	}
	t.Logf("reason codes: %v", codes)
	if codes[apply.ReasonRepairedStopped] == 0 || codes[apply.ReasonFoundClean] == 0 {
		t.Errorf("reason codes %v, want both repaired-stopped and found-clean", codes)
	}
	if s.Fixed != codes[apply.ReasonRepairedStopped] {
		t.Errorf("fixed %d, want the %d repaired-stopped only (a clean disk is not fixed)", s.Fixed, codes[apply.ReasonRepairedStopped])
	}
}
