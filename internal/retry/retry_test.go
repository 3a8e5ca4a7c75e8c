package retry

import (
	"context"
	"errors"
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
