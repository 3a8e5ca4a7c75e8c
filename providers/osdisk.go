package providers

import (
	"context"
	"errors"
	"fmt"
)

// OSDiskSwapper replaces a stopped VM's OS disk in one operation, for
// clouds whose OS disks cannot be detached (Azure: an OS disk is swapped
// with a VM update, as `az vm repair restore` does). A provider that has
// this capability implements it on its Disks value; find it with a type
// assertion:
//
//	sw, ok := p.Disks.(providers.OSDiskSwapper)
//
// On such a provider Disks.Detach and Disks.Attach refuse the OS disk
// (ErrUnsupported once the VM is stopped); the copy-and-swap repair is
// instead: Disks.Snapshot, Disks.FromSnapshot in the VM's zone, attach the
// copy to a helper as a data disk, repair it there, detach it, Power.Stop,
// SwapOSDisk(vm, copy), Power.Start. The original OS disk stays, detached
// and unchanged; rollback is SwapOSDisk(vm, original) on the stopped VM,
// which leaves the repaired copy detached and kept. A copy that never
// became the OS disk (the repair stopped before the swap) is deleted with
// DeleteCopy, so that nothing the run made is left behind.
type OSDiskSwapper interface {
	// SwapOSDisk makes d the OS disk of vm and waits until the cloud
	// reports the update done. The previous OS disk is left detached and
	// unchanged; nothing is deleted.
	//
	// Preconditions: vm is stopped (on Azure, one powered off but still
	// allocated is deallocated first, as Azure requires); d is detached,
	// in vm's zone, and boots as vm does: the same firmware generation
	// (Hyper-V generation V1/V2) and security type (Standard or trusted
	// launch). Read vm's current OS disk first (Disks.Describe, or the
	// inventory) to be able to roll back.
	//
	// Idempotent: d already the OS disk of vm is fine.
	//
	// Errors: ErrNotFound (vm or d); ErrConflict while vm is not stopped
	// or d is attached elsewhere (with RetryAfter while vm is still
	// stopping); ErrPermanent wrapping a *BootMismatchError when d cannot
	// boot vm; ErrThrottled, ErrUnavailable.
	SwapOSDisk(ctx context.Context, vm VMRef, d DiskRef) error
	// A cloud that swaps OS disks deletes the copies that never became
	// one.
	CopyDeleter
}

// CopyDeleter deletes a disk a run made and no longer needs: a copy that
// never became a VM's OS disk (copy-and-swap), a disk restored from a
// backup that did not boot (restore-backup). It never deletes a VM's own
// disk: only a disk carrying the run's tags. A provider that can delete
// disks implements it on its Disks value; find it with a type assertion:
//
//	del, ok := p.Disks.(providers.CopyDeleter)
//
// Without it, such a disk is kept, detached, and the run says so.
type CopyDeleter interface {
	// DeleteCopy deletes disk d, detached, only if it carries all of tags
	// (the copy a run made: its run, VM and role tags), and waits until
	// the cloud reports it gone. It never deletes a disk without them:
	// ErrConflict, as while d is attached. Idempotent: a disk already gone
	// is fine. Errors: ErrConflict (with RetryAfter while the disk is
	// still being created, attached or detached), ErrThrottled,
	// ErrUnavailable.
	DeleteCopy(ctx context.Context, d DiskRef, tags Tags) error
}

// DeletableCopy says whether a provider may delete disk st as a copy the
// run made (CopyDeleter.DeleteCopy, op naming the call): nil when st is
// detached and carries every one of tags, ErrConflict naming the disk
// otherwise (no tags given, a tag missing, attached).
func DeletableCopy(op string, st DiskState, tags Tags) error {
	switch {
	case len(tags) == 0:
		return Errorf(ErrConflict, op, st.Ref.ID, "no tags given: fixfleet deletes only the copies it tagged")
	case !st.Tags.Has(tags):
		return Errorf(ErrConflict, op, st.Ref.ID, "the disk does not carry the run's tags %v: fixfleet deletes only the copies it made", tags)
	case st.AttachedTo != "":
		return Errorf(ErrConflict, op, st.Ref.ID, "the disk is attached to %s; detach it first", st.AttachedTo)
	}
	return nil
}

// DeleteCopyWith is CopyDeleter.DeleteCopy over a provider's own read of a
// disk (describe) and delete of it (del, done when it returns): a disk
// already gone is fine, one DeletableCopy refuses is not deleted.
func DeleteCopyWith(ctx context.Context, ref DiskRef, tags Tags, describe func(context.Context, DiskRef) (DiskState, error), del func(context.Context) error) error {
	st, err := describe(ctx, ref)
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := DeletableCopy("DeleteCopy", st, tags); err != nil {
		return err
	}
	return del(ctx)
}

// BootMismatchError says that a disk cannot become a VM's OS disk because a
// property that must match differs (errors.As to read it).
type BootMismatchError struct {
	// Property is what differs: "hyperVGeneration" or "securityType".
	Property string
	// VM and Disk are the two values ("V1", "V2"; "Standard",
	// "TrustedLaunch").
	VM, Disk string
}

func (e *BootMismatchError) Error() string {
	return fmt.Sprintf("the disk's %s is %s but the VM's is %s; make the copy from a disk of the same kind", e.Property, e.Disk, e.VM)
}

// ZoneBoundSnapshots is implemented by a Disks whose snapshots make disks
// only in the zone they were taken in (Sakura Cloud, whose archives are
// zonal: another zone needs an archive transfer, which fixfleet does not
// make). Every other Disks makes a disk from a snapshot in any zone of the
// snapshot's region (FromSnapshot's zone), which a repair on a helper in
// another zone needs; Provider.Capabilities then reports
// "cross-zone-copy".
type ZoneBoundSnapshots interface {
	// SnapshotsZoneBound is a marker: it does nothing.
	SnapshotsZoneBound()
}
