package classify

import (
	"context"
	"sync"
	"testing"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/screens"
)

// screenCloud is a blind cloud (power only) that shows screens.
type screenCloud struct {
	clk  clock.Clock
	kind map[string]string // "loop", "recovers", "blocked", "broken", "stopped", "texted", "checked", "crashtext", "silentsafe", "window"
	mu   sync.Mutex
	shot map[string]int // screenshots taken per VM
}

func (c *screenCloud) Observe(_ context.Context, refs []providers.VMRef) (map[string]inventory.Signals, error) {
	out := map[string]inventory.Signals{}
	for _, r := range refs {
		s := inventory.Signals{At: c.clk.Now(), Power: inventory.PowerRunning}
		switch c.kind[r.ID] {
		case "stopped":
			s.Power = inventory.PowerStopped
		case "texted":
			s.ConsoleAvailable, s.Console = true, "Starting Windows"
		case "crashtext":
			s.ConsoleAvailable, s.Console = true, "Your device ran into a problem and needs to restart."
		case "checked", "silentsafe":
			s.InstanceReachable = ptr(true)
		case "window":
			s.InstanceReachable = ptr(false)
		}
		out[r.ID] = s
	}
	return out, nil
}

func (c *screenCloud) Screenshot(_ context.Context, vm providers.VMRef) ([]byte, error) {
	c.mu.Lock()
	n := c.shot[vm.ID]
	c.shot[vm.ID]++
	c.mu.Unlock()
	switch c.kind[vm.ID] {
	case "loop":
		return screens.GIF([]screens.Kind{screens.Booting, screens.Stop, screens.Booting}[n%3], vm.ID), nil
	case "recovers":
		if n < 4 {
			return screens.JPEG(screens.Stop, vm.ID), nil
		}
		return screens.JPEG(screens.Login, vm.ID), nil
	case "broken":
		return nil, providers.Errorf(providers.ErrUnavailable, "Screenshot", vm.ID, "HTTP 500")
	case "silentsafe":
		return screens.PNG(screens.SafeMode, vm.ID), nil
	case "window":
		// Up for a while after each boot, then the stop screen.
		return screens.PNG([]screens.Kind{screens.Login, screens.Login, screens.Stop, screens.Booting}[n%4], vm.ID), nil
	}
	return screens.PNG(screens.Login, vm.ID), nil
}

func (c *screenCloud) Probe(_ context.Context, vm inventory.VM) inventory.Probe {
	switch c.kind[vm.ID] {
	case "checked", "texted":
		return inventory.Probe{Reachable: true, BootMode: inventory.BootNormal}
	case "window":
		return inventory.Probe{Reachable: true, BootMode: inventory.BootNormal, Files: []inventory.FileFact{badFile}}
	}
	return inventory.Probe{Error: "timeout"}
}

func TestAssessScreens(t *testing.T) {
	kinds := []string{"loop", "recovers", "blocked", "broken", "stopped", "texted", "checked", "crashtext", "silentsafe", "window"}
	clk := scaled()
	c := &screenCloud{clk: clk, kind: map[string]string{}, shot: map[string]int{}}
	var vms []inventory.VM
	for _, k := range kinds {
		c.kind[k] = k
		vms = append(vms, inventory.VM{Location: inventory.Location{Zone: "is1a"}, ID: k})
	}
	got, err := Assess(context.Background(), vms, AssessOptions{Incident: inc, Observer: c, Prober: c, Clock: clk, ProbeConcurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	ticks := int(DefaultWindow/DefaultScreenEvery) + 1
	want := []struct {
		state  inventory.State
		shots  int // screenshots taken
		screen int // screenshots kept as evidence
	}{
		{inventory.StateBootLoop, ticks, ticks},
		{inventory.StateUnknown, 5, 5}, // four crash screens, then the sign-in screen: no more
		{inventory.StateUnknown, 1, 1}, // sign-in screen, WinRM silent
		{inventory.StateUnknown, ticks, 0},
		{inventory.StateUnknown, 0, 0},
		// Console text that shows no screen ("Starting Windows": a cycling
		// VM shows it most of each cycle) does not spare the screenshots.
		{inventory.StateHealthy, 1, 1},
		{inventory.StateHealthy, 0, 0},
		// Console text that shows a screen does.
		{inventory.StateBootLoop, 0, 0},
		// The OS passes the reachability check but WinRM is silent: one
		// screenshot after the probe tells Safe Mode from a firewall.
		{inventory.StateSafeMode, 1, 1},
		// WinRM answers in a normal boot that carries the bad file while
		// the cloud cannot reach the VM: the sign-in screen does not end
		// the watch, and the stop screen that follows proves the loop.
		{inventory.StateBootLoop, ticks, ticks},
	}
	for i, w := range want {
		a := got[i]
		if a.Classification.State != w.state || c.shot[a.VM.ID] != w.shots || len(a.Classification.Evidence.Screens) != w.screen {
			t.Errorf("%s: %s after %d screenshots (%d kept), want %s, %d, %d: %q", a.VM.ID, a.Classification.State,
				c.shot[a.VM.ID], len(a.Classification.Evidence.Screens), w.state, w.shots, w.screen, a.Classification.Reasons)
		}
	}
	if s := got[0].Classification.Evidence.Screens; s[1].Screen != inventory.ScreenStop || s[0].Screen != inventory.ScreenBlack || !s[0].At.Before(s[1].At) {
		t.Errorf("loop screens: %+v", s[:2])
	}

	c.shot = map[string]int{}
	if _, err := Assess(context.Background(), vms, AssessOptions{Incident: inc, Observer: c, Clock: clk, ScreenEvery: -1}); err != nil {
		t.Fatal(err)
	}
	if len(c.shot) != 0 {
		t.Errorf("ScreenEvery < 0 still took screenshots: %v", c.shot)
	}
}
