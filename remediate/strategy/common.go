package strategy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/screen"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/step"
)

func vmRef(vm *step.Target) providers.VMRef {
	return providers.VMRef{ID: vm.ID, Region: vm.Region, Zone: vm.Zone, Name: vm.Name}
}

func diskRef(vm *step.Target, id string) providers.DiskRef {
	return providers.DiskRef{ID: id, Region: vm.Region, Zone: vm.Zone}
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

func tags(env *step.Env, vm *step.Target, role string) providers.Tags {
	return providers.Tags{providers.TagRun: env.RunID, providers.TagVM: vm.ID, providers.TagRole: role}
}

// notApplicable is the generic reason a strategy does not apply to a VM in
// state st.
func notApplicable(st inventory.State) string { return "does not apply to a " + string(st) + " VM" }

// need fails the strategy when the provider lacks a capability.
func need(env *step.Env, what string, has bool) error {
	if env.Provider == nil || !has {
		return step.Fail("the provider of this account has no %s capability", what)
	}
	return nil
}

// healthy reports whether a probe shows a normal boot with no bad file.
func healthy(inc inventory.Incident, p inventory.Probe) bool {
	if !p.Reachable || p.BootMode != inventory.BootNormal {
		return false
	}
	return badFiles(inc, p) == 0
}

func badFiles(inc inventory.Incident, p inventory.Probe) int {
	n := 0
	for _, f := range p.Files {
		if bad, _ := inc.Verdict(f); bad {
			n++
		}
	}
	return n
}

// probeVM re-checks the VM's guest. The prober never fails: an unreachable
// guest is a probe with Reachable false (Retryable when the control plane
// kept it from being attempted; see inconclusive).
func probeVM(ctx context.Context, env *step.Env, vm *step.Target) (inventory.Probe, error) {
	if env.Prober == nil {
		return inventory.Probe{}, step.Fail("no guest prober: the VM cannot be re-checked, so nothing may be changed")
	}
	p := env.Prober.Probe(ctx, vm.VM())
	if err := ctx.Err(); err != nil {
		return p, err
	}
	return p, nil
}

// maxInconclusive is how many probes in a row the control plane may keep
// from being attempted before a wait gives up on them (see inconclusive): a
// blip is looked past, an outage is handed to the executor at once.
const maxInconclusive = 3

// inconclusive is the error for a wait that ended on a probe the control
// plane kept from being attempted (p.Retryable): that says nothing about
// the guest, so the executor retries (behind its circuit breaker) rather
// than the strategy concluding the guest is down.
func inconclusive(vm *step.Target, p inventory.Probe) error {
	return providers.Errorf(providers.ErrUnavailable, "Probe", "vm "+vm.ID, "%s", p.Error)
}

// observe reads the control plane's signals of ref. A missing VM is
// ErrNotFound.
func observe(ctx context.Context, env *step.Env, ref providers.VMRef) (inventory.Signals, error) {
	if err := need(env, "observe", env.Provider != nil && env.Provider.Observer != nil); err != nil {
		return inventory.Signals{}, err
	}
	m, err := env.Provider.Observer.Observe(ctx, []providers.VMRef{ref})
	if err != nil {
		return inventory.Signals{}, err
	}
	s, ok := m[ref.ID]
	if !ok {
		return inventory.Signals{}, providers.Errorf(providers.ErrNotFound, "Observe", "vm "+ref.ID, "the VM no longer exists")
	}
	return s, nil
}

// check probes the VM right now. A guest that does not answer may still be
// coming up healthy (a normal boot answers WinRM only minutes after it
// starts, and looks like a crashing one until then), so check keeps
// polling while the VM is running or starting, its current boot is younger
// than timing's slowest boot to WinRM, and the console (where the cloud
// shows one) does not show a crash; at most 2×that. A VM healthy now is
// step.ErrHealthy.
//
// A guest whose OS is up by other evidence — the cloud's reachability check
// passes, or WinRM answers but rejects the credentials — while the probe
// cannot reach it is not known to be broken (unless its screen shows Safe
// Mode: in the console text, or, where the cloud takes screenshots
// (providers.Screens), on one taken after the silent probe): check keeps
// looking for the
// whole wait, and if that does not change, it returns step.ErrNeedsPerson
// rather than let anything stop or restart a VM that may be healthy. It
// returns the last probe and signals.
func check(ctx context.Context, env *step.Env, vm *step.Target) (inventory.Probe, inventory.Signals, error) {
	maxBoot := timing.Of(timing.OpBootToWinRM).Max
	var p inventory.Probe
	var s inventory.Signals
	// A screen showing Safe Mode is a broken VM whatever its WinRM says
	// (in Safe Mode WinRM runs only where listed under SafeBoot\Network).
	// shotSafe: a screenshot taken after s shows a Safe Mode desktop (where
	// the cloud gives no console text but screenshots, the only way to
	// tell Safe Mode from a firewalled WinRM on a running OS).
	shotSafe := false
	safeScreen := func() bool {
		return shotSafe || textShowsSafeMode(s)
	}
	osUp := func() bool {
		return !p.Reachable && !safeScreen() && (classify.IsAuthError(&p) || s.InstanceReachable != nil && *s.InstanceReachable)
	}
	blind := 0 // inconclusive probes in a row
	_, err := poll(ctx, env, PollEvery, 2*maxBoot, func() (bool, error) {
		var err error
		if s, err = observe(ctx, env, vmRef(vm)); err != nil {
			if retryable(err) && !s.At.IsZero() {
				return false, nil // keep the last signals; look again
			}
			return false, err
		}
		shotSafe = false
		if p, err = probeVM(ctx, env, vm); err != nil {
			return false, err
		}
		if !p.Retryable {
			blind = 0
		}
		if osUp() {
			shotSafe = screenShowsSafeMode(ctx, env, vm)
		}
		switch {
		case p.Reachable:
			return true, nil
		case p.Retryable:
			blind++
			if blind >= maxInconclusive {
				return true, nil // an outage, not a blip: let the executor wait it out
			}
			return false, nil // the control plane failed, not the guest: look again
		case safeScreen() && !osUp():
			return true, nil // the screen shows Safe Mode: up, and broken
		case osUp():
			return false, nil // up by other evidence: look again, do not conclude
		case s.Power != inventory.PowerRunning && s.Power != inventory.PowerStarting:
			return true, nil
		case s.ConsoleAvailable && classify.ShowsCrash(s.Console):
			return true, nil // this boot crashed: not coming up
		case s.Power == inventory.PowerRunning && (s.LastBootAt.IsZero() || env.Clock.Now().Sub(s.LastBootAt) >= maxBoot):
			return true, nil // this boot had time to answer and did not
		}
		return false, nil
	})
	if err != nil {
		return p, s, err
	}
	if healthy(env.Incident, p) {
		return p, s, fmt.Errorf("%w: %s booted normally and carries no bad file (re-checked %s)", step.ErrHealthy, vm.ID, stamp(p.At))
	}
	if p.Retryable {
		return p, s, inconclusive(vm, p)
	}
	if osUp() {
		return p, s, step.Flag("%s: its OS is up (the cloud's reachability check passes or WinRM rejects the credentials) "+
			"but the WinRM probe cannot confirm its state (%s): fixfleet will not stop or restart a VM that may be healthy; "+
			"check WinRM and the guest_access credentials, then assess and plan again", vm.ID, p.Error)
	}
	return p, s, nil
}

// textShowsSafeMode reports whether s's console text shows a Safe Mode
// desktop (and no crash).
func textShowsSafeMode(s inventory.Signals) bool {
	return s.ConsoleAvailable && classify.ShowsSafeMode(s.Console) && !classify.ShowsCrash(s.Console)
}

// screenShowsSafeMode reports whether a screenshot of the VM, where its
// cloud takes them (providers.Screens), shows a Safe Mode desktop. A
// screenshot that fails or shows anything else is no evidence: false.
func screenShowsSafeMode(ctx context.Context, env *step.Env, vm *step.Target) bool {
	sc, ok := screenNow(ctx, env, vm)
	return ok && sc == inventory.ScreenSafeMode
}

// screenNow is what the VM's screen shows now, where its cloud takes
// screenshots (providers.Screens); ok is false where it does not, or when
// the screenshot fails (no evidence).
func screenNow(ctx context.Context, env *step.Env, vm *step.Target) (inventory.Screen, bool) {
	sc, ok := env.Provider.Observer.(providers.Screens)
	if !ok {
		return "", false
	}
	img, err := sc.Screenshot(ctx, vmRef(vm))
	if err != nil {
		return "", false
	}
	return screen.ClassifyBytes(img), true
}

// verifyByConsole watches vm, up but unprobeable, as the assessment
// would (classify.Assess over classify.MinServingWindow and a minute: control-plane
// samples, one more probe, a screenshot) and returns the verdict: healthy
// only if it serves by every other sign (the reachability check in every
// sample, no restart, the sign-in screen). The watch starts once the
// cloud's reachability check passes (a fresh boot passes it some minutes
// after its WinRM answers), waiting at most BootWait; on a cloud without
// one, or a VM whose check does not pass by then, the verdict is unknown
// without a watch. Read-only. Errors: the cloud's (an Observe failing
// after its retries).
func verifyByConsole(ctx context.Context, env *step.Env, vm *step.Target) (inventory.Classification, error) {
	unknown := inventory.Classification{State: inventory.StateUnknown, Reasons: []string{"the cloud's reachability check does not pass"}}
	if env.Provider == nil || env.Provider.Observer == nil {
		return unknown, nil
	}
	up, err := poll(ctx, env, PollEvery, BootWait, func() (bool, error) {
		s, err := observe(ctx, env, vmRef(vm))
		if err != nil {
			return false, err
		}
		if s.InstanceReachable == nil {
			return false, errNoReachability
		}
		return *s.InstanceReachable, nil
	})
	switch {
	case errors.Is(err, errNoReachability):
		unknown.Reasons = []string{"the cloud has no reachability check"}
		return unknown, nil
	case err != nil:
		return inventory.Classification{}, err
	case !up:
		return unknown, nil
	}
	// A minute over the minimum: the samples' own times, which the rule
	// measures, lag the schedule by each call's latency.
	opts := classify.AssessOptions{Incident: env.Incident, Observer: env.Provider.Observer, Clock: env.Clock, Window: classify.MinServingWindow + time.Minute}
	if env.Prober != nil {
		opts.Prober = env.Prober
	}
	as, err := classify.Assess(ctx, []inventory.VM{vm.VM()}, opts)
	if err != nil {
		return inventory.Classification{}, err
	}
	return as[0].Classification, nil
}

// errNoReachability ends verifyByConsole's wait on a cloud that has no
// reachability check.
var errNoReachability = errors.New("no reachability check")

// recheckStep is every strategy's first step: Observe and probe right
// before the first change (see check). A VM healthy now is
// step.ErrHealthy. pre, when set, checks the strategy's precondition on
// the probe; it is skipped once the strategy has made progress
// (progressKey among the facts), since the VM is then part-way through.
func recheckStep(progressKey step.Fact, pre func(p inventory.Probe, s inventory.Signals) error) step.Step {
	return step.Step{Name: "recheck", Run: func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		p, s, err := check(ctx, env, vm)
		if err != nil {
			return nil, err
		}
		out := step.Facts{FactCheckedAt: stamp(env.Clock.Now()), FactPower: string(s.Power)}
		if s.BootCount != nil {
			out[FactBootCount] = strconv.Itoa(*s.BootCount)
		}
		if pre != nil && (progressKey == "" || facts[progressKey] == "") {
			if err := pre(p, s); err != nil {
				return nil, err
			}
		}
		return out, nil
	}, ReadOnly: true, Cost: step.Cost{Calls: 1, Scripts: 1}}
}

// guard re-checks the VM's health (see check) right before a stop or
// restart when the last check (facts' checked_at) is older than
// RecheckMaxAge. A healthy VM is step.ErrHealthy. It returns the context
// to make the stop or restart under: its calls go out within RecheckMaxAge
// of the check or not at all (pace.NotAfter, whose pace.ErrStale the
// executor answers by running the step again, which re-checks: a call
// queued behind the account's others must not act on a VM that may have
// come up since), and the probe when it took one.
func guard(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (context.Context, *inventory.Probe, step.Facts, error) {
	if t, err := time.Parse(time.RFC3339, facts[FactCheckedAt]); err == nil && env.Clock.Now().Sub(t) < RecheckMaxAge {
		return pace.NotAfter(ctx, t.Add(RecheckMaxAge)), nil, nil, nil
	}
	p, _, err := check(ctx, env, vm)
	if err != nil {
		return ctx, nil, nil, err
	}
	now := env.Clock.Now()
	return pace.NotAfter(ctx, now.Add(RecheckMaxAge)), &p, step.Facts{FactCheckedAt: stamp(now)}, nil
}

// poll calls fn now and then every `every` until it reports done, fails, or
// limit has passed (done false, nil error).
func poll(ctx context.Context, env *step.Env, every, limit time.Duration, fn func() (bool, error)) (bool, error) {
	deadline := env.Clock.Now().Add(limit)
	for {
		done, err := fn()
		if err != nil || done {
			return done, err
		}
		if !env.Clock.Now().Before(deadline) {
			return false, nil
		}
		if err := env.Clock.Sleep(ctx, every); err != nil {
			return false, err
		}
	}
}

// waitBoot polls the VM's guest until it is healthy or BootWait passed. It
// returns the last probe and whether the VM is healthy.
func waitBoot(ctx context.Context, env *step.Env, vm *step.Target) (inventory.Probe, bool, error) {
	return waitBootUnless(ctx, env, vm, nil)
}

// waitBootUnless is waitBoot that also ends, not healthy, as soon as over
// (when set) reports true; over is asked, with the probe, after each
// conclusive probe that did not find the VM healthy, and an error from it
// ends the wait.
func waitBootUnless(ctx context.Context, env *step.Env, vm *step.Target, over func(inventory.Probe) (bool, error)) (inventory.Probe, bool, error) {
	var last inventory.Probe
	blind := 0 // inconclusive probes in a row
	ended := false
	_, err := poll(ctx, env, PollEvery, BootWait, func() (bool, error) {
		p, err := probeVM(ctx, env, vm)
		if err != nil {
			return false, err
		}
		last = p
		if p.Retryable {
			if blind++; blind >= maxInconclusive {
				return false, inconclusive(vm, p) // an outage: let the executor wait it out
			}
			return false, nil
		}
		blind = 0
		if healthy(env.Incident, p) || over == nil {
			return healthy(env.Incident, p), nil
		}
		ended, err = over(p)
		return ended, err
	})
	if err == nil && !ended && last.Retryable {
		err = inconclusive(vm, last)
	}
	return last, err == nil && !ended && healthy(env.Incident, last), err
}

// inWindow reports whether p reached the guest in a normal boot while it
// carried bad files (bad of them): WinRM answering during a boot that will
// crash (the window race-the-boot races).
func inWindow(p inventory.Probe, bad int) bool {
	return p.Reachable && p.BootMode == inventory.BootNormal && bad > 0
}

// describeProbe says in words what a probe saw.
func describeProbe(inc inventory.Incident, p inventory.Probe) string {
	switch {
	case !p.Reachable:
		if p.Error != "" {
			return "the guest does not answer (" + p.Error + ")"
		}
		return "the guest does not answer"
	case p.BootMode != inventory.BootNormal:
		return "the guest runs in " + string(p.BootMode) + " mode"
	}
	if n := badFiles(inc, p); n > 0 {
		return fmt.Sprintf("the guest still carries %d bad file(s)", n)
	}
	return "the guest is healthy"
}

// endpoint returns where ref's WinRM answers.
func endpoint(ctx context.Context, env *step.Env, ref providers.VMRef) (providers.Endpoint, error) {
	if err := need(env, "guest", env.Provider != nil && env.Provider.Guests != nil); err != nil {
		return providers.Endpoint{}, err
	}
	if env.Guest == nil {
		return providers.Endpoint{}, step.Fail("no guest client configured")
	}
	ep, err := env.Provider.Guests.GuestEndpoint(ctx, ref)
	if err != nil {
		return providers.Endpoint{}, err
	}
	if env.GuestPort != 0 {
		ep.Port = env.GuestPort
	}
	return ep, nil
}

// criteria is the incident profile as delete-files parameters.
func criteria(inc inventory.Incident) guest.FileCriteria {
	return guest.FileCriteria{Dir: inc.RelDirectory(), Pattern: inc.Pattern, BadFrom: inc.BadFrom, BadUntil: inc.BadUntil, Header: inc.Header}
}

// deleteFacts records a delete-files result. A repeated call that deletes
// nothing keeps the earlier count.
func deleteFacts(facts step.Facts, r guest.DeleteResult) step.Facts {
	out := step.Facts{FactKept: strconv.Itoa(len(r.Kept))}
	if len(r.Deleted) > 0 || facts[FactDeleted] == "" {
		out[FactDeleted] = strconv.Itoa(len(r.Deleted))
	}
	return out
}

func fmtIdentity(id inventory.DiskIdentity) string {
	if id.IsZero() {
		return ""
	}
	return string(id.Style) + ":" + id.ID
}

func parseIdentity(s string) (inventory.DiskIdentity, bool) {
	st, id, ok := strings.Cut(s, ":")
	if !ok || id == "" || (st != string(inventory.PartitionMBR) && st != string(inventory.PartitionGPT)) {
		return inventory.DiskIdentity{}, false
	}
	return inventory.DiskIdentity{Style: inventory.PartitionStyle(st), ID: id}, true
}

// retryable reports whether the executor would retry err.
func retryable(err error) bool {
	return providers.Retryable(err) || guest.Transient(err)
}

// startVM starts ref unless it is running or starting.
func startVM(ctx context.Context, env *step.Env, ref providers.VMRef) error {
	if err := need(env, "power", env.Provider != nil && env.Provider.Power != nil); err != nil {
		return err
	}
	s, err := observe(ctx, env, ref)
	if err != nil {
		return err
	}
	if s.Power == inventory.PowerRunning || s.Power == inventory.PowerStarting {
		return nil
	}
	return env.Provider.Power.Start(ctx, []providers.VMRef{ref})
}

// stopVM stops ref unless it is stopped, after a health guard. A guest
// that does not answer cannot shut down by itself, so it is stopped by
// force (a graceful stop would only wait for the cloud's shutdown timeout);
// one that answers is stopped gracefully unless the policy forces.
func stopVM(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if err := need(env, "power", env.Provider != nil && env.Provider.Power != nil); err != nil {
		return nil, err
	}
	ref := vmRef(vm)
	s, err := observe(ctx, env, ref)
	if err != nil {
		return nil, err
	}
	if s.Power == inventory.PowerStopped {
		return step.Facts{FactStopped: "true"}, nil
	}
	gctx, p, out, err := guard(ctx, env, vm, facts)
	if err != nil {
		return nil, err
	}
	if out == nil {
		out = step.Facts{}
	}
	force := env.Policy.ForceStop
	if p == nil || !p.Reachable {
		if s.InstanceReachable == nil || !*s.InstanceReachable {
			force = true
		}
	}
	if err := env.Provider.Power.Stop(gctx, []providers.VMRef{ref}, force); err != nil {
		return nil, err
	}
	out[FactStopped] = "true"
	return out, nil
}

// finalVerify is the last step of the strategies that boot the VM: poll
// until the guest answers with a normal boot and no bad file.
func finalVerify(name string) step.Step { return verifyStep(name, false) }

// verifyStep is finalVerify; with watch, the wait also ends, failing, as
// soon as the VM's screen shows the boot it waits for crashing or stopped
// at a recovery screen (crashWatch), rather than after BootWait. A guest
// that comes up but cannot be probed (its WinRM rejects the credentials,
// at once; or stays silent, after BootWait) is verified by the console
// instead (verifyByConsole): healthy only if it serves by every other
// sign.
func verifyStep(name string, watch bool) step.Step {
	return step.Step{Name: name, Run: func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		var crashed func(inventory.Probe) (bool, error)
		var w crashWatch
		if watch {
			crashed = w.over(ctx, env, vm)
		}
		rejected := false
		p, ok, err := waitBootUnless(ctx, env, vm, func(p inventory.Probe) (bool, error) {
			if classify.IsAuthError(&p) {
				rejected = true
				return true, nil
			}
			if crashed == nil {
				return false, nil
			}
			return crashed(p)
		})
		if err != nil {
			return nil, err
		}
		var byConsole inventory.Classification
		if !ok && !w.ended && !p.Reachable && !p.Retryable {
			if byConsole, err = verifyByConsole(ctx, env, vm); err != nil {
				return nil, err
			}
			switch byConsole.State {
			case inventory.StateHealthy:
				return step.Facts{FactVerifiedAt: stamp(env.Clock.Now()), FactVerifiedBy: "console: " + strings.Join(byConsole.Reasons, "; ")}, nil
			case inventory.StateBootLoop, inventory.StateSafeMode:
				return nil, step.Fail("%s did not come up healthy: %s", vm.ID, strings.Join(byConsole.Reasons, "; "))
			}
		}
		switch {
		case !ok && rejected:
			// The repaired VM is up and its WinRM answers, but not to
			// these credentials, and its console does not show it
			// serving: nothing can verify it, and undoing a repair that
			// may have worked would be worse.
			return nil, step.Unverifiable("%s came up and its WinRM answers but rejects the credentials, and its console does not show it serving (%s), so the repair cannot be verified: "+
				"check the guest_access credentials, then look at the VM", vm.ID, strings.Join(byConsole.Reasons, "; "))
		case !ok && w.ended:
			return nil, step.Fail("%s did not come up healthy: its screen shows the boot crashing or at a recovery screen (%s)", vm.ID, describeProbe(env.Incident, p))
		case !ok:
			return nil, step.Fail("%s did not come up healthy within %s: %s", vm.ID, BootWait, describeProbe(env.Incident, p))
		}
		return step.Facts{FactVerifiedAt: stamp(p.At)}, nil
	}, ReadOnly: true, Cost: step.Cost{Ops: []timing.Op{timing.OpBootToWinRM}, Scripts: 1}}
}
