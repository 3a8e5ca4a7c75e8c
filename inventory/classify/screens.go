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
// no console text, and it has not shown the sign-in screen yet.
func wantsScreen(samples []inventory.Signals, shots []inventory.ScreenSample) bool {
	if len(samples) == 0 {
		return false
	}
	last := samples[len(samples)-1]
	if last.Power != inventory.PowerRunning || last.Console != "" ||
		(last.InstanceReachable != nil && *last.InstanceReachable) {
		return false
	}
	return !slices.ContainsFunc(shots, func(s inventory.ScreenSample) bool { return s.Screen == inventory.ScreenLogin })
}

// screenshots takes and classifies one screenshot of every VM that wants
// one (see Assess), appending to shots. Only a cancelled ctx fails it.
func screenshots(ctx context.Context, opts AssessOptions, refs []providers.VMRef, samples [][]inventory.Signals, shots [][]inventory.ScreenSample) error {
	sc, ok := opts.Observer.(providers.Screens)
	if !ok || opts.ScreenEvery < 0 {
		return nil
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(opts.ProbeConcurrency)
	got := make([]*inventory.ScreenSample, len(refs))
	for i := range refs {
		if !wantsScreen(samples[i], shots[i]) {
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

// screenTally counts what a VM's screenshots showed (rule 9).
type screenTally struct {
	total, crash    int
	by              map[inventory.Screen]int
	last            inventory.Screen
	loginAfterCrash bool // a sign-in screen after a crash screen
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
	return fmt.Sprintf("%s of %d screenshot(s)", strings.Join(parts, ", "), t.total)
}
