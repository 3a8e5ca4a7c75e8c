// Package clock is the only way fixfleet reads time or waits.
//
// The orchestrator and the simulated world both take a Clock, so that a
// simulated incident lasting hours can replay in seconds on a Scaled clock
// while production code runs on Real.
package clock

import (
	"context"
	"sync"
	"time"
)

// Clock tells the time and waits.
type Clock interface {
	// Now returns the current (possibly simulated) time.
	Now() time.Time
	// Sleep waits for d of this clock's time, or until ctx ends, in which case
	// it returns ctx.Err(). A d <= 0 returns at once (nil unless ctx is done).
	Sleep(ctx context.Context, d time.Duration) error
}

// Real is the wall clock.
type Real struct{}

// Now implements Clock.
func (Real) Now() time.Time { return time.Now() }

// Sleep implements Clock.
func (Real) Sleep(ctx context.Context, d time.Duration) error { return sleepReal(ctx, d) }

func sleepReal(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Scaled runs Factor times faster than the wall clock, starting at Origin.
// A Factor of 600 replays ten simulated minutes in one real second.
// It is safe for concurrent use.
type Scaled struct {
	mu     sync.Mutex
	origin time.Time // simulated time at realStart
	start  time.Time // wall time when origin was pinned
	factor float64
}

// NewScaled returns a clock that reads origin now and advances factor times
// faster than wall time. factor must be > 0.
func NewScaled(origin time.Time, factor float64) *Scaled {
	if factor <= 0 {
		factor = 1
	}
	return &Scaled{origin: origin, start: time.Now(), factor: factor}
}

// Factor returns the speed-up over wall time.
func (s *Scaled) Factor() float64 { return s.factor }

// Now implements Clock.
func (s *Scaled) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	real := time.Since(s.start)
	return s.origin.Add(time.Duration(float64(real) * s.factor))
}

// Sleep implements Clock: it waits d/Factor of wall time.
func (s *Scaled) Sleep(ctx context.Context, d time.Duration) error {
	return sleepReal(ctx, time.Duration(float64(d)/s.factor))
}

// WallFor converts a duration of this clock into wall time.
func (s *Scaled) WallFor(d time.Duration) time.Duration {
	return time.Duration(float64(d) / s.factor)
}

// Settle is how long a caller waits on the clock before something that
// must not depend on goroutine order is decided among the callers of one
// instant (a lock's next holder, a rate limiter's turns, a breaker's
// probe): on virtual time (a testing/synctest bubble) the least step that
// lets every caller of an instant arrive; on real time, nothing.
const Settle = time.Nanosecond

// SleepUntil waits on c until c reads t or later, or ctx ends (ctx.Err()).
// It re-reads the clock after each wait, so a clock that jumps (a scaled
// clock re-synced, a manual clock) is honoured.
func SleepUntil(ctx context.Context, c Clock, t time.Time) error {
	for {
		d := t.Sub(c.Now())
		if d <= 0 {
			return ctx.Err()
		}
		if err := c.Sleep(ctx, d); err != nil {
			return err
		}
	}
}

// Offset reads the time package's clock shifted by a fixed amount, and
// sleeps on real timers. Inside a testing/synctest bubble the time
// package's clock is the bubble's fake one (it starts at 2000-01-01 UTC and
// advances only when every goroutine in the bubble is durably blocked), so
// an Offset made there runs a simulated incident on virtual time: waits
// cost no wall time and CPU costs no simulated time. Outside a bubble it
// is the wall clock moved to another epoch. Safe for concurrent use.
type Offset struct {
	delta time.Duration
	loc   *time.Location
}

// NewOffset returns a clock that reads origin now: later readings advance
// with the time package's clock.
// Readings are in origin's location.
func NewOffset(origin time.Time) Offset {
	return Offset{delta: origin.Sub(time.Now()), loc: origin.Location()}
}

// Now implements Clock.
func (o Offset) Now() time.Time { return time.Now().Add(o.delta).In(o.loc) }

// Sleep implements Clock on a real timer (a fake one inside a bubble).
func (Offset) Sleep(ctx context.Context, d time.Duration) error { return sleepReal(ctx, d) }
