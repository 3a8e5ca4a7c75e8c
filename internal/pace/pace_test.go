package pace

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// releases starts one goroutine per key at one instant, in the order
// given, and returns when each call was let go, after the start.
func releases(t *testing.T, keys []string) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	synctest.Test(t, func(t *testing.T) {
		l := New(clock.Real{}, 5, 2) // inside the bubble: virtual time
		start := time.Now()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, k := range keys {
			wg.Go(func() {
				if err := l.Wait(context.Background(), k); err != nil {
					t.Errorf("Wait(%s): %v", k, err)
				}
				mu.Lock()
				out[k] = time.Since(start)
				mu.Unlock()
			})
		}
		wg.Wait()
	})
	return out
}

// TestSameInstantInKeyOrder: the calls of one instant take their turns in
// key order whatever order their goroutines start in, at the limiter's
// rate beyond its burst.
func TestSameInstantInKeyOrder(t *testing.T) {
	var keys []string
	for i := range 12 {
		keys = append(keys, fmt.Sprintf("server %02d", i))
	}
	want := map[string]time.Duration{}
	for i, k := range keys {
		// Two go at once (the burst), then one each 200ms.
		want[k] = max(clock.Settle, time.Duration(i-1)*200*time.Millisecond)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for run := range 5 {
		shuffled := slices.Clone(keys)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := releases(t, shuffled); !maps.Equal(got, want) {
			t.Fatalf("run %d (start order %v):\ngot  %v\nwant %v", run, shuffled, got, want)
		}
	}
}

// TestEqualKeysGoTogether: calls of one instant with equal keys take a
// token each and go together, at the later of their turns.
func TestEqualKeysGoTogether(t *testing.T) {
	var at []time.Duration
	synctest.Test(t, func(t *testing.T) {
		l := New(clock.Real{}, 5, 1)
		start := time.Now()
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, k := range []string{"b", "a", "c", "a"} {
			wg.Go(func() {
				_ = l.Wait(context.Background(), k)
				if k == "a" {
					mu.Lock()
					at = append(at, time.Since(start))
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		// a, a take the first two tokens (at once and 200ms): both go
		// at 200ms; b goes at 400ms, c at 600ms.
		if len(at) != 2 || at[0] != 200*time.Millisecond || at[1] != at[0] {
			t.Errorf("equal keys went at %v, want both at 200ms", at)
		}
		if err := l.Wait(context.Background(), "d"); err != nil || time.Since(start) != 800*time.Millisecond {
			t.Errorf("next call went at %v (%v), want 800ms: every call took a token", time.Since(start), err)
		}
	})
}

// TestWaitHonoursContext: a call whose context ends returns its error and
// gives its token back.
func TestWaitHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(clock.Real{}, 1, 1)
		start := time.Now()
		if err := l.Wait(context.Background(), "first"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		if err := l.Wait(ctx, "gives up"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the context's", err)
		}
		if err := l.Wait(context.Background(), "next"); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got > time.Second+time.Millisecond {
			t.Errorf("next call went at %v, want about 1s: the token of the call that gave up was not returned", got)
		}
	})
}
