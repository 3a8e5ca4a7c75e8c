package ctxlock

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"
)

// TestWaiterIsDurablyBlocked: inside a bubble, a goroutine waiting for a
// Mutex whose holder sleeps lets virtual time advance, and gets the lock
// once the holder wakes and unlocks it.
func TestWaiterIsDurablyBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m := New()
		ctx := context.Background()
		if err := m.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		go func() {
			time.Sleep(time.Hour)
			m.Unlock()
		}()
		if err := m.Lock(ctx); err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got != time.Hour {
			t.Fatalf("waited %v, want the holder's 1h", got)
		}
		m.Unlock()
	})
}

// TestLockHonoursContext: a waiter gives up with its context's error and
// does not take the lock.
func TestLockHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var k Keyed
		unlock, err := k.Lock(context.Background(), "a")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := k.Lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock of a held key: %v, want DeadlineExceeded", err)
		}
		other, err := k.Lock(context.Background(), "b")
		if err != nil {
			t.Fatalf("another key is independent: %v", err)
		}
		other()
		unlock()
		again, err := k.Lock(context.Background(), "a")
		if err != nil {
			t.Fatalf("after Unlock: %v", err)
		}
		again()
	})
}
