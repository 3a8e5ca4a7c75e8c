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

	"golang.org/x/time/rate"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers/sim/bucket"
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

// TestPacedCallsNeverRefused: calls let go by ForCloud reach a cloud
// bucket of the size and refill it was given (the simulated clouds'
// bucket), and none is refused, whatever the rate; a limiter paced exactly
// at the cloud's rate (New) is refused, which is why ForCloud exists.
func TestPacedCallsNeverRefused(t *testing.T) {
	tests := []struct {
		name  string
		rate  float64
		burst int
	}{
		{"simple model 10/s burst 20", 10, 20},
		{"ec2 mutating 5/s burst 2", 5, 2},
		{"slow 0.3/s burst 1", 0.3, 1},
		{"fast 100/s burst 50", 100, 50},
	}
	refused := func(t *testing.T, l *Limiter, b *bucket.Bucket) int {
		var mu sync.Mutex
		n := 0
		var wg sync.WaitGroup
		for i := range 400 {
			wg.Go(func() {
				// Arrivals spread over time, several at each instant.
				// Every third call is background work.
				time.Sleep(time.Duration(i%37) * 97 * time.Millisecond)
				ctx := context.Background()
				if i%3 == 0 {
					ctx = Background(ctx, NewUrgency())
				}
				if err := l.Wait(ctx, fmt.Sprint(i)); err != nil {
					t.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if _, ok := b.Take(time.Now()); !ok {
					n++
				}
			})
		}
		wg.Wait()
		return n
	}
	exact := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				if n := refused(t, ForCloud(clock.Real{}, rate.Limit(tt.rate), tt.burst), bucket.New(tt.burst, tt.rate)); n > 0 {
					t.Errorf("%d of 400 calls paced by ForCloud refused by the cloud's bucket", n)
				}
			})
			synctest.Test(t, func(t *testing.T) {
				exact += refused(t, New(clock.Real{}, rate.Limit(tt.rate), tt.burst), bucket.New(tt.burst, tt.rate))
			})
		})
	}
	if exact == 0 {
		t.Error("calls paced exactly at the cloud's rate were never refused: the test no longer shows why ForCloud leaves headroom")
	}
}

// TestBackgroundYields: a call made while many background calls wait goes
// after at most BackgroundBacklog (and its own token), not behind them;
// the background calls all go, at the rate, and in key order; Backlog
// reports the wait ahead.
func TestBackgroundYields(t *testing.T) {
	tests := []struct {
		name       string
		background int
		rate       float64
		burst      int
	}{
		{"50 background at 5/s", 50, 5, 2},
		{"200 background at 10/s", 200, 10, 20},
		{"3 background: no wait", 3, 5, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := New(clock.Real{}, rate.Limit(tt.rate), tt.burst)
				start := time.Now()
				var mu sync.Mutex
				var order []string
				went := map[string]time.Duration{}
				var wg sync.WaitGroup
				for i := range tt.background {
					wg.Go(func() {
						k := fmt.Sprintf("bg %03d", i)
						if err := l.Wait(Background(context.Background(), NewUrgency()), k); err != nil {
							t.Error(err)
						}
						mu.Lock()
						order = append(order, k)
						went[k] = time.Since(start)
						mu.Unlock()
					})
				}
				time.Sleep(time.Second)
				ahead := l.Backlog()
				if err := l.Wait(context.Background(), "foreground"); err != nil {
					t.Fatal(err)
				}
				fg := time.Since(start) - time.Second
				wg.Wait()
				if limit := BackgroundBacklog + time.Duration(float64(time.Second)/tt.rate) + clock.Settle; fg > limit {
					t.Errorf("the foreground call waited %v behind background work, want at most %v", fg, limit)
				}
				if ahead > BackgroundBacklog+time.Millisecond {
					t.Errorf("backlog %v when the foreground call came, want at most %v", ahead, BackgroundBacklog)
				}
				slices.Sort(order)
				for i := 1; i < len(order); i++ {
					if went[order[i]] < went[order[i-1]] {
						t.Errorf("%s went at %v, before %s at %v: out of key order", order[i], went[order[i]], order[i-1], went[order[i-1]])
					}
				}
				// The rate holds: the n-th call beyond the burst goes no
				// sooner than n / rate.
				times := slices.Sorted(maps.Values(went))
				for n, at := range times {
					if min := time.Duration(float64(n+1-tt.burst) / tt.rate * float64(time.Second)); at < min-time.Millisecond {
						t.Fatalf("background call %d went at %v, before %v: faster than the rate", n, at, min)
					}
				}
				time.Sleep(time.Duration(float64(tt.burst) / tt.rate * float64(time.Second)))
				if l.Backlog() != 0 {
					t.Errorf("backlog %v once the bucket refilled", l.Backlog())
				}
			})
		})
	}
}

// TestBackgroundPromoted: a background call whose urgent context ends is
// served as any other call from then on, not after the background calls
// that arrived before it.
func TestBackgroundPromoted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(clock.Real{}, 5, 2)
		var wg sync.WaitGroup
		for i := range 100 {
			wg.Go(func() {
				if err := l.Wait(Background(context.Background(), NewUrgency()), fmt.Sprintf("bg %03d", i)); err != nil {
					t.Error(err)
				}
			})
		}
		time.Sleep(time.Second)
		urgent := NewUrgency()
		wg.Go(func() {
			time.Sleep(time.Second)
			urgent.Promote(time.Now())
		})
		start := time.Now()
		if err := l.Wait(Background(context.Background(), urgent), "awaited"); err != nil {
			t.Fatal(err)
		}
		if got, limit := time.Since(start), time.Second+BackgroundBacklog+time.Second/5+2*clock.Settle; got > limit {
			t.Errorf("the promoted call went after %v, want at most %v", got, limit)
		}
		wg.Wait()
	})
}

// TestBacklogCountsArrived: Backlog counts the calls that arrived before
// now whether or not their turns were decided yet, so that it reads the
// same whatever order an instant's goroutines ran in.
func TestBacklogCountsArrived(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(clock.Real{}, 10, 5)
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Go(func() {
				if err := l.Wait(context.Background(), fmt.Sprint(i)); err != nil {
					t.Error(err)
				}
			})
		}
		synctest.Wait()
		if got := l.Backlog(); got != 0 {
			t.Errorf("backlog %v at the calls' own instant, want 0 (they may still be arriving)", got)
		}
		time.Sleep(clock.Settle)
		before := l.Backlog() // the calls' turns decided or not, by goroutine order
		time.Sleep(10 * time.Millisecond)
		after := l.Backlog() // decided
		// 30 calls beyond a burst of 5 at 10/s: the 31st waits 2.6 s,
		// less the refill since.
		want := 2600 * time.Millisecond
		for _, got := range []time.Duration{before, after} {
			if got > want || got < want-10*time.Millisecond-clock.Settle {
				t.Errorf("backlog %v, want about %v", got, want)
			}
		}
		wg.Wait()
	})
}

// TestNotAfter: a call whose turn would come after its context's limit is
// not made (ErrStale) and takes no token; one in time goes.
func TestNotAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := New(clock.Real{}, 1, 1)
		start := time.Now()
		if err := l.Wait(context.Background(), "first"); err != nil { // the burst
			t.Fatal(err)
		}
		if err := l.Wait(NotAfter(context.Background(), start.Add(500*time.Millisecond)), "too late"); !errors.Is(err, ErrStale) {
			t.Fatalf("err %v, want ErrStale: its turn comes at 1s", err)
		}
		if time.Since(start) > time.Millisecond {
			t.Errorf("the stale call returned after %v, want at once", time.Since(start))
		}
		if err := l.Wait(NotAfter(context.Background(), start.Add(2*time.Second)), "in time"); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got > time.Second+time.Millisecond {
			t.Errorf("the next call went at %v, want about 1s: the stale call took a token", got)
		}
	})
}
