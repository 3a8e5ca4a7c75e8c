package strategy

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// Fact keys only RestoreBackup produces.
const (
	FactRestoredDiskID   step.Fact = "restored_disk_id"
	FactRestoredAttached step.Fact = "restored_attached"
)

// RestoreBackup swaps in, as the VM's boot disk, a disk restored from the
// backup the plan chose (vm.Backup: the newest taken before the incident;
// the planner ran it only where policy.allow_data_loss permits). The
// original OS disk is detached and kept, never deleted.
//
// Steps:
//
//	recheck          healthy now → step.ErrHealthy
//	stop             re-check, then stop the VM
//	restore-disk     a disk tagged {run, vm, role=restore-disk} is reused
//	                 if it exists (Disks.FindDisks when the provider has
//	                 it, else the fact restored_disk_id); else
//	                 Backups.Restore. Fact restored_disk_id
//	detach-original  the original OS disk leaves the VM; fact original_disk_id
//	attach-restored  the restored disk becomes the boot disk
//	start            starts the VM
//	verify           normal boot, no bad file; else step.Fail
//
// Once the restored disk is the VM's boot disk, stop and detach-original
// do nothing. Abort: unless the restored disk booted healthy, the original
// disk is put back as the boot disk, the VM powered on, and the restored
// disk, which did not repair it, deleted where the provider deletes the
// copies a run made (providers.CopyDeleter; kept, detached, elsewhere).
type RestoreBackup struct{}

// Name implements step.Strategy.
func (RestoreBackup) Name() policy.Strategy { return policy.RestoreBackup }

// Applies implements Unit: any broken VM with a pre-incident backup, and a
// powered-off one whose disk an offline check before it found damaged
// (Check, Conditional).
func (RestoreBackup) Applies() []inventory.State {
	return []inventory.State{inventory.StateBootLoop, inventory.StateSafeMode, inventory.StateStopped}
}

// NotApplicable implements Unit.
func (RestoreBackup) NotApplicable(st inventory.State) string { return notApplicable(st) }

// Needs implements Unit: the original OS disk is detached and the
// restored one attached as the boot disk.
func (RestoreBackup) Needs() Needs {
	return Needs{Capabilities: []string{"backups", "power", "disks", "os-disk-detach"}, Backup: true}
}

// Check implements Unit: a backup taken before the incident, and a policy
// that accepts losing the data written since.
func (RestoreBackup) Check(c *Candidate) []string {
	switch {
	case c.State == inventory.StateStopped && !slices.ContainsFunc(c.Before, checksOffline):
		return []string{"a powered-off VM's disk may be clean: it is restored only after helper-mount or cross-zone-mount, before it in the chain, found its registry hives damaged"}
	case c.Backup == nil:
		w := "no backup taken before the incident began (" + c.Cutoff.UTC().Format(time.RFC3339) + ")"
		if c.Ignored > 0 {
			w += fmt.Sprintf("; %d later backup(s) ignored", c.Ignored)
		}
		return []string{w}
	case !c.Policy.AllowDataLoss:
		return []string{fmt.Sprintf("policy.allow_data_loss is false (backup %s of %s would lose %s of data)",
			c.Backup.ID, c.Backup.TakenAt.UTC().Format(time.RFC3339), timing.Format(c.DataLoss))}
	}
	return nil
}

// checksOffline reports whether s reads the disk's hives on a helper.
func checksOffline(s policy.Strategy) bool {
	return s == policy.HelperMount || s == policy.CrossZone
}

// Conditional implements step.Conditional: a powered-off VM is restored
// only if the offline check before it finds its disk damaged.
func (RestoreBackup) Conditional(t *step.Target) string {
	if t.State != inventory.StateStopped {
		return ""
	}
	return "only if the offline check before it finds the disk's registry hives damaged"
}

// Risks implements Unit: a planned restore loses data.
func (RestoreBackup) Risks(c *Candidate, planned bool) []string {
	if !planned || c.Backup == nil {
		return nil
	}
	return []string{fmt.Sprintf("restore loses data written since %s (window: %s)",
		c.Backup.TakenAt.UTC().Format(time.RFC3339), timing.Format(c.DataLoss))}
}

// FailureChance implements Unit: not modelled (0).
func (RestoreBackup) FailureChance(policy.Policy) float64 { return 0 }

// Steps implements step.Strategy.
func (RestoreBackup) Steps(vm *step.Target, pol policy.Policy) []step.Step {
	recheck := recheckStep("", nil)
	if vm.State == inventory.StateStopped {
		recheck = provenBroken(recheckStep(FactRestoredDiskID, stillStopped))
	}
	steps := []step.Step{
		recheck,
		// Stop first (the VM is down anyway): the VMs a wave starts
		// together stop together, which a batching cloud turns into one
		// call.
		{Name: "stop", Run: restored.unless(hmStop), Cost: step.Cost{Ops: []timing.Op{timing.OpStop}}},
		{Name: "restore-disk", Run: rbRestore, Cost: step.Cost{Ops: []timing.Op{timing.OpBackupRestore}}},
		{Name: "detach-original", Run: restored.unless(detachOriginal), Cost: step.Cost{Ops: []timing.Op{timing.OpDetach}}},
		{Name: "attach-restored", Run: restored.attach, Cost: step.Cost{Ops: []timing.Op{timing.OpAttach}}},
	}
	return endSteps(steps, vm, pol, func(_ *step.Target, facts step.Facts) string { return facts[FactRestoredDiskID] })
}

// provenBroken makes a powered-off VM's re-check fail unless an offline
// check found its hives damaged (FactHivesOK "false"): a disk nobody saw
// broken may be clean, and restoring it would lose data for nothing.
func provenBroken(recheck step.Step) step.Step {
	run := recheck.Run
	recheck.Run = func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if facts[FactHivesOK] != "false" {
			return nil, step.Fail("no offline check found the disk of powered-off %s damaged: it may be clean, and is not restored", vm.ID)
		}
		return run(ctx, env, vm, facts)
	}
	return recheck
}

// diskFinder finds disks by tags (providers.Disks.FindDisks where the
// provider has it).
type diskFinder interface {
	FindDisks(ctx context.Context, tags providers.Tags) ([]providers.DiskState, error)
}

// bootSwap is how a disk the run made becomes a VM's boot disk on a cloud
// that detaches OS disks (restore-backup's restored disk, cross-zone-mount's
// repaired copy brought back): the fact holding the disk's ID, its tag
// role, and what messages call it.
type bootSwap struct {
	fact step.Fact
	role string
	what string // "restored disk"
	// keeps says what stays when the disk is deleted, for the abort's
	// fact ("the backup stays").
	keeps string
}

// restored is restore-backup's swap.
var restored = bootSwap{fact: FactRestoredDiskID, role: RoleRestoreDisk, what: "restored disk", keeps: "the backup stays"}

// swapped reports whether the swap's disk is vm's boot disk.
func (b bootSwap) swapped(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (bool, error) {
	id := facts[b.fact]
	if id == "" {
		return false, nil
	}
	ds, err := env.Describe(ctx, diskRef(vm, id))
	if err != nil {
		return false, err
	}
	return ds.AttachedTo == vm.ID && ds.Boot, nil
}

// unless skips a step once the swap's disk is the VM's boot disk.
func (b bootSwap) unless(f runFunc) runFunc {
	return func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if err := need(env, "disks", env.Provider != nil && env.Provider.Disks != nil); err != nil {
			return nil, err
		}
		if done, err := b.swapped(ctx, env, vm, facts); err != nil || done {
			return nil, err
		}
		return f(ctx, env, vm, facts)
	}
}

func rbRestore(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if err := need(env, "backups", env.Provider != nil && env.Provider.Backups != nil && env.Provider.Disks != nil); err != nil {
		return nil, err
	}
	if vm.Backup == nil || vm.Backup.ID == "" {
		return nil, step.Fail("the plan chose no backup for %s", vm.ID)
	}
	t := tags(env, vm, RoleRestoreDisk)
	if f, ok := env.Provider.Disks.(diskFinder); ok {
		ds, err := f.FindDisks(ctx, t)
		if err != nil {
			return nil, err
		}
		for _, d := range ds {
			if d.Ref.ID != vm.OSDisk.ID {
				return step.Facts{FactRestoredDiskID: d.Ref.ID}, nil
			}
		}
	} else if id := facts[FactRestoredDiskID]; id != "" {
		if _, err := env.Describe(ctx, diskRef(vm, id)); err == nil {
			return step.Facts{FactRestoredDiskID: id}, nil
		}
	}
	ref, err := env.Provider.Backups.Restore(ctx, *vm.Backup, vm.Zone, t)
	if err != nil {
		return nil, err
	}
	return step.Facts{FactRestoredDiskID: ref.ID}, nil
}

// detachOriginal takes the VM's original OS disk off the stopped VM; fact
// original_disk_id.
func detachOriginal(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	orig := diskRef(vm, vm.OSDisk.ID)
	ds, err := env.Describe(ctx, orig)
	if err != nil {
		return nil, err
	}
	switch ds.AttachedTo {
	case "":
	case vm.ID:
		if err := env.Provider.Disks.Detach(ctx, vmRef(vm), orig); err != nil {
			return nil, err
		}
	default:
		return nil, step.Flag("the original disk %s of %s is attached to %s; find out who uses it", vm.OSDisk.ID, vm.ID, ds.AttachedTo)
	}
	return step.Facts{FactOriginalDiskID: vm.OSDisk.ID}, nil
}

// attach makes the swap's disk the VM's boot disk; fact
// restored_attached.
func (b bootSwap) attach(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	id := facts[b.fact]
	if id == "" {
		return nil, step.Fail("no %s was recorded for %s", b.what, vm.ID)
	}
	r := diskRef(vm, id)
	ds, err := env.Describe(ctx, r)
	if err != nil {
		return nil, err
	}
	switch ds.AttachedTo {
	case "":
		if err := env.Provider.Disks.Attach(ctx, vmRef(vm), r, true); err != nil {
			return nil, err
		}
	case vm.ID:
		if !ds.Boot {
			return nil, step.Flag("the %s %s is attached to %s as a data disk; attach it as the boot disk by hand", b.what, id, vm.ID)
		}
	default:
		return nil, step.Flag("the %s %s is attached to %s; find out who uses it", b.what, id, ds.AttachedTo)
	}
	return step.Facts{FactRestoredAttached: "true"}, nil
}

// Abort implements step.Strategy. See RestoreBackup.
func (RestoreBackup) Abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if err := need(env, "disks and power", env.Provider != nil && env.Provider.Disks != nil && env.Provider.Power != nil); err != nil {
		return nil, step.Flag("cannot abort restore-backup on %s: %v", vm.ID, err)
	}
	return restored.abort(ctx, env, vm, facts, step.Facts{})
}

// abort puts the original disk back as vm's boot disk, unless the swap's
// disk is its boot disk and boots healthy (then left in place), powers the
// VM on (a powered-off VM stays off: it is not repaired), and
// deletes the swap's disks (b.deleteDisks). It adds to out.
// Precondition: the provider has disks and power.
func (b bootSwap) abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts, out step.Facts) (step.Facts, error) {
	orig := diskRef(vm, vm.OSDisk.ID)
	var ds providers.DiskState
	if err := retry(ctx, env, func() (err error) { ds, err = env.Describe(ctx, orig); return err }); err != nil {
		return out, step.Flag("cannot read where the original disk %s of %s is: %v", vm.OSDisk.ID, vm.ID, err)
	}
	switch {
	case ds.AttachedTo == vm.ID && ds.Boot:
		out[FactAbortDiskLocation] = "boot disk of " + vm.ID
	case ds.AttachedTo != "":
		return out, step.Flag("the original disk %s of %s is attached to %s; attach it back to %s as its boot disk by hand", vm.OSDisk.ID, vm.ID, ds.AttachedTo, vm.ID)
	default:
		if id := facts[b.fact]; id != "" {
			rs, err := env.Describe(ctx, diskRef(vm, id))
			if err == nil && rs.AttachedTo == vm.ID {
				if p, perr := probeVM(ctx, env, vm); perr == nil && healthy(env.Incident, p) {
					out[FactAbort] = "the " + b.what + " " + id + " boots healthy: left in place; the original disk " + vm.OSDisk.ID + " is kept, detached"
					return out, nil
				}
				if err := retry(ctx, env, func() error { return env.Provider.Power.Stop(ctx, []providers.VMRef{vmRef(vm)}, true) }); err != nil {
					return out, step.Flag("the %s %s of %s does not boot and the VM could not be stopped to put the original disk %s back: %v", b.what, id, vm.ID, vm.OSDisk.ID, err)
				}
				if err := retry(ctx, env, func() error { return env.Provider.Disks.Detach(ctx, vmRef(vm), diskRef(vm, id)) }); err != nil {
					return out, step.Flag("the %s %s could not be detached from %s; the original disk %s is detached: %v", b.what, id, vm.ID, vm.OSDisk.ID, err)
				}
			}
		}
		if err := retry(ctx, env, func() error { return env.Provider.Disks.Attach(ctx, vmRef(vm), orig, true) }); err != nil {
			return out, step.Flag("the original disk %s of %s is detached and could not be attached back as its boot disk: %v", vm.OSDisk.ID, vm.ID, err)
		}
		out[FactAbortDiskLocation] = "boot disk of " + vm.ID
	}
	power := "the VM was powered on"
	if vm.State == inventory.StateStopped { // as helper-mount's Abort
		power = "the VM was left powered off, as it was found"
	} else if err := retry(ctx, env, func() error { return startVM(ctx, env, vmRef(vm)) }); err != nil {
		return out, step.Flag("the original disk %s is back on %s, but the VM could not be started: %v", vm.OSDisk.ID, vm.ID, err)
	}
	gone, err := b.deleteDisks(ctx, env, vm, facts)
	if err != nil {
		return out, step.Flag("the original disk %s is back on %s and %s, but %v", vm.OSDisk.ID, vm.ID, power, err)
	}
	out[FactAbort] = "the original disk is the VM's boot disk again; " + power + "; " + gone
	return out, nil
}

// deleteDisks deletes the swap's disks made for vm (the fact b.fact, and
// those carrying the run's b.role tags where the provider finds disks by
// tag: a creation whose outcome was never journaled), detached, once the
// original disk is back: they did not repair the VM. It says what became
// of them, for the abort's fact. A provider that does not delete disks
// (providers.CopyDeleter) keeps them, and the phrase says so. Idempotent.
func (b bootSwap) deleteDisks(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (string, error) {
	t := tags(env, vm, b.role)
	var ids []string
	if id := facts[b.fact]; id != "" {
		ids = append(ids, id)
	}
	if f, ok := env.Provider.Disks.(diskFinder); ok {
		var ds []providers.DiskState
		if err := retry(ctx, env, func() (err error) { ds, err = f.FindDisks(ctx, t); return err }); err != nil {
			return "", fmt.Errorf("the disks made for it could not be listed: %w", err)
		}
		for _, d := range ds {
			if d.Ref.ID != vm.OSDisk.ID && !slices.Contains(ids, d.Ref.ID) {
				ids = append(ids, d.Ref.ID)
			}
		}
	}
	if len(ids) == 0 {
		return "no " + b.what + " had been made", nil
	}
	del, ok := env.Provider.Disks.(providers.CopyDeleter)
	if !ok {
		return fmt.Sprintf("the %s %s is kept, detached (this provider deletes no disk)", b.what, strings.Join(ids, ", ")), nil
	}
	for _, id := range ids {
		if err := retry(ctx, env, func() error { return del.DeleteCopy(ctx, diskRef(vm, id), t) }); err != nil {
			return "", fmt.Errorf("the %s %s, which did not repair it, could not be deleted: %w", b.what, id, err)
		}
	}
	return fmt.Sprintf("the %s %s, which did not repair it, was deleted (%s)", b.what, strings.Join(ids, ", "), b.keeps), nil
}
