package world

import (
	"context"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
)

// What the clouds whose OS disks cannot be detached (Azure) need from the
// world: swapping a stopped VM's boot disk for another in one operation, and
// the firmware generation a disk boots as.

// Hyper-V generations, as Azure names them.
const (
	GenerationV1 = "V1" // BIOS, MBR boot disk
	GenerationV2 = "V2" // UEFI, GPT boot disk
)

// generationOf is the generation a disk's content boots as: its partition
// style decides (UEFI boots GPT disks, BIOS MBR ones).
func generationOf(c content) string {
	if c.identity.Style == inventory.PartitionGPT {
		return GenerationV2
	}
	return GenerationV1
}

// DiskGeneration returns the Hyper-V generation disk id of account boots
// as ("V1" or "V2"). It is a property of the disk's metadata, not an API
// call: no fault gate, no counter. ok is false if there is no such disk.
func (w *World) DiskGeneration(account, id string) (gen string, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	d := w.disks[id]
	if d == nil || d.account != account {
		return "", false
	}
	return generationOf(d.content), true
}

// SwapBootDisk makes diskID the boot disk of the stopped VM vmID in one
// operation, as Azure's VM update with a new OS disk does: the previous
// boot disk is detached and kept, unchanged. A disk already the VM's boot
// disk is fine (Pending carries its attach still in progress). Errors:
// ErrNotFound (VM or disk); ErrConflict with RetryAfter while the VM is
// still stopping or the disk is being created or detached; ErrConflict when
// the VM is not stopped, the disk is attached elsewhere or in another zone,
// or its generation differs from the VM's. The referee counts a disk whose
// identity changed and was not verified as an unverified return, as for
// AttachDisk.
func (w *World) SwapBootDisk(ctx context.Context, account, vmID, diskID string) (Pending, error) {
	var p Pending
	const op = "SwapBootDisk"
	err := w.call(ctx, account, op, vmRes(vmID), bucketMutating, func(now time.Time) error {
		v := w.vmIn(account, vmID, now)
		if v == nil {
			return notFound(op, vmRes(vmID), "no such VM")
		}
		d := w.diskIn(account, diskID, now)
		if d == nil {
			return notFound(op, diskRes(diskID), "no such disk")
		}
		res := diskRes(diskID)
		if d.attachedTo == v.id && d.boot {
			if d.busy == "attaching" {
				p.Until = d.busyUntil
			}
			return nil
		}
		switch {
		case v.power == inventory.PowerStopping:
			return busy(op, vmRes(vmID), v.powerUntil, now, "VM is still stopping")
		case v.power != inventory.PowerStopped:
			return conflict(op, vmRes(vmID), "VM is %s; the OS disk is swapped only on a stopped (deallocated) VM", v.power)
		case d.attachedTo != "":
			return conflict(op, res, "attached to %s; detach it first", d.attachedTo)
		case d.busy == "detaching":
			return busy(op, res, d.busyUntil, now, "disk is still detaching")
		case !d.readyAt.IsZero():
			return notReady(op, res, d.readyAt, now, "disk")
		case d.zone != v.zone:
			return conflict(op, res, "disk is in zone %s, VM %s in zone %s", d.zone, v.id, v.zone)
		}
		if vg, dg := w.vmGenLocked(v), generationOf(d.content); vg != dg {
			return conflict(op, res, "disk boots as generation %s, VM %s is generation %s", dg, v.id, vg)
		}
		if old := w.disks[v.bootDisk]; old != nil {
			w.advanceDisk(old, now)
			if old.busy != "" {
				return busy(op, vmRes(vmID), old.busyUntil, now, "OS disk %s is still %s", old.id, old.busy)
			}
			w.unattach(v, old)
		}
		if !v.helper && d.unverified {
			w.ref.unverified = append(w.ref.unverified, Return{Disk: d.id, VM: v.id, At: now})
		}
		w.checkWrites(v, d, now)
		v.bootDisk = d.id
		d.attachedTo, d.boot = v.id, true
		d.busy, d.busyUntil = "attaching", now.Add(w.drawFor(timing.Of(timing.OpAttach), d.id, "swap")) // a swap never fails after acceptance here
		p.Until = d.busyUntil
		return nil
	})
	return p, err
}

// vmGenLocked is VMGeneration's answer for v. Caller holds mu.
func (w *World) vmGenLocked(v *vm) string {
	for _, did := range []string{v.originalDisk, v.bootDisk} {
		if d := w.disks[did]; d != nil {
			return generationOf(d.content)
		}
	}
	if im, ok := w.imageFor(v.zone, v.windows.Release); ok {
		return generationOf(content{identity: im.Identity})
	}
	return GenerationV1
}

// VMFacts is what a cloud's VM resource shows of a VM besides its signals:
// where it is, what it runs, and which disks are attached.
type VMFacts struct {
	ID, Name, Zone string
	Helper         bool
	Windows        inventory.WindowsVersion
	Tags           map[string]string
	ImageID        string // helpers: the image they were made from
	PrivateIP      string
	BootDisk       string // "" if none
	DataDisks      []string
	DataLUNs       []int  // the LUN each of DataDisks is attached at
	Generation     string // Hyper-V generation it was created as
	Power          inventory.PowerState
}

// VMFacts returns the facts of VM id of account (fleet VM or helper),
// advanced to now. It is metadata for a face that has already made a
// control-plane call (through the fault gate) to learn of the VM: no gate,
// no counter, no observation for the referee. ok is false if there is no
// such VM.
func (w *World) VMFacts(account, id string) (VMFacts, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vmIn(account, id, w.clk.Now())
	if v == nil {
		return VMFacts{}, false
	}
	return VMFacts{ID: v.id, Name: v.name, Zone: v.zone, Helper: v.helper, Windows: v.windows, Tags: cloneTags(v.tags),
		ImageID: v.imageID, PrivateIP: v.ip, BootDisk: v.bootDisk, DataDisks: append([]string(nil), v.data...),
		DataLUNs: w.dataLUNs(v), Generation: w.vmGenLocked(v), Power: v.power}, true
}

// dataLUNs are the LUNs of v's data disks, in v.data's order: a disk's LUN
// is its guest disk number less one, fixed while it stays attached.
// Caller holds mu.
func (w *World) dataLUNs(v *vm) []int {
	out := make([]int, len(v.data))
	for i, id := range v.data {
		out[i] = w.disks[id].number - 1
	}
	return out
}

// DeleteDisk deletes a detached copy (a disk made from a snapshot or a
// backup), as Azure deletes a managed disk: what an aborted copy-and-swap
// does with the copy it never swapped in. A disk already gone is fine.
// Errors: ErrPermanent for a VM's original disk or a helper's own (the world
// never deletes those); ErrConflict (with RetryAfter while it is being
// created or detached) while it is attached or busy.
func (w *World) DeleteDisk(ctx context.Context, account, id string) error {
	const op = "DeleteDisk"
	return w.call(ctx, account, op, diskRes(id), bucketMutating, func(now time.Time) error {
		d := w.diskIn(account, id, now)
		switch {
		case d == nil:
			return nil
		case w.isOriginal(d) || strings.HasPrefix(d.source, "image:"):
			return providers.Errorf(providers.ErrPermanent, op, diskRes(id), "an original or a helper's own disk; only copies are deleted")
		case d.busy != "":
			return busy(op, diskRes(id), d.busyUntil, now, "disk is still %s", d.busy)
		case !d.readyAt.IsZero():
			return notReady(op, diskRes(id), d.readyAt, now, "disk")
		case d.attachedTo != "":
			return conflict(op, diskRes(id), "attached to %s; detach it first", d.attachedTo)
		}
		delete(w.disks, id)
		return nil
	})
}
