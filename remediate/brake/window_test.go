package brake

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
)

func TestWindow(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)
	throttled := providers.Errorf(providers.ErrThrottled, "StopVMs", "vm a", "request limit exceeded")
	unavailable := providers.Errorf(providers.ErrUnavailable, "StopVMs", "vm a", "503")
	type obs struct {
		after time.Duration
		err   error
	}
	ok := func(d time.Duration, n int) []obs {
		var o []obs
		for range n {
			o = append(o, obs{d, nil})
		}
		return o
	}
	cat := func(parts ...[]obs) []obs {
		var o []obs
		for _, p := range parts {
			o = append(o, p...)
		}
		return o
	}
	cases := []struct {
		name    string
		ceiling int
		obs     []obs
		want    int
	}{
		{name: "starts at WindowStart", ceiling: 100, want: WindowStart},
		{name: "a low ceiling is the start", ceiling: 5, want: 5},
		{name: "slow start: one per answer, up to the ceiling", ceiling: 30, obs: ok(time.Second, 25), want: 30},
		{name: "a throttle halves the window", ceiling: 100, obs: cat(ok(time.Second, 10), []obs{{2 * time.Second, throttled}}), want: 15},
		{name: "throttles within the cool-down cut once", ceiling: 100,
			obs: []obs{{time.Second, throttled}, {2 * time.Second, throttled}, {20 * time.Second, throttled}}, want: 10},
		{name: "after the cool-down it cuts again", ceiling: 100,
			obs: []obs{{time.Second, throttled}, {40 * time.Second, throttled}}, want: 5},
		{name: "never below one", ceiling: 100,
			obs: []obs{{0, throttled}, {time.Minute, throttled}, {2 * time.Minute, throttled}, {3 * time.Minute, throttled}, {4 * time.Minute, throttled}, {5 * time.Minute, throttled}}, want: 1},
		{name: "after a throttle: one per window of answers", ceiling: 100,
			obs: cat([]obs{{0, throttled}}, ok(time.Minute, 10), ok(2*time.Minute, 10)), want: 11},
		{name: "an instant's answers do not count once it is throttled, in any order", ceiling: 100,
			obs: cat(ok(time.Second, 4), []obs{{time.Second, throttled}}, ok(time.Second, 4)), want: 10},
		{name: "outages and guests say nothing about the rate", ceiling: 100,
			obs: []obs{{time.Second, unavailable}, {time.Second, guest.ErrUnreachable}, {time.Second, context.Canceled}, {time.Second, fmt.Errorf("restart: %w", pace.ErrStale)}}, want: WindowStart},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := NewWindow(c.ceiling, 30*time.Second)
			for _, o := range c.obs {
				w.Observe(t0.Add(o.after), o.err)
			}
			if got := w.Limit(); got != c.want {
				t.Errorf("limit = %d, want %d", got, c.want)
			}
		})
	}
}

// TestWindowSameInstantAnyOrder: the outcomes of one instant give the same
// window whatever order they are reported in.
func TestWindowSameInstantAnyOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)
	throttled := providers.Errorf(providers.ErrThrottled, "Observe", "3 VMs", "slow down")
	var limits []string
	for pos := range 5 {
		w := NewWindow(100, 30*time.Second)
		for i := range 5 {
			var err error
			if i == pos {
				err = throttled
			}
			w.Observe(t0, err)
		}
		for range 3 {
			w.Observe(t0.Add(time.Second), nil)
		}
		limits = append(limits, fmt.Sprint(w.Limit()))
	}
	for _, l := range limits[1:] {
		if l != limits[0] {
			t.Fatalf("limits by the throttle's position = %v, want all equal", limits)
		}
	}
}

func TestWindowAcquire(t *testing.T) {
	t.Parallel()
	w := NewWindow(2, time.Second)
	ctx := context.Background()
	for range 2 {
		if err := w.Acquire(ctx); err != nil {
			t.Fatal(err)
		}
	}
	full, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := w.Acquire(full); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire on a full window = %v, want the context's error", err)
	}
	got := make(chan error, 1)
	go func() { got <- w.Acquire(ctx) }()
	w.Release()
	if err := <-got; err != nil {
		t.Fatalf("Acquire after a Release = %v", err)
	}
}
