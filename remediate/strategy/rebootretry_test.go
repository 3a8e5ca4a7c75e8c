package strategy

import (
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
)

// TestCrashWatchBegan: a crash screen ends the watch only once the
// watched boot is known to have begun: its booting screen seen, or, where
// that went unseen, a boot counter or boot time past the restart's mark.
func TestCrashWatchBegan(t *testing.T) {
	at := time.Date(2024, 7, 19, 7, 0, 0, 0, time.UTC)
	n := func(i int) *int { return &i }
	crash := func(count *int, boot time.Time) inventory.Signals {
		return inventory.Signals{Power: inventory.PowerRunning, ConsoleAvailable: true, BootCount: count, LastBootAt: boot,
			Console: "Your device ran into a problem and needs to restart. We're just collecting some error info, and then we'll restart for you."}
	}
	booting := inventory.Signals{Power: inventory.PowerRunning, ConsoleAvailable: true, Console: "Starting Windows"}
	tests := []struct {
		name    string
		w       crashWatch
		signals []inventory.Signals
		ended   bool
	}{
		{"no mark, a crash screen only: the last boot's, maybe", crashWatch{}, []inventory.Signals{crash(n(11), at)}, false},
		{"no mark, booting then a crash", crashWatch{}, []inventory.Signals{booting, crash(nil, time.Time{})}, true},
		{"boot counter past the mark", crashWatch{before: n(10)}, []inventory.Signals{crash(n(11), time.Time{})}, true},
		{"boot counter at the mark: the old boot's crash", crashWatch{before: n(10)}, []inventory.Signals{crash(n(10), time.Time{})}, false},
		{"boot time after the mark", crashWatch{since: at}, []inventory.Signals{crash(nil, at.Add(5*time.Second))}, true},
		{"boot time before the mark", crashWatch{since: at}, []inventory.Signals{crash(nil, at.Add(-time.Minute))}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			ended := false
			for _, s := range tt.signals {
				ended = w.crashed(s)
			}
			if ended != tt.ended {
				t.Errorf("ended %v, want %v", ended, tt.ended)
			}
		})
	}
}
