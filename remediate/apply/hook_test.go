package apply

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// TestHookPoints: a hook sees the four points of every step attempt, in
// order, and the journal state each point names (begun not yet written
// before PointBeforeBegin, the end written at PointEnded).
func TestHookPoints(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "hook", acts: 1}.build(t)
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			return step.Facts{step.Fact(name): vm}, nil
		}, "recheck", "restart-1")
		var mu sync.Mutex
		var got []string
		ctx := WithHook(context.Background(), func(a At) {
			mu.Lock()
			defer mu.Unlock()
			status := "none"
			steps, err := h.j.ListSteps(context.Background(), "hook", a.VMKey)
			if err != nil {
				t.Error(err)
			}
			for _, s := range steps {
				if s.Step == a.Step {
					status = string(s.Status)
				}
			}
			got = append(got, a.Step+"/"+string(a.Point)+"/"+status)
		})
		if _, err := Run(ctx, p, h.opts(p, rr)); err != nil {
			t.Fatal(err)
		}
		want := []string{
			"recheck/before-begin/none", "recheck/begun/begun", "recheck/after-effect/begun", "recheck/ended/ok",
			"restart-1/before-begin/none", "restart-1/begun/begun", "restart-1/after-effect/begun", "restart-1/ended/ok",
		}
		if !slices.Equal(got, want) {
			t.Errorf("hook saw %v\nwant %v", got, want)
		}
	})
}

// TestUnknownOutcomeIsNotUntouched: a mutating step whose reply was lost
// (a retryable error after the cloud may have applied it), or that a
// process died in, may have changed the VM: found healthy afterwards, the
// VM is fixed, never "left untouched". (Found by
// TestAfterCommitEveryMutation: a lost RestartVM reply made a restarted VM
// "found healthy on re-check before anything was changed".)
func TestUnknownOutcomeIsNotUntouched(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t)
	p := fleet{id: "unknown", acts: 2, canary: 2, total: 2, perAccount: 2}.build(t)
	// vm01: a previous process began restart-1 and died.
	var doc bytes.Buffer
	if err := plan.Write(&doc, p); err != nil {
		t.Fatal(err)
	}
	if err := h.j.CreateRun(ctx, journal.Run{ID: "unknown", PlanID: "unknown", PlanJSON: doc.Bytes(), CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.j.BeginStep(ctx, journal.StepIntent{RunID: "unknown", VMKey: p.VMs[1].Key, Strategy: "reboot-retry", Step: "restart-1", Attempt: 1, At: t0}); err != nil {
		t.Fatal(err)
	}
	// vm00: restart-1's reply is lost; the retry finds the VM healthy.
	rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		switch {
		case name == "restart-1" && vm == p.VMs[0].Key && n == 1:
			return nil, providers.Errorf(providers.ErrUnavailable, "Restart", vm, "connection reset by peer (the request may have been applied)")
		case name == "restart-1":
			return nil, step.ErrHealthy
		}
		return nil, nil
	}, "recheck", "restart-1", "wait-1")
	rr.readOnlyStep = func(name string) bool { return name == "recheck" }
	if _, err := Run(ctx, p, h.opts(p, rr)); err != nil {
		t.Fatal(err)
	}
	for _, v := range p.VMs {
		if got := h.vm("unknown", v.Key); got.Status != StatusFixed {
			t.Errorf("%s: %s (%s), want fixed: its restart may have happened", v.Key, got.Status, got.Reason)
		}
	}
}
