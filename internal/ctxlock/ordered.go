package ctxlock

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// Ordered is a Mutex whose waiters take it in a canonical order rather than
// in the order their goroutines ran: by the instant of the clock they
// asked at, then by the key each names (a resource, a VM). On virtual time
// (a testing/synctest bubble) goroutines woken at one instant run in any
// order; a plain Mutex would then hand the lock to whichever ran first.
// A real cloud orders simultaneous callers no better, so this costs
// nothing real.
//
// Contract:
//   - Lock waits clock.Settle on the clock first, so that every waiter of its
//     instant has arrived before any of them may take a free lock.
//   - When the lock is free, it goes to the waiter that asked earliest,
//     the least key among those of one instant; waiters of one instant
//     with equal keys take it in the order they asked (callers give keys
//     that tell simultaneous waiters apart).
//   - A waiter whose context ends gives up its place (or, granted the
//     lock meanwhile, passes it on) and returns the context's error.
//
// Use NewOrdered; not copyable. Safe for concurrent use.
type Ordered struct {
	clk clock.Clock

	mu      sync.Mutex // guards what follows; never held while waiting
	held    bool
	waiters []*orderedWaiter
	seq     uint64
}

type orderedWaiter struct {
	at      time.Time
	key     string
	seq     uint64 // order asked, only among equal instants and keys
	settled bool   // its clock.Settle wait is over
	granted bool
	ch      chan struct{} // receives once when granted
}

// NewOrdered returns an unlocked Ordered on clk.
func NewOrdered(clk clock.Clock) *Ordered { return &Ordered{clk: clk} }

// Lock waits until o is free and is this waiter's turn (see Ordered), and
// takes it; or returns ctx's error (without the lock) when ctx ends first.
func (o *Ordered) Lock(ctx context.Context, key string) error {
	o.mu.Lock()
	o.seq++
	w := &orderedWaiter{at: o.clk.Now(), key: key, seq: o.seq, ch: make(chan struct{}, 1)}
	o.waiters = append(o.waiters, w)
	o.mu.Unlock()

	if err := o.clk.Sleep(ctx, clock.Settle); err != nil {
		o.abandon(w)
		return err
	}
	o.mu.Lock()
	w.settled = true
	o.grant()
	o.mu.Unlock()

	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		o.abandon(w)
		return ctx.Err()
	}
}

// Unlock releases o and hands it to the next waiter whose turn it is. It
// must be held.
func (o *Ordered) Unlock() {
	o.mu.Lock()
	o.held = false
	o.grant()
	o.mu.Unlock()
}

// grant gives a free lock to the first eligible waiter: one that asked
// before now (so every waiter of its instant has arrived) or whose clock.Settle
// wait is over (the same, unless the clock was set back). Caller holds mu.
func (o *Ordered) grant() {
	if o.held {
		return
	}
	now := o.clk.Now()
	var next *orderedWaiter
	for _, w := range o.waiters {
		if !w.settled && !w.at.Before(now) {
			continue
		}
		if next == nil || orderedBefore(w, next) {
			next = w
		}
	}
	if next == nil {
		return
	}
	o.waiters = slices.DeleteFunc(o.waiters, func(w *orderedWaiter) bool { return w == next })
	o.held, next.granted = true, true
	next.ch <- struct{}{}
}

func orderedBefore(a, b *orderedWaiter) bool {
	if c := a.at.Compare(b.at); c != 0 {
		return c < 0
	}
	if c := cmp.Compare(a.key, b.key); c != 0 {
		return c < 0
	}
	return a.seq < b.seq
}

// abandon takes w out of the queue, or passes the lock on if w was
// granted it meanwhile.
func (o *Ordered) abandon(w *orderedWaiter) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if w.granted {
		o.held = false
		o.grant()
		return
	}
	o.waiters = slices.DeleteFunc(o.waiters, func(x *orderedWaiter) bool { return x == w })
}
