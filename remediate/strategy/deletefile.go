package strategy

import (
	"context"
	"strconv"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// Fact keys only DeleteFile produces.
const (
	FactSafeBootWasSet step.Fact = "safeboot_was_set"
	FactRestarted      step.Fact = "restarted"
	// FactSafeModeBootCount is the cloud's boot counter while the VM ran
	// in safe mode, before delete-file changed anything: a higher count
	// later means the VM was restarted since.
	FactSafeModeBootCount step.Fact = "safe_mode_boot_count"
)

// DeleteFile repairs a VM running in Safe Mode with networking, over WinRM.
//
// Steps:
//   - recheck: healthy now → step.ErrHealthy; the guest must answer in safe
//     mode (else step.Fail).
//   - snapshot: a snapshot of the OS disk tagged {run, vm, role=snapshot}
//     (an existing one is reused) before anything on the disk changes.
//   - delete-files: the guest deletes, under C:, only the files the incident
//     profile marks bad (name, time window, header); facts deleted, kept.
//   - clear-safeboot: the next boot is a normal one.
//   - restart: re-checks, then stops the VM with a guest shutdown (so the
//     deletion and the boot-configuration change reach the disk) and starts
//     it, unless the boot counter shows it already restarted since it was
//     in safe mode (so a repeated step never restarts twice).
//   - verify: polls until the guest answers with a normal boot and no bad
//     file; otherwise step.Fail.
//
// Once the VM restarted, delete-files, clear-safeboot and restart do
// nothing. Abort has nothing to undo: the snapshot is kept, the VM runs as
// it is.
type DeleteFile struct{}

// Name implements step.Strategy.
func (DeleteFile) Name() policy.Strategy { return policy.DeleteFile }

// Applies implements Unit: only a VM in Safe Mode with networking, the
// one state in which WinRM reaches the guest.
func (DeleteFile) Applies() []inventory.State { return []inventory.State{inventory.StateSafeMode} }

// NotApplicable implements Unit.
func (DeleteFile) NotApplicable(st inventory.State) string {
	if st == inventory.StateBootLoop {
		return "the VM is not in Safe Mode, so WinRM cannot reach it to delete the file"
	}
	return notApplicable(st)
}

// Needs implements Unit.
func (DeleteFile) Needs() Needs { return Needs{Capabilities: []string{"guest", "power", "disks"}} }

// Check implements Unit: the guest answered WinRM when assessed (a Safe
// Mode VM known only by its screen goes offline: helper-mount); its
// recheck step verifies it again right before acting.
func (DeleteFile) Check(c *Candidate) []string {
	if !c.GuestAnswers {
		return []string{"the guest's WinRM did not answer with the configured credentials when assessed"}
	}
	return nil
}

// Risks implements Unit: it changes only files the incident profile marks
// bad, after a snapshot.
func (DeleteFile) Risks(*Candidate, bool) []string { return nil }

// FailureChance implements Unit: not modelled (0).
func (DeleteFile) FailureChance(policy.Policy) float64 { return 0 }

// Steps implements step.Strategy.
func (DeleteFile) Steps(vm *step.Target, pol policy.Policy) []step.Step {
	return []step.Step{
		recheckStep(FactSafeModeBootCount, func(p inventory.Probe, _ inventory.Signals) error {
			if !p.Reachable || p.BootMode != inventory.BootSafeMode {
				return step.Fail("delete-file needs the guest to answer in safe mode, but %s", describeProbe(inventory.Incident{}, p))
			}
			return nil
		}),
		snapshotStep(),
		{Name: "delete-files", Run: dfDelete, Cost: step.Cost{Calls: 1, Scripts: 1}},
		{Name: "clear-safeboot", Run: dfClearSafeBoot, Cost: step.Cost{Scripts: 1}},
		{Name: "restart", Run: dfRestart, Cost: step.Cost{Ops: []timing.Op{timing.OpRestart}}},
		finalVerify("verify"),
	}
}

// restartedSinceSafeMode reports whether the VM booted again since
// delete-file found it in safe mode, and the current boot counter.
func restartedSinceSafeMode(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (bool, *int, error) {
	if facts[FactRestarted] == "true" {
		return true, nil, nil
	}
	s, err := observe(ctx, env, vmRef(vm))
	if err != nil {
		return false, nil, err
	}
	if before, err := strconv.Atoi(facts[FactSafeModeBootCount]); err == nil && s.BootCount != nil && *s.BootCount > before {
		return true, s.BootCount, nil
	}
	return false, s.BootCount, nil
}

func dfDelete(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	restarted, bc, err := restartedSinceSafeMode(ctx, env, vm, facts)
	if err != nil || restarted {
		return nil, err
	}
	if facts[FactSnapshotID] == "" {
		return nil, step.Fail("refusing to delete files: no snapshot of disk %s was recorded", vm.OSDisk.ID)
	}
	ep, err := endpoint(ctx, env, vmRef(vm))
	if err != nil {
		return nil, err
	}
	r, err := env.Guest.DeleteFiles(ctx, ep, env.Creds, guest.DeleteParams{Root: "C:", Criteria: criteria(env.Incident)})
	if err != nil {
		return nil, err
	}
	out := deleteFacts(facts, r)
	if facts[FactSafeModeBootCount] == "" && bc != nil {
		out[FactSafeModeBootCount] = strconv.Itoa(*bc)
	}
	return out, nil
}

func dfClearSafeBoot(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	restarted, _, err := restartedSinceSafeMode(ctx, env, vm, facts)
	if err != nil || restarted {
		return nil, err
	}
	ep, err := endpoint(ctx, env, vmRef(vm))
	if err != nil {
		return nil, err
	}
	r, err := env.Guest.ClearSafeBoot(ctx, ep, env.Creds)
	if err != nil {
		return nil, err
	}
	out := step.Facts{}
	if facts[FactSafeBootWasSet] == "" || r.WasSet {
		out[FactSafeBootWasSet] = strconv.FormatBool(r.WasSet)
	}
	return out, nil
}

func dfRestart(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if err := need(env, "power", env.Provider != nil && env.Provider.Power != nil); err != nil {
		return nil, err
	}
	restarted, _, err := restartedSinceSafeMode(ctx, env, vm, facts)
	if err != nil {
		return nil, err
	}
	if restarted {
		return step.Facts{FactRestarted: "true"}, nil
	}
	if facts[FactSafeModeBootCount] == "" {
		// Without a boot counter a repeated step cannot tell whether the
		// VM already restarted: look at the guest instead.
		p, err := probeVM(ctx, env, vm)
		if err != nil {
			return nil, err
		}
		if p.Reachable && p.BootMode == inventory.BootNormal {
			return step.Facts{FactRestarted: "true"}, nil
		}
	}
	gctx, _, out, err := guard(ctx, env, vm, facts)
	if err != nil {
		return nil, err
	}
	// A guest shutdown, not a hard reset: the deletion and the cleared
	// safe-boot flag were just written through the guest and must reach
	// the disk. Stop is idempotent, so a resume after a crash between the
	// two calls finds the VM stopped and starts it.
	ref := vmRef(vm)
	if err := env.Provider.Power.Stop(gctx, []providers.VMRef{ref}, false); err != nil {
		return nil, err
	}
	if err := env.Provider.Power.Start(ctx, []providers.VMRef{ref}); err != nil {
		return nil, err
	}
	if out == nil {
		out = step.Facts{}
	}
	out[FactRestarted] = "true"
	return out, nil
}

// Abort implements step.Strategy: nothing to undo. The snapshot is kept;
// the VM runs as it is (safe mode, or booting).
func (DeleteFile) Abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	return step.Facts{FactAbort: "nothing to undo: the VM is left running as it is; its snapshot is kept"}, nil
}

// snapshotStep makes sure a snapshot of the OS disk exists before anything
// changes it: one tagged {run, vm, role=snapshot} of that disk is reused
// (waiting until it is ready), else one is taken. Fact snapshot_id. Early
// (step.Step.Early): the executor may take it before the strategy starts.
func snapshotStep() step.Step {
	s := snapshotAs("snapshot", RoleSnapshot, FactSnapshotID)
	s.Early = true
	return s
}

// incremental is s, a snapshot of a disk the Early snapshot step before it
// has snapshotted already, costed as an incremental snapshot.
func incremental(s step.Step) step.Step {
	s.Cost.Ops = []timing.Op{timing.OpSnapshotIncremental}
	return s
}

// snapshotAs is a step named name that makes sure a snapshot of the OS
// disk tagged {run, vm, role} exists: one of that disk is reused
// (waiting until it is ready), else one is taken. Its ID is the fact fact.
// Idempotent: a repeat finds the snapshot by its tags. It looks for one
// only where one may exist: fact recorded (by any strategy's step of the
// role) or step.FactRerun; so every step that takes a snapshot of a role
// records it as that role's fact.
func snapshotAs(name, role string, fact step.Fact) step.Step {
	return step.Step{Name: name, Run: func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if err := need(env, "disks", env.Provider != nil && env.Provider.Disks != nil); err != nil {
			return nil, err
		}
		if vm.OSDisk.ID == "" {
			return nil, step.Fail("the plan names no OS disk for %s", vm.ID)
		}
		d := env.Provider.Disks
		t := tags(env, vm, role)
		find := func() (*providers.SnapshotState, error) {
			ss, err := d.FindSnapshots(ctx, t)
			if err != nil {
				return nil, err
			}
			var found *providers.SnapshotState
			for i := range ss {
				if ss[i].DiskID != vm.OSDisk.ID {
					continue
				}
				if found == nil || (ss[i].Ready && !found.Ready) {
					found = &ss[i]
				}
			}
			return found, nil
		}
		var s *providers.SnapshotState
		if facts[fact] != "" || facts[step.FactRerun] == "true" {
			// A step of this VM recorded one, or an attempt of this one may
			// have taken one unrecorded: look for it. Otherwise there is
			// none to find (the tags name this run), and asking would cost
			// a call per VM.
			var err error
			if s, err = find(); err != nil {
				return nil, err
			}
		}
		if s == nil {
			ref, err := d.Snapshot(ctx, diskRef(vm, vm.OSDisk.ID), t)
			if err != nil {
				return nil, err
			}
			return step.Facts{fact: ref.ID}, nil
		}
		if !s.Ready {
			ok, err := poll(ctx, env, PollEvery, SnapshotWait, func() (bool, error) {
				x, err := find()
				if err != nil {
					return false, err
				}
				if x != nil && x.Ready {
					s = x
				}
				return x != nil && x.Ready, nil
			})
			if err != nil {
				return nil, err
			}
			if !ok {
				return nil, providers.Errorf(providers.ErrUnavailable, "Snapshot", "snapshot "+s.Ref.ID, "not ready after %s", SnapshotWait)
			}
		}
		return step.Facts{fact: s.Ref.ID}, nil
	}, ReadOnly: true, Cost: step.Cost{Ops: []timing.Op{timing.OpSnapshot}}}
}
