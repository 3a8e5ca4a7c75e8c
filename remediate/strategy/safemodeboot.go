package strategy

import (
	"context"
	"slices"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// Fact keys only SafeModeBoot produces.
const (
	// FactSafeBootSet: "true" once the safe-boot flag is set in the OS
	// disk's BCD store on the helper.
	FactSafeBootSet step.Fact = "safeboot_set"
	// FactInSafeMode: the RFC 3339 time the guest was seen answering in
	// Safe Mode after the start.
	FactInSafeMode step.Fact = "in_safe_mode"
)

// SafeModeBoot repairs a VM whose BitLocker volume cannot be read offline
// (its recovery key is in no configured key source) the way Microsoft's
// recovery tool does for such machines: the disk's boot configuration is
// set to start Safe Mode with Networking, in which the incident's driver
// does not load, and the files are deleted by the running Windows, which
// the VM's own TPM unlocked. The BCD store lives on the system partition,
// which BitLocker does not encrypt, so a helper edits it without the key;
// the safeboot setting is not in BitLocker's default BCD validation
// profile, so the boot does not fall into BitLocker recovery. The disk
// must go back to its own VM (its TPM holds the key).
//
// Steps: helper-mount's, with its repair on the helper replaced by
//
//	set-safeboot       the safe-boot flag (network) set offline in the
//	                   disk's own BCD store; fact safeboot_set
//
// and its start and verify replaced by
//
//	start              starts the VM (into Safe Mode)
//	wait-safe-mode    the guest must answer in Safe Mode within BootWait;
//	                   fact in_safe_mode. WinRM
//	                   silent there (not listed under SafeBoot\Network) or
//	                   rejecting the credentials → step.Fail, saying what a
//	                   person at the console does
//	delete-files, clear-safeboot, restart, verify   as delete-file
//
// Only where WinRM starts in Safe Mode does it repair the VM; the plan
// cannot know that beforehand (Risks says so). Abort is helper-mount's
// (the disk back on its VM, identity verified, the VM powered on): a disk
// whose flag was set boots into Safe Mode then, no longer crashing, which
// its abort fact says, with what a person does there. Each step is
// idempotent as in helper-mount and delete-file.
type SafeModeBoot struct{}

// Name implements step.Strategy.
func (SafeModeBoot) Name() policy.Strategy { return policy.SafeModeBoot }

// Applies implements Unit: a crashing VM, or a powered-off one where the
// policy starts powered-off VMs (it must boot to be repaired).
func (SafeModeBoot) Applies() []inventory.State {
	return []inventory.State{inventory.StateBootLoop, inventory.StateStopped}
}

// NotApplicable implements Unit.
func (SafeModeBoot) NotApplicable(st inventory.State) string {
	if st == inventory.StateSafeMode {
		return "the VM is in Safe Mode already"
	}
	return notApplicable(st)
}

// Needs implements Unit: the OS disk goes to a helper and back, and the
// guest is reached over WinRM in Safe Mode.
func (SafeModeBoot) Needs() Needs {
	return Needs{Capabilities: []string{"power", "disks", "os-disk-detach", "helpers", "guest"}, Helper: true}
}

// Check implements Unit: only a BitLocker disk no key source can unlock
// (any other disk helper-mount repairs offline, without a boot) or, where
// the plan does not see the disk encrypted (most clouds cannot tell),
// after helper-mount, which finds out (Conditional); a helper image in the
// VM's own zone; and for a powered-off VM a policy that starts it.
func (SafeModeBoot) Check(c *Candidate) []string {
	var why []string
	switch {
	case c.VM.OSDisk.Encryption.BitLocker && c.KeyProblem == "":
		why = append(why, "the BitLocker key is at hand: helper-mount repairs the disk without booting it")
	case !c.VM.OSDisk.Encryption.BitLocker && !slices.Contains(c.Before, policy.HelperMount):
		why = append(why, "the OS volume is not known to be BitLocker-encrypted, and no helper-mount before it can find it locked")
	}
	if w := helperProblem(c); w != "" {
		why = append(why, w)
	}
	if c.State == inventory.StateStopped && !c.Policy.StartsStopped() {
		why = append(why, "the VM must boot to be repaired in Safe Mode, and policy.stopped_vms leaves powered-off VMs off")
	}
	return why
}

// Conditional implements step.Conditional: where the plan does not see
// the disk encrypted, it runs only if helper-mount, before it, found the
// volume BitLocker-locked with its key in no key source (FactKeyMissing).
func (SafeModeBoot) Conditional(t *step.Target) string {
	if t.OSDisk.Encryption.BitLocker {
		return ""
	}
	return "only if helper-mount before it finds the OS volume BitLocker-locked and its recovery key in no key source"
}

// Risks implements Unit: WinRM may not start in Safe Mode (said where it
// runs unconditionally; its condition, in the plan's reasons, says the
// rest).
func (SafeModeBoot) Risks(c *Candidate, planned bool) []string {
	r := HelperMount{}.Risks(c, planned)
	if planned && c.VM.OSDisk.Encryption.BitLocker {
		r = append(r, `WinRM answers in Safe Mode only where it is listed under HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot\Network; `+
			"elsewhere the VM is left in Safe Mode with Networking for a person at its console")
	}
	return r
}

// RestartsFirst reports true: where WinRM does not start in Safe Mode the
// VM is left there, and no restart brings it the fixed update any more;
// so a VM that reboot-retry might still bring back gets its whole
// last-resort budget of restarts first (plan: last_resort).
func (SafeModeBoot) RestartsFirst() bool { return true }

// FailureChance implements Unit: not modelled (0).
func (SafeModeBoot) FailureChance(policy.Policy) float64 { return 0 }

// Steps implements step.Strategy.
//
// Where it runs as helper-mount's conditional fallback on a boot loop and
// nothing sure follows it (step.Target.LateRestarts), it first restarts the
// VM up to policy.RebootRetry.LastResort() restarts in all (reboot-retry's
// restart-i and wait-i, from MaxRestarts+1): the plan gave reboot-retry
// only MaxRestarts because helper-mount looked sure, and a VM left in Safe
// Mode can no longer fetch the fixed update by restarting.
func (SafeModeBoot) Steps(vm *step.Target, pol policy.Policy) []step.Step {
	steps := onHelperSteps(vm, step.Step{Name: "set-safeboot", Run: unlessReturned(smSetSafeBoot), Cost: onHelperCost(1)})
	if !vm.OSDisk.Encryption.BitLocker {
		steps[0] = keyFoundMissing(steps[0])
		if vm.LateRestarts {
			steps = slices.Insert(steps, 1, restartSteps(pol.RebootRetry.MaxRestarts+1, pol.RebootRetry.LastResort(), 0)...)
		}
	}
	return append(steps,
		step.Step{Name: "start", Run: hmStart, Cost: step.Cost{Ops: []timing.Op{timing.OpStart}}},
		step.Step{Name: "wait-safe-mode", Run: smWaitSafeMode, ReadOnly: true, Cost: step.Cost{Ops: []timing.Op{timing.OpBootToWinRM}, Scripts: 1}},
		step.Step{Name: "delete-files", Run: dfDelete, Cost: step.Cost{Calls: 1, Scripts: 1}},
		step.Step{Name: "clear-safeboot", Run: dfClearSafeBoot, Cost: step.Cost{Scripts: 1}},
		step.Step{Name: "restart", Run: dfRestart, Cost: step.Cost{Ops: []timing.Op{timing.OpRestart}}},
		finalVerify("verify"),
	)
}

// keyFoundMissing makes the re-check fail at once, before any call, unless
// helper-mount found the OS volume locked with no key (Conditional). The
// facts are the VM's, across strategies: it clears the progress of
// helper-mount's mount (mountFacts), so that this mount of the disk starts
// from the start and does not skip its steps for the earlier one's (the
// disk back on its VM, an identity verified).
func keyFoundMissing(recheck step.Step) step.Step {
	run := recheck.Run
	recheck.Run = func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if facts[FactKeyMissing] != "true" {
			return nil, step.Fail("helper-mount did not find the OS volume of %s BitLocker-locked without a key: nothing for safe-mode-boot to do", vm.ID)
		}
		out, err := run(ctx, env, vm, facts)
		if err != nil {
			return out, err
		}
		reset := step.Facts{}
		for _, k := range mountFacts {
			if facts[k] != "" {
				reset[k] = ""
			}
		}
		return reset.Merge(out), nil
	}
	return recheck
}

// mountFacts are the facts of a helper mount's progress (helper-mount's
// steps, onHelperSteps), which a later mount of the same disk must not
// read as its own.
var mountFacts = []step.Fact{FactStopped, FactHelperID, FactHelperZone, FactOSDiskDetached, FactAttachedTo, FactDiskNumber, FactDiskBySerial,
	FactIdentityOriginal, FactIdentityAfterOnline, FactIdentityChanged, FactDriveLetter, FactUnlocked, FactIdentityVerified, FactOfflined,
	FactDetachedFromHelper, FactHelperReturned, FactDiskReturned, FactStarted}

func smSetSafeBoot(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if facts[FactSafeBootSet] == "true" {
		return nil, nil
	}
	if _, err := offlineSafeBoot(ctx, env, vm, facts, true); err != nil {
		return nil, err
	}
	return step.Facts{FactSafeBootSet: "true"}, nil
}

// smWaitSafeMode waits for the started VM's guest to answer in Safe Mode:
// at most BootWait, or SafeModeWinRMGrace after its screen first showed the
// Safe Mode desktop (showsSafeMode), by when a WinRM listed under
// SafeBoot\Network has started. delete-file's first step then records the
// boot counter there, as on a VM found in Safe Mode (FactSafeModeBootCount).
func smWaitSafeMode(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if facts[FactInSafeMode] != "" {
		return nil, nil
	}
	rejected := false
	var desktop time.Time // when the screen first showed Safe Mode
	inSafe := func(p inventory.Probe) bool { return p.Reachable && p.BootMode == inventory.BootSafeMode }
	p, healthyNow, err := waitBootUnless(ctx, env, vm, func(p inventory.Probe) (bool, error) {
		rejected = classify.IsAuthError(&p)
		if rejected || inSafe(p) {
			return true, nil
		}
		if desktop.IsZero() && showsSafeMode(ctx, env, vm) {
			desktop = env.Clock.Now()
		}
		return !desktop.IsZero() && env.Clock.Now().Sub(desktop) >= SafeModeWinRMGrace, nil
	})
	switch {
	case err != nil:
		return nil, err
	case healthyNow:
		return nil, step.ErrHealthy
	case inSafe(p):
		return step.Facts{FactInSafeMode: stamp(p.At)}, nil
	}
	const notListed = ` (it is not listed under HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot\Network)`
	why := "its WinRM does not answer there within " + BootWait.String() + notListed
	if !desktop.IsZero() {
		why = "its WinRM does not answer there " + SafeModeWinRMGrace.String() + " after its screen showed the Safe Mode desktop" + notListed
	}
	switch {
	case rejected:
		why = "its WinRM there rejects the configured credentials"
	case p.Reachable:
		why = describeProbe(env.Incident, p) + " after " + BootWait.String()
	}
	return nil, step.Fail("%s was started into Safe Mode with Networking, but %s; at its console, sign in as a local administrator, "+
		`delete the files %s\%s of the bad window, run "bcdedit /deletevalue {default} safeboot" and restart it`, vm.ID, why, env.Incident.Directory, env.Incident.Pattern)
}

// showsSafeMode reports whether the VM's screen shows the Safe Mode
// desktop now: in the console text where the cloud shows one, else on a
// screenshot where it takes them (providers.Screens). Anything else, or a
// failed read, is no evidence: false.
func showsSafeMode(ctx context.Context, env *step.Env, vm *step.Target) bool {
	s, err := observe(ctx, env, vmRef(vm))
	if err != nil || s.Power != inventory.PowerRunning {
		return false
	}
	if s.ConsoleAvailable {
		return textShowsSafeMode(s)
	}
	return screenShowsSafeMode(ctx, env, vm)
}

// Abort implements step.Strategy: helper-mount's Abort. A disk whose
// safe-boot flag was set (and not cleared by the guest since) is back on
// its VM with the flag: the VM runs in Safe Mode with Networking, no longer
// crashing (powered on, as helper-mount's Abort does, or started by the
// strategy), and the abort fact says what a person does there.
func (SafeModeBoot) Abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	out, err := HelperMount{}.Abort(ctx, env, vm, facts)
	if err != nil || facts[FactSafeBootSet] != "true" || facts[FactRestarted] == "true" {
		return out, err
	}
	power := "powered on"
	if vm.State == inventory.StateStopped && facts[FactStarted] != "true" {
		power = "left powered off, as it was found"
	}
	out[FactAbort] = "the OS disk is back on its VM with its identity verified and its boot configuration set to start Safe Mode with Networking; the VM was " + power +
		`: at its console a person signs in as a local administrator, deletes the incident's files, runs "bcdedit /deletevalue {default} safeboot" and restarts it`
	return out, nil
}
