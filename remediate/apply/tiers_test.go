package apply

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// tieredPlan is 6 VMs acted on in waves [vm00] [vm01 vm02] [vm03 vm04]
// [vm05]: vm00..vm02 in tier 1 (first), the others in tier 2 (rest), with
// no timeout.
func tieredPlan(t *testing.T) *plan.Plan {
	p := fleet{id: "tiers", acts: 6, canary: 1, waveSize: 2, total: 4, perAccount: 4}.build(t)
	p.Policy.Tiers = []policy.Tier{{Name: "first", Selector: "role=dc"}}
	p.Policy.TierTimeoutMinutes = 0
	p.Tiers = []plan.Tier{{Number: 1, Name: "first", Selector: "role=dc", VMs: 3, Act: 3}, {Number: 2, Name: policy.RestTier, VMs: 3, Act: 3}}
	for i := range p.VMs {
		p.VMs[i].Tier = 1 + i/3
	}
	for i, tier := range []int{1, 1, 2, 2} {
		p.Waves[i].Tier = tier
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTiersHoldAndResume: an apply interrupted while tier 1 runs has
// started no VM of tier 2; the resumed apply keeps tier 1 open (no second
// tier.started for it) and opens tier 2 once tier 1 is done, before any
// of its VMs starts.
func TestTiersHoldAndResume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := tieredPlan(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			if vm == "t/a0/vm02" && name == "restart-1" && n == 1 {
				cancel()
				return nil, context.Canceled
			}
			return step.Facts{step.Fact(name): vm}, nil
		}, "recheck", "restart-1", "verify")
		o := h.opts(p, rr)
		if _, err := Run(ctx, p, o); !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v, want context.Canceled", err)
		}
		for _, v := range p.VMs[3:] {
			if n := rr.count(v.Key, "recheck"); n != 0 {
				t.Errorf("%s of tier 2 ran while tier 1 was not done", v.Key)
			}
		}
		res, err := Run(context.Background(), p, o)
		if err != nil || res.Status != RunDone || res.Fixed != 6 {
			t.Fatalf("resume: %v %+v", err, res)
		}
		evs, err := h.j.Events(context.Background(), p.ID, journal.EventFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var opened []journal.Event
		done1 := 0
		for _, e := range evs {
			switch e.Kind {
			case EvTierStarted:
				opened = append(opened, e)
				if len(opened) == 2 && done1 != 3 {
					t.Errorf("tier 2 opened with %d of tier 1's 3 VMs fixed", done1)
				}
			case EvVMFixed:
				if tierOf(p, e.VMKey) == 1 {
					done1++
				}
			case EvVMStarted, EvVMResumed:
				if tr := tierOf(p, e.VMKey); tr > len(opened) {
					t.Errorf("%s of tier %d started with %d tiers open", e.VMKey, tr, len(opened))
				}
			}
		}
		if len(opened) != 2 {
			t.Errorf("%d tier.started events, want 2 (tier 1 once, across the resume)", len(opened))
		}
	})
}

func tierOf(p *plan.Plan, key string) int {
	for _, v := range p.VMs {
		if v.Key == key {
			return v.Tier
		}
	}
	return 0
}
