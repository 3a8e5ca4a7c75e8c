package apply

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/ctxlock"
	"github.com/fixfleet/fixfleet/remediate/brake"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// slotRunner is a runner of one account "t/a" with a window of ceiling
// slots, ten run-wide, and env (nil: none) as the account's environment:
// what takeSlots reads.
func slotRunner(clk clock.Clock, ceiling int, env *step.Env) *runner {
	return &runner{
		o:        Options{Clock: clk},
		envs:     map[string]*step.Env{"t/a": env},
		accounts: map[string]*brake.Window{"t/a": brake.NewWindow(ceiling, 0)},
		turns:    map[string]*ctxlock.Ordered{"t/a": ctxlock.NewOrdered(clk)}, globalTurn: ctxlock.NewOrdered(clk),
		global: semaphore.NewWeighted(10),
	}
}

// TestSlotsInFixedOrder: dispatchers that wait for an account's only slot
// at one instant (the canary's and the waves' after it, which the
// strategy gate lets run at once) get it in a fixed order, the canary's VM
// first, whatever order their goroutines ran in.
func TestSlotsInFixedOrder(t *testing.T) {
	type waiter struct {
		key    string
		canary bool
	}
	waiters := []waiter{{"t/a/vm-9", false}, {"t/a/vm-3", true}, {"t/a/vm-1", false}}
	want := []string{"t/a/vm-3", "t/a/vm-1", "t/a/vm-9"}
	for _, order := range [][]int{{0, 1, 2}, {2, 1, 0}, {1, 2, 0}} {
		t.Run(fmt.Sprint(order), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clock.Real{} // inside the bubble: virtual time
				r := slotRunner(clk, 1, nil)
				ctx := context.Background()
				if err := r.accounts["t/a"].Acquire(ctx); err != nil { // the slot is busy
					t.Fatal(err)
				}
				var mu sync.Mutex
				var got []string
				var wg sync.WaitGroup
				for _, i := range order {
					w := waiters[i]
					wg.Go(func() {
						if err := r.takeSlots(ctx, "t/a", &plan.VMPlan{Key: w.key}, w.canary); err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						got = append(got, w.key)
						mu.Unlock()
						r.accounts["t/a"].Release()
						r.global.Release(1)
					})
					synctest.Wait() // each waits before the next one starts
				}
				r.accounts["t/a"].Release()
				wg.Wait()
				if !slices.Equal(got, want) {
					t.Errorf("slots went to %v, want %v", got, want)
				}
			})
		})
	}
}

// TestAdmitHoldsWhileBacklogged: a VM after the canary starts only once
// the account's calls wait at most AdmitBacklog in the provider's pacing;
// a canary VM, or an account whose provider does not tell, is not held.
func TestAdmitHoldsWhileBacklogged(t *testing.T) {
	tests := []struct {
		name    string
		canary  bool
		backlog bool
		want    time.Duration
	}{
		{"after the canary: held until the backlog drains to AdmitBacklog", false, true, 100*time.Second - AdmitBacklog},
		{"canary: not held", true, true, 0},
		{"no backlog known: not held", false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				clk := clock.Real{} // inside the bubble: virtual time
				start := clk.Now()
				env := &step.Env{}
				if tt.backlog {
					// 100 s of calls queued at the start, draining.
					env.Backlog = func() time.Duration { return max(0, 100*time.Second-clk.Now().Sub(start)) }
				}
				r := slotRunner(clk, 10, env)
				if err := r.takeSlots(context.Background(), "t/a", &plan.VMPlan{Key: "t/a/vm-1"}, tt.canary); err != nil {
					t.Fatal(err)
				}
				if got := clk.Now().Sub(start); got < tt.want || got > tt.want+time.Second {
					t.Errorf("started after %v, want %v", got, tt.want)
				}
			})
		})
	}
}
