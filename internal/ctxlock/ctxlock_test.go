package ctxlock

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// TestWaiterIsDurablyBlocked: inside a bubble, a goroutine waiting for a
// key whose holder sleeps lets virtual time advance, and gets the lock
// once the holder wakes and unlocks it.
func TestWaiterIsDurablyBlocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := NewKeyed(clock.Real{})
		ctx := context.Background()
		unlock, err := k.Lock(ctx, "a", "")
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		go func() {
			time.Sleep(time.Hour)
			unlock()
		}()
		again, err := k.Lock(ctx, "a", "")
		if err != nil {
			t.Fatal(err)
		}
		if got := time.Since(start); got < time.Hour || got > time.Hour+time.Second {
			t.Fatalf("waited %v, want the holder's 1h", got)
		}
		again()
	})
}

// TestLockHonoursContext: a waiter gives up with its context's error and
// does not take the lock.
func TestLockHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := NewKeyed(clock.Real{}) // inside the bubble: virtual time
		unlock, err := k.Lock(context.Background(), "a", "")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := k.Lock(ctx, "a", ""); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Lock of a held key: %v, want DeadlineExceeded", err)
		}
		other, err := k.Lock(context.Background(), "b", "")
		if err != nil {
			t.Fatalf("another key is independent: %v", err)
		}
		other()
		unlock()
		again, err := k.Lock(context.Background(), "a", "")
		if err != nil {
			t.Fatalf("after Unlock: %v", err)
		}
		again()
	})
}

// TestKeyedSameInstantInTurnOrder: the waiters of one key and instant take
// it in the order of their turns whatever order their goroutines start in
// (an instance's free device picked by one attach after another), while a
// holder of another key never waits for them.
func TestKeyedSameInstantInTurnOrder(t *testing.T) {
	turns := []string{"vol-a", "vol-b", "vol-c", "vol-d"}
	for _, start := range [][]string{{"vol-d", "vol-c", "vol-b", "vol-a"}, {"vol-b", "vol-d", "vol-a", "vol-c"}} {
		var got []string
		synctest.Test(t, func(t *testing.T) {
			k := NewKeyed(clock.Real{})
			ctx := context.Background()
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, turn := range start {
				wg.Go(func() {
					unlock, err := k.Lock(ctx, "i-helper", turn)
					if err != nil {
						t.Errorf("Lock(%s): %v", turn, err)
						return
					}
					mu.Lock()
					got = append(got, turn)
					mu.Unlock()
					time.Sleep(time.Minute) // the attach and its wait
					unlock()
				})
			}
			began := time.Now()
			other, err := k.Lock(ctx, "i-other", "vol-z")
			if err != nil {
				t.Fatal(err)
			}
			if waited := time.Since(began); waited >= time.Minute {
				t.Errorf("another key waited %v for the first key's holders", waited)
			}
			other()
			wg.Wait()
		})
		if !slices.Equal(got, turns) {
			t.Errorf("start order %v: took the lock in order %v, want %v", start, got, turns)
		}
	}
}
