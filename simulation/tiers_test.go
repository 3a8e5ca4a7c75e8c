package simulation_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/simulation"
	"github.com/fixfleet/fixfleet/simulation/simtest"
)

// TestTiersGateApply: on the simulated world (virtual time), with tiers
// databases (role=db), then sql (role=sql), then the rest, no VM of a
// tier starts before its tier.started event, and that event comes only
// once every VM of the tier before it has finished or the policy's timeout
// has passed since that tier started. Both a generous timeout (the tiers
// open when done) and a short one (they open on the timeout) are run.
func TestTiersGateApply(t *testing.T) {
	t.Parallel() // virtual time: CPU contention cannot change its outcome
	tests := []struct {
		name    string
		timeout int // minutes
	}{
		{"tiers open when done", 600},
		{"tiers open on the timeout", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), "j.db")
			var p *plan.Plan
			o := virtualIncident(simulation.FaceSim, 40, 7)
			o.Journal = db
			o.Policy = func(pol policy.Policy) (policy.Policy, error) {
				pol.AllowDataLoss, pol.FailureThreshold = true, 1 // the brakes are not under test
				pol.Tiers = []policy.Tier{{Name: "databases", Selector: "role=db"}, {Name: "sql", Selector: "role=sql"}}
				pol.TierTimeoutMinutes = tt.timeout
				return pol, pol.Validate()
			}
			o.Watch = func(pl *plan.Plan) func(apply.Event) { p = pl; return nil }
			s := simtest.Run(t, o)
			if pr := s.Problems(); len(pr) > 0 {
				t.Fatalf("problems: %v (run %s)", pr, s.RunStatus)
			}
			if p == nil || len(p.Tiers) != 3 || p.Tiers[0].Act == 0 || p.Tiers[1].Act == 0 {
				t.Fatalf("plan tiers %+v: want acted-on VMs in the first two tiers", p.Tiers)
			}
			checkTierOrder(t, db, p, time.Duration(tt.timeout)*time.Minute)
		})
	}
}

// checkTierOrder reads the run's events from the journal and checks the
// tier gates (see TestTiersGateApply).
func checkTierOrder(t *testing.T, db string, p *plan.Plan, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	j, err := journal.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	evs, err := j.Events(ctx, p.ID, journal.EventFilter{})
	if err != nil {
		t.Fatal(err)
	}
	tierOf := map[string]int{}
	for _, v := range p.VMs {
		tierOf[v.Key] = v.Tier
	}
	var starts []journal.Event                  // tier.started, in order: tier 1, 2, ...
	finishedBefore := make([]int, len(p.Tiers)) // per tier: VMs acted on finished so far
	var onTimeout int
	for _, e := range evs {
		switch e.Kind {
		case apply.EvTierStarted:
			n := len(starts) // 0-based tier opening now
			if n > 0 {
				prev := p.Tiers[n-1]
				if finishedBefore[n-1] < prev.Act {
					if e.At.Sub(starts[n-1].At) < timeout {
						t.Errorf("tier %d started at %s with %d of %d VMs of tier %s finished, %s after it started (timeout %s)",
							n+1, e.At, finishedBefore[n-1], prev.Act, prev.Name, e.At.Sub(starts[n-1].At), timeout)
					}
					onTimeout++
				}
			}
			starts = append(starts, e)
		case apply.EvVMStarted:
			if tr := tierOf[e.VMKey]; tr > len(starts) {
				t.Errorf("%s of tier %d started before its tier (%d tiers started)", e.VMKey, tr, len(starts))
			}
		case apply.EvVMFixed, apply.EvVMFlagged, apply.EvVMFailed, apply.EvVMSkippedHealthy:
			if tr := tierOf[e.VMKey]; tr > 0 {
				finishedBefore[tr-1]++
			}
		}
	}
	if len(starts) != len(p.Tiers) {
		t.Fatalf("%d tier.started events, want %d", len(starts), len(p.Tiers))
	}
	t.Logf("tiers %+v; %d opened on the timeout", p.Tiers, onTimeout)
	if timeout < 10*time.Minute && onTimeout == 0 {
		t.Error("a 1-minute timeout never opened a tier: the case does not test the timeout")
	}
}
