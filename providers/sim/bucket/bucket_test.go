package bucket

import (
	"testing"
	"time"
)

func TestTake(t *testing.T) {
	t0 := time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		calls     []time.Duration // offsets from t0, in order
		wantOK    []bool
		wantWait  time.Duration // of the last call, when refused
		size      int
		refillSec float64
	}{
		{name: "drains one call an instant", size: 2, refillSec: 1,
			calls: []time.Duration{0, time.Nanosecond, 2 * time.Nanosecond}, wantOK: []bool{true, true, false}, wantWait: time.Second},
		{name: "one instant overdraws", size: 2, refillSec: 1,
			calls: []time.Duration{0, 0, 0, 0, time.Nanosecond}, wantOK: []bool{true, true, true, true, false}, wantWait: 3 * time.Second},
		{name: "refills", size: 1, refillSec: 2,
			calls: []time.Duration{0, time.Nanosecond, 500 * time.Millisecond}, wantOK: []bool{true, false, true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := New(tt.size, tt.refillSec)
			var wait time.Duration
			for i, off := range tt.calls {
				var ok bool
				wait, ok = b.Take(t0.Add(off))
				if ok != tt.wantOK[i] {
					t.Fatalf("call %d at +%v: admitted %v, want %v", i, off, ok, tt.wantOK[i])
				}
			}
			if last := tt.wantOK[len(tt.wantOK)-1]; !last && (wait < tt.wantWait-time.Millisecond || wait > tt.wantWait+time.Millisecond) {
				t.Errorf("wait %v, want about %v", wait, tt.wantWait)
			}
		})
	}
}
