package clock

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
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

// TestOffsetInBubble: inside a synctest bubble an Offset clock starts at
// its origin and a wait of hours costs no wall time.
func TestOffsetInBubble(t *testing.T) {
	origin := time.Date(2024, 7, 19, 6, 30, 0, 0, time.UTC)
	synctest.Test(t, func(t *testing.T) {
		c := NewOffset(origin)
		if got := c.Now(); !got.Equal(origin) || got.Location() != time.UTC {
			t.Fatalf("Now() = %v, want %v", got, origin)
		}
		if err := c.Sleep(context.Background(), 30*time.Hour); err != nil {
			t.Fatal(err)
		}
		if got, want := c.Now(), origin.Add(30*time.Hour); !got.Equal(want) {
			t.Errorf("after Sleep(30h): %v, want %v", got, want)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := c.Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
			t.Errorf("Sleep on a done context: %v", err)
		}
	})
}
