package aws

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// TestBatcherMerges: callers arriving within the window share one call,
// each gets its result, and a caller that gives up does not cancel the call
// for the others.
func TestBatcherMerges(t *testing.T) { synctest.Test(t, testBatcherMerges) }

func testBatcherMerges(t *testing.T) {
	var mu sync.Mutex
	var calls [][]string
	fail := errors.New("boom")
	b := &batcher{clk: clock.Real{}, send: func(_ context.Context, ids []string) error {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, append([]string(nil), ids...))
		return fail
	}}
	gaveUp, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.do(gaveUp, []string{"i-0"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("a cancelled caller got %v", err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = b.do(context.Background(), []string{"i-" + string(rune('a'+i)), "i-shared"})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, fail) {
			t.Errorf("caller %d got %v, want the call's error", i, err)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	ids := 0
	for _, c := range calls {
		ids += len(c)
	}
	if len(calls) != 1 || ids != 12 {
		// 10 callers + the one that gave up, at one instant of virtual
		// time: one call, every ID once (i-0, i-a..i-j, i-shared).
		sort.Slice(calls, func(i, j int) bool { return len(calls[i]) > len(calls[j]) })
		t.Errorf("calls %v: want the 12 distinct IDs merged into 1 call", calls)
	}
}

// TestBatcherSendsWhenQuiet: a batch goes out quietGap after its last
// caller, and no later than maxWindow after its first, on virtual time.
func TestBatcherSendsWhenQuiet(t *testing.T) {
	tests := []struct {
		name  string
		every time.Duration // between callers
		n     int           // callers
		// want is when (after the first caller) each call was sent.
		want []time.Duration
	}{
		{"a lone caller waits the gap", 0, 1, []time.Duration{quietGap}},
		{"callers within the gap share a call", time.Second, 4, []time.Duration{3*time.Second + quietGap}},
		{"a steady stream is cut at the window", 4 * time.Second, 12, []time.Duration{maxWindow, 44*time.Second + quietGap}},
		// A caller of the very instant a batch is due never joins it,
		// whichever of the instant's goroutines runs first.
		{"a caller as the gap ends opens the next batch", quietGap, 3, []time.Duration{quietGap, 2 * quietGap, 3 * quietGap}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var mu sync.Mutex
				var sent []time.Duration
				b := &batcher{clk: clock.Real{}, send: func(context.Context, []string) error {
					mu.Lock()
					defer mu.Unlock()
					sent = append(sent, time.Since(start))
					return nil
				}}
				var wg sync.WaitGroup
				for i := range tt.n {
					wg.Go(func() { _ = b.do(context.Background(), []string{"i-" + string(rune('a'+i))}) })
					time.Sleep(tt.every)
				}
				wg.Wait()
				if !slices.Equal(sent, tt.want) {
					t.Errorf("sent at %v, want %v", sent, tt.want)
				}
			})
		})
	}
}
