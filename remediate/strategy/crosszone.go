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

// Fact keys only CrossZone produces (it also records copy-and-swap's
// copy_source_snapshot_id, copy_disk_id and copy_deleted, of the copy in
// the helper's zone, helper-mount's facts, of that copy, and
// original_disk_id).
const (
	// FactReturnSnapshotID is the snapshot of the repaired copy, taken
	// once its identity was verified on the helper.
	FactReturnSnapshotID step.Fact = "return_snapshot_id"
	// FactReturnedDiskID is the disk made from it in the VM's zone, which
	// becomes the VM's boot disk.
	FactReturnedDiskID step.Fact = "returned_disk_id"
)

// Tag roles of what only cross-zone-mount creates.
const (
	// RoleZoneCopy tags the copy of a VM's OS disk made in the helper's
	// zone, repaired there and deleted once it has come back.
	RoleZoneCopy = "zone-copy"
	// RoleReturnSnapshot tags the snapshot of the repaired copy (kept, as
	// the run's other snapshots are).
	RoleReturnSnapshot = "return-snapshot"
	// RoleReturnedDisk tags the disk made from it in the VM's zone.
	RoleReturnedDisk = "returned-disk"
)

// returned is cross-zone-mount's swap: the repaired copy, brought back to
// the VM's zone, replaces its OS disk.
var returned = bootSwap{fact: FactReturnedDiskID, role: RoleReturnedDisk, what: "repaired copy",
	keeps: "the snapshots of the original disk and of the repaired copy stay"}

// CrossZone repairs a VM whose zone has no helper image the policy allows,
// on a pooled helper in another zone of its region: disks attach only to
// VMs of their own zone, so the disk travels as a copy made from a
// snapshot, which snapshots of every cloud but Sakura's allow across the
// zones of a region (capability "cross-zone-copy"). On the helper the copy
// is repaired with helper-mount's own steps and the same disk-identity
// handling (identity recorded before onlining, restored and verified
// before the copy leaves the helper); the repaired copy comes back the
// same way and replaces the VM's OS disk, which is never changed: it
// stays, detached, and its ID is the fact original_disk_id.
//
// Steps:
//
//	recheck            healthy now → step.ErrHealthy
//	snapshot           the rollback snapshot, as copy-and-swap's (Early)
//	stop               re-check, then stop the VM: the copy must hold
//	                   everything the VM wrote, and a VM that cannot boot
//	                   meanwhile writes nothing the swap would discard
//	copy-source        a snapshot of the stopped OS disk, tagged
//	                   {run, vm, role=copy-source} (as copy-and-swap's:
//	                   never an earlier one); fact copy_source_snapshot_id
//	copy-disk          a disk from it in the helper's zone (the plan's,
//	                   step.Target.HelperZone), tagged {run, vm,
//	                   role=zone-copy}, found again by its tags; fact
//	                   copy_disk_id
//	lease-helper … return-helper
//	                   helper-mount's steps, on the copy, in that zone
//	snapshot-copy      refuses unless identity_verified = identity_original;
//	                   a snapshot of the repaired copy, tagged
//	                   role=return-snapshot; fact return_snapshot_id
//	return-disk        a disk from it in the VM's zone, tagged
//	                   role=returned-disk; fact returned_disk_id
//	delete-copy        the copy in the helper's zone is deleted
//	                   (providers.CopyDeleter, only with the run's tags);
//	                   fact copy_deleted
//	detach-original    the original OS disk leaves the VM; fact
//	                   original_disk_id
//	attach-returned    the returned disk becomes the boot disk
//	start              starts the VM
//	verify             normal boot, no bad file; else step.Fail
//
// A powered-off VM (plan state inventory.StateStopped) is never started
// unless policy.stopped_vms says start. Its recheck also fails the strategy
// unless the VM is still off. When the copy carried nothing to repair
// (nothing deleted, no safe-boot flag), the copy is deleted and the VM
// keeps its own disk: snapshot-copy, return-disk, detach-original and
// attach-returned do nothing. start and verify run only with
// policy.stopped_vms: start, and a last read-only step, conclude-stopped,
// checks the boot disk (the VM's own, or the returned one) and records the
// ending: found-clean, or repaired-stopped when the VM stays off.
//
// Once the copy is deleted, the steps before delete-copy do nothing; once
// the returned disk is the VM's boot disk, stop and detach-original do
// nothing either.
//
// Abort: a copy still on the helper is taken off it with its identity
// restored (as helper-mount's Abort does) and deleted, and the helper slot
// given back; then, unless the returned disk is the boot disk and boots
// healthy, the original disk is put back as the boot disk, the VM powered
// on, and the returned disks deleted (restore-backup's abort, on them).
// Every snapshot stays.
type CrossZone struct{}

// Name implements step.Strategy.
func (CrossZone) Name() policy.Strategy { return policy.CrossZone }

// Applies implements Unit: a crashing VM, one in Safe Mode, or a
// powered-off one (its disk is checked through the copy; a clean one is
// left in place).
func (CrossZone) Applies() []inventory.State {
	return []inventory.State{inventory.StateBootLoop, inventory.StateSafeMode, inventory.StateStopped}
}

// NotApplicable implements Unit.
func (CrossZone) NotApplicable(st inventory.State) string { return notApplicable(st) }

// Needs implements Unit: disks copied across zones and deleted once back,
// and the VM's OS disk detached and replaced.
func (CrossZone) Needs() Needs {
	return Needs{Capabilities: []string{"power", "disks", "os-disk-detach", "cross-zone-copy", "copy-delete", "helpers"},
		Helper: true, RecoveryKey: true}
}

// Check implements Unit: a helper image the policy allows in another zone
// of the VM's region (the planner picks one only when the VM's own zone has
// none), and for a BitLocker disk its recovery key.
func (CrossZone) Check(c *Candidate) []string {
	var why []string
	switch {
	case c.Helper == nil:
		why = append(why, "no helper image the policy allows in any zone of the VM's region")
	case c.Helper.Zone == c.VM.Zone:
		why = append(why, fmt.Sprintf("zone %s has a helper image: helper-mount repairs the disk there, without a copy", c.VM.Zone))
	}
	if c.KeyProblem != "" {
		why = append(why, c.KeyProblem+": the disk cannot be unlocked on a helper")
	}
	return why
}

// Risks implements Unit: helper-mount's, and the original disk kept.
func (CrossZone) Risks(c *Candidate, planned bool) []string {
	r := HelperMount{}.Risks(c, planned)
	if planned && c.Helper != nil {
		r = append(r, fmt.Sprintf("the disk is repaired as a copy in zone %s and comes back as a new disk; the original OS disk %s is kept, detached "+
			"(its storage is billed until deleted); rolling back is attaching it again", c.Helper.Zone, c.VM.OSDisk.ID))
	}
	return r
}

// FailureChance implements Unit: not modelled (0).
func (CrossZone) FailureChance(policy.Policy) float64 { return 0 }

// Steps implements step.Strategy. The steps on the helper are
// helper-mount's, run on the copy in the helper's zone.
func (CrossZone) Steps(vm *step.Target, pol policy.Policy) []step.Step {
	stopped := vm.State == inventory.StateStopped
	recheck := recheckStep("", nil)
	if stopped {
		recheck = recheckStep("", stillStopped)
	}
	steps := []step.Step{
		recheck,
		// Early, as helper-mount's: the copy's source snapshot after the
		// stop is then an incremental one of the same disk (minutes, not
		// a full copy's tens of minutes), and it is the rollback point.
		snapshotStep(),
		{Name: "stop", Run: returned.unless(hmStop), Cost: step.Cost{Ops: []timing.Op{timing.OpStop}}},
		incremental(snapshotAs("copy-source", RoleCopySource, FactCopySourceID)),
		{Name: "copy-disk", Run: unlessCopyBack(diskFromSnapshot(FactCopySourceID, RoleZoneCopy, FactCopyDiskID, helperZone)),
			Cost: step.Cost{Ops: []timing.Op{timing.OpDiskFromSnapshot}, Calls: 1}},
	}
	steps = append(steps, helperSteps(vm, pol, onZoneCopy)...)
	steps = append(steps,
		// Incremental: the copy was made from a snapshot, whose lineage a
		// snapshot of it continues on the clouds that detach OS disks
		// (EBS); Azure, whose families are per disk, runs copy-and-swap.
		step.Step{Name: "snapshot-copy", Run: unlessClean(onZoneCopy(czSnapshotCopy)), ReadOnly: true, Cost: step.Cost{Ops: []timing.Op{timing.OpSnapshotIncremental}}},
		step.Step{Name: "return-disk", Run: unlessClean(unlessCopyBack(diskFromSnapshot(FactReturnSnapshotID, RoleReturnedDisk, FactReturnedDiskID, vmZone))),
			Cost: step.Cost{Ops: []timing.Op{timing.OpDiskFromSnapshot}, Calls: 1}},
		step.Step{Name: "delete-copy", Run: czDeleteCopy, Cost: step.Cost{Calls: 2}},
		step.Step{Name: "detach-original", Run: unlessClean(returned.unless(detachOriginal)), Cost: step.Cost{Ops: []timing.Op{timing.OpDetach}}},
		step.Step{Name: "attach-returned", Run: unlessClean(returned.attach), Cost: step.Cost{Ops: []timing.Op{timing.OpAttach}}},
	)
	return endSteps(steps, vm, pol, czBootDisk)
}

// unlessClean skips a step of the way back when the copy of a powered-off
// VM's disk carried nothing to repair: the VM keeps its own disk.
func unlessClean(f runFunc) runFunc {
	return func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if foundClean(vm, facts) {
			return nil, nil
		}
		return f(ctx, env, vm, facts)
	}
}

// czBootDisk is the disk a powered-off VM boots from after its check
// through the copy: its own when found clean, else the returned one.
func czBootDisk(vm *step.Target, facts step.Facts) string {
	if foundClean(vm, facts) {
		return vm.OSDisk.ID
	}
	return facts[FactReturnedDiskID]
}

func vmZone(vm *step.Target) string     { return vm.Zone }
func helperZone(vm *step.Target) string { return vm.HelperZone }

// unlessCopyBack skips a step once the copy in the helper's zone was
// deleted: the repaired disk has come back to the VM's zone.
func unlessCopyBack(f runFunc) runFunc {
	return func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if facts[FactCopyGone] == "true" {
			return nil, nil
		}
		return f(ctx, env, vm, facts)
	}
}

// zoneCopyTarget is vm with the copy in the helper's zone in place of its
// OS disk: helper-mount's steps then act on the copy, there.
func zoneCopyTarget(vm *step.Target, facts step.Facts) (*step.Target, error) {
	if vm.HelperZone == "" {
		return nil, step.Fail("the plan chose no helper zone for %s", vm.ID)
	}
	c, err := copyTarget(vm, facts)
	if err != nil {
		return nil, err
	}
	c.Zone = vm.HelperZone
	return c, nil
}

// onZoneCopy runs a helper-mount step on the copy in the helper's zone,
// unless it has come back. The step sees the copy's source as the snapshot
// of the disk it changes, as copy-and-swap's onCopy does.
func onZoneCopy(f runFunc) runFunc {
	return unlessCopyBack(func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if err := need(env, "disks", env.Provider != nil && env.Provider.Disks != nil); err != nil {
			return nil, err
		}
		c, err := zoneCopyTarget(vm, facts)
		if err != nil {
			return nil, err
		}
		return f(ctx, env, c, facts.Merge(step.Facts{FactSnapshotID: facts[FactCopySourceID]}))
	})
}

// diskFromSnapshot returns a step that finds the disk tagged {run, vm,
// role} (made earlier, its outcome perhaps never journaled) or makes one
// from the snapshot in fact src, in the zone zoneOf gives; fact out.
func diskFromSnapshot(src step.Fact, role string, out step.Fact, zoneOf func(*step.Target) string) runFunc {
	return func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if err := need(env, "disks", env.Provider != nil && env.Provider.Disks != nil); err != nil {
			return nil, err
		}
		snap, zone := facts[src], zoneOf(vm)
		switch {
		case snap == "":
			return nil, step.Fail("refusing to make a disk for %s: no snapshot was recorded (%s)", vm.ID, src)
		case zone == "":
			return nil, step.Fail("the plan names no zone for the disk of %s", vm.ID)
		}
		t := tags(env, vm, role)
		ds, err := env.Provider.Disks.FindDisks(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.Ref.ID != vm.OSDisk.ID {
				return step.Facts{out: d.Ref.ID}, nil
			}
		}
		ref, err := env.Provider.Disks.FromSnapshot(ctx, providers.SnapshotRef{ID: snap, Region: vm.Region, Zone: vm.Zone}, zone, t)
		if err != nil {
			return nil, err
		}
		return step.Facts{out: ref.ID}, nil
	}
}

// czSnapshotCopy snapshots the repaired copy (vm is the copy's target),
// only once its identity was verified.
func czSnapshotCopy(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if v, o := facts[FactIdentityVerified], facts[FactIdentityOriginal]; o == "" || v != o {
		return nil, step.Fail("refusing to bring disk %s back: its identity is not verified (original %q, verified %q)", vm.OSDisk.ID, o, v)
	}
	return snapshotAs("snapshot-copy", RoleReturnSnapshot, FactReturnSnapshotID).Run(ctx, env, vm, facts)
}

// czDeleteCopy deletes the copy in the helper's zone once a disk was made
// from its snapshot in the VM's zone. Idempotent.
func czDeleteCopy(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if facts[FactCopyGone] == "true" {
		return nil, nil
	}
	if facts[FactReturnedDiskID] == "" && !foundClean(vm, facts) {
		return nil, step.Fail("refusing to delete the copy %s of the OS disk of %s: no disk was made from it in zone %s", facts[FactCopyDiskID], vm.ID, vm.Zone)
	}
	c, err := zoneCopyTarget(vm, facts)
	if err != nil {
		return nil, err
	}
	del, ok := env.Provider.Disks.(providers.CopyDeleter)
	if !ok {
		return nil, step.Fail("the provider of this account deletes no disk (no copy-delete capability)")
	}
	if err := del.DeleteCopy(ctx, diskRef(c, c.OSDisk.ID), tags(env, vm, RoleZoneCopy)); err != nil {
		return nil, err
	}
	return step.Facts{FactCopyGone: "true"}, nil
}

// Abort implements step.Strategy. See CrossZone.
func (CrossZone) Abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if err := need(env, "disks and power", env.Provider != nil && env.Provider.Disks != nil && env.Provider.Power != nil); err != nil {
		return nil, step.Flag("cannot abort cross-zone-mount on %s: %v", vm.ID, err)
	}
	out := step.Facts{}
	if id := facts[FactCopyDiskID]; id != "" && facts[FactCopyGone] != "true" {
		if err := czAbortCopy(ctx, env, vm, facts); err != nil {
			return out, step.Flag("the copy %s of the OS disk of %s in zone %s: %v; the VM's own OS disk %s is unchanged", id, vm.ID, vm.HelperZone, err, vm.OSDisk.ID)
		}
		out[FactCopyGone] = "true"
	}
	if h, err := helperOf(vm, facts); err == nil && env.Helpers != nil {
		if err := env.Helpers.Return(ctx, h, vm.Key); err == nil {
			out[FactHelperReturned] = "true"
		}
	}
	return returned.abort(ctx, env, vm, facts, out)
}

// czAbortCopy takes the copy in the helper's zone off its helper (identity
// restored and verified) and deletes it.
func czAbortCopy(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) error {
	c, err := zoneCopyTarget(vm, facts)
	if err != nil {
		return err
	}
	var cs providers.DiskState
	err = retry(ctx, env, func() (err error) { cs, err = env.Describe(ctx, diskRef(c, c.OSDisk.ID)); return err })
	switch {
	case errors.Is(err, providers.ErrNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("cannot read where it is: %w", err)
	case cs.AttachedTo != "":
		h := providers.VMRef{ID: cs.AttachedTo, Region: vm.Region, Zone: c.Zone}
		if err := abortOnHelper(ctx, env, c, facts, h, cs); err != nil {
			return fmt.Errorf("it is still attached to %s and could not be taken off it: %w", h.ID, err)
		}
	}
	del, ok := env.Provider.Disks.(providers.CopyDeleter)
	if !ok {
		return errors.New("this provider deletes no disk: delete it by hand")
	}
	if err := retry(ctx, env, func() error { return del.DeleteCopy(ctx, diskRef(c, c.OSDisk.ID), tags(env, vm, RoleZoneCopy)) }); err != nil {
		return fmt.Errorf("it could not be deleted: %w", err)
	}
	return nil
}
