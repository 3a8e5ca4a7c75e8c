package aws

import (
	"context"
	"errors"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// TestBatcherMerges: callers arriving within the window share one call,
// each gets its result, and a caller that gives up does not cancel the call
// for the others.
func TestBatcherMerges(t *testing.T) {
	var mu sync.Mutex
	var calls [][]string
	fail := errors.New("boom")
	b := &batcher{clk: clock.NewScaled(time.Now(), 100), send: func(_ context.Context, ids []string) error {
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
	if len(calls) > 2 || ids != 12 {
		// 10 callers + the one that gave up, within 20 ms of wall time:
		// one call (two if the window closed between arrivals), every ID
		// once (i-0, i-a..i-j, i-shared).
		sort.Slice(calls, func(i, j int) bool { return len(calls[i]) > len(calls[j]) })
		t.Errorf("calls %v: want the 12 distinct IDs merged into at most 2 calls", calls)
	}
}
