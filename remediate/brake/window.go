package brake

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/providers"
)

// WindowStart is the concurrency a Window begins with when its ceiling is
// higher: the slow start doubles it from there until the first throttle.
const WindowStart = 20

// Window is an adaptive concurrency limit, additive increase and
// multiplicative decrease as TCP's congestion window: it starts at
// min(WindowStart, ceiling) and grows by one per call answered (doubling
// per window) until the cloud first throttles; from then on by one per
// window of answered calls. A throttled call halves it (never below 1, at
// most once per cool-down, since the calls in flight are throttled
// together), and it never exceeds its ceiling (the operator's
// concurrency). Units already held are not taken back: a smaller window
// only delays the next Acquire.
//
// Outcomes of one clock instant are applied as a set, whatever order
// their goroutines report them in: a throttle at an instant discards the
// growth from that instant's answers, so the same run gives the same
// window on virtual time.
//
// Safe for concurrent use. Use NewWindow.
type Window struct {
	ceiling  int
	coolDown time.Duration

	mu      sync.Mutex
	cur     windowSize
	base    windowSize // cur as the instant `at` began
	at      time.Time  // the instant of the last outcome
	cutAt   time.Time  // the last decrease; zero: never (slow start)
	inUse   int
	changed chan struct{} // closed when a unit is released or the limit grows
}

type windowSize struct{ limit, acks int }

// NewWindow returns a Window of at most ceiling (at least 1) units whose
// decreases are at least coolDown apart.
func NewWindow(ceiling int, coolDown time.Duration) *Window {
	ceiling = max(ceiling, 1)
	w := &Window{ceiling: ceiling, coolDown: coolDown, changed: make(chan struct{})}
	w.cur = windowSize{limit: min(WindowStart, ceiling)}
	w.base = w.cur
	return w
}

// Acquire takes one unit, waiting while the window is full. It returns
// ctx's error if ctx ends first (nothing taken).
func (w *Window) Acquire(ctx context.Context) error {
	for {
		w.mu.Lock()
		if w.inUse < w.cur.limit {
			w.inUse++
			w.mu.Unlock()
			return nil
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Release gives back a unit taken by Acquire.
func (w *Window) Release() {
	w.mu.Lock()
	w.inUse--
	w.wake()
	w.mu.Unlock()
}

// Limit is the window's size now.
func (w *Window) Limit() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cur.limit
}

// Observe feeds the outcome of one control-plane call (a step's error, or
// nil) made at now: providers.ErrThrottled shrinks the window, a call the
// cloud answered grows it; any other failure (an outage, a guest that does
// not answer, a cancelled caller) says nothing about the rate and is
// ignored. It reports whether the window shrank.
func (w *Window) Observe(now time.Time, err error) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !now.Equal(w.at) {
		w.at, w.base = now, w.cur
	}
	switch Classify(err) {
	case Success:
		if now.Equal(w.cutAt) {
			return false // this instant was throttled: its answers do not count
		}
		grown := w.cur.limit
		if w.cutAt.IsZero() {
			w.cur.limit++ // slow start
		} else if w.cur.acks++; w.cur.acks >= w.cur.limit {
			w.cur = windowSize{limit: w.cur.limit + 1}
		}
		w.cur.limit = min(w.cur.limit, w.ceiling)
		if w.cur.limit > grown {
			w.wake()
		}
	case APIError:
		if !errors.Is(err, providers.ErrThrottled) || !w.cutAt.IsZero() && now.Sub(w.cutAt) < w.coolDown {
			return false
		}
		w.cutAt = now
		w.cur = windowSize{limit: max(1, w.base.limit/2)}
		return true
	}
	return false
}

// wake tells the waiters to look again. Caller holds mu.
func (w *Window) wake() {
	close(w.changed)
	w.changed = make(chan struct{})
}
