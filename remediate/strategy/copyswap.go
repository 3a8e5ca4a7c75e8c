package strategy

import (
	"context"
	"errors"
	"fmt"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// Fact keys only CopyAndSwap produces (it also records helper-mount's
// identity facts, of the copy, and original_disk_id).
const (
	FactCopyDiskID step.Fact = "copy_disk_id"
	FactSwapped    step.Fact = "swapped"
	FactCopyGone   step.Fact = "copy_deleted"
	// FactCopySourceID is the snapshot the copy is made from, taken after
	// the stop.
	FactCopySourceID step.Fact = "copy_source_snapshot_id"
)

// Tag roles of what only copy-and-swap creates.
const (
	// RoleOSDiskCopy tags the copy of a VM's OS disk that copy-and-swap
	// repairs.
	RoleOSDiskCopy = "os-disk-copy"
	// RoleCopySource tags the snapshot the copy is made from. It is not
	// role=snapshot: that one may have been taken earlier by another
	// strategy (delete-file's, while the VM still ran in Safe Mode, or an
	// early step's), and a copy made from it would lose in the swap what
	// the VM wrote since.
	RoleCopySource = "copy-source"
)

// CopyAndSwap repairs a VM whose OS disk cannot leave it (Azure: an OS disk
// cannot be detached, only swapped), as `az vm repair` does: a copy of the
// OS disk is repaired on a pooled helper of the same Windows release, with
// helper-mount's own steps and the same disk-identity handling (identity
// recorded before onlining, restored and verified before the copy leaves
// the helper), then swapped in as the VM's OS disk. The original OS disk is
// never changed: it stays, detached, and its ID is the fact
// original_disk_id. The copy is made from the snapshot of the disk, in the
// VM's zone, with its Hyper-V generation and security type (trusted
// launch), which the swap checks against the VM's.
//
// Steps:
//
//	recheck            healthy now → step.ErrHealthy
//	snapshot           the rollback snapshot (step.Step.Early: usually
//	                   taken while the VM still looped), role=snapshot;
//	                   it makes copy-source's an incremental snapshot
//	stop               re-check, then deallocate the VM first: the VM is
//	                   down anyway, the snapshot of a stopped disk is
//	                   consistent, and a VM that cannot boot meanwhile
//	                   cannot write data the swap would discard
//	copy-source        a snapshot of the stopped OS disk, tagged
//	                   {run, vm, role=copy-source} (reused if found; never
//	                   another strategy's role=snapshot, which may be older
//	                   than the stop); fact copy_source_snapshot_id
//	copy-disk          a disk from the snapshot in the VM's zone, tagged
//	                   {run, vm, role=os-disk-copy} (found again by its
//	                   tags); fact copy_disk_id
//	lease-helper … return-helper
//	                   helper-mount's steps, on the copy
//	swap-os-disk       refuses unless identity_verified = identity_original;
//	                   the copy becomes the OS disk (providers.OSDiskSwapper);
//	                   facts original_disk_id, swapped
//	start              starts the VM
//	verify             normal boot, no bad file; else step.Fail
//
// Once the copy is the VM's OS disk, the steps before swap-os-disk do
// nothing. Rollback (a person's choice after the run) is the swap back on
// the deallocated VM: SwapOSDisk(vm, original_disk_id), which leaves the
// repaired copy detached and kept (docs/providers/azure.md gives the
// commands).
//
// Abort: before the swap, the copy is brought off the helper with its
// identity restored (as helper-mount's Abort does) and deleted
// (OSDiskSwapper.DeleteCopy, only with the run's tags), the helper slot is
// given back and the VM, whose OS disk never changed, is powered on. After
// the swap, the VM is started on the copy and a copy that boots healthy is
// left in place; otherwise the original disk is swapped back, the VM
// powered on, and the copy, which did not repair it, deleted (the run's
// snapshot of the original disk stays).
type CopyAndSwap struct{}

// Name implements step.Strategy.
func (CopyAndSwap) Name() policy.Strategy { return policy.CopyAndSwap }

// Applies implements Unit: a crashing VM or one in Safe Mode. Not a
// powered-off one: its disk may well be clean, and checking it would mean
// swapping a copy in for it.
func (CopyAndSwap) Applies() []inventory.State {
	return []inventory.State{inventory.StateBootLoop, inventory.StateSafeMode}
}

// NotApplicable implements Unit.
func (CopyAndSwap) NotApplicable(st inventory.State) string {
	if st == inventory.StateStopped {
		return "a powered-off VM's disk may be clean: copy-and-swap would swap a copy in for it; start it to see whether it loops, then assess again"
	}
	return HelperMount{}.NotApplicable(st)
}

// Needs implements Unit: a cloud that swaps OS disks (and so cannot detach
// them: where it can, helper-mount repairs the disk itself).
func (CopyAndSwap) Needs() Needs {
	return Needs{Capabilities: []string{"power", "disks", "os-disk-swap", "helpers"}, Helper: true}
}

// Check implements Unit: helper-mount's (a helper image, a key).
func (CopyAndSwap) Check(c *Candidate) []string { return HelperMount{}.Check(c) }

// Risks implements Unit: helper-mount's, and the original disk kept.
func (CopyAndSwap) Risks(c *Candidate, planned bool) []string {
	r := HelperMount{}.Risks(c, planned)
	if planned {
		r = append(r, fmt.Sprintf("the original OS disk %s is kept, detached, after the swap (its storage is billed until deleted); "+
			"rolling back is swapping it back", c.VM.OSDisk.ID))
	}
	return r
}

// FailureChance implements Unit: not modelled (0).
func (CopyAndSwap) FailureChance(policy.Policy) float64 { return 0 }

// Steps implements step.Strategy. The steps on the helper are
// helper-mount's, run on the copy.
func (CopyAndSwap) Steps(vm *step.Target, pol policy.Policy) []step.Step {
	steps := []step.Step{
		recheckStep("", nil),
		// Early: the rollback point, and it makes the copy's source
		// snapshot after the stop an incremental one.
		snapshotStep(),
		{Name: "stop", Run: unlessCopySwapped(hmStop), Cost: step.Cost{Ops: []timing.Op{timing.OpStop}}},
		// The copy is made from this snapshot: it must follow the stop, so
		// that no write of the running VM is lost to the swap (never
		// early, never another strategy's).
		incremental(snapshotAs("copy-source", RoleCopySource, FactCopySourceID)),
		{Name: "copy-disk", Run: unlessCopySwapped(diskFromSnapshot(FactCopySourceID, RoleOSDiskCopy, FactCopyDiskID, vmZone)),
			Cost: step.Cost{Ops: []timing.Op{timing.OpDiskFromSnapshot}, Calls: 1}},
	}
	steps = append(steps, helperSteps(vm, pol, onCopy)...)
	return append(steps,
		step.Step{Name: "swap-os-disk", Run: csSwap, Cost: step.Cost{Ops: []timing.Op{timing.OpAttach}, Calls: 2}},
		step.Step{Name: "start", Run: hmStart, Cost: step.Cost{Ops: []timing.Op{timing.OpStart}}},
		finalVerify("verify"),
	)
}

// helperSteps are helper-mount's steps on the helper, from the lease to
// the return of the helper slot, each run through on (which points them at
// a copy of the OS disk).
func helperSteps(vm *step.Target, pol policy.Policy, on func(runFunc) runFunc) []step.Step {
	var out []step.Step
	for _, st := range (HelperMount{}).Steps(vm, pol) {
		switch st.Name {
		case "lease-helper":
			st.Run = on(hmLease)
		case "attach-to-helper":
			st.Run = on(hmAttachHelper)
		case "find-disk", "online-disk", "unlock", "delete-files", "check-hives", "clear-safeboot",
			"restore-identity", "verify-identity", "offline-disk":
			st.Run = on(st.Run)
		case "detach-from-helper":
			st.Run = on(hmDetachHelper)
		case "return-helper":
		default:
			continue
		}
		out = append(out, st)
	}
	return out
}

// swapper is the provider's OS-disk swap, or a step.Fail.
func swapper(env *step.Env) (providers.OSDiskSwapper, error) {
	if err := need(env, "disks", env.Provider != nil && env.Provider.Disks != nil); err != nil {
		return nil, err
	}
	sw, ok := env.Provider.Disks.(providers.OSDiskSwapper)
	if !ok {
		return nil, step.Fail("the provider of this account cannot swap an OS disk (no os-disk-swap capability)")
	}
	return sw, nil
}

// copySwapped reports whether the copy is vm's OS disk.
func copySwapped(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (bool, error) {
	id := facts[FactCopyDiskID]
	if id == "" || facts[FactCopyGone] == "true" {
		return false, nil
	}
	ds, err := env.Describe(ctx, diskRef(vm, id))
	if errors.Is(err, providers.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return ds.AttachedTo == vm.ID && ds.Boot, nil
}

// unlessCopySwapped skips a step once the copy is the VM's OS disk.
func unlessCopySwapped(f runFunc) runFunc {
	return func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if err := need(env, "disks", env.Provider != nil && env.Provider.Disks != nil); err != nil {
			return nil, err
		}
		if done, err := copySwapped(ctx, env, vm, facts); err != nil || done {
			return nil, err
		}
		return f(ctx, env, vm, facts)
	}
}

// copyTarget is vm with the copy in place of its OS disk: helper-mount's
// steps then act on the copy.
func copyTarget(vm *step.Target, facts step.Facts) (*step.Target, error) {
	id := facts[FactCopyDiskID]
	if id == "" {
		return nil, step.Fail("no copy of the OS disk of %s was recorded", vm.ID)
	}
	c := *vm
	c.OSDisk.ID = id
	return &c, nil
}

// onCopy runs a helper-mount step on the copy, unless it was swapped in.
// The step sees the copy's source as the snapshot of the disk it changes
// (helper-mount's steps refuse to change a disk no snapshot was recorded
// of), never another strategy's older snapshot_id.
func onCopy(f runFunc) runFunc {
	return unlessCopySwapped(func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		c, err := copyTarget(vm, facts)
		if err != nil {
			return nil, err
		}
		return f(ctx, env, c, facts.Merge(step.Facts{FactSnapshotID: facts[FactCopySourceID]}))
	})
}

func csSwap(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	sw, err := swapper(env)
	if err != nil {
		return nil, err
	}
	c, err := copyTarget(vm, facts)
	if err != nil {
		return nil, err
	}
	done := step.Facts{FactOriginalDiskID: vm.OSDisk.ID, FactSwapped: "true"}
	cs, err := env.Describe(ctx, diskRef(vm, c.OSDisk.ID))
	if err != nil {
		return nil, err
	}
	switch {
	case cs.AttachedTo == vm.ID && cs.Boot:
		return done, nil
	case cs.AttachedTo != "":
		return nil, step.Fail("refusing to swap in disk %s: it is still attached to %s", c.OSDisk.ID, cs.AttachedTo)
	}
	if v, o := facts[FactIdentityVerified], facts[FactIdentityOriginal]; o == "" || v != o {
		return nil, step.Fail("refusing to swap disk %s into %s: its identity is not verified (original %q, verified %q)", c.OSDisk.ID, vm.ID, o, v)
	}
	cur, err := env.Describe(ctx, diskRef(vm, vm.OSDisk.ID))
	if err != nil {
		return nil, err
	}
	if cur.AttachedTo != vm.ID || !cur.Boot {
		return nil, step.Flag("the OS disk of %s is not %s as planned (that disk is attached to %q); look at the VM before swapping", vm.ID, vm.OSDisk.ID, cur.AttachedTo)
	}
	out, err := stopVM(ctx, env, vm, facts) // stopped since the stop step, unless someone started it
	if err != nil {
		return nil, err
	}
	if err := sw.SwapOSDisk(ctx, vmRef(vm), diskRef(vm, c.OSDisk.ID)); err != nil {
		var mm *providers.BootMismatchError
		if errors.As(err, &mm) {
			return nil, step.Fail("the copy %s cannot boot %s: %v", c.OSDisk.ID, vm.ID, mm)
		}
		return nil, err
	}
	return out.Merge(done), nil
}

// Abort implements step.Strategy. See CopyAndSwap.
func (CopyAndSwap) Abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	sw, err := swapper(env)
	if err != nil || env.Provider.Power == nil {
		return nil, step.Flag("cannot abort copy-and-swap on %s: the provider lacks the OS-disk swap or power capability", vm.ID)
	}
	out := step.Facts{}
	var swapped bool
	if err := retry(ctx, env, func() (err error) { swapped, err = copySwapped(ctx, env, vm, facts); return err }); err != nil {
		return out, step.Flag("cannot read where the copy %q of the OS disk of %s is: %v", facts[FactCopyDiskID], vm.ID, err)
	}
	if swapped {
		return csSwapBack(ctx, env, sw, vm, facts, out)
	}
	if id := facts[FactCopyDiskID]; id != "" && facts[FactCopyGone] != "true" {
		c, _ := copyTarget(vm, facts)
		var cs providers.DiskState
		if err := retry(ctx, env, func() (err error) { cs, err = env.Describe(ctx, diskRef(vm, id)); return err }); err != nil && !errors.Is(err, providers.ErrNotFound) {
			return out, step.Flag("cannot read where the copy %s of the OS disk of %s is: %v", id, vm.ID, err)
		}
		if cs.AttachedTo == vm.ID {
			return out, step.Flag("the copy %s is attached to %s as a data disk; detach it by hand", id, vm.ID)
		}
		if cs.AttachedTo != "" {
			h := providers.VMRef{ID: cs.AttachedTo, Region: vm.Region, Zone: vm.Zone}
			if err := abortOnHelper(ctx, env, c, facts, h, cs); err != nil {
				return out, step.Flag("the copy %s of the OS disk of %s is still attached to helper %s and could not be taken off it: %v; "+
					"the VM's own OS disk %s is unchanged: detach the copy and delete it, then start the VM", id, vm.ID, h.ID, err, vm.OSDisk.ID)
			}
		}
		if err := deleteCopy(ctx, env, sw, vm, id); err != nil {
			return out, step.Flag("the copy %s of the OS disk of %s could not be deleted: %v; the VM's own OS disk %s is unchanged", id, vm.ID, err, vm.OSDisk.ID)
		}
		out[FactCopyGone] = "true"
	}
	if h, err := helperOf(vm, facts); err == nil && env.Helpers != nil {
		if err := env.Helpers.Return(ctx, h, vm.Key); err == nil {
			out[FactHelperReturned] = "true"
		}
	}
	if err := retry(ctx, env, func() error { return startVM(ctx, env, vmRef(vm)) }); err != nil {
		return out, step.Flag("the OS disk %s of %s is unchanged, but the VM could not be started: %v", vm.OSDisk.ID, vm.ID, err)
	}
	out[FactAbortDiskLocation] = "boot disk of " + vm.ID
	out[FactAbort] = "the VM's own OS disk was never changed; the copy was deleted; the VM was powered on"
	return out, nil
}

// deleteCopy deletes the run's copy of vm's OS disk (only with the run's
// tags).
func deleteCopy(ctx context.Context, env *step.Env, sw providers.OSDiskSwapper, vm *step.Target, id string) error {
	return retry(ctx, env, func() error { return sw.DeleteCopy(ctx, diskRef(vm, id), tags(env, vm, RoleOSDiskCopy)) })
}

// csSwapBack is Abort after the swap: the VM is started on the copy (when
// it is not running yet) and a copy that boots healthy stays; otherwise the
// original disk is swapped back and the copy, which did not repair the VM,
// is deleted (the run's snapshot of the original disk stays).
func csSwapBack(ctx context.Context, env *step.Env, sw providers.OSDiskSwapper, vm *step.Target, facts step.Facts, out step.Facts) (step.Facts, error) {
	id := facts[FactCopyDiskID]
	if err := retry(ctx, env, func() error { return startVM(ctx, env, vmRef(vm)) }); err == nil {
		if _, ok, err := waitBoot(ctx, env, vm); err == nil && ok {
			out[FactAbort] = "the copy " + id + " boots healthy: left in place; the original disk " + vm.OSDisk.ID + " is kept, detached"
			return out, nil
		}
	}
	if err := retry(ctx, env, func() error { return env.Provider.Power.Stop(ctx, []providers.VMRef{vmRef(vm)}, true) }); err != nil {
		return out, step.Flag("the copy %s of %s does not boot healthy and the VM could not be stopped to swap the original disk %s back: %v", id, vm.ID, vm.OSDisk.ID, err)
	}
	if err := retry(ctx, env, func() error { return sw.SwapOSDisk(ctx, vmRef(vm), diskRef(vm, vm.OSDisk.ID)) }); err != nil {
		return out, step.Flag("the copy %s of %s does not boot healthy and the original disk %s could not be swapped back: %v", id, vm.ID, vm.OSDisk.ID, err)
	}
	out[FactAbortDiskLocation] = "boot disk of " + vm.ID
	if err := retry(ctx, env, func() error { return startVM(ctx, env, vmRef(vm)) }); err != nil {
		return out, step.Flag("the original disk %s is back on %s, but the VM could not be started: %v", vm.OSDisk.ID, vm.ID, err)
	}
	if err := deleteCopy(ctx, env, sw, vm, id); err != nil {
		return out, step.Flag("the original disk %s is back on %s and the VM runs, but the copy %s that did not repair it could not be deleted: %v", vm.OSDisk.ID, vm.ID, id, err)
	}
	out[FactCopyGone] = "true"
	out[FactAbort] = "the original disk is the VM's OS disk again; the VM was powered on; the copy " + id + ", which did not boot healthy, was deleted"
	return out, nil
}
