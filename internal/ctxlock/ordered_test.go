package ctxlock

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// TestOrderedSameInstantInKeyOrder: waiters asking at one instant take the
// lock in key order whatever order their goroutines start in, whether the
// lock is held when they ask or free.
func TestOrderedSameInstantInKeyOrder(t *testing.T) {
	var keys []string
	for i := range 10 {
		keys = append(keys, fmt.Sprintf("server %02d", i))
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, held := range []bool{true, false} {
		for run := range 5 {
			shuffled := slices.Clone(keys)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			var got []string
			synctest.Test(t, func(t *testing.T) {
				o := NewOrdered(clock.Real{}) // inside the bubble: virtual time
				ctx := context.Background()
				if held {
					if err := o.Lock(ctx, "holder"); err != nil {
						t.Fatal(err)
					}
					go func() { time.Sleep(time.Hour); o.Unlock() }()
				}
				var mu sync.Mutex
				var wg sync.WaitGroup
				for _, k := range shuffled {
					wg.Go(func() {
						if err := o.Lock(ctx, k); err != nil {
							t.Errorf("Lock(%s): %v", k, err)
							return
						}
						mu.Lock()
						got = append(got, k)
						mu.Unlock()
						time.Sleep(time.Minute) // a cloud call
						o.Unlock()
					})
				}
				wg.Wait()
			})
			if !slices.Equal(got, keys) {
				t.Fatalf("held %v, run %d (start order %v): took the lock in order %v, want key order", held, run, shuffled, got)
			}
		}
	}
}

// TestOrderedEarlierInstantFirst: a waiter that asked earlier takes the
// lock before one that asked later with a lesser key.
func TestOrderedEarlierInstantFirst(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := NewOrdered(clock.Real{})
		ctx := context.Background()
		if err := o.Lock(ctx, "holder"); err != nil {
			t.Fatal(err)
		}
		var got []string
		var mu sync.Mutex
		var wg sync.WaitGroup
		for i, k := range []string{"z", "a"} {
			wg.Go(func() {
				time.Sleep(time.Duration(i) * time.Second)
				if err := o.Lock(ctx, k); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				got = append(got, k)
				mu.Unlock()
				o.Unlock()
			})
		}
		time.Sleep(time.Minute)
		o.Unlock()
		wg.Wait()
		if !slices.Equal(got, []string{"z", "a"}) {
			t.Errorf("order %v, want z (asked first) then a", got)
		}
	})
}

// TestOrderedHonoursContext: a waiter whose context ends gives up its
// place without the lock, and the lock still goes to the next waiter.
func TestOrderedHonoursContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		o := NewOrdered(clock.Real{})
		if err := o.Lock(context.Background(), "holder"); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := o.Lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err %v, want the context's", err)
		}
		done := make(chan struct{})
		go func() {
			if err := o.Lock(context.Background(), "b"); err != nil {
				t.Error(err)
			}
			close(done)
		}()
		time.Sleep(time.Minute)
		o.Unlock()
		<-done
		o.Unlock()
	})
}
