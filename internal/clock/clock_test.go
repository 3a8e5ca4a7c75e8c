package clock

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestScaledAndSleepUntil(t *testing.T) {
	origin := time.Date(2024, 7, 19, 6, 30, 0, 0, time.UTC)
	c := NewScaled(origin, 1e5)
	target := origin.Add(10 * time.Minute) // 6 ms of wall time
	if err := SleepUntil(context.Background(), c, target); err != nil {
		t.Fatal(err)
	}
	if now := c.Now(); now.Before(target) {
		t.Errorf("SleepUntil returned at %v, before %v", now, target)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := SleepUntil(ctx, c, c.Now().Add(24*time.Hour)); !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
	if got := c.WallFor(time.Hour); got != 36*time.Millisecond {
		t.Errorf("WallFor(1h) = %v, want 36ms at 1e5×", got)
	}
}
