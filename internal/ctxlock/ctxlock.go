// Package ctxlock holds locks for code that may wait while holding them
// (a cloud call, a sleep on the clock). A goroutine waiting for one is
// blocked on a channel: inside a testing/synctest bubble it is durably
// blocked, so virtual time can advance to wake the holder (a goroutine
// waiting on a sync.Mutex is not, and stalls the bubble), and it gives up
// when its context ends.
//
// Ordered is such a lock whose waiters take it in a canonical order (by
// instant, then key) rather than goroutine order, for code run on virtual
// time.
//
// Use sync.Mutex for short critical sections that never wait.
package ctxlock

import (
	"context"
	"sync"
)

// Mutex is a lock whose Lock honours a context. Use New; not copyable.
type Mutex struct{ ch chan struct{} }

// New returns an unlocked Mutex.
func New() *Mutex { return &Mutex{ch: make(chan struct{}, 1)} }

// Lock waits until m is free and takes it, or returns ctx's error
// (without the lock) when ctx ends first.
func (m *Mutex) Lock(ctx context.Context) error {
	select {
	case m.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unlock releases m. It must be held.
func (m *Mutex) Unlock() { <-m.ch }

// Keyed is one Mutex per key, made on first use. The zero value is ready.
type Keyed struct {
	mu sync.Mutex // guards m only: never held while waiting
	m  map[string]*Mutex
}

// Lock takes key's Mutex as Mutex.Lock does and returns its Unlock.
func (k *Keyed) Lock(ctx context.Context, key string) (unlock func(), err error) {
	k.mu.Lock()
	if k.m == nil {
		k.m = map[string]*Mutex{}
	}
	m := k.m[key]
	if m == nil {
		m = New()
		k.m[key] = m
	}
	k.mu.Unlock()
	if err := m.Lock(ctx); err != nil {
		return nil, err
	}
	return m.Unlock, nil
}
