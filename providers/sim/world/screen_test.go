package world

import (
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/providers/sim/screens"
)

// TestScreenFollowsConsole checks that a VM's screen and its console text,
// read at the same instant, tell the same story, over many crash cycles of
// a generated fleet, and that every kind of screen shows up.
func TestScreenFollowsConsole(t *testing.T) {
	sc, err := GenerateScenario(GenOptions{VMs: 60, Seed: 3, Origin: DefaultOrigin})
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults = Faults{Throttle: ThrottleOff}
	w, clk := load(t, sc)
	want := map[string]screens.Kind{
		"":              screens.Off,
		consoleStopping: screens.Booting,
		consoleBooting:  screens.Booting,
		consoleCrash:    screens.Stop,
		consoleStuck:    screens.Recovery,
		consoleRepair:   screens.Recovery,
		consoleWinload:  screens.Recovery,
		consoleNoDisk:   screens.Off,
		consoleSafeMode: screens.SafeMode,
		consoleSignIn:   screens.Login,
	}
	seen := map[screens.Kind]int{}
	for step := range 40 {
		clk.Set(DefaultOrigin.Add(time.Duration(step) * 17 * time.Second))
		for _, v := range sc.VMs {
			got, err := w.Screen(ctx, DefaultAccount, v.ID)
			if err != nil {
				t.Fatal(err)
			}
			s := sig(t, w, v.ID)
			if s.Power == "stopped" && got != screens.Off {
				t.Fatalf("%s stopped shows %v", v.ID, got)
			}
			k, ok := want[s.Console]
			if !ok {
				t.Fatalf("%s: console text %q has no expected screen", v.ID, s.Console)
			}
			if got != k {
				t.Fatalf("%s at step %d: screen %v, console %q (want %v)", v.ID, step, got, s.Console, k)
			}
			seen[got]++
		}
	}
	for _, k := range []screens.Kind{screens.Booting, screens.Stop, screens.Recovery, screens.SafeMode, screens.Login} {
		if seen[k] == 0 {
			t.Errorf("no VM ever showed %v (seen %v)", k, seen)
		}
	}
	if _, err := w.Screen(ctx, DefaultAccount, "vm-none"); err == nil {
		t.Fatal("a screen of a VM that does not exist")
	}
}
