package azure

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// disks implements providers.Disks and providers.OSDiskSwapper.
type disks struct{ k *core }

var _ providers.OSDiskSwapper = (*disks)(nil)

// getDisk reads a managed disk.
func (k *core) getDisk(ctx context.Context, op, id string) (*armcompute.Disk, *subscription, error) {
	r, s, err := k.resolve(op, id, "disks")
	if err != nil {
		return nil, nil, err
	}
	var d armcompute.Disk
	err = k.do(ctx, s, bucketReads, op, id, func(ctx context.Context) error {
		resp, err := s.disks.Get(ctx, r.group, r.name, nil)
		d = resp.Disk
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	return &d, s, nil
}

// state turns a disk into the contract's view; an attached disk's VM is
// read to tell whether it is the OS disk.
func (k *core) state(ctx context.Context, op string, d *armcompute.Disk) (providers.DiskState, error) {
	st := providers.DiskState{Ref: providers.DiskRef{ID: str(d.ID), Region: str(d.Location), Zone: zoneOf(str(d.Location), d.Zones)},
		Tags: tags(d.Tags)}
	if d.Properties != nil && d.Properties.DiskSizeGB != nil {
		st.SizeGB = int(*d.Properties.DiskSizeGB)
	}
	if d.ManagedBy == nil || *d.ManagedBy == "" {
		return st, nil
	}
	st.AttachedTo = *d.ManagedBy
	vm, _, err := k.getVM(ctx, op, st.AttachedTo, false)
	if err != nil {
		return st, err
	}
	st.Boot = osDiskID(vm) != "" && sameID(osDiskID(vm), st.Ref.ID)
	if vm.Properties != nil && vm.Properties.StorageProfile != nil {
		for _, dd := range vm.Properties.StorageProfile.DataDisks {
			if dd.ManagedDisk != nil && sameID(str(dd.ManagedDisk.ID), st.Ref.ID) && dd.Lun != nil {
				lun := int(*dd.Lun)
				st.LUN = &lun
			}
		}
	}
	return st, nil
}

// osDiskID is a VM's OS disk ID ("" if none).
func osDiskID(vm *armcompute.VirtualMachine) string {
	if vm.Properties == nil || vm.Properties.StorageProfile == nil || vm.Properties.StorageProfile.OSDisk == nil ||
		vm.Properties.StorageProfile.OSDisk.ManagedDisk == nil {
		return ""
	}
	return str(vm.Properties.StorageProfile.OSDisk.ManagedDisk.ID)
}

// dataDiskIDs are a VM's data disk IDs.
func dataDiskIDs(vm *armcompute.VirtualMachine) []string {
	var out []string
	if vm.Properties != nil && vm.Properties.StorageProfile != nil {
		for _, d := range vm.Properties.StorageProfile.DataDisks {
			if d.ManagedDisk != nil && d.ManagedDisk.ID != nil {
				out = append(out, *d.ManagedDisk.ID)
			}
		}
	}
	return out
}

// Describe reads a disk and where it is attached. Read-only.
func (ds *disks) Describe(ctx context.Context, ref providers.DiskRef) (providers.DiskState, error) {
	d, _, err := ds.k.getDisk(ctx, "Describe", ref.ID)
	if err != nil {
		return providers.DiskState{}, err
	}
	return ds.k.state(ctx, "Describe", d)
}

// name derives a resource name from its parts: the same request gives the
// same name, so that a PUT repeated after an unknown outcome finds the
// first one's result instead of making a second.
func name(prefix string, parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return prefix + hex.EncodeToString(h.Sum(nil))[:20]
}

func tagParts(t providers.Tags) []string {
	var out []string
	for _, k := range t.Sorted() {
		out = append(out, k+"="+t[k])
	}
	return out
}

// Snapshot takes an incremental snapshot of the disk, tagged, in the
// account's resource group of the disk's subscription, and waits until it
// is complete. Its name derives from the disk and tags: called again with
// the same ones, it returns the same snapshot.
func (ds *disks) Snapshot(ctx context.Context, ref providers.DiskRef, t providers.Tags) (providers.SnapshotRef, error) {
	k := ds.k
	d, s, err := k.getDisk(ctx, "Snapshot", ref.ID)
	if err != nil {
		return providers.SnapshotRef{}, err
	}
	snap := armcompute.Snapshot{Location: d.Location, Tags: azTags(t), Properties: &armcompute.SnapshotProperties{
		Incremental:  to.Ptr(true),
		CreationData: &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionCopy), SourceResourceID: d.ID},
	}}
	if d.Properties != nil {
		snap.Properties.HyperVGeneration = d.Properties.HyperVGeneration
		snap.Properties.SecurityProfile = d.Properties.SecurityProfile
	}
	n := name("fixfleet-snap-", append([]string{strings.ToLower(str(d.ID))}, tagParts(t)...)...)
	res, err := await(ctx, k, s, bucketWrites, "Snapshot", ref.ID, func(ctx context.Context) (*runtime.Poller[armcompute.SnapshotsClientCreateOrUpdateResponse], error) {
		return s.snaps.BeginCreateOrUpdate(ctx, k.opts.ResourceGroup, n, snap, nil)
	})
	if err != nil {
		return providers.SnapshotRef{}, err
	}
	return providers.SnapshotRef{ID: str(res.ID), Region: str(d.Location), Zone: zoneOf(str(d.Location), d.Zones)}, nil
}

// FindSnapshots lists the snapshots carrying all tags in every
// subscription. Read-only.
func (ds *disks) FindSnapshots(ctx context.Context, t providers.Tags) ([]providers.SnapshotState, error) {
	k := ds.k
	var out []providers.SnapshotState
	for _, sid := range k.order {
		s := k.subs[strings.ToLower(sid)]
		err := pages(ctx, k, s, "FindSnapshots", s.snaps.NewListPager(nil), func(page armcompute.SnapshotsClientListResponse) error {
			for _, x := range page.Value {
				if !hasTags(x.Tags, t) || x.Properties == nil {
					continue
				}
				st := providers.SnapshotState{Ref: providers.SnapshotRef{ID: str(x.ID), Region: str(x.Location)}, Tags: tags(x.Tags),
					Ready: str(x.Properties.ProvisioningState) == "Succeeded" && (x.Properties.CompletionPercent == nil || *x.Properties.CompletionPercent >= 100)}
				if cd := x.Properties.CreationData; cd != nil {
					st.DiskID = str(cd.SourceResourceID)
				}
				out = append(out, st)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

func hasTags(have map[string]*string, want providers.Tags) bool {
	for k, v := range want {
		if h, ok := have[k]; !ok || str(h) != v {
			return false
		}
	}
	return true
}

// FindDisks lists the disks carrying all tags in every subscription, with
// their attachment. Read-only.
func (ds *disks) FindDisks(ctx context.Context, t providers.Tags) ([]providers.DiskState, error) {
	k := ds.k
	var out []providers.DiskState
	for _, sid := range k.order {
		s := k.subs[strings.ToLower(sid)]
		err := pages(ctx, k, s, "FindDisks", s.disks.NewListPager(nil), func(page armcompute.DisksClientListResponse) error {
			for _, d := range page.Value {
				if !hasTags(d.Tags, t) {
					continue
				}
				st, err := k.state(ctx, "FindDisks", d)
				if err != nil {
					return err
				}
				out = append(out, st)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// Detach detaches a data disk from vm and waits. An OS disk cannot be
// detached on Azure: ErrConflict while the VM runs (as for any boot disk),
// ErrUnsupported once it is stopped (use SwapOSDisk). A disk not attached
// to vm is fine.
func (ds *disks) Detach(ctx context.Context, vm providers.VMRef, ref providers.DiskRef) error {
	k := ds.k
	if _, _, err := k.getDisk(ctx, "Detach", ref.ID); err != nil {
		return err
	}
	v, s, err := k.getVM(ctx, "Detach", vm.ID, true)
	if err != nil {
		return err
	}
	if sameID(osDiskID(v), ref.ID) {
		if p := powerOf(v.Properties.InstanceView); p != inventory.PowerStopped {
			return providers.Errorf(providers.ErrConflict, "Detach", ref.ID, "it is the OS disk of %s, which is %s", vm.ID, p)
		}
		return providers.Errorf(providers.ErrUnsupported, "Detach", ref.ID, "it is the OS disk of %s: an Azure OS disk cannot be detached; swap it (copy and swap) instead", vm.ID)
	}
	attached := false
	for _, id := range dataDiskIDs(v) {
		attached = attached || sameID(id, ref.ID)
	}
	if !attached {
		return nil
	}
	return k.attachDetach(ctx, s, "Detach", vm.ID, ref.ID, armcompute.AttachDetachDataDisksRequest{
		DataDisksToDetach: []*armcompute.DataDisksToDetach{{DiskID: to.Ptr(ref.ID)}}})
}

// Attach attaches a disk to vm as a data disk and waits. An OS disk cannot
// be attached on Azure: boot is fine only for vm's own OS disk (otherwise
// ErrUnsupported: use SwapOSDisk). Already attached to vm is fine.
func (ds *disks) Attach(ctx context.Context, vm providers.VMRef, ref providers.DiskRef, boot bool) error {
	k := ds.k
	if _, _, err := k.getDisk(ctx, "Attach", ref.ID); err != nil {
		return err
	}
	v, s, err := k.getVM(ctx, "Attach", vm.ID, false)
	if err != nil {
		return err
	}
	if boot {
		if sameID(osDiskID(v), ref.ID) {
			return nil
		}
		return providers.Errorf(providers.ErrUnsupported, "Attach", ref.ID, "an Azure VM's OS disk cannot be attached to %s; swap it (copy and swap) instead", vm.ID)
	}
	for _, id := range dataDiskIDs(v) {
		if sameID(id, ref.ID) {
			return nil
		}
	}
	return k.attachDetach(ctx, s, "Attach", vm.ID, ref.ID, armcompute.AttachDetachDataDisksRequest{
		DataDisksToAttach: []*armcompute.DataDisksToAttach{{DiskID: to.Ptr(ref.ID)}}})
}

// attachDetach runs the additive attachDetachDataDisks action (concurrent
// attachments to one helper do not overwrite each other, as a whole-list
// VM update would).
func (k *core) attachDetach(ctx context.Context, s *subscription, op, vmID, diskID string, req armcompute.AttachDetachDataDisksRequest) error {
	r, _ := parseID(vmID)
	_, err := await(ctx, k, s, bucketWrites, op, diskID, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientAttachDetachDataDisksResponse], error) {
		return s.vms.BeginAttachDetachDataDisks(ctx, r.group, r.name, req, nil)
	})
	return err
}

// FromSnapshot creates a managed disk from the snapshot in zone, tagged,
// with the snapshot's Hyper-V generation and security type, and waits. Its
// name derives from the snapshot, zone and tags: called again with the
// same ones it returns the same disk.
func (ds *disks) FromSnapshot(ctx context.Context, ref providers.SnapshotRef, zone string, t providers.Tags) (providers.DiskRef, error) {
	k := ds.k
	r, s, err := k.resolve("FromSnapshot", ref.ID, "snapshots")
	if err != nil {
		return providers.DiskRef{}, err
	}
	loc, z, ok := SplitZone(zone)
	if !ok {
		return providers.DiskRef{}, providers.Errorf(providers.ErrPermanent, "FromSnapshot", "zone "+zone, "not <location>-<zone> (e.g. japaneast-1)")
	}
	var snap armcompute.Snapshot
	err = k.do(ctx, s, bucketReads, "FromSnapshot", ref.ID, func(ctx context.Context) error {
		resp, err := s.snaps.Get(ctx, r.group, r.name, nil)
		snap = resp.Snapshot
		return err
	})
	if err != nil {
		return providers.DiskRef{}, err
	}
	d := armcompute.Disk{Location: to.Ptr(loc), Zones: []*string{to.Ptr(z)}, Tags: azTags(t),
		SKU: &armcompute.DiskSKU{Name: to.Ptr(armcompute.DiskStorageAccountTypesPremiumLRS)},
		Properties: &armcompute.DiskProperties{
			OSType:       to.Ptr(armcompute.OperatingSystemTypesWindows),
			CreationData: &armcompute.CreationData{CreateOption: to.Ptr(armcompute.DiskCreateOptionCopy), SourceResourceID: to.Ptr(ref.ID)},
		}}
	if snap.Properties != nil {
		d.Properties.HyperVGeneration = snap.Properties.HyperVGeneration
		d.Properties.SecurityProfile = snap.Properties.SecurityProfile
	}
	n := name("fixfleet-disk-", append([]string{strings.ToLower(ref.ID), zone}, tagParts(t)...)...)
	res, err := await(ctx, k, s, bucketWrites, "FromSnapshot", ref.ID, func(ctx context.Context) (*runtime.Poller[armcompute.DisksClientCreateOrUpdateResponse], error) {
		return s.disks.BeginCreateOrUpdate(ctx, k.opts.ResourceGroup, n, d, nil)
	})
	if err != nil {
		return providers.DiskRef{}, err
	}
	return providers.DiskRef{ID: str(res.ID), Region: loc, Zone: zone}, nil
}

// SwapOSDisk makes d the OS disk of the stopped VM vm (deallocating it
// first when it is powered off but still allocated) with a VM update
// (storageProfile.osDisk.managedDisk.id) and waits; the previous OS disk
// stays, detached. See providers.OSDiskSwapper for the contract. Before
// the update it checks that d boots as vm does: the same Hyper-V
// generation and security type, else ErrPermanent wrapping a
// *providers.BootMismatchError.
func (ds *disks) SwapOSDisk(ctx context.Context, vm providers.VMRef, ref providers.DiskRef) error {
	k := ds.k
	const op = "SwapOSDisk"
	d, _, err := k.getDisk(ctx, op, ref.ID)
	if err != nil {
		return err
	}
	v, s, err := k.getVM(ctx, op, vm.ID, true)
	if err != nil {
		return err
	}
	if sameID(osDiskID(v), ref.ID) {
		return nil
	}
	r, _ := parseID(vm.ID)
	iv := v.Properties.InstanceView
	switch code := powerCode(iv); code {
	case "deallocated":
	case "stopped":
		// Powered off but still allocated (shut down from inside the
		// guest, or a power-off whose deallocation never came): Azure
		// changes the OS disk of a deallocated VM only. Deallocating a
		// VM that is off changes nothing in it.
		if _, err := await(ctx, k, s, bucketWrites, op, vm.ID, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientDeallocateResponse], error) {
			return s.vms.BeginDeallocate(ctx, r.group, r.name, nil)
		}); err != nil {
			return err
		}
	case "deallocating", "stopping":
		e := providers.Errorf(providers.ErrConflict, op, vm.ID, "the VM is still %s", code)
		e.RetryAfter = k.opts.PollInterval
		return e
	default:
		return providers.Errorf(providers.ErrConflict, op, vm.ID, "the VM is %s; deallocate it first (Power.Stop)", code)
	}
	if d.ManagedBy != nil && *d.ManagedBy != "" {
		return providers.Errorf(providers.ErrConflict, op, ref.ID, "the disk is attached to %s; detach it first", *d.ManagedBy)
	}
	if err := bootMatch(v, d); err != nil {
		return &providers.Error{Class: providers.ErrPermanent, Op: op, Resource: ref.ID + " for " + vm.ID, Err: err}
	}
	upd := armcompute.VirtualMachineUpdate{Properties: &armcompute.VirtualMachineProperties{StorageProfile: &armcompute.StorageProfile{
		OSDisk: &armcompute.OSDisk{ManagedDisk: &armcompute.ManagedDiskParameters{ID: to.Ptr(ref.ID)}, Name: d.Name},
	}}}
	_, err = await(ctx, k, s, bucketWrites, op, vm.ID, func(ctx context.Context) (*runtime.Poller[armcompute.VirtualMachinesClientUpdateResponse], error) {
		return s.vms.BeginUpdate(ctx, r.group, r.name, upd, nil)
	})
	return err
}

// DeleteCopy deletes a detached managed disk carrying all tags (a copy
// fixfleet made) and waits. See providers.OSDiskSwapper.
func (ds *disks) DeleteCopy(ctx context.Context, ref providers.DiskRef, t providers.Tags) error {
	k := ds.k
	const op = "DeleteCopy"
	if len(t) == 0 {
		return providers.Errorf(providers.ErrConflict, op, ref.ID, "no tags given: fixfleet deletes only the copies it tagged")
	}
	d, s, err := k.getDisk(ctx, op, ref.ID)
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	switch {
	case !hasTags(d.Tags, t):
		return providers.Errorf(providers.ErrConflict, op, ref.ID, "the disk does not carry the run's tags %v: fixfleet deletes only the copies it made", t)
	case d.ManagedBy != nil && *d.ManagedBy != "":
		return providers.Errorf(providers.ErrConflict, op, ref.ID, "the disk is attached to %s; detach it first", *d.ManagedBy)
	}
	r, _ := parseID(ref.ID)
	_, err = await(ctx, k, s, bucketDeletes, op, ref.ID, func(ctx context.Context) (*runtime.Poller[armcompute.DisksClientDeleteResponse], error) {
		return s.disks.BeginDelete(ctx, r.group, r.name, nil)
	})
	return err
}

// bootMatch compares what must match between a VM and a disk to boot it.
func bootMatch(v *armcompute.VirtualMachine, d *armcompute.Disk) error {
	vmGen, diskGen := "V1", "V1"
	if iv := v.Properties.InstanceView; iv != nil && iv.HyperVGeneration != nil {
		vmGen = string(*iv.HyperVGeneration)
	}
	if d.Properties != nil && d.Properties.HyperVGeneration != nil {
		diskGen = string(*d.Properties.HyperVGeneration)
	}
	if vmGen != diskGen {
		return &providers.BootMismatchError{Property: "hyperVGeneration", VM: vmGen, Disk: diskGen}
	}
	vmSec, diskSec := "Standard", "Standard"
	if sp := v.Properties.SecurityProfile; sp != nil && sp.SecurityType != nil {
		vmSec = string(*sp.SecurityType)
	}
	if d.Properties != nil && d.Properties.SecurityProfile != nil && d.Properties.SecurityProfile.SecurityType != nil {
		diskSec = string(*d.Properties.SecurityProfile.SecurityType)
	}
	if vmSec != diskSec {
		return &providers.BootMismatchError{Property: "securityType", VM: vmSec, Disk: diskSec}
	}
	return nil
}
