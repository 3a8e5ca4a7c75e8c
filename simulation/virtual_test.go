package simulation_test

import (
	"testing"

	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/simulation"
	"github.com/fixfleet/fixfleet/simulation/simtest"
)

func virtualIncident(face string, vms int, seed int64) simulation.RunOptions {
	faults := simulation.DefaultFaults()
	return simulation.RunOptions{
		Options: simulation.Options{World: simulation.WorldOptions{VMs: vms, Seed: seed}, Faults: &faults, Face: face},
		Policy:  func(p policy.Policy) (policy.Policy, error) { p.AllowDataLoss = true; return p, p.Validate() },
	}
}

func TestVirtualSmoke(t *testing.T) {
	for _, face := range []string{simulation.FaceSim, simulation.FaceSakura, simulation.FaceAWS} {
		s := simtest.Run(t, virtualIncident(face, 30, 1))
		t.Logf("%s: fixed %d flagged %d by %v elapsed %s wall %.1fs api %d/%d problems %v", face, s.Fixed, s.Flagged, s.ByStrategy, s.ElapsedSim, s.WallSec, s.API.Total, s.API.Throttled, s.Problems())
		for _, f := range s.FlaggedVMs {
			t.Logf("  %s %s: %.200s", f.ID, f.Strategy, f.Reason)
		}
	}
}
