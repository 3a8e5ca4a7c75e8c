package simulation

import (
	"errors"
	"testing"
)

// TestBadOptions: a bad option is an *InputError naming it, and nothing is
// left running.
func TestBadOptions(t *testing.T) {
	tests := []struct {
		name   string
		opts   Options
		option string
	}{
		{name: "unknown face", opts: Options{Face: "gcp", TimeScale: 100}, option: "face"},
		{name: "no time scale", opts: Options{World: WorldOptions{VMs: 3}}, option: "time-scale"},
		{name: "bad mix", opts: Options{World: WorldOptions{VMs: 3, Mix: "healthy=x"}, TimeScale: 100}, option: "mix"},
		{name: "missing scenario", opts: Options{World: WorldOptions{Scenario: "testdata/nope.json"}, TimeScale: 100}, option: "scenario"},
		{name: "bad fault rate", opts: Options{World: WorldOptions{VMs: 3}, TimeScale: 100, Faults: &Faults{ErrorRate: 2}}, option: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Open(tt.opts)
			if err == nil {
				b.Close()
				t.Fatal("opened")
			}
			var ie *InputError
			if !errors.As(err, &ie) || ie.Option != tt.option {
				t.Errorf("%v, want an *InputError naming %q", err, tt.option)
			}
		})
	}
}
