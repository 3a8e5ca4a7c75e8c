// Package ctxlock holds locks for code that may wait while holding them
// (a cloud call, a sleep on the clock). A goroutine waiting for one is
// blocked on a channel: inside a testing/synctest bubble it is durably
// blocked, so virtual time can advance to wake the holder (a goroutine
// waiting on a sync.Mutex is not, and stalls the bubble), and it gives up
// when its context ends.
//
// Ordered is such a lock whose waiters take it in a canonical order (by
// instant, then key) rather than goroutine order, for code run on virtual
// time; Keyed is one Ordered per resource.
//
// Use sync.Mutex for short critical sections that never wait.
package ctxlock

import (
	"context"
	"sync"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// Keyed is one Ordered per key (a resource), made on first use, on one
// clock: holders of different keys never wait for each other, and the
// waiters of one key and instant take it in the order of their turn keys.
// Use NewKeyed; not copyable.
type Keyed struct {
	clk clock.Clock
	mu  sync.Mutex // guards m only: never held while waiting
	m   map[string]*Ordered
}

// NewKeyed returns a Keyed whose locks run on clk.
func NewKeyed(clk clock.Clock) *Keyed { return &Keyed{clk: clk, m: map[string]*Ordered{}} }

// Lock takes key's lock as Ordered.Lock does, its place among one
// instant's waiters given by turn, and returns its Unlock.
func (k *Keyed) Lock(ctx context.Context, key, turn string) (unlock func(), err error) {
	k.mu.Lock()
	o := k.m[key]
	if o == nil {
		o = NewOrdered(k.clk)
		k.m[key] = o
	}
	k.mu.Unlock()
	if err := o.Lock(ctx, turn); err != nil {
		return nil, err
	}
	return o.Unlock, nil
}
