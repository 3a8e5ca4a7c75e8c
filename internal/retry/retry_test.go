package retry

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers"
)

func TestDo(t *testing.T) {
	unavailable := providers.Errorf(providers.ErrUnavailable, "List", "zone is1a", "503")
	permanent := providers.Errorf(providers.ErrPermanent, "List", "zone is1a", "403")
	tests := []struct {
		name      string
		errs      []error // returned by successive calls; nil after the list
		attempts  int
		wantCalls int
		wantErr   error
	}{
		{name: "success at once", wantCalls: 1},
		{name: "retryable then success", errs: []error{unavailable, unavailable}, wantCalls: 3},
		{name: "permanent is not retried", errs: []error{permanent}, wantCalls: 1, wantErr: providers.ErrPermanent},
		{name: "bounded", errs: []error{unavailable, unavailable, unavailable, unavailable}, attempts: 3, wantCalls: 3, wantErr: providers.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			clk := clock.NewScaled(time.Now(), 1e6)
			err := Do(context.Background(), clk, Policy{Attempts: tt.attempts}, func() error {
				calls++
				if calls <= len(tt.errs) {
					return tt.errs[calls-1]
				}
				return nil
			})
			if calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
			}
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

func TestDoStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Do(ctx, clock.NewScaled(time.Now(), 1e6), Policy{}, func() error {
		return providers.Errorf(providers.ErrThrottled, "List", "", "429")
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

// TestDoWaitsByKey: each wait is told to OnRetry, lies between half and
// all of the backoff (doubling from Base, bounded by Max), and is a
// function of the Key and the attempt alone, so that a replay waits the
// same while calls with other keys spread apart.
func TestDoWaitsByKey(t *testing.T) {
	waits := func(key string) []time.Duration {
		var got []time.Duration
		p := Policy{Attempts: 5, Base: time.Second, Max: 4 * time.Second, OnRetry: func(attempt, attempts int, err error, wait time.Duration) {
			if attempt != len(got)+1 || attempts != 5 || !errors.Is(err, providers.ErrThrottled) {
				t.Errorf("OnRetry(%d, %d, %v): want attempt %d of 5, throttled", attempt, attempts, err, len(got)+1)
			}
			got = append(got, wait)
		}}
		err := Do(context.Background(), clock.NewScaled(time.Now(), 1e6), p.Keyed(key), func() error {
			return providers.Errorf(providers.ErrThrottled, "List", "", "429")
		})
		if !errors.Is(err, providers.ErrThrottled) {
			t.Errorf("err = %v, want throttled", err)
		}
		return got
	}
	a := waits("list/acct-a")
	backoff := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second}
	if len(a) != len(backoff) {
		t.Fatalf("waits %v: want %d (one per retry)", a, len(backoff))
	}
	for i, d := range a {
		if d < backoff[i]/2 || d > backoff[i] {
			t.Errorf("wait %d = %v, want within [%v, %v]", i+1, d, backoff[i]/2, backoff[i])
		}
	}
	if again := waits("list/acct-a"); !slices.Equal(again, a) {
		t.Errorf("the same key waited %v, then %v: want the same waits", a, again)
	}
	if other := waits("list/acct-b"); slices.Equal(other, a) {
		t.Errorf("keys list/acct-a and list/acct-b both waited %v: want their jitter apart", a)
	}
}
