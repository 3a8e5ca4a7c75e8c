package simulation_test

import (
	"maps"
	"math"
	"slices"
	"testing"

	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/simulation"
	"github.com/fixfleet/fixfleet/simulation/simtest"
)

// virtualIncident describes an incident as `fixfleet demo` runs it (the
// demo's fault and policy defaults), through face.
func virtualIncident(face string, vms int, seed int64) simulation.RunOptions {
	faults := simulation.DefaultFaults()
	return simulation.RunOptions{
		Options: simulation.Options{World: simulation.WorldOptions{VMs: vms, Seed: seed}, Faults: &faults, Face: face},
		Policy:  func(p policy.Policy) (policy.Policy, error) { p.AllowDataLoss = true; return p, p.Validate() },
	}
}

// outcome is what the same seed must reproduce exactly.
type outcome struct {
	fixed, flagged int
	flaggedVMs     []string
	byStrategy     map[string]int
	makespan       int64 // simulated seconds
	calls          map[string]int
	throttled      int
}

func outcomeOf(s simulation.Summary) outcome {
	o := outcome{fixed: s.Fixed, flagged: s.Flagged, byStrategy: s.ByStrategy, makespan: int64(math.Round(s.ElapsedSec)), calls: s.API.Calls, throttled: s.API.Throttled}
	for _, f := range s.FlaggedVMs {
		o.flaggedVMs = append(o.flaggedVMs, f.ID+" "+f.Strategy)
	}
	return o
}

func (a outcome) equal(b outcome) bool {
	return a.fixed == b.fixed && a.flagged == b.flagged && slices.Equal(a.flaggedVMs, b.flaggedVMs) &&
		maps.Equal(a.byStrategy, b.byStrategy) && a.makespan == b.makespan && maps.Equal(a.calls, b.calls) && a.throttled == b.throttled
}

// TestSameSeedSameIncident: on virtual time the same seed gives the same
// incident, through every face: the same VMs fixed (by the same
// strategies) and flagged, the same makespan to the second and the same
// API calls per operation.
func TestSameSeedSameIncident(t *testing.T) {
	t.Parallel() // virtual time: CPU contention cannot change its outcome
	tests := []struct {
		face string
		vms  int
	}{
		{face: simulation.FaceSim, vms: 300},
		{face: simulation.FaceSakura, vms: 60},
		{face: simulation.FaceAWS, vms: 60},
	}
	for _, tt := range tests {
		t.Run(tt.face, func(t *testing.T) {
			t.Parallel()
			var got []outcome
			for range 2 {
				s := simtest.Run(t, virtualIncident(tt.face, tt.vms, 7))
				if p := s.Problems(); len(p) > 0 {
					t.Errorf("problems: %v", p)
				}
				got = append(got, outcomeOf(s))
				t.Logf("fixed %d flagged %d %v makespan %s, %d API calls (%d throttled), wall %.1fs", s.Fixed, s.Flagged, s.ByStrategy, s.ElapsedSim, s.API.Total, s.API.Throttled, s.WallSec)
			}
			if got[0].fixed == 0 {
				t.Errorf("nothing fixed: the incident proves nothing")
			}
			if !got[0].equal(got[1]) {
				t.Errorf("the same seed gave two incidents:\n%+v\n%+v", got[0], got[1])
			}
		})
	}
}
