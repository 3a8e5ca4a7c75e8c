// Package pace paces calls to a rate on a clock (a token bucket) and gives
// the calls that arrive at one instant their turns in the order of their
// keys, not in the order their goroutines happened to run.
//
// A first-come-first-served limiter (golang.org/x/time/rate's reservations)
// hands out its tokens in arrival order. On virtual time (a
// testing/synctest bubble) many calls share an instant and arrival order is
// goroutine order, which nothing fixes: which call goes at once and which
// waits a second would change from run to run. A real cloud gives no order
// to simultaneous calls either, so serving them by key costs nothing real.
//
// Contract:
//   - Over any span, calls go no faster than the rate with bursts of the
//     burst size (those of rate.Limiter).
//   - Every call waits clock.Settle on the clock before its turn is decided, so
//     that every call of its instant has arrived; then the calls of each
//     instant, earliest instant first, take their tokens in key order.
//   - Calls of one instant with equal keys are interchangeable: they take
//     one token each and all go at the latest of their turns.
//   - A call whose context ends before it goes gives its token back
//     (rate.Reservation.CancelAt) and returns the context's error.
package pace

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// Limiter paces calls. Use New; safe for concurrent use.
type Limiter struct {
	clk clock.Clock

	mu      sync.Mutex // never held while waiting
	lim     *rate.Limiter
	pending []*call // arrived, turn not decided yet
	seq     uint64
}

type call struct {
	at  time.Time
	key string
	seq uint64 // arrival order, only to keep the sort total

	served bool
	res    *rate.Reservation
	goAt   time.Time // decided when served
}

// Headroom is the share of a cloud's documented request rate that ForCloud
// leaves unused. A client paced exactly at the rate is refused whenever a
// call goes a moment after its token was due while the cloud's bucket was
// full: the cloud lost that moment's refill, the client's count did not.
const Headroom = 0.02

// ForCloud returns a Limiter for a cloud's documented bucket of size burst
// refilled at r tokens a second: it paces at (1-Headroom)·r, so that the
// cloud's own bucket never refuses a call it let go.
func ForCloud(clk clock.Clock, r rate.Limit, burst int) *Limiter {
	return New(clk, r*(1-Headroom), burst)
}

// New returns a Limiter of r calls a second with bursts of burst (at least
// 1), on clk.
func New(clk clock.Clock, r rate.Limit, burst int) *Limiter {
	return &Limiter{clk: clk, lim: rate.NewLimiter(r, max(burst, 1))}
}

// Wait blocks until the call named key may go, or returns ctx's error
// when ctx ends first.
func (l *Limiter) Wait(ctx context.Context, key string) error {
	l.mu.Lock()
	l.seq++
	c := &call{at: l.clk.Now(), key: key, seq: l.seq}
	l.pending = append(l.pending, c)
	l.mu.Unlock()

	if err := l.clk.Sleep(ctx, clock.Settle); err != nil {
		l.withdraw(c)
		return err
	}
	l.mu.Lock()
	// Every call of an instant before now has arrived; calls arriving at
	// now wait for their own turn. A clock read as earlier than c.at (a
	// wall clock set back) still serves c.
	now := l.clk.Now()
	l.serve(later(now, c.at.Add(clock.Settle)))
	goAt := c.goAt
	l.mu.Unlock()

	if err := clock.SleepUntil(ctx, l.clk, goAt); err != nil {
		l.withdraw(c)
		return err
	}
	return nil
}

// serve decides the turns of the pending calls that arrived before cutoff:
// by instant, then key. Caller holds mu.
func (l *Limiter) serve(cutoff time.Time) {
	var due, rest []*call
	for _, c := range l.pending {
		if c.at.Before(cutoff) {
			due = append(due, c)
		} else {
			rest = append(rest, c)
		}
	}
	l.pending = rest
	slices.SortFunc(due, func(a, b *call) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for i := 0; i < len(due); {
		j := i + 1
		for j < len(due) && due[j].at.Equal(due[i].at) && due[j].key == due[i].key {
			j++
		}
		var last time.Time
		for _, c := range due[i:j] {
			c.res = l.lim.ReserveN(c.at, 1)
			c.served = true
			last = later(last, c.at.Add(c.res.DelayFrom(c.at)))
		}
		for _, c := range due[i:j] {
			c.goAt = last
		}
		i = j
	}
}

// withdraw takes back a call whose context ended: out of the pending
// calls, or its token returned.
func (l *Limiter) withdraw(c *call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !c.served {
		l.pending = slices.DeleteFunc(l.pending, func(p *call) bool { return p == c })
		return
	}
	c.res.CancelAt(l.clk.Now())
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
