package strategy

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/screens"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// screenshotsOnly makes the sim provider's observer show what EC2 and
// Azure show of a guest: the reachability check and screenshots
// (providers.Screens), no console text.
type screenshotsOnly struct {
	providers.Observer
	w     *world.World
	shots *atomic.Int32 // screenshots taken (nil: not counted)
}

func (o screenshotsOnly) Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	m, err := o.Observer.Observe(ctx, vms)
	for id, s := range m {
		s.ConsoleAvailable, s.Console = false, ""
		m[id] = s
	}
	return m, err
}

func (o screenshotsOnly) Screenshot(ctx context.Context, vm providers.VMRef) ([]byte, error) {
	if o.shots != nil {
		o.shots.Add(1)
	}
	k, err := o.w.Screen(ctx, world.DefaultAccount, vm.ID)
	if err != nil {
		return nil, err
	}
	return screens.PNG(k, vm.ID), nil
}

// TestRecheckReadsScreens: on a cloud that shows no console text, a Safe
// Mode VM whose WinRM does not run in Safe Mode passes the reachability
// check while its probe is silent; the re-check tells it from a healthy
// VM behind a firewall by a screenshot, so helper-mount repairs it rather
// than leave it to a person. Where the cloud takes no screenshots, the
// re-check still leaves it to a person.
func TestRecheckReadsScreens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		screens bool
		want    error
	}{
		{name: "screenshots", screens: true},
		{name: "no screenshots", want: step.ErrNeedsPerson},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := 180 + i
			f := newFixture(t, spec{n: n, kind: safeMode, silentSafe: true, identity: img2019})
			obs := screenshotsOnly{Observer: f.prov.Observer, w: f.w}
			if tt.screens {
				f.prov.Observer, f.env.Provider.Observer = obs, obs
			} else {
				var o providers.Observer = struct{ providers.Observer }{obs} // hides Screenshot
				f.prov.Observer, f.env.Provider.Observer = o, o
			}
			vm := f.target(n)
			facts, err := f.run(HelperMount{}, vm, nil, runOpts{stopAfter: -1})
			if !errors.Is(err, tt.want) && !(tt.want == nil && err == nil) {
				t.Fatalf("helper-mount: %v, want %v (facts %v)", err, tt.want, facts)
			}
			if tt.want == nil {
				if tr := f.waitTruth(n, world.TruthHealthy, BootWait); tr != world.TruthHealthy {
					t.Errorf("truth = %s", tr)
				}
			} else if tr := f.truth(n); tr != world.TruthSafeMode {
				t.Errorf("truth = %s, want safe-mode (untouched)", tr)
			}
			f.clean()
		})
	}
}

// TestRebootRetryWatchesScreens: on a cloud with no console text but
// screenshots (Sakura), the waits after each restart read the screen
// (crashWatch.crashedScreen ends a wait once the restarted boot is seen
// crashing, rather than after BootWait: TestCrashWatchScreens); where the
// cloud takes none, they do not try. (This harness runs on a scaled
// clock, where slow probes make the moment a wait ends depend on the
// host: TestIncident2024Fleet's sakura face shows it on virtual time.)
func TestRebootRetryWatchesScreens(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		screens bool
	}{
		{name: "screenshots", screens: true},
		{name: "no screenshots"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			n := 185 + i
			f := newFixture(t, spec{n: n, kind: bootLoop, identity: img2019})
			var shots atomic.Int32
			var o providers.Observer = screenshotsOnly{Observer: f.prov.Observer, w: f.w, shots: &shots}
			if !tt.screens {
				o = struct{ providers.Observer }{o} // hides Screenshot
			}
			f.prov.Observer, f.env.Provider.Observer = o, o
			_, err := f.run(RebootRetry{}, f.target(n), nil, runOpts{stopAfter: -1})
			if !errors.Is(err, step.ErrStrategyFailed) {
				t.Fatalf("reboot-retry on a VM that never recovers: %v, want it to fail", err)
			}
			if got := shots.Load() > 0; got != tt.screens {
				t.Errorf("%d screenshots taken while waiting, want some: %v", shots.Load(), tt.screens)
			}
			f.clean()
		})
	}
}

// TestCrashWatchScreens: a crash or recovery screenshot ends the watch
// only after a screen of the new boot; unknown screens are no evidence.
func TestCrashWatchScreens(t *testing.T) {
	tests := []struct {
		screens []inventory.Screen
		want    bool
	}{
		{[]inventory.Screen{inventory.ScreenStop}, false}, // may be the last boot's
		{[]inventory.Screen{inventory.ScreenBlack, inventory.ScreenStop}, true},
		{[]inventory.Screen{inventory.ScreenBlack, inventory.ScreenRecovery}, true},
		{[]inventory.Screen{inventory.ScreenUnknown, inventory.ScreenStop}, false},
		{[]inventory.Screen{inventory.ScreenStop, inventory.ScreenLogin}, false},
		{[]inventory.Screen{inventory.ScreenStop, inventory.ScreenBlack, inventory.ScreenStop}, true},
	}
	for _, tt := range tests {
		var w crashWatch
		got := false
		for _, sc := range tt.screens {
			got = w.crashedScreen(sc, time.Time{})
		}
		if got != tt.want {
			t.Errorf("%v: ended %v, want %v", tt.screens, got, tt.want)
		}
	}
}
