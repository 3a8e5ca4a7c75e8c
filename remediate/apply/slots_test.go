package apply

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"testing/synctest"

	"golang.org/x/sync/semaphore"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/ctxlock"
	"github.com/fixfleet/fixfleet/remediate/brake"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

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
				r := &runner{
					accounts: map[string]*brake.Window{"t/a": brake.NewWindow(1, 0)},
					turns:    map[string]*ctxlock.Ordered{"t/a": ctxlock.NewOrdered(clk)}, globalTurn: ctxlock.NewOrdered(clk),
					global: semaphore.NewWeighted(10),
				}
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
