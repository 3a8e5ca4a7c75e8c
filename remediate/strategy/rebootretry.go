package strategy

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// Fact keys only RebootRetry produces.
const (
	FactRestarts step.Fact = "restarts"
	// FactSelfResets counts the restarts the VM did by itself (cycledBy,
	// resetsItself).
	FactSelfResets step.Fact = "self_resets"
	// FactBootBefore and FactRestartedAt: the VM's boot counter (where the
	// cloud counts boots) and the time, right before the last restart or
	// self-reset; the wait after it reads them (crashWatch.began).
	FactBootBefore  step.Fact = "boot_before"
	FactRestartedAt step.Fact = "restarted_at"
	// FactBootOverAt: when a wait saw the boot it watched end while the VM
	// kept running (its crash screen, or a later boot by the counter); the
	// next restart takes a boot begun since for the VM's own (cycledBy).
	FactBootOverAt step.Fact = "boot_over_at"
)

// RebootRetry restarts a boot-looping VM up to
// policy.RebootRetry.MaxRestarts times, stopping as soon as it comes up
// healthy (some VMs fetch the fixed update before the crash).
//
// Steps: recheck, then restart-i and wait-i for i = 1..MaxRestarts, or
// 1..LastResortRestarts for a VM whose last resort it is (step.Target).
// restart-i lets a VM that began a new boot by itself since the last wait
// saw the watched boot end (cycledBy), or that is at the stop screen and
// resets by itself (resetsItself), count that boot as its restart (no call),
// else re-checks the VM's health first (step.ErrHealthy: fixed, or
// recovered by itself) and hard-resets it (a stopped VM is started). A
// reset is not idempotent and a boot-looping VM's boot counter moves by
// itself, so the step cannot tell whether an earlier attempt's reset
// happened: a crash between the executor's intent and the reset's outcome
// may cost one extra restart (bounded by one per crash). wait-i polls the
// guest until it answers healthy (step.ErrHealthy: the restart fixed it),
// the cloud's screen shows the restarted boot crashing (see crashWatch: the
// next restart need not wait out BootWait), or BootWait passed; the last
// wait fails the strategy with "still boot-looping after N restarts". A
// wait whose probe reached the guest in a normal boot while it carried a
// bad file records FactWinRMWindowSeen (race-the-boot's condition).
// Abort has nothing to undo.
type RebootRetry struct{}

// Name implements step.Strategy.
func (RebootRetry) Name() policy.Strategy { return policy.RebootRetry }

// Applies implements Unit: only a crashing VM; one in Safe Mode is not
// crashing, and a restart does not remove the bad file.
func (RebootRetry) Applies() []inventory.State { return []inventory.State{inventory.StateBootLoop} }

// NotApplicable implements Unit.
func (RebootRetry) NotApplicable(st inventory.State) string {
	if st == inventory.StateSafeMode {
		return "the VM runs in Safe Mode and is not crashing; restarting does not remove the bad file"
	}
	return notApplicable(st)
}

// Needs implements Unit.
func (RebootRetry) Needs() Needs { return Needs{Capabilities: []string{"power"}} }

// Check implements Unit: nothing beyond Needs.
func (RebootRetry) Check(*Candidate) []string { return nil }

// Risks implements Unit: restarts risk nothing the VM does not already do.
func (RebootRetry) Risks(*Candidate, bool) []string { return nil }

// FailureChance implements Unit: every restart misses the fixed update
// with chance 1 - timing.NaturalRecoveryPerBoot.
func (RebootRetry) FailureChance(pol policy.Policy) float64 {
	return math.Pow(1-timing.NaturalRecoveryPerBoot, float64(restarts(pol)))
}

func restarts(pol policy.Policy) int { return max(pol.RebootRetry.MaxRestarts, 1) }

// Steps implements step.Strategy. Restart i runs only when the i-1
// before it did not bring the VM up: its Cost.Chance is
// (1 - timing.NaturalRecoveryPerBoot)^(i-1).
func (RebootRetry) Steps(vm *step.Target, pol policy.Policy) []step.Step {
	n := restarts(pol)
	if vm.LastResort {
		n = pol.RebootRetry.LastResort()
	}
	return append([]step.Step{recheckStep("", nil)}, restartSteps(1, n, n)...)
}

// restartSteps are restart-i and wait-i for i = from..to, each run only
// when the restarts before it did not bring the VM up (Cost.Chance
// (1 - timing.NaturalRecoveryPerBoot)^(i-1)). The wait of restart failAt
// fails the strategy ("still boot-looping after failAt restarts"); with
// failAt 0 none does, and the strategy goes on after the last.
func restartSteps(from, to, failAt int) []step.Step {
	var steps []step.Step
	for i := from; i <= to; i++ {
		chance := math.Pow(1-timing.NaturalRecoveryPerBoot, float64(i-1))
		steps = append(steps, restartStep(i, chance), waitStep(i, failAt, chance))
	}
	return steps
}

func restartStep(i int, chance float64) step.Step {
	return step.Step{Name: fmt.Sprintf("restart-%d", i), Run: func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if err := need(env, "power", env.Provider != nil && env.Provider.Power != nil); err != nil {
			return nil, err
		}
		ref := vmRef(vm)
		s, err := observe(ctx, env, ref)
		if err != nil {
			return nil, err
		}
		selfReset := func(mark step.Facts) step.Facts {
			n, _ := strconv.Atoi(facts[FactSelfResets])
			mark[FactRestarts], mark[FactSelfResets] = strconv.Itoa(i), strconv.Itoa(n+1)
			return mark
		}
		if mark, ok := cycledBy(facts, s); ok {
			return selfReset(mark), nil
		}
		mark := bootMark(env, s)
		reset, err := resetsItself(ctx, env, vm, s, watchSince(mark))
		if err != nil {
			return nil, err
		}
		if reset {
			return selfReset(mark), nil
		}
		gctx, _, out, err := guard(ctx, env, vm, facts)
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = step.Facts{}
		}
		if s, err = observe(ctx, env, ref); err != nil {
			return nil, err
		}
		out = out.Merge(bootMark(env, s))
		switch s.Power {
		case inventory.PowerStopped:
			err = env.Provider.Power.Start(gctx, []providers.VMRef{ref})
		case inventory.PowerRunning:
			err = env.Provider.Power.Restart(gctx, ref)
		default:
			// Starting or stopping: a power change is under way; let the
			// executor come back once it settled.
			err = providers.Errorf(providers.ErrUnavailable, "Restart", "vm "+vm.ID, "the VM is %s; waiting for it to settle", s.Power)
		}
		if err != nil {
			return nil, err
		}
		out[FactRestarts] = strconv.Itoa(i)
		return out, nil
	}, Cost: step.Cost{Ops: []timing.Op{timing.OpRestart}, Chance: chance}}
}

func waitStep(i, failAt int, chance float64) step.Step {
	return step.Step{Name: fmt.Sprintf("wait-%d", i), Run: func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		w := watchSince(facts)
		watch := w.over(ctx, env, vm)
		out := step.Facts{}
		p, ok, err := waitBootUnless(ctx, env, vm, func(p inventory.Probe) (bool, error) {
			if inWindow(p, badFiles(env.Incident, p)) {
				out[FactWinRMWindowSeen] = "true" // for race-the-boot, next in the chain
			}
			return watch(p)
		})
		if err != nil {
			return out, err
		}
		if ok {
			return nil, fmt.Errorf("%w: %s came up healthy after restart %d", step.ErrHealthy, vm.ID, i)
		}
		if !w.overAt.IsZero() {
			out[FactBootOverAt] = w.overAt.UTC().Format(time.RFC3339Nano)
		}
		if i == failAt {
			how := describeProbe(env.Incident, p)
			if w.ended {
				how = w.how
			}
			return out, step.Fail("still boot-looping after %d restarts: %s", failAt, how)
		}
		// No checked_at: the next restart re-checks (the VM may have
		// started a healthy boot since the last probe).
		return out, nil
	}, ReadOnly: true, Cost: step.Cost{Waits: []timing.Op{timing.OpCrashCycle}, Calls: 1, Chance: chance}}
}

// resetsItself reports whether vm, seen in s, began a new boot by itself
// within ResetGrace. A running VM whose console text shows Windows' stop
// screen promising to restart (classify.ShowsSelfReset) resets on its own
// once its dump is written, as every boot of a crash loop does: a restart
// would only cost an API call and, when the account's calls queue, come
// later than the VM's own reset. It watches (coalesced Observes, every
// PollEvery/2) for the new boot as w, marked at s (bootMark), sees one
// (crashWatch.booted). false (restart it) for any other screen, a recovery
// screen (it waits for someone), a cloud that shows no console text (its
// screenshots would cost a call each, more than the restart), or no new
// boot within the grace. Read-only.
func resetsItself(ctx context.Context, env *step.Env, vm *step.Target, s inventory.Signals, w crashWatch) (bool, error) {
	if s.Power != inventory.PowerRunning || !s.ConsoleAvailable || !classify.ShowsSelfReset(s.Console) {
		return false, nil
	}
	for deadline := env.Clock.Now().Add(ResetGrace); env.Clock.Now().Before(deadline); {
		if err := env.Clock.Sleep(ctx, PollEvery/2); err != nil {
			return false, err
		}
		s, err := observe(ctx, env, vmRef(vm))
		switch {
		case retryable(err):
		case err != nil:
			return false, err
		case s.Power != inventory.PowerRunning:
			return false, nil // stopped or stopping: not its own reset
		case w.booted(s):
			return true, nil
		}
	}
	return false, nil
}

// crashWatch tells, from a VM's signals sampled after a restart, whether
// the boot that restart began has failed, so that the next restart need not
// wait out BootWait: a crash or recovery screen seen after a screen of the
// new boot (text that is not a crash, or the cloud's reachability check
// passing), or the VM stopped (the next restart starts it). A crash screen
// alone proves nothing: right after the reset the cloud may still show the
// last boot's (console logs and screenshots lag). Where the cloud shows no
// console text, its screenshots (providers.Screens) are read instead
// (crashedScreen); where it shows neither, only a stop ends the watch.
type crashWatch struct {
	sawBoot bool
	ended   bool
	// before (the boot counter) and since (the time) of the VM right
	// before the watched boot began; nil and zero when unknown. Signals
	// whose counter or boot time are past them prove the watched boot
	// began where its booting screen went unseen (signals sampled further
	// apart than a boot takes to crash): a cloud that counts boots shows
	// the console of the boot it counts.
	before *int
	since  time.Time
	// overAt is when the watched boot was seen over while the VM ran: its
	// crash or recovery screen, or a boot after it begun (the counter two
	// past before: the watched boot ended without coming up). Zero until
	// then, and when the watch ended on a stop.
	overAt time.Time
	// how is what ended the watch, in words.
	how string
}

// bootMark is the restart step's record of the VM right before it acts:
// its boot counter where the cloud counts boots, and the time.
func bootMark(env *step.Env, s inventory.Signals) step.Facts {
	out := step.Facts{FactRestartedAt: env.Clock.Now().UTC().Format(time.RFC3339Nano)}
	if s.BootCount != nil {
		out[FactBootBefore] = strconv.Itoa(*s.BootCount)
	}
	return out
}

// cycledBy reports whether vm, seen running in s, began a boot by itself
// since the last wait saw the boot it watched end (FactBootOverAt, later
// than the last restart's mark): the boot counter two past the mark, a
// boot time since the end, or a screen of a boot (text that is no crash,
// the reachability check passing) after the crash screen. That boot is
// the VM's own restart: mark is the restart's record for the wait that
// watches it. false where facts hold no such end (the wait ran out, or
// the VM stopped) or s shows no boot since.
func cycledBy(facts step.Facts, s inventory.Signals) (mark step.Facts, ok bool) {
	end, err := time.Parse(time.RFC3339Nano, facts[FactBootOverAt])
	if err != nil || s.Power != inventory.PowerRunning {
		return nil, false
	}
	last := watchSince(facts)
	if end.Before(last.since) {
		return nil, false // an earlier wait's: the last restart came after it
	}
	since := crashWatch{since: end}
	if last.before != nil {
		watched := *last.before + 1
		since.before = &watched
	}
	if !since.booted(s) {
		return nil, false
	}
	mark = step.Facts{FactRestartedAt: end.UTC().Format(time.RFC3339Nano)}
	if s.BootCount != nil {
		mark[FactBootBefore] = strconv.Itoa(*s.BootCount - 1)
	}
	return mark, true
}

// watchSince is a crashWatch of the boot the restart recorded in facts
// (bootMark) began.
func watchSince(facts step.Facts) crashWatch {
	var w crashWatch
	if n, err := strconv.Atoi(facts[FactBootBefore]); err == nil {
		w.before = &n
	}
	w.since, _ = time.Parse(time.RFC3339Nano, facts[FactRestartedAt])
	return w
}

// began reports whether s shows a boot begun after the watch's mark.
func (w *crashWatch) began(s inventory.Signals) bool {
	return w.before != nil && s.BootCount != nil && *s.BootCount > *w.before ||
		!w.since.IsZero() && !s.LastBootAt.IsZero() && !s.LastBootAt.Before(w.since)
}

// booted reports whether s, of a running VM with console text, shows a
// boot after the mark: one begun since (began), or a screen of a boot
// that is no crash (text that is not a crash, the reachability check
// passing).
func (w *crashWatch) booted(s inventory.Signals) bool {
	return w.began(s) || s.Console != "" && !classify.ShowsCrash(s.Console) || s.InstanceReachable != nil && *s.InstanceReachable
}

// over is waitBootUnless's over for vm: whether the watched boot has
// failed, by the VM's signals, or its screenshot where the cloud shows no
// console text.
func (w *crashWatch) over(ctx context.Context, env *step.Env, vm *step.Target) func(inventory.Probe) (bool, error) {
	return func(inventory.Probe) (bool, error) {
		s, err := observe(ctx, env, vmRef(vm))
		if retryable(err) {
			return false, nil // the screen can wait: the probe goes on
		}
		if err != nil || w.crashed(s) {
			return err == nil, err
		}
		if s.Power == inventory.PowerRunning && !s.ConsoleAvailable {
			// No console text (Sakura): the screenshot shows the boot.
			if sc, ok := screenNow(ctx, env, vm); ok {
				return w.crashedScreen(sc, s.At), nil
			}
		}
		return false, nil
	}
}

// crashed records s and reports whether the watched boot has failed.
func (w *crashWatch) crashed(s inventory.Signals) bool {
	w.sawBoot = w.sawBoot || w.began(s)
	switch {
	case s.Power == inventory.PowerStopped:
		w.ended, w.how = true, "it stopped after the last restart"
	case s.Power != inventory.PowerRunning:
	case w.before != nil && s.BootCount != nil && *s.BootCount > *w.before+1:
		// A boot after the watched one began: the watched one ended
		// without coming up (where its screens went unseen, or the cloud
		// shows none).
		w.end(s.At, "the cloud counted a boot after the one the last restart began, which did not come up")
	case !s.ConsoleAvailable:
	case classify.ShowsCrash(s.Console):
		if w.sawBoot {
			w.end(s.At, crashedHow)
		}
	case w.booted(s):
		w.sawBoot = true
	}
	return w.ended
}

// crashedHow is how a watch ended on the watched boot's crash screen.
const crashedHow = "its screen shows the boot after the last restart crashing"

// end ends the watch: the watched boot was seen over at at, as how says.
func (w *crashWatch) end(at time.Time, how string) { w.ended, w.overAt, w.how = true, at, how }

// crashedScreen records a screenshot of the running VM and reports
// whether the watched boot has failed, as crashed does with console text:
// a crash or recovery screen after a screen of the new boot (black while
// it starts, the sign-in screen, Safe Mode). An unknown screen is no
// evidence. at is when the screen was taken.
func (w *crashWatch) crashedScreen(sc inventory.Screen, at time.Time) bool {
	switch {
	case sc.Crash():
		if w.sawBoot {
			w.end(at, crashedHow)
		}
	case sc == inventory.ScreenBlack || sc == inventory.ScreenLogin || sc == inventory.ScreenSafeMode:
		w.sawBoot = true
	}
	return w.ended
}

// Abort implements step.Strategy: restarts leave nothing to undo.
func (RebootRetry) Abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	return step.Facts{FactAbort: "nothing to undo: the VM is left running as it is"}, nil
}
