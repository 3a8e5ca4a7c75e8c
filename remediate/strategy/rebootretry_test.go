package strategy

import (
	"maps"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// TestCrashWatchBegan: a crash screen ends the watch only once the
// watched boot is known to have begun: its booting screen seen, or, where
// that went unseen, a boot counter or boot time past the restart's mark;
// a boot counter two past the mark ends it whatever the screen shows (a
// later boot began: the watched one ended without coming up). The watch
// records when it saw the end.
func TestCrashWatchBegan(t *testing.T) {
	at := time.Date(2024, 7, 19, 7, 0, 0, 0, time.UTC)
	n := func(i int) *int { return &i }
	crash := func(count *int, boot time.Time) inventory.Signals {
		return inventory.Signals{At: at.Add(time.Minute), Power: inventory.PowerRunning, ConsoleAvailable: true, BootCount: count, LastBootAt: boot,
			Console: "Your device ran into a problem and needs to restart. We're just collecting some error info, and then we'll restart for you."}
	}
	booting := inventory.Signals{Power: inventory.PowerRunning, ConsoleAvailable: true, Console: "Starting Windows"}
	dark := func(count *int) inventory.Signals {
		return inventory.Signals{At: at, Power: inventory.PowerRunning, BootCount: count}
	}
	counted := func(s inventory.Signals, count *int) inventory.Signals { s.BootCount, s.At = count, at; return s }
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
		{"no console, the counter one past the mark: the watched boot runs", crashWatch{before: n(10)}, []inventory.Signals{dark(n(11))}, false},
		{"no console, the counter two past the mark: the watched boot ended", crashWatch{before: n(10)}, []inventory.Signals{dark(n(11)), dark(n(12))}, true},
		{"booting again, the counter two past the mark", crashWatch{before: n(10)}, []inventory.Signals{counted(booting, n(12))}, true},
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
			if seen := !w.overAt.IsZero(); seen != tt.ended {
				t.Errorf("the end seen at %v, want one: %v", w.overAt, tt.ended)
			}
		})
	}
}

// TestCycledBy: a restart counts a boot the VM began by itself since the
// last wait saw the watched boot end, and marks it for the next wait;
// without such an end, or without a boot since, it does not.
func TestCycledBy(t *testing.T) {
	mark := time.Date(2024, 7, 19, 7, 0, 0, 0, time.UTC)
	end := mark.Add(2 * time.Minute)
	stamp := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	n := func(i int) *int { return &i }
	restarted := step.Facts{FactBootBefore: "10", FactRestartedAt: stamp(mark), FactBootOverAt: stamp(end)}
	crashText := "Your device ran into a problem and needs to restart. We're just collecting some error info, and then we'll restart for you."
	running := func(count *int, console string) inventory.Signals {
		return inventory.Signals{Power: inventory.PowerRunning, BootCount: count, ConsoleAvailable: console != "", Console: console}
	}
	tests := []struct {
		name  string
		facts step.Facts
		s     inventory.Signals
		want  step.Facts // nil: not counted
	}{
		{"the counter two past the mark", restarted, running(n(12), crashText),
			step.Facts{FactBootBefore: "11", FactRestartedAt: stamp(end)}},
		{"booting after the crash, no counter", step.Facts{FactRestartedAt: stamp(mark), FactBootOverAt: stamp(end)}, running(nil, "Starting Windows"),
			step.Facts{FactRestartedAt: stamp(end)}},
		{"a boot time after the end", step.Facts{FactRestartedAt: stamp(mark), FactBootOverAt: stamp(end)},
			inventory.Signals{Power: inventory.PowerRunning, LastBootAt: end.Add(5 * time.Second)}, step.Facts{FactRestartedAt: stamp(end)}},
		{"still at the watched boot's crash screen", restarted, running(n(11), crashText), nil},
		{"the crash screen, no counter", step.Facts{FactRestartedAt: stamp(mark), FactBootOverAt: stamp(end)}, running(nil, crashText), nil},
		{"stopped", restarted, inventory.Signals{Power: inventory.PowerStopped, BootCount: n(12)}, nil},
		{"the wait saw no end", step.Facts{FactBootBefore: "10", FactRestartedAt: stamp(mark)}, running(n(12), "Starting Windows"), nil},
		{"an earlier wait's end", step.Facts{FactBootBefore: "10", FactRestartedAt: stamp(end.Add(time.Minute)), FactBootOverAt: stamp(end)},
			running(n(12), "Starting Windows"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := cycledBy(tt.facts, tt.s)
			if ok != (tt.want != nil) || !maps.Equal(got, tt.want) {
				t.Errorf("cycledBy = %v, %v; want %v", got, ok, tt.want)
			}
		})
	}
}
