package world

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
)

// Every control-plane method below takes the calling account (a VM, disk or
// snapshot of another account is not found), passes through the fault gate
// (outage, throttling, latency, injected errors), and returns classified
// *providers.Error values naming the resource. Asynchronous operations
// return when they were accepted, with the instant they complete (Pending,
// ReadyAt); the world needs no waiting, but a caller that wants the cloud's
// "done" waits on the world's clock until then.
//
// With Faults.AsyncFailRate an accepted attach or detach can still end in
// failure when it completes, as on a real cloud: read the state back.
//
// A conflict that only needs waiting (a VM still stopping, a disk still
// attaching or being created) carries RetryAfter; a conflict without it
// needs a different action.

// Pending says when an accepted asynchronous operation completes; zero if it
// already has.
type Pending struct {
	Until time.Time `json:"until,omitzero"`
	// Each is when each VM of a call on many VMs completes (absent: it
	// had nothing to do).
	Each map[string]time.Time `json:"each,omitempty"`
}

func (p *Pending) extend(t time.Time) {
	if t.After(p.Until) {
		p.Until = t
	}
}

// extendVM is extend for VM id of a call on many VMs.
func (p *Pending) extendVM(id string, t time.Time) {
	p.extend(t)
	if p.Each == nil {
		p.Each = map[string]time.Time{}
	}
	p.Each[id] = t
}

// DiskInfo is a disk as the control plane reports it.
type DiskInfo struct {
	providers.DiskState
	// ReadyAt is when a disk being created becomes usable (zero if it is).
	ReadyAt time.Time `json:"ready_at,omitzero"`
	// Busy is "attaching" or "detaching" until BusyUntil.
	Busy      string    `json:"busy,omitempty"`
	BusyUntil time.Time `json:"busy_until,omitzero"`
}

// SnapshotInfo is a snapshot as the control plane reports it.
type SnapshotInfo struct {
	providers.SnapshotState
	TakenAt time.Time `json:"taken_at"`
	ReadyAt time.Time `json:"ready_at"`
}

// HelperInfo is a helper VM and when it is running.
type HelperInfo struct {
	Ref     providers.VMRef          `json:"ref"`
	Windows inventory.WindowsVersion `json:"windows"`
	Tags    map[string]string        `json:"tags,omitempty"`
	Power   inventory.PowerState     `json:"power,omitempty"`
	// PrivateIP is its address, as a cloud's create call answers it.
	PrivateIP string `json:"private_ip,omitempty"`
	// ReadyAt is when the cloud reports it running (zero if it does).
	ReadyAt time.Time `json:"ready_at,omitzero"`
}

// ErrZoneMismatch is the cause (errors.Is) of AttachDisk's conflict when
// the disk and the VM are in different zones, so that faces can answer
// with their cloud's own code for it.
var ErrZoneMismatch = errors.New("disk and VM are in different zones")

func notFound(op, res, format string, args ...any) error {
	return providers.Errorf(providers.ErrNotFound, op, res, format, args...)
}

func conflict(op, res, format string, args ...any) error {
	return providers.Errorf(providers.ErrConflict, op, res, format, args...)
}

func busy(op, res string, until, now time.Time, format string, args ...any) error {
	e := providers.Errorf(providers.ErrConflict, op, res, format, args...)
	e.RetryAfter = max(until.Sub(now), time.Millisecond)
	return e
}

// notReady is busy over what (a disk, a snapshot) still being created
// until until: its cause is ErrNotReady.
func notReady(op, res string, until, now time.Time, what string) error {
	return busy(op, res, until, now, "%s is %w", what, ErrNotReady)
}

func vmRes(id string) string   { return "vm " + id }
func diskRes(id string) string { return "disk " + id }

// vmIn returns the VM id of account, advanced to now. Caller holds mu.
func (w *World) vmIn(account, id string, now time.Time) *vm {
	v := w.vms[id]
	if v == nil || v.account != account {
		return nil
	}
	w.advance(v, now)
	return v
}

func (w *World) diskIn(account, id string, now time.Time) *disk {
	d := w.disks[id]
	if d == nil || d.account != account {
		return nil
	}
	w.advanceDisk(d, now)
	return d
}

func (w *World) inventoryVM(v *vm) inventory.VM {
	out := inventory.VM{
		Location: inventory.Location{Tenant: v.tenant, Account: v.account, Provider: "sim", Zone: v.zone},
		ID:       v.id, Name: v.name, Tags: cloneTags(v.tags), Windows: v.windows, Power: v.power,
		NICs: []inventory.NIC{{Name: "eth0", PrivateIP: v.ip}},
	}
	if d := w.disks[v.bootDisk]; d != nil {
		// The control plane does not know a disk's MBR signature or GPT
		// GUID: the identity is left unknown, for the guest to tell.
		out.OSDisk = inventory.Disk{ID: d.id, SizeGB: d.sizeGB, Device: "0"}
		if b := d.bitlocker; b != nil {
			out.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: b.keyID}
		}
	}
	for _, b := range v.backups {
		out.Backups = append(out.Backups, inventory.Backup{ID: b.ID, VMID: v.id, Kind: b.Kind, TakenAt: b.TakenAt, SizeGB: b.SizeGB})
	}
	return out
}

// ListVMs lists account's fleet VMs in zones (all zones if empty), sorted
// by ID. Helpers are left out. Read-only.
func (w *World) ListVMs(ctx context.Context, account string, zones []string) ([]inventory.VM, error) {
	var out []inventory.VM
	err := w.call(ctx, account, "ListVMs", "account "+account, bucketDescribeAll, func(now time.Time) error {
		in := map[string]bool{}
		for _, z := range zones {
			if !w.isZone(z) {
				return providers.Errorf(providers.ErrPermanent, "ListVMs", "zone "+z, "no such zone; zones are %s", strings.Join(w.zones, ", "))
			}
			in[z] = true
		}
		for _, id := range sortedKeys(w.vms) {
			v := w.vms[id]
			if v.helper || v.account != account || (len(in) > 0 && !in[v.zone]) {
				continue
			}
			w.advance(v, now)
			out = append(out, w.inventoryVM(v))
		}
		return nil
	})
	return out, err
}

func (w *World) isZone(z string) bool {
	for _, x := range w.zones {
		if x == z {
			return true
		}
	}
	return false
}

// Observe returns the control plane's signals for each VM (fleet or
// helper) of ids that exists; missing ones are left out. When the reply
// reaches the caller, each counts as an observation for the referee: only
// an orchestrator's own reads should call it (a face that reads state for
// its own bookkeeping uses PowerStates). Read-only.
func (w *World) Observe(ctx context.Context, account string, ids []string) (map[string]inventory.Signals, error) {
	out, healthy, err := w.signalsOf(ctx, account, "Observe", ids)
	if err == nil {
		w.mu.Lock()
		for id, sg := range out {
			if v := w.vms[id]; v != nil {
				v.observed, v.obsAt, v.obsHealthy = true, sg.At, healthy[id]
			}
		}
		w.mu.Unlock()
	}
	return out, err
}

// PowerStates is Observe without the observation: a cloud face reads a
// VM's power state to decide how to answer a request (a start of a
// running VM, say), which tells the orchestrator nothing. Read-only.
func (w *World) PowerStates(ctx context.Context, account string, ids []string) (map[string]inventory.PowerState, error) {
	sig, _, err := w.signalsOf(ctx, account, "PowerStates", ids)
	out := make(map[string]inventory.PowerState, len(sig))
	for id, sg := range sig {
		out[id] = sg.Power
	}
	return out, err
}

// signalsOf reads the signals of ids, and whether each VM was healthy
// then (for the referee).
func (w *World) signalsOf(ctx context.Context, account, op string, ids []string) (map[string]inventory.Signals, map[string]bool, error) {
	out, healthy := map[string]inventory.Signals{}, map[string]bool{}
	err := w.call(ctx, account, op, fmt.Sprintf("%d VMs", len(ids)), bucketNonMutating, func(now time.Time) error {
		for _, id := range ids {
			if v := w.vmIn(account, id, now); v != nil {
				out[id], healthy[id] = w.signals(v, now), healthyNow(v, now)
			}
		}
		return nil
	})
	return out, healthy, err
}

// GuestEndpoint returns where the VM's WinRM service should answer (its
// private address; the simulation routes it to the WinRM server).
func (w *World) GuestEndpoint(ctx context.Context, account, id string) (providers.Endpoint, error) {
	var out providers.Endpoint
	err := w.call(ctx, account, "GuestEndpoint", vmRes(id), bucketNonMutating, func(now time.Time) error {
		v := w.vmIn(account, id, now)
		if v == nil {
			return notFound("GuestEndpoint", vmRes(id), "no such VM")
		}
		out = providers.Endpoint{Host: v.ip, Port: 5985}
		return nil
	})
	return out, err
}

func (w *World) vmsIn(op, account string, ids []string, now time.Time) ([]*vm, error) {
	var vms []*vm
	var missing []string
	for _, id := range ids {
		if v := w.vmIn(account, id, now); v != nil {
			vms = append(vms, v)
		} else {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, notFound(op, "vm "+strings.Join(missing, ", "), "no such VM; nothing was changed")
	}
	return vms, nil
}

// StopVMs stops the VMs (force: without a guest shutdown). Stopped VMs are
// left alone; a stopping one keeps its completion time. Any unknown ID fails
// the whole call before anything changes. A graceful stop of a guest that
// is not up waits for the cloud's shutdown timeout.
func (w *World) StopVMs(ctx context.Context, account string, ids []string, force bool) (Pending, error) {
	var p Pending
	err := w.call(ctx, account, "StopVMs", "vm "+strings.Join(ids, ", "), bucketMutating, func(now time.Time) error {
		vms, err := w.vmsIn("StopVMs", account, ids, now)
		if err != nil {
			return err
		}
		for _, v := range vms {
			switch v.power {
			case inventory.PowerStopped:
				continue
			case inventory.PowerStopping:
				p.extendVM(v.id, v.powerUntil)
				continue
			}
			w.touch(v, "stop", now)
			w.noteWrites(v, now)
			d := w.drawFor(timing.Of(timing.OpStop), v.id, "stop")
			if !force && !reachable(v, now) {
				d = timing.Of(timing.OpStop).Max
			}
			v.power, v.powerUntil, v.boot = inventory.PowerStopping, now.Add(d), bootState{}
			p.extendVM(v.id, v.powerUntil)
		}
		return nil
	})
	return p, err
}

// StartVMs powers the VMs on; a boot begins when each reports running.
// Running and starting VMs are left alone. It fails as a whole, before
// anything changes, if a VM does not exist, has no boot disk (ErrConflict),
// or is still stopping or its boot disk still attaching (ErrConflict with
// RetryAfter).
func (w *World) StartVMs(ctx context.Context, account string, ids []string) (Pending, error) {
	var p Pending
	err := w.call(ctx, account, "StartVMs", "vm "+strings.Join(ids, ", "), bucketStartRun, func(now time.Time) error {
		vms, err := w.vmsIn("StartVMs", account, ids, now)
		if err != nil {
			return err
		}
		for _, v := range vms {
			switch v.power {
			case inventory.PowerStopping:
				return busy("StartVMs", vmRes(v.id), v.powerUntil, now, "VM is still stopping")
			case inventory.PowerStopped:
				d := w.disks[v.bootDisk] // vmIn advanced its attachment
				if d == nil {
					return conflict("StartVMs", vmRes(v.id), "VM has no boot disk; attach one first")
				}
				if d.busy != "" {
					return busy("StartVMs", vmRes(v.id), d.busyUntil, now, "boot disk %s is still %s", d.id, d.busy)
				}
			}
		}
		for _, v := range vms {
			switch v.power {
			case inventory.PowerStarting:
				p.extendVM(v.id, v.powerUntil)
			case inventory.PowerStopped:
				v.power, v.powerUntil = inventory.PowerStarting, now.Add(w.drawFor(timing.Of(timing.OpStart), v.id, "start"))
				p.extendVM(v.id, v.powerUntil)
			}
		}
		return nil
	})
	return p, err
}

// RestartVM hard-resets a running VM: it reports starting until the reset
// completes, then a new boot begins. Each call is one more restart.
// ErrConflict if the VM is not running.
func (w *World) RestartVM(ctx context.Context, account, id string) (Pending, error) {
	var p Pending
	err := w.call(ctx, account, "RestartVM", vmRes(id), bucketMutating, func(now time.Time) error {
		v := w.vmIn(account, id, now)
		if v == nil {
			return notFound("RestartVM", vmRes(id), "no such VM")
		}
		if v.power != inventory.PowerRunning {
			return conflict("RestartVM", vmRes(id), "VM is %s, not running", v.power)
		}
		w.touch(v, "restart", now)
		w.noteWrites(v, now)
		v.power, v.powerUntil, v.boot = inventory.PowerStarting, now.Add(w.drawFor(timing.Of(timing.OpRestart), v.id, "restart")), bootState{}
		p.Until = v.powerUntil
		return nil
	})
	return p, err
}

func (w *World) diskInfo(d *disk) DiskInfo {
	return DiskInfo{
		DiskState: providers.DiskState{Ref: providers.DiskRef{ID: d.id, Zone: d.zone}, AttachedTo: d.attachedTo,
			Boot: d.boot, SizeGB: d.sizeGB, Tags: cloneTags(d.tags)},
		ReadyAt: d.readyAt, Busy: d.busy, BusyUntil: d.busyUntil,
	}
}

// DescribeDisk reads a disk's attachment. Read-only.
func (w *World) DescribeDisk(ctx context.Context, account, id string) (DiskInfo, error) {
	var out DiskInfo
	err := w.call(ctx, account, "DescribeDisk", diskRes(id), bucketNonMutating, func(now time.Time) error {
		d := w.diskIn(account, id, now)
		if d == nil {
			return notFound("DescribeDisk", diskRes(id), "no such disk")
		}
		out = w.diskInfo(d)
		return nil
	})
	return out, err
}

// DescribeDisks reads many disks' attachments in one call (as EC2's
// DescribeVolumes with a volume-id filter does): a disk that does not
// exist is absent from the result, not an error. Read-only.
func (w *World) DescribeDisks(ctx context.Context, account string, ids []string) (map[string]DiskInfo, error) {
	out := make(map[string]DiskInfo, len(ids))
	err := w.call(ctx, account, "DescribeDisks", "disk "+strings.Join(ids, ", "), bucketNonMutating, func(now time.Time) error {
		for _, id := range ids {
			if d := w.diskIn(account, id, now); d != nil {
				out[id] = w.diskInfo(d)
			}
		}
		return nil
	})
	return out, err
}

// FindDisks returns account's disks carrying all tags, sorted by ID.
// Read-only.
func (w *World) FindDisks(ctx context.Context, account string, tags map[string]string) ([]DiskInfo, error) {
	var out []DiskInfo
	err := w.call(ctx, account, "FindDisks", "account "+account, bucketNonMutating, func(now time.Time) error {
		for _, id := range sortedKeys(w.disks) {
			d := w.disks[id]
			if d.account == account && hasTags(d.tags, tags) {
				w.advanceDisk(d, now)
				out = append(out, w.diskInfo(d))
			}
		}
		return nil
	})
	return out, err
}

// Snapshot takes a point-in-time copy of a disk (content and identity),
// tagged. The first snapshot of a disk takes timing.OpSnapshot, later ones a
// fraction of it (calib.IncrementalSnapshotFactor), and so does the first of
// a disk made from a snapshot, which continues that snapshot's lineage,
// unless the world's snapshots are full copies (Scenario.FullCopySnapshots)
// or its families are per disk (Scenario.PerDiskSnapshots). Not
// idempotent.
func (w *World) Snapshot(ctx context.Context, account, diskID string, tags map[string]string) (SnapshotInfo, error) {
	var out SnapshotInfo
	err := w.call(ctx, account, "Snapshot", diskRes(diskID), bucketSnapshotVolume, func(now time.Time) error {
		d := w.diskIn(account, diskID, now)
		if d == nil {
			return notFound("Snapshot", diskRes(diskID), "no such disk")
		}
		if !d.readyAt.IsZero() {
			return notReady("Snapshot", diskRes(diskID), d.readyAt, now, "disk")
		}
		if v := w.vms[d.attachedTo]; v != nil && d.boot {
			w.advance(v, now)
			w.noteWrites(v, now)
		}
		dur := w.drawFor(timing.Of(timing.OpSnapshot), d.id, "snapshot")
		if w.incremental(d) {
			dur = time.Duration(float64(dur) * calib.IncrementalSnapshotFactor)
		}
		s := &snapshot{id: w.newID("snap", d.id), diskID: d.id, zone: d.zone, account: account, tags: cloneTags(tags),
			takenAt: now, readyAt: now.Add(dur), content: d.content.clone()}
		w.snaps[s.id] = s
		w.ref.snapsOf[d.id]++
		w.ref.noteSnapshot(d.id, s.id, s.tags)
		out = w.snapInfo(s, now)
		return nil
	})
	return out, err
}

// incremental reports whether a snapshot of d taken now would be
// incremental (see Snapshot). Caller holds mu.
func (w *World) incremental(d *disk) bool {
	lineage := !w.perDiskSnaps && strings.HasPrefix(d.source, sourceSnapshot)
	return !w.fullCopies && (w.ref.snapsOf[d.id] > 0 || lineage)
}

func (w *World) snapInfo(s *snapshot, now time.Time) SnapshotInfo {
	return SnapshotInfo{
		SnapshotState: providers.SnapshotState{Ref: providers.SnapshotRef{ID: s.id, Zone: s.zone}, DiskID: s.diskID,
			Ready: !now.Before(s.readyAt), Tags: cloneTags(s.tags)},
		TakenAt: s.takenAt, ReadyAt: s.readyAt,
	}
}

// FindSnapshots returns account's snapshots carrying all tags, sorted by
// ID. Read-only.
func (w *World) FindSnapshots(ctx context.Context, account string, tags map[string]string) ([]SnapshotInfo, error) {
	var out []SnapshotInfo
	err := w.call(ctx, account, "FindSnapshots", "account "+account, bucketNonMutating, func(now time.Time) error {
		for _, id := range sortedKeys(w.snaps) {
			s := w.snaps[id]
			if s.account == account && hasTags(s.tags, tags) {
				out = append(out, w.snapInfo(s, now))
			}
		}
		return nil
	})
	return out, err
}

// DetachDisk detaches a disk from a VM. A boot disk only from a stopped VM
// (ErrConflict otherwise). A disk not attached to the VM is fine (Pending
// carries a detach still in progress).
func (w *World) DetachDisk(ctx context.Context, account, vmID, diskID string) (Pending, error) {
	var p Pending
	err := w.call(ctx, account, "DetachDisk", diskRes(diskID), bucketMutating, func(now time.Time) error {
		v := w.vmIn(account, vmID, now)
		if v == nil {
			return notFound("DetachDisk", vmRes(vmID), "no such VM")
		}
		d := w.diskIn(account, diskID, now)
		if d == nil {
			return notFound("DetachDisk", diskRes(diskID), "no such disk")
		}
		if d.attachedTo != v.id {
			if d.busy == "detaching" {
				p.Until = d.busyUntil
			}
			return nil
		}
		if d.busy == "attaching" {
			return busy("DetachDisk", diskRes(diskID), d.busyUntil, now, "disk is still attaching to %s", v.id)
		}
		if d.boot && v.power != inventory.PowerStopped {
			if v.power == inventory.PowerStopping {
				return busy("DetachDisk", diskRes(diskID), v.powerUntil, now, "it is the boot disk of %s, which is still stopping", v.id)
			}
			return conflict("DetachDisk", diskRes(diskID), "it is the boot disk of %s, which is %s; stop the VM first", v.id, v.power)
		}
		w.touch(v, "detach "+d.id, now)
		wasBoot := d.boot
		w.unattach(v, d)
		d.busy, d.busyUntil = "detaching", now.Add(w.drawFor(timing.Of(timing.OpDetach), d.id, "detach"))
		if d.fails = w.asyncFails(d.id, "detach"); d.fails {
			d.from, d.fromBoot = v.id, wasBoot
		}
		p.Until = d.busyUntil
		return nil
	})
	return p, err
}

// asyncFails draws whether an accepted attach or detach (op) of disk id
// will fail, keyed by its attempt. Caller holds mu.
func (w *World) asyncFails(id, op string) bool {
	r := w.gate.faults.AsyncFailRate
	return r > 0 && w.unit(id, op+"-fails", w.attempt(id, op+"-fails")) < r
}

// unattach removes d from v. Caller holds mu.
func (w *World) unattach(v *vm, d *disk) {
	if v.bootDisk == d.id {
		v.bootDisk = ""
	}
	for i, id := range v.data {
		if id == d.id {
			v.data = append(v.data[:i:i], v.data[i+1:]...)
			break
		}
	}
	d.attachedTo, d.boot = "", false
	d.number, d.online, d.letter, d.unlocked = 0, false, "", false
}

// AttachDisk attaches a disk to a VM, as its boot disk when boot is set
// (the VM must be stopped and have none). Same zone only; a disk attached
// elsewhere is a conflict; attached here already is fine. A data disk
// arrives offline in the guest (Windows Server SAN policy).
func (w *World) AttachDisk(ctx context.Context, account, vmID, diskID string, boot bool) (Pending, error) {
	var p Pending
	err := w.call(ctx, account, "AttachDisk", diskRes(diskID), bucketMutating, func(now time.Time) error {
		v := w.vmIn(account, vmID, now)
		if v == nil {
			return notFound("AttachDisk", vmRes(vmID), "no such VM")
		}
		d := w.diskIn(account, diskID, now)
		if d == nil {
			return notFound("AttachDisk", diskRes(diskID), "no such disk")
		}
		res := diskRes(diskID)
		switch {
		case d.attachedTo == v.id && d.boot == boot:
			if d.busy == "attaching" {
				p.Until = d.busyUntil
			}
			return nil
		case d.attachedTo == v.id:
			return conflict("AttachDisk", res, "already attached to %s with boot=%v", v.id, d.boot)
		case d.attachedTo != "":
			return conflict("AttachDisk", res, "attached to %s; detach it first", d.attachedTo)
		case d.busy == "detaching":
			return busy("AttachDisk", res, d.busyUntil, now, "disk is still detaching")
		case !d.readyAt.IsZero():
			return notReady("AttachDisk", res, d.readyAt, now, "disk")
		case d.zone != v.zone:
			return conflict("AttachDisk", res, "%w: disk is in zone %s, VM %s in zone %s", ErrZoneMismatch, d.zone, v.id, v.zone)
		}
		if boot {
			switch {
			case v.power == inventory.PowerStopping:
				return busy("AttachDisk", res, v.powerUntil, now, "VM %s is still stopping", v.id)
			case v.power != inventory.PowerStopped:
				return conflict("AttachDisk", res, "VM %s is %s; a boot disk attaches only to a stopped VM", v.id, v.power)
			case v.bootDisk != "":
				return conflict("AttachDisk", res, "VM %s already has boot disk %s", v.id, v.bootDisk)
			}
			if !v.helper && d.unverified {
				w.ref.unverified = append(w.ref.unverified, Return{Disk: d.id, VM: v.id, At: now})
			}
			w.checkWrites(v, d, now)
			v.bootDisk = d.id
		} else {
			w.touch(v, "attach "+d.id, now)
			v.data = append(v.data, d.id)
			d.number = w.freeNumber(v)
		}
		d.attachedTo, d.boot = v.id, boot
		d.busy, d.busyUntil = "attaching", now.Add(w.drawFor(timing.Of(timing.OpAttach), d.id, "attach"))
		d.fails = w.asyncFails(d.id, "attach")
		p.Until = d.busyUntil
		return nil
	})
	return p, err
}

// freeNumber is the lowest guest disk number not used on v. Caller holds mu.
func (w *World) freeNumber(v *vm) int {
	used := map[int]bool{}
	for _, id := range v.data {
		used[w.disks[id].number] = true
	}
	for n := 1; ; n++ {
		if !used[n] {
			return n
		}
	}
}

// DiskFromSnapshot creates a disk in zone from a ready snapshot, tagged:
// it carries the snapshot's content and identity. Not idempotent.
func (w *World) DiskFromSnapshot(ctx context.Context, account, snapID, zone string, tags map[string]string) (DiskInfo, error) {
	var out DiskInfo
	err := w.call(ctx, account, "DiskFromSnapshot", "snapshot "+snapID, bucketSnapshotVolume, func(now time.Time) error {
		s := w.snaps[snapID]
		if s == nil || s.account != account {
			return notFound("DiskFromSnapshot", "snapshot "+snapID, "no such snapshot")
		}
		if !w.isZone(zone) {
			return providers.Errorf(providers.ErrPermanent, "DiskFromSnapshot", "zone "+zone, "no such zone; zones are %s", strings.Join(w.zones, ", "))
		}
		if w.zoneBoundSnaps && zone != s.zone {
			return providers.Errorf(providers.ErrPermanent, "DiskFromSnapshot", "snapshot "+snapID, "a snapshot of zone %s makes disks only in its own zone, not %s", s.zone, zone)
		}
		if now.Before(s.readyAt) {
			return notReady("DiskFromSnapshot", "snapshot "+snapID, s.readyAt, now, "snapshot")
		}
		d := w.newDisk(account, zone, s.content.clone(), tags, sourceSnapshot+s.id, now, timing.Of(timing.OpDiskFromSnapshot))
		out = w.diskInfo(d)
		return nil
	})
	return out, err
}

// sourceSnapshot prefixes the source of a disk made from a snapshot.
const sourceSnapshot = "snapshot:"

// newDisk adds a disk made from source, being created for a duration
// drawn in r. Caller holds mu.
func (w *World) newDisk(account, zone string, c content, tags map[string]string, source string, now time.Time, r timing.Range) *disk {
	d := w.addDisk(account, zone, c, tags, source)
	d.readyAt = now.Add(w.drawFor(r, d.id, "create"))
	return d
}

// addDisk adds a disk made from source, ready at once: the caller sets
// readyAt. Caller holds mu.
func (w *World) addDisk(account, zone string, c content, tags map[string]string, source string) *disk {
	d := &disk{id: w.newID("disk", source), zone: zone, account: account, content: c, tags: cloneTags(tags), source: source}
	w.disks[d.id] = d
	return d
}

// restoreTime is how long a disk takes to be restored from backup b: a
// property of the backup (its size, where it is stored), the same at every
// restore, so that the lower bound can count it.
func (w *World) restoreTime(b BackupSpec) time.Duration {
	return w.hashDur(timing.Of(timing.OpBackupRestore), "restore", b.ID)
}

// ListBackups returns a VM's restore points, oldest first. Read-only.
func (w *World) ListBackups(ctx context.Context, account, vmID string) ([]inventory.Backup, error) {
	var out []inventory.Backup
	err := w.call(ctx, account, "ListBackups", vmRes(vmID), bucketNonMutating, func(now time.Time) error {
		v := w.vmIn(account, vmID, now)
		if v == nil {
			return notFound("ListBackups", vmRes(vmID), "no such VM")
		}
		out = w.backupsOf(v)
		return nil
	})
	return out, err
}

// backupsOf is v's restore points, oldest first. Caller holds mu.
func (w *World) backupsOf(v *vm) []inventory.Backup {
	bs := w.inventoryVM(v).Backups
	sort.SliceStable(bs, func(i, j int) bool { return bs[i].TakenAt.Before(bs[j].TakenAt) })
	return bs
}

// ListBackupsOf lists the backups of many VMs in one call, each VM's
// oldest first (as EC2's DescribeSnapshots filtered by many volumes does):
// a VM that does not exist is absent from the result, not an error.
// Read-only.
func (w *World) ListBackupsOf(ctx context.Context, account string, ids []string) (map[string][]inventory.Backup, error) {
	out := make(map[string][]inventory.Backup, len(ids))
	err := w.call(ctx, account, "ListBackups", "vm "+strings.Join(ids, ", "), bucketNonMutating, func(now time.Time) error {
		for _, id := range ids {
			if v := w.vmIn(account, id, now); v != nil {
				out[id] = w.backupsOf(v)
			}
		}
		return nil
	})
	return out, err
}

// RestoreBackup creates a disk in zone from backup backupID, tagged: the
// VM's original disk as of the backup's time, with its original identity
// and a clean hive (a damaged one for a BackupSpec.Damaged). A backup
// taken inside the incident's bad window holds the bad file. The VM is not touched. Not idempotent.
func (w *World) RestoreBackup(ctx context.Context, account, backupID, zone string, tags map[string]string) (DiskInfo, error) {
	var out DiskInfo
	res := "backup " + backupID
	err := w.call(ctx, account, "RestoreBackup", res, bucketSnapshotVolume, func(now time.Time) error {
		// The backup's last listing in VM ID order, found without
		// sorting every VM's ID at each call.
		var owner *vm
		var b BackupSpec
		for _, v := range w.vms {
			if v.account != account || (owner != nil && v.id < owner.id) {
				continue
			}
			for _, x := range v.backups {
				if x.ID == backupID {
					owner, b = v, x
				}
			}
		}
		if owner == nil {
			return notFound("RestoreBackup", res, "no such backup")
		}
		if !w.isZone(zone) {
			return providers.Errorf(providers.ErrPermanent, "RestoreBackup", "zone "+zone, "no such zone; zones are %s", strings.Join(w.zones, ", "))
		}
		orig := w.disks[owner.originalDisk]
		if orig == nil {
			return providers.Errorf(providers.ErrPermanent, "RestoreBackup", res, "the backup's source disk is gone")
		}
		c := orig.content.clone()
		c.identity, c.unverified = c.bcd, false
		c.origin = owner.id
		c.safeBoot, c.hiveDamaged = false, b.Damaged
		// The directory as of the backup: the channel file then, and the
		// other files already there.
		c.files = []file{w.fileAsOf(b.TakenAt)}
		for _, f := range orig.files {
			if f.name != badFileName && f.mod.Before(b.TakenAt) {
				c.files = append(c.files, f)
			}
		}
		d := w.addDisk(account, zone, c, tags, "backup:"+b.ID)
		d.readyAt = now.Add(w.restoreTime(b))
		out = w.diskInfo(d)
		return nil
	})
	return out, err
}

// fileAsOf is the incident's channel file as a disk held it at t.
func (w *World) fileAsOf(t time.Time) file {
	inc := w.incident
	switch {
	case t.Before(inc.BadFrom):
		return file{name: badFileName, size: fileSize, mod: inc.BadFrom.Add(-24 * time.Hour), header: oldHeader}
	case t.Before(inc.BadUntil):
		return file{name: badFileName, size: fileSize, mod: inc.BadFrom, header: inc.Header}
	}
	return file{name: badFileName, size: fileSize, mod: inc.BadUntil, header: goodHeader}
}

// HelperImages lists where helpers can be created. Read-only.
func (w *World) HelperImages(ctx context.Context, account string) ([]providers.HelperImage, error) {
	var out []providers.HelperImage
	err := w.call(ctx, account, "HelperImages", "account "+account, bucketNonMutating, func(time.Time) error {
		for _, im := range w.images {
			out = append(out, providers.HelperImage{Zone: im.Zone, Windows: inventory.WindowsVersion{Release: im.Release, Build: im.Build},
				ImageID: im.ImageID})
		}
		return nil
	})
	return out, err
}

// AcquireHelper returns account's helper of release win.Release in zone
// carrying all tags, starting it if it is stopped, or creates one: the
// composition a client of a cloud without client tokens uses (find by tag,
// then create, as Sakura's and Azure's do), made of FindHelper, StartVMs
// and CreateHelper, each its own control-plane call. A create whose reply
// was lost leaves a helper that the next AcquireHelper finds. before, when
// not nil, is called before each of those calls with its operation (a
// client paces its calls there) and its error ends the acquisition.
func (w *World) AcquireHelper(ctx context.Context, account, zone string, win inventory.WindowsVersion, tags map[string]string, before func(op string) error) (HelperInfo, error) {
	if before == nil {
		before = func(string) error { return nil }
	}
	if err := before("FindHelper"); err != nil {
		return HelperInfo{}, err
	}
	h, found, err := w.FindHelper(ctx, account, zone, win.Release, tags)
	if err != nil {
		return HelperInfo{}, err
	}
	if !found {
		if err := before("CreateHelper"); err != nil {
			return HelperInfo{}, err
		}
		return w.CreateHelper(ctx, account, zone, win, tags, "")
	}
	if h.Power == inventory.PowerStopped || h.Power == inventory.PowerStopping {
		if err := before("StartVMs"); err != nil {
			return HelperInfo{}, err
		}
		p, err := w.StartVMs(ctx, account, []string{h.Ref.ID})
		if err != nil {
			return HelperInfo{}, err
		}
		h.Power, h.ReadyAt = inventory.PowerStarting, p.Until
	}
	return h, nil
}

// FindHelper returns account's helper of release in zone carrying all
// tags (the lowest ID if several), and whether there is one. Read-only.
func (w *World) FindHelper(ctx context.Context, account, zone, release string, tags map[string]string) (HelperInfo, bool, error) {
	var out HelperInfo
	found := false
	res := fmt.Sprintf("helper (Windows Server %s in %s)", release, zone)
	err := w.call(ctx, account, "FindHelper", res, bucketNonMutating, func(now time.Time) error {
		if v := w.lowestVM(func(v *vm) bool {
			return v.helper && v.account == account && v.zone == zone && v.windows.Release == release && hasTags(v.tags, tags)
		}); v != nil {
			w.advance(v, now)
			out, found = w.helperInfo(v), true
		}
		return nil
	})
	return out, found, err
}

// FindHelpers returns account's helpers carrying all tags, in any zone,
// sorted by ID. Read-only.
func (w *World) FindHelpers(ctx context.Context, account string, tags map[string]string) ([]HelperInfo, error) {
	var out []HelperInfo
	err := w.call(ctx, account, "FindHelpers", "account "+account, bucketNonMutating, func(now time.Time) error {
		for _, id := range sortedKeys(w.vms) {
			if v := w.vms[id]; v.helper && v.account == account && hasTags(v.tags, tags) {
				w.advance(v, now)
				out = append(out, w.helperInfo(v))
			}
		}
		return nil
	})
	return out, err
}

// CreateHelper creates a helper from the zone's image of release
// win.Release: a Windows VM with its own boot disk (the image's identity),
// WinRM open with the world's guest credentials, tagged. Every call that
// reaches the cloud creates one, as RunInstances does, unless clientToken
// is set and a helper created with it still exists: then that one is
// returned (EC2's ClientToken). ErrNotFound if the zone has no image of
// that release; ErrConflict when the account's helper quota or the zone's
// capacity (Scenario.Limits) is used up.
func (w *World) CreateHelper(ctx context.Context, account, zone string, win inventory.WindowsVersion, tags map[string]string, clientToken string) (HelperInfo, error) {
	var out HelperInfo
	res := fmt.Sprintf("helper (Windows Server %s in %s)", win.Release, zone)
	err := w.call(ctx, account, "CreateHelper", res, bucketStartRun, func(now time.Time) error {
		if clientToken != "" {
			if v := w.lowestVM(func(v *vm) bool { return v.helper && v.account == account && v.clientToken == clientToken }); v != nil {
				w.advance(v, now)
				out = w.helperInfo(v)
				return nil
			}
		}
		im, ok := w.imageFor(zone, win.Release)
		if !ok {
			var have []string
			for _, x := range w.images {
				if x.Zone == zone {
					have = append(have, x.Release)
				}
			}
			return notFound("CreateHelper", res, "no image of Windows Server %s in zone %q (releases there: %s)", win.Release, zone, strings.Join(have, ", "))
		}
		if err := w.helperRoom(account, zone, res); err != nil {
			return err
		}
		// The ID (and so every draw keyed by it) names the helper by its
		// tags too: concurrent creations of differently tagged helpers get
		// the same IDs whatever their order.
		v := &vm{id: w.newID("helper", account+"/"+zone+"/"+im.Release+"/"+tagKey(tags)), tenant: DefaultAccount, account: account, zone: zone, tags: cloneTags(tags),
			windows: inventory.WindowsVersion{Release: im.Release, Build: im.Build}, helper: true, imageID: im.ImageID,
			ip: w.allocIP(), password: w.password, cond: condition{winrm: WinRMOpen}, clientToken: clientToken,
			power: inventory.PowerStarting}
		v.powerUntil = now.Add(w.drawFor(calib.HelperProvisioning, v.id, "provision"))
		v.name = "fixfleet-" + v.id
		d := &disk{id: w.newID("disk", v.id), zone: zone, account: account, source: "image:" + im.ImageID,
			content: content{sizeGB: 40, identity: im.Identity, bcd: im.Identity, hostname: v.name}, attachedTo: v.id, boot: true}
		v.bootDisk = d.id
		w.disks[d.id] = d
		w.vms[v.id] = v
		w.byIP[v.ip] = v.id
		out = w.helperInfo(v)
		return nil
	})
	return out, err
}

// tagKey is tags as one string, sorted by key, without the run's tag
// (a run ID carries a random part).
func tagKey(tags map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(tags) {
		if k == providers.TagRun {
			continue
		}
		b.WriteString(k + "=" + tags[k] + ";")
	}
	return b.String()
}

// lowestVM returns the VM of lowest ID for which match is true (nil if
// none): the first match in ID order, found in one pass over the VMs
// rather than by sorting every ID at each call. Caller holds mu.
func (w *World) lowestVM(match func(*vm) bool) *vm {
	var best *vm
	for _, v := range w.vms {
		if (best == nil || v.id < best.id) && match(v) {
			best = v
		}
	}
	return best
}

// helperRoom refuses a new helper beyond the account's quota or the
// zone's capacity. Caller holds mu.
func (w *World) helperRoom(account, zone, res string) error {
	lim := w.limits
	if lim.HelpersPerAccount == 0 && lim.HelpersPerZone[zone] == 0 {
		return nil
	}
	inAcct, inZone := 0, 0
	for _, v := range w.vms {
		if v.helper && v.account == account {
			inAcct++
		}
		if v.helper && v.zone == zone {
			inZone++
		}
	}
	if n := lim.HelpersPerAccount; n > 0 && inAcct >= n {
		return conflict("CreateHelper", res, "account %s has %d of its quota of %d helpers; release one or raise the quota", account, inAcct, n)
	}
	if n := lim.HelpersPerZone[zone]; n > 0 && inZone >= n {
		return conflict("CreateHelper", res, "zone %s has no capacity for another helper (%d running, capacity %d); try another zone or later", zone, inZone, n)
	}
	return nil
}

func (w *World) helperInfo(v *vm) HelperInfo {
	return HelperInfo{Ref: providers.VMRef{ID: v.id, Zone: v.zone, Name: v.name}, Windows: v.windows,
		Tags: cloneTags(v.tags), Power: v.power, PrivateIP: v.ip, ReadyAt: v.powerUntil}
}

// ReleaseHelper deletes a helper and its own boot disk. ErrConflict while
// any other disk is attached to it; a helper already gone is fine;
// ErrPermanent for a VM that is not a helper.
func (w *World) ReleaseHelper(ctx context.Context, account, id string) error {
	return w.call(ctx, account, "ReleaseHelper", vmRes(id), bucketMutating, func(now time.Time) error {
		v := w.vmIn(account, id, now)
		if v == nil {
			return nil
		}
		if !v.helper {
			return providers.Errorf(providers.ErrPermanent, "ReleaseHelper", vmRes(id), "not a helper; only helpers are ever deleted")
		}
		if len(v.data) > 0 {
			return conflict("ReleaseHelper", vmRes(id), "disks still attached: %s; detach them first", strings.Join(v.data, ", "))
		}
		if d := w.disks[v.bootDisk]; d != nil {
			if !strings.HasPrefix(d.source, "image:") {
				return conflict("ReleaseHelper", vmRes(id), "its boot disk %s is not the helper's own; detach it first", d.id)
			}
			delete(w.disks, d.id)
		}
		delete(w.byIP, v.ip)
		delete(w.vms, v.id)
		return nil
	})
}
