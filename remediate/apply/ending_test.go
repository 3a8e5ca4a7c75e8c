package apply

import (
	"context"
	"testing"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// TestEndings: a strategy that ran all its steps and recorded an ending
// (step.FactEnding) is reported by it, with a typed reason: a powered-off
// VM repaired offline and left off is fixed (repaired-stopped), one whose
// disk carried nothing to repair is healthy and not fixed (found-clean);
// without an ending it is fixed. Status rebuilds the same from the
// journal.
func TestEndings(t *testing.T) {
	cases := []struct {
		name       string
		ending     step.Ending // "": none recorded
		wantStatus journal.VMStatus
		wantCode   Reason
		wantOut    Outcome
	}{
		{"no ending", "", StatusFixed, ReasonFixed, OutcomeFixed},
		{"repaired, left stopped", step.EndRepairedStopped, StatusFixed, ReasonRepairedStopped, OutcomeFixed},
		{"found clean", step.EndFoundClean, StatusSkippedHealthy, ReasonFoundClean, OutcomeHealthy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			p := fleet{id: "ending", acts: 1, canary: 1, waveSize: 1, total: 1, perAccount: 1}.build(t)
			rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
				if name == "conclude" && c.ending != "" {
					return step.Facts{step.FactEnding: string(c.ending)}, nil
				}
				return nil, nil
			}, "recheck", "act", "conclude")
			res, err := Run(context.Background(), p, h.opts(p, rr))
			if err != nil {
				t.Fatal(err)
			}
			v := res.VMs[0]
			if v.Status != c.wantStatus || v.Code != c.wantCode || v.Code.Outcome() != c.wantOut {
				t.Errorf("VM %+v, want status %s, code %s (outcome %s)", v, c.wantStatus, c.wantCode, c.wantOut)
			}
			st, err := Status(context.Background(), h.j, p.ID)
			if err != nil {
				t.Fatal(err)
			}
			if g := st.VMs[0]; g.Status != v.Status || g.Code != v.Code {
				t.Errorf("Status rebuilt %+v, want %+v", g, v)
			}
		})
	}
}
