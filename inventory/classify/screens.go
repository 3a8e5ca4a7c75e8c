package classify

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/screen"
	"github.com/fixfleet/fixfleet/providers"
)

// tick is one moment of the sampling window: a control-plane sample is due
// (sample), and screenshots are due in any case.
type tick struct {
	at     time.Duration // since the window's start
	sample bool
}

// schedule lists the window's ticks in order: opts.Samples control-plane
// samples spread evenly over the window, and, when screens are read,
// screenshot moments every opts.ScreenEvery between them.
func schedule(opts AssessOptions) []tick {
	var step time.Duration
	if opts.Samples > 1 {
		step = opts.Window / time.Duration(opts.Samples-1)
	}
	at := map[time.Duration]bool{}
	for s := range opts.Samples {
		at[time.Duration(s)*step] = true
	}
	if _, ok := opts.Observer.(providers.Screens); ok && opts.ScreenEvery > 0 {
		end := time.Duration(opts.Samples-1) * step
		for t := time.Duration(0); t <= end; t += opts.ScreenEvery {
			if _, due := at[t]; !due {
				at[t] = false
			}
		}
	}
	out := make([]tick, 0, len(at))
	for t, sample := range at {
		out = append(out, tick{at: t, sample: sample})
	}
	slices.SortFunc(out, func(a, b tick) int { return int(a.at - b.at) })
	return out
}

// wantsScreen reports whether a VM's screen is worth reading now: its
// latest sample shows it running, with no passing reachability check and
// no console text that shows a screen (a crash, Safe Mode, the sign-in
// screen: text "Starting Windows" says nothing, and a cycling VM spends
// most of each cycle starting), and it has not shown the sign-in screen
// yet, unless the cloud's reachability check fails: a sign-in screen on a
// VM the cloud cannot reach is a boot that may yet crash (a guest whose
// WinRM answers for a short while after each boot), so the watch goes on.
func wantsScreen(samples []inventory.Signals, shots []inventory.ScreenSample) bool {
	if len(samples) == 0 {
		return false
	}
	last := samples[len(samples)-1]
	if last.Power != inventory.PowerRunning || consoleScreen(last) != "" ||
		(last.InstanceReachable != nil && *last.InstanceReachable) {
		return false
	}
	if last.InstanceReachable != nil {
		return true // the check fails (it passing returned above)
	}
	return !slices.ContainsFunc(shots, func(s inventory.ScreenSample) bool { return s.Screen == inventory.ScreenLogin })
}

// screenshots takes and classifies one screenshot of every VM that wants
// one (see Assess), appending to shots. Only a cancelled ctx fails it.
func screenshots(ctx context.Context, opts AssessOptions, refs []providers.VMRef, samples [][]inventory.Signals, shots [][]inventory.ScreenSample) error {
	return screenshotsOf(ctx, opts, refs, shots, func(i int) bool { return wantsScreen(samples[i], shots[i]) })
}

// wantsScreenAfterProbe reports whether a VM's screen is worth reading
// once its probe is done: the cloud's reachability check passes on its
// latest sample but the guest could not be probed (WinRM refused, timed
// out or rejected the credentials; not a control-plane failure), and its
// console text shows no Safe Mode. The OS is up but unprobeable: a Safe
// Mode desktop (WinRM does not start in Safe Mode unless listed under
// SafeBoot\Network) and a guest serving normally behind a firewall or
// with other credentials look alike to the control plane; only the screen
// tells them apart.
func wantsScreenAfterProbe(samples []inventory.Signals, p *inventory.Probe) bool {
	if len(samples) == 0 || p == nil || p.Reachable || p.Retryable {
		return false
	}
	last := samples[len(samples)-1]
	return last.Power == inventory.PowerRunning && last.InstanceReachable != nil && *last.InstanceReachable &&
		!ShowsSafeMode(last.Console)
}

// screenshotsOf takes and classifies one screenshot of every VM i for
// which want(i), appending to shots. Only a cancelled ctx fails it.
func screenshotsOf(ctx context.Context, opts AssessOptions, refs []providers.VMRef, shots [][]inventory.ScreenSample, want func(i int) bool) error {
	sc, ok := opts.Observer.(providers.Screens)
	if !ok || opts.ScreenEvery < 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.ProbeConcurrency)
	got := make([]*inventory.ScreenSample, len(refs))
	for i := range refs {
		if !want(i) {
			continue
		}
		g.Go(func() error {
			img, err := sc.Screenshot(gctx, refs[i])
			if err != nil {
				return nil // no evidence
			}
			got[i] = &inventory.ScreenSample{At: opts.Clock.Now(), Screen: screen.ClassifyBytes(img)}
			return nil
		})
	}
	_ = g.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, s := range got {
		if s != nil {
			shots[i] = append(shots[i], *s)
		}
	}
	return nil
}

// consoleScreen is the screen one sample's console text shows (rule 9):
// a crash or recovery screen, a Safe Mode desktop or the sign-in screen;
// "" when it shows none of them (no text, or Windows starting).
func consoleScreen(s inventory.Signals) inventory.Screen {
	c := strings.ToLower(s.Console)
	switch {
	case !s.ConsoleAvailable || c == "":
		return ""
	case ShowsCrash(c) && (strings.Contains(c, "automatic repair") || strings.Contains(c, "needs to be repaired") || strings.Contains(c, "did not start correctly")):
		return inventory.ScreenRecovery
	case ShowsCrash(c):
		return inventory.ScreenStop
	case ShowsSafeMode(c):
		return inventory.ScreenSafeMode
	case strings.Contains(c, "ctrl+alt+delete") || strings.Contains(c, "ctrl+alt+del to sign in"):
		return inventory.ScreenLogin
	}
	return ""
}

// screensOf is what the VM's screen showed over the evidence, oldest
// first: its screenshots and the screens its samples' console text
// showed, merged by time (a cloud that gives text shows no screenshots
// of the same moments: see wantsScreen).
func screensOf(ev inventory.Evidence) (screens []inventory.ScreenSample, consoles int) {
	screens = slices.Clone(ev.Screens)
	for _, s := range ev.Samples {
		if sc := consoleScreen(s); sc != "" {
			screens = append(screens, inventory.ScreenSample{At: s.At, Screen: sc})
			consoles++
		}
	}
	slices.SortStableFunc(screens, func(a, b inventory.ScreenSample) int { return a.At.Compare(b.At) })
	return screens, consoles
}

// screenTally counts what a VM's screen showed (rule 9), in screenshots
// and console text.
type screenTally struct {
	consoles        int // of total, read from console text
	total, crash    int
	by              map[inventory.Screen]int
	last            inventory.Screen
	loginAfterCrash bool // a sign-in screen after a crash screen
}

// evidenceTally counts what the VM's screen showed over ev (screensOf).
func evidenceTally(ev inventory.Evidence) screenTally {
	screens, consoles := screensOf(ev)
	t := screenCounts(screens)
	t.consoles = consoles
	return t
}

// safeModeOnly reports whether the screen showed a Safe Mode desktop and
// nothing else that counts (black and unknown screens are no evidence).
func (t screenTally) safeModeOnly() bool {
	n := t.by[inventory.ScreenSafeMode]
	return n > 0 && n == t.total-t.by[inventory.ScreenBlack]-t.by[inventory.ScreenUnknown]
}

func screenCounts(shots []inventory.ScreenSample) screenTally {
	t := screenTally{total: len(shots), by: map[inventory.Screen]int{}}
	for _, s := range shots {
		t.by[s.Screen]++
		if s.Screen.Crash() {
			t.crash++
		}
		if s.Screen == inventory.ScreenLogin && t.crash > 0 {
			t.loginAfterCrash = true
		}
		t.last = s.Screen
	}
	return t
}

// String says what the screenshots showed, e.g. "stop 5, recovery 1,
// black 9 of 15 screenshots".
func (t screenTally) String() string {
	var parts []string
	for _, s := range []inventory.Screen{inventory.ScreenStop, inventory.ScreenRecovery, inventory.ScreenSafeMode,
		inventory.ScreenLogin, inventory.ScreenBlack, inventory.ScreenUnknown} {
		if n := t.by[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	switch t.consoles {
	case 0:
		return fmt.Sprintf("%s of %d screenshot(s)", strings.Join(parts, ", "), t.total)
	case t.total:
		return fmt.Sprintf("%s in the console text of %d sample(s)", strings.Join(parts, ", "), t.total)
	}
	return fmt.Sprintf("%s of %d screenshot(s) and console samples", strings.Join(parts, ", "), t.total)
}
