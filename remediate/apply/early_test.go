package apply

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// TestEarlyStepRunsAhead: every VM's snapshot (an Early step of its
// fallback) is taken while the canary still holds the fleet, once per VM;
// a VM's own strategy then skips it, and a VM that the first strategy
// fixes is fixed by it, started (not resumed), and left untouched by the
// snapshot.
func TestEarlyStepRunsAhead(t *testing.T) {
	const acts, canary = 8, 2
	h := newHarness(t)
	p := fleet{id: "early", acts: acts, canary: canary, total: 10, perAccount: 10}.build(t)

	var mu sync.Mutex
	snapped := map[string]bool{}
	allSnapped := make(chan struct{})
	hm := newFake(policy.HelperMount, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		if name == "snapshot" {
			mu.Lock()
			defer mu.Unlock()
			snapped[vm] = true
			if len(snapped) == acts {
				close(allSnapped)
			}
			return step.Facts{"snapshot_id": "snap-" + vm}, nil
		}
		if name == "fix" && f["snapshot_id"] != "snap-"+vm {
			return nil, fmt.Errorf("the early snapshot's fact did not reach the strategy: %v", f)
		}
		return nil, nil
	}, "recheck", "stop", "snapshot", "fix")
	hm.early = "snapshot"
	fixedByRestart := p.VMs[acts-1].Key
	rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		if name != "restart" {
			return nil, nil
		}
		if vm == p.VMs[0].Key {
			// The canary waits for every VM's snapshot: without early
			// runs they would wait for the canary (never).
			select {
			case <-allSnapped:
			case <-time.After(20 * time.Second):
				return nil, step.Fail("the other VMs' snapshots were not taken while the canary ran")
			}
		}
		if vm == fixedByRestart {
			return nil, nil
		}
		return nil, step.Fail("still boot-looping")
	}, "recheck", "restart")

	// A conditional fallback between them (race-the-boot, planned on a
	// condition its recheck finds unmet) has an Early step too: it is
	// not the one run ahead.
	rb := newFake(policy.RaceBoot, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		if name == "recheck" {
			return nil, step.Fail("no window seen")
		}
		return nil, nil
	}, "recheck", "snapshot")
	rb.early, rb.condition = "snapshot", "only if a window shows"
	for i := range p.VMs {
		if p.VMs[i].Strategy == policy.RebootRetry {
			p.VMs[i].Fallbacks = []policy.Strategy{policy.RaceBoot, policy.HelperMount}
		}
	}
	if _, err := Run(context.Background(), p, h.opts(p, rr, rb, hm)); err != nil {
		t.Fatal(err)
	}
	for _, v := range p.VMs[:acts] {
		rec := h.vm("early", v.Key)
		want := policy.HelperMount
		if v.Key == fixedByRestart {
			want = policy.RebootRetry
		}
		if rec.Status != StatusFixed || policy.Strategy(rec.Strategy) != want {
			t.Errorf("%s: %s by %s (%s), want fixed by %s", v.Key, rec.Status, rec.Strategy, rec.Reason, want)
		}
		if n := hm.count(v.Key, "snapshot"); n != 1 {
			t.Errorf("%s: snapshot ran %d times, want once", v.Key, n)
		}
		if n := rb.count(v.Key, "snapshot"); n != 0 {
			t.Errorf("%s: the conditional fallback's snapshot ran %d times, want never", v.Key, n)
		}
		steps, err := h.j.ListSteps(context.Background(), "early", v.Key)
		if err != nil {
			t.Fatal(err)
		}
		ok := 0
		for _, s := range steps {
			if s.Strategy == string(policy.HelperMount) && s.Step == "snapshot" && s.Status == journal.StepOK {
				ok++
			}
		}
		if ok != 1 {
			t.Errorf("%s: the journal shows the snapshot ended ok %d times, want once", v.Key, ok)
		}
	}
	k := h.kinds()
	if k[EvVMResumed] != 0 || k[EvVMStarted] != acts {
		t.Errorf("events: %d started, %d resumed; want %d started (an early step is no resume)", k[EvVMStarted], k[EvVMResumed], acts)
	}
}
