package brake

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers"
)

// TestAwaitClosed: a background caller waits while the breaker is open and
// while its probe is out, never takes the probe, and goes once a probe has
// closed it.
func TestAwaitClosed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		b := NewBreaker(BreakerConfig{Clock: clock.Real{}, Consecutive: 1, CoolDown: time.Minute, Poll: time.Second})
		tk, err := b.Acquire(context.Background(), "a")
		if err != nil {
			t.Fatal(err)
		}
		tk.Done(providers.Errorf(providers.ErrUnavailable, "op", "r", "down"))
		if b.State() != Open {
			t.Fatalf("state %v, want open", b.State())
		}
		start := time.Now()
		went := make(chan time.Duration, 1)
		go func() {
			if err := b.AwaitClosed(context.Background()); err != nil {
				t.Error(err)
			}
			went <- time.Since(start)
		}()
		time.Sleep(2 * time.Minute) // past the cool-down: the probe is free, and not taken by the background caller
		synctest.Wait()
		if len(went) != 0 || b.State() == Closed {
			t.Fatalf("the background caller went (or closed the breaker) before a probe did: state %v", b.State())
		}
		probe, err := b.Acquire(context.Background(), "b")
		if err != nil || !probe.Probe() {
			t.Fatalf("the next caller did not get the probe: %v", err)
		}
		probe.Done(nil)
		if d := <-went; d < 2*time.Minute {
			t.Fatalf("went after %v, before the probe closed the breaker", d)
		}
	})
}
