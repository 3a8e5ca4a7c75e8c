package apply

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// TestHookPoints: a hook sees the four points of every step attempt, in
// order, and the journal state each point names (begun not yet written
// before PointBeforeBegin, the end written at PointEnded).
func TestHookPoints(t *testing.T) {
	h := newHarness(t)
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
}
