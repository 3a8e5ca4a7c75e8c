package strategy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// Fact keys only RaceBoot produces.
const (
	// FactRaceEndpoint is the guest's WinRM endpoint, resolved before the
	// first restart ("host:port").
	FactRaceEndpoint step.Fact = "race_endpoint"
	// FactRaceBoots counts the boots raced so far.
	FactRaceBoots step.Fact = "race_boots"
	// FactRaceAttempts is how many WinRM attempts the winning boot took.
	FactRaceAttempts step.Fact = "race_attempts"
	// FactRaceBootCount is the cloud's boot counter during the raced boot
	// (where the cloud counts boots).
	FactRaceBootCount step.Fact = "race_boot_count"
	// FactRacedAt is when the race began deleting in the raced boot.
	FactRacedAt step.Fact = "raced_at"
	// FactWinRMWindowSeen: reboot-retry's waits reached the guest in a
	// normal boot while it carried a bad file (race-the-boot's window).
	FactWinRMWindowSeen step.Fact = "winrm_window_seen"
)

// Race-the-boot's bounds.
const (
	// RaceBoots is how many boots race-the-boot races before it gives up.
	RaceBoots = 3
	// RaceAttempts is the most WinRM attempts per boot, RaceEvery apart:
	// together they cover the slowest boot to WinRM.
	RaceAttempts = 40
)

// RaceEvery is the time between two WinRM attempts within one boot.
var RaceEvery = 8 * time.Second

// RaceHold is how long a VM that a race step finds healthy before its
// reset must stay healthy to count as such: a boot that an attempt which
// died after its deletion raced answers healthy (the file is gone) until
// the bad driver it loaded crashes it, at the end of its WinRM window.
var RaceHold = 10 * time.Minute

// RaceBoot repairs a boot-looping VM whose WinRM answers for a short while
// after each boot, before the bad file crashes it: it deletes the file
// and clears the safe-boot flag inside that window.
//
// It applies where the assessment saw that window (WindowSeen), and, as a
// fallback after reboot-retry, where reboot-retry's restarts may show it:
// then it runs only if one of reboot-retry's waits saw it
// (FactWinRMWindowSeen), and otherwise fails at once, before any call
// (step.Conditional). One probe during the assessment misses a window of a
// minute or two in most boots.
//
// Steps:
//   - recheck: no window seen (neither by the assessment nor by
//     reboot-retry) → step.Fail, before any call; healthy now →
//     step.ErrHealthy.
//   - snapshot: a snapshot of the OS disk (as delete-file) before anything
//     on the disk changes.
//   - prepare: resolves the guest's WinRM endpoint before any restart, so
//     the window is spent on the guest, not on the control plane.
//   - race-i, i = 1..RaceBoots: re-checks the VM's health (a VM healthy
//     now and for RaceHold is step.ErrHealthy: fixed by an earlier boot's
//     deletion, or recovered; one that crashes meanwhile was raced by an
//     attempt that died before its end was journaled: retried, see
//     holdHealthy),
//     hard-resets it, then tries WinRM at most RaceAttempts times,
//     RaceEvery apart; at the first answer it reads the guest (up in a
//     normal boot without a bad file: step.ErrHealthy, nothing changed),
//     deletes the files the incident profile marks bad and, where it is
//     set, clears the safe-boot flag, in that window. A boot whose window it missed leaves race-(i+1) to try the
//     next boot; the last one fails the strategy. Once the files are gone,
//     later race steps do nothing.
//   - restart: hard-resets the VM once (the raced boot already loaded the
//     bad driver and would crash anyway), so that verify sees a boot that
//     began after the deletion.
//   - verify: polls until the guest answers with a normal boot and no bad
//     file; fails as soon as the screen shows that boot crashing or stopped
//     at a recovery screen (damaged hives: the file is gone but Windows
//     still does not start), rather than after BootWait.
//
// Abort has nothing to undo: the snapshot is kept, the VM runs as it is.
type RaceBoot struct{}

// Name implements step.Strategy.
func (RaceBoot) Name() policy.Strategy { return policy.RaceBoot }

// Applies implements Unit: a crashing VM.
func (RaceBoot) Applies() []inventory.State { return []inventory.State{inventory.StateBootLoop} }

// NotApplicable implements Unit.
func (RaceBoot) NotApplicable(st inventory.State) string {
	if st == inventory.StateSafeMode {
		return "the VM runs in Safe Mode and is not crashing: delete-file reaches it without a race"
	}
	return notApplicable(st)
}

// Needs implements Unit.
func (RaceBoot) Needs() Needs { return Needs{Capabilities: []string{"guest", "power", "disks"}} }

// WindowSeen reports whether the assessment saw race-the-boot's window: its
// probe reached the guest in a normal boot while it carried the bad file.
func WindowSeen(c inventory.Classification) bool {
	return c.Evidence.Probe != nil && inWindow(*c.Evidence.Probe, len(c.BadFiles))
}

// Check implements Unit: the assessment must have seen WinRM answer in a
// normal boot while the guest carried the bad file, or reboot-retry must
// come first in the chain (its restarts may show the window: Conditional).
func (RaceBoot) Check(c *Candidate) []string {
	if WindowSeen(c.Classification) || slices.Contains(c.Before, policy.RebootRetry) {
		return nil
	}
	return []string{"WinRM was not seen answering during a crashing boot, so there is no window to race"}
}

// Conditional implements step.Conditional: without the assessment's sighting of
// the window, race-the-boot runs only if reboot-retry's restarts show it.
func (RaceBoot) Conditional(t *step.Target) string {
	if t.WindowSeen {
		return ""
	}
	return "only if WinRM answers during a crashing boot while reboot-retry restarts it"
}

// Risks implements Unit: it changes only files the incident profile marks
// bad, after a snapshot.
func (RaceBoot) Risks(*Candidate, bool) []string { return nil }

// FailureChance implements Unit: not modelled (0).
func (RaceBoot) FailureChance(policy.Policy) float64 { return 0 }

// Steps implements step.Strategy.
func (RaceBoot) Steps(vm *step.Target, pol policy.Policy) []step.Step {
	recheck := recheckStep("", nil)
	probe := recheck.Run
	recheck.Run = func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if !vm.WindowSeen && facts[FactWinRMWindowSeen] != "true" {
			return nil, step.Fail("WinRM was not seen answering during a crashing boot, neither by the assessment nor during reboot-retry's restarts: there is no window to race")
		}
		return probe(ctx, env, vm, facts)
	}
	steps := []step.Step{
		recheck,
		snapshotStep(),
		{Name: "prepare", Run: rbPrepare, ReadOnly: true, Cost: step.Cost{Calls: 1}},
	}
	for i := 1; i <= RaceBoots; i++ {
		// A boot after the first is raced only when the one before missed
		// its window; not modelled, so weighed as half as likely each.
		steps = append(steps, step.Step{Name: fmt.Sprintf("race-%d", i), Run: raceStep(i),
			Cost: step.Cost{Ops: []timing.Op{timing.OpRestart, timing.OpBootToWinRM}, Scripts: 2, Chance: math.Pow(0.5, float64(i-1))}})
	}
	return append(steps,
		step.Step{Name: "restart", Run: rbRestart, Cost: step.Cost{Ops: []timing.Op{timing.OpRestart}}},
		verifyStep("verify", true))
}

// rbRestart hard-resets the VM once after the race, so that the guest is
// verified on a boot that began after the deletion: the raced boot already
// loaded the bad driver and still crashes, and within its window it would
// pass for healthy. No health re-check first, for the same reason: the
// race has just seen the guest. Where the cloud counts boots and the VM
// reset by itself since the raced boot, it does nothing (that boot began
// after the deletion); where it does not, it resets only while the boot
// must still be the raced one (stillRacedBoot). Idempotent by its fact.
func rbRestart(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if facts[FactRestarted] == "true" {
		return nil, nil
	}
	if n, _ := strconv.Atoi(facts[FactDeleted]); n == 0 {
		return nil, step.Fail("no bad file was deleted: nothing to restart for")
	}
	if err := need(env, "power", env.Provider != nil && env.Provider.Power != nil); err != nil {
		return nil, err
	}
	ref := vmRef(vm)
	s, err := observe(ctx, env, ref)
	if err != nil {
		return nil, err
	}
	if raced, err := strconv.Atoi(facts[FactRaceBootCount]); err == nil && s.BootCount != nil && *s.BootCount > raced {
		// The raced boot crashed and the VM reset by itself: this boot
		// began after the deletion already, and may be up and healthy.
		return step.Facts{FactRestarted: "true"}, nil
	}
	if s.BootCount == nil && !stillRacedBoot(env, facts) {
		// No boot counter to tell the raced boot from a later one, and
		// time enough has passed (a resumed run) for the raced boot to
		// have crashed and a repaired one to be up: a reset could hit a
		// healthy VM. No reset: verify waits for the boot after the
		// deletion, and fails at once if the screen shows it crashing.
		return step.Facts{FactRestarted: "true"}, nil
	}
	if err := reset(ctx, env, ref, s.Power); err != nil {
		return nil, err
	}
	return step.Facts{FactRestarted: "true"}, nil
}

// stillRacedBoot reports whether the VM's current boot must still be the
// raced one: less time has passed since the deletion (FactRacedAt) than
// the quickest boot to WinRM, so the raced boot cannot have crashed,
// reset and come up again since. Without the fact, false.
func stillRacedBoot(env *step.Env, facts step.Facts) bool {
	at, err := time.Parse(time.RFC3339, facts[FactRacedAt])
	return err == nil && env.Clock.Now().Sub(at) < timing.Of(timing.OpBootToWinRM).Min
}

// reset hard-resets a running VM, or starts a stopped one; a VM whose power
// is changing is a retryable error.
func reset(ctx context.Context, env *step.Env, ref providers.VMRef, p inventory.PowerState) error {
	switch p {
	case inventory.PowerStopped:
		return env.Provider.Power.Start(ctx, []providers.VMRef{ref})
	case inventory.PowerRunning:
		return env.Provider.Power.Restart(ctx, ref)
	}
	return providers.Errorf(providers.ErrUnavailable, "Restart", "vm "+ref.ID, "the VM is %s; waiting for it to settle", p)
}

func rbPrepare(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	ep, err := endpoint(ctx, env, vmRef(vm))
	if err != nil {
		return nil, err
	}
	return step.Facts{FactRaceEndpoint: net.JoinHostPort(ep.Host, strconv.Itoa(ep.Port))}, nil
}

// raceEndpoint is the endpoint prepare resolved.
func raceEndpoint(facts step.Facts) (providers.Endpoint, error) {
	host, port, err := net.SplitHostPort(facts[FactRaceEndpoint])
	n, perr := strconv.Atoi(port)
	if err != nil || perr != nil {
		return providers.Endpoint{}, step.Fail("no WinRM endpoint was prepared (fact %s is %q)", FactRaceEndpoint, facts[FactRaceEndpoint])
	}
	return providers.Endpoint{Host: host, Port: n}, nil
}

func raceStep(i int) func(context.Context, *step.Env, *step.Target, step.Facts) (step.Facts, error) {
	return func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if n, _ := strconv.Atoi(facts[FactDeleted]); n > 0 {
			return nil, nil // an earlier boot's race deleted the files
		}
		if n, _ := strconv.Atoi(facts[FactRaceBoots]); n >= i {
			return nil, nil // this boot was raced already (and missed)
		}
		if err := need(env, "power", env.Provider != nil && env.Provider.Power != nil); err != nil {
			return nil, err
		}
		if env.Guest == nil {
			return nil, step.Fail("no guest client configured")
		}
		ep, err := raceEndpoint(facts)
		if err != nil {
			return nil, err
		}
		gctx, _, out, err := guard(ctx, env, vm, facts)
		if errors.Is(err, step.ErrHealthy) {
			if herr := holdHealthy(ctx, env, vm); herr != nil {
				return nil, herr
			}
		}
		if err != nil {
			return nil, err
		}
		if out == nil {
			out = step.Facts{}
		}
		ref := vmRef(vm)
		s, err := observe(ctx, env, ref)
		if err != nil {
			return nil, err
		}
		if err := reset(gctx, env, ref, s.Power); err != nil {
			return nil, err
		}
		out[FactRaceBoots] = strconv.Itoa(i)
		for a := 1; a <= RaceAttempts; a++ {
			done, err := raceOnce(ctx, env, vm, ep, facts, out)
			if done || (err != nil && !errors.Is(err, guest.ErrUnreachable)) {
				if err == nil {
					out[FactRaceAttempts] = strconv.Itoa(a)
				}
				return out, err
			}
			if err := env.Clock.Sleep(ctx, RaceEvery); err != nil {
				return out, err
			}
		}
		if i == RaceBoots {
			return out, step.Fail("WinRM did not answer within %d attempts on any of %d boots", RaceAttempts, RaceBoots)
		}
		return out, nil
	}
}

// holdHealthy probes vm, found healthy before a race step's reset, for
// RaceHold: nil when it stays healthy (it is, whatever boot it is in). A
// probe that finds it otherwise is the crash of a boot an earlier attempt
// raced and deleted the files in without its end being journaled: a
// guest.ErrUnreachable error, so that the step runs again on the next
// boot (which began after the deletion).
func holdHealthy(ctx context.Context, env *step.Env, vm *step.Target) error {
	var last inventory.Probe
	crashed, err := poll(ctx, env, PollEvery, RaceHold, func() (bool, error) {
		p, err := probeVM(ctx, env, vm)
		if err != nil {
			return false, err
		}
		last = p
		return !p.Retryable && !healthy(env.Incident, p), nil
	})
	if err != nil {
		return err
	}
	if crashed {
		return fmt.Errorf("%w: %s answered healthy, then not (%s): the boot an earlier attempt raced crashed; racing again on the next boot",
			guest.ErrUnreachable, vm.ID, describeProbe(env.Incident, last))
	}
	return nil
}

// raceOnce is one attempt within a boot's window: it reads the guest first
// (a guest up in a normal boot without a bad file is fixed:
// step.ErrHealthy, and nothing is changed), then deletes the bad files and,
// only where it is set, clears the safe-boot flag. guest.ErrUnreachable:
// the window is not open (yet, or any more).
func raceOnce(ctx context.Context, env *step.Env, vm *step.Target, ep providers.Endpoint, facts, out step.Facts) (bool, error) {
	p, err := env.Guest.Probe(ctx, ep, env.Creds, guest.ProbeParams{Dir: env.Incident.RelDirectory(), Pattern: env.Incident.Pattern})
	if err != nil {
		return false, err
	}
	seen := inventory.Probe{Reachable: true, BootMode: p.BootMode, SafeBootFlag: p.SafeBootFlag, Files: p.Files}
	if healthy(env.Incident, seen) {
		return true, fmt.Errorf("%w: %s booted normally and carries no bad file", step.ErrHealthy, vm.ID)
	}
	// The boot being raced, where the cloud counts boots: read before the
	// deletion, so that it can never be a boot that began after it (read
	// after, on a slow control plane, it was the repaired boot, and the
	// restart step reset a healthy VM).
	if s, err := observe(ctx, env, vmRef(vm)); err == nil && s.BootCount != nil {
		out[FactRaceBootCount] = strconv.Itoa(*s.BootCount)
	}
	out[FactRacedAt] = stamp(env.Clock.Now())
	r, err := env.Guest.DeleteFiles(ctx, ep, env.Creds, guest.DeleteParams{Root: "C:", Criteria: criteria(env.Incident)})
	if err != nil {
		return false, err
	}
	for k, v := range deleteFacts(facts, r) {
		out[k] = v
	}
	if len(r.Deleted) == 0 {
		return true, step.Fail("WinRM answered but no bad file was found to delete (%d kept)", len(r.Kept))
	}
	if p.SafeBootFlag {
		// Same window: the next boot must be a normal one.
		if _, err := env.Guest.ClearSafeBoot(ctx, ep, env.Creds); err != nil {
			return true, err
		}
	}
	return true, nil
}

// Abort implements step.Strategy: nothing to undo. The snapshot is kept;
// the VM runs as it is.
func (RaceBoot) Abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	return step.Facts{FactAbort: "nothing to undo: the VM is left running as it is; its snapshot is kept"}, nil
}
