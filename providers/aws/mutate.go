package aws

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

type power struct{ *core }

// batchers gives rg its Stop and Start batchers: one API call (per 1000
// instances) for all the instances concurrent callers stop or start within
// one batch (quietGap, maxWindow).
func (c *core) batchers(rg *regional) {
	stop := func(force bool) func(ctx context.Context, ids []string) error {
		return func(ctx context.Context, ids []string) error {
			for _, ch := range chunks(ids, maxIDs) {
				err := c.call(ctx, rg, bucketMutating, "Stop", "vm "+vmList(ch), func(ctx context.Context) error {
					_, err := rg.ec2.StopInstances(ctx, &ec2.StopInstancesInput{InstanceIds: ch, Force: sdk.Bool(force)})
					return err
				})
				if err != nil {
					return err
				}
			}
			return nil
		}
	}
	rg.stop = &batcher{clk: c.clk, send: stop(false)}
	rg.forceStop = &batcher{clk: c.clk, send: stop(true)}
	rg.start = &batcher{clk: c.clk, send: func(ctx context.Context, ids []string) error {
		for _, ch := range chunks(ids, maxIDs) {
			err := c.call(ctx, rg, bucketStartRun, "Start", "vm "+vmList(ch), func(ctx context.Context) error {
				_, err := rg.ec2.StartInstances(ctx, &ec2.StartInstancesInput{InstanceIds: ch})
				return err
			})
			if err != nil {
				return err
			}
		}
		return nil
	}}
}

// states reads the instances' states; ErrNotFound names missing ones.
func (c *core) states(ctx context.Context, rg *regional, op string, want []string) (map[string]ec2types.Instance, error) {
	is, err := c.describeInstances(ctx, rg, op, fmt.Sprintf("%d VMs in %s", len(want), rg.region), want)
	if err != nil {
		return nil, err
	}
	out := map[string]ec2types.Instance{}
	for _, i := range is {
		if !gone(i) {
			out[sdk.ToString(i.InstanceId)] = i
		}
	}
	var missing []string
	for _, id := range want {
		if _, ok := out[id]; !ok {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, providers.Errorf(providers.ErrNotFound, op, "vm "+vmList(missing), "no such instance in %s; nothing was changed", rg.region)
	}
	return out, nil
}

// Stop implements providers.Power: per region, the running instances join
// the region's stop batch — one StopInstances call per 1000 instances for
// every caller within the batch window — then it waits until all report
// stopped. Pending
// ones are stopped once running; stopping and stopped ones are left alone.
func (p power) Stop(ctx context.Context, vms []providers.VMRef, force bool) error {
	groups, err := p.byRegion("Stop", vms)
	if err != nil {
		return err
	}
	for rg, refs := range groups {
		asked := map[string]bool{}
		err := p.poll(ctx, func() (bool, error) {
			st, err := p.states(ctx, rg, "Stop", ids(refs))
			if err != nil {
				return false, err
			}
			var run []string
			done := true
			for _, id := range ids(refs) {
				switch powerOf(st[id]) {
				case inventory.PowerStopped:
					continue
				case inventory.PowerRunning:
					if !asked[id] {
						run = append(run, id)
					}
				}
				done = false
			}
			if len(run) > 0 {
				b := rg.stop
				if force {
					b = rg.forceStop
				}
				if err := b.do(ctx, run); err != nil {
					return false, err
				}
				for _, id := range run {
					asked[id] = true
				}
			}
			return done, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Start implements providers.Power: it waits for stopping instances and
// attaching root volumes, starts the stopped ones in one StartInstances
// call per 1000, and waits until all report running. ErrConflict for an
// instance with no root volume.
func (p power) Start(ctx context.Context, vms []providers.VMRef) error {
	groups, err := p.byRegion("Start", vms)
	if err != nil {
		return err
	}
	for rg, refs := range groups {
		asked := map[string]bool{}
		err := p.poll(ctx, func() (bool, error) {
			st, err := p.states(ctx, rg, "Start", ids(refs))
			if err != nil {
				return false, err
			}
			var start []string
			done := true
			for _, id := range ids(refs) {
				i := st[id]
				switch powerOf(i) {
				case inventory.PowerRunning:
					continue
				case inventory.PowerStopped:
					root, attaching := rootVolume(i)
					if root == "" {
						return false, providers.Errorf(providers.ErrConflict, "Start", "vm "+id,
							"no volume at its root device %s; attach a boot disk first", sdk.ToString(i.RootDeviceName))
					}
					if !attaching && !asked[id] {
						start = append(start, id)
					}
				}
				done = false
			}
			if len(start) > 0 {
				err := rg.start.do(ctx, start)
				if errors.Is(err, providers.ErrConflict) {
					return false, nil // a state changed under us: look again
				}
				if err != nil {
					return false, err
				}
				for _, id := range start {
					asked[id] = true
				}
			}
			return done, nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// Restart implements providers.Power as a hard reset that batches: a
// forced stop, then a start, each joining the region's batch of VMs being
// stopped or started at about the same time — the VMs a run restarts
// together share one StopInstances and one StartInstances call, where
// RebootInstances would cost one call per VM (and, for a guest that does
// not shut down, waits minutes before it hard-reboots). A stop and start
// also moves an impaired instance to healthy hardware. ErrConflict when
// the instance is not running. If the process dies between the stop and
// the start, the VM is left stopped: a later Restart returns ErrConflict
// and the caller's re-check sees it.
func (p power) Restart(ctx context.Context, vm providers.VMRef) error {
	_, i, err := p.instance(ctx, "Restart", vm)
	if err != nil {
		return err
	}
	if powerOf(i) != inventory.PowerRunning {
		return providers.Errorf(providers.ErrConflict, "Restart", "vm "+vm.String(), "instance is %s, not running", powerOf(i))
	}
	if err := p.Stop(ctx, []providers.VMRef{vm}, true); err != nil {
		return err
	}
	return p.Start(ctx, []providers.VMRef{vm})
}

type disks struct{ *core }

// volume reads one volume; ErrNotFound if it does not exist.
func (c *core) volume(ctx context.Context, op string, d providers.DiskRef) (*regional, ec2types.Volume, error) {
	res := "disk " + d.ID
	rg, err := c.region(op, res, firstNonEmpty(d.Region, d.Zone))
	if err != nil {
		return nil, ec2types.Volume{}, err
	}
	vs, err := c.describeVolumes(ctx, rg, op, res, []string{d.ID})
	if err != nil {
		return rg, ec2types.Volume{}, err
	}
	v, ok := vs[d.ID]
	if !ok {
		return rg, v, providers.Errorf(providers.ErrNotFound, op, res, "no such volume in %s", rg.region)
	}
	return rg, v, nil
}

// attachment returns the volume's attachment (nil if none).
func attachment(v ec2types.Volume) *ec2types.VolumeAttachment {
	for i := range v.Attachments {
		return &v.Attachments[i]
	}
	return nil
}

// diskState renders a volume of region without Boot (which needs its
// instance): attached while an attachment is attaching or attached, not
// once it is detaching.
func diskState(region string, v ec2types.Volume) providers.DiskState {
	ds := providers.DiskState{Ref: providers.DiskRef{ID: sdk.ToString(v.VolumeId), Region: region, Zone: sdk.ToString(v.AvailabilityZone)},
		SizeGB: int(sdk.ToInt32(v.Size)), Tags: tagMap(v.Tags)}
	if a := attachment(v); a != nil && a.State != ec2types.VolumeAttachmentStateDetaching && a.State != ec2types.VolumeAttachmentStateDetached {
		ds.AttachedTo = sdk.ToString(a.InstanceId)
	}
	return ds
}

// volumeStates renders volumes of region rg by ID, each boot when attached at
// its instance's root device: one DescribeInstances of the instances they
// are attached to.
func (c *core) volumeStates(ctx context.Context, rg *regional, op string, vs map[string]ec2types.Volume) (map[string]providers.DiskState, error) {
	var attached []string
	for _, v := range vs {
		if ds := diskState(rg.region, v); ds.AttachedTo != "" && !slices.Contains(attached, ds.AttachedTo) {
			attached = append(attached, ds.AttachedTo)
		}
	}
	roots := map[string]string{}
	if len(attached) > 0 {
		slices.Sort(attached)
		is, err := c.describeInstances(ctx, rg, op, "vm "+strings.Join(attached, ", "), attached)
		if err != nil {
			return nil, err
		}
		for _, i := range is {
			roots[sdk.ToString(i.InstanceId)] = sdk.ToString(i.RootDeviceName)
		}
	}
	out := make(map[string]providers.DiskState, len(vs))
	for id, v := range vs {
		ds := diskState(rg.region, v)
		if a := attachment(v); ds.AttachedTo != "" {
			root, ok := roots[ds.AttachedTo]
			if !ok {
				root = "/dev/sda1"
			}
			ds.Boot = sdk.ToString(a.Device) == root
		}
		out[id] = ds
	}
	return out, nil
}

// Describe implements providers.Disks.
func (d disks) Describe(ctx context.Context, ref providers.DiskRef) (providers.DiskState, error) {
	rg, v, err := d.volume(ctx, "Describe", ref)
	if err != nil {
		return providers.DiskState{}, err
	}
	ss, err := d.volumeStates(ctx, rg, "Describe", map[string]ec2types.Volume{ref.ID: v})
	return ss[ref.ID], err
}

// idsByRegion groups the IDs of items by region (where names an item's
// region and ID), the regions in the order first seen.
func idsByRegion[T any](items []T, where func(T) (region, id string)) ([]string, map[string][]string) {
	ids := map[string][]string{}
	var regions []string
	for _, it := range items {
		r, id := where(it)
		if _, ok := ids[r]; !ok {
			regions = append(regions, r)
		}
		ids[r] = append(ids[r], id)
	}
	return regions, ids
}

// DescribeMany reads many volumes (coalesce.ManyDescriber): per region,
// one DescribeVolumes filtered by volume-id, then one DescribeInstances of
// the instances they are attached to (for Boot). A volume that does not
// exist is absent from the result.
func (d disks) DescribeMany(ctx context.Context, refs []providers.DiskRef) (map[string]providers.DiskState, error) {
	regions, byRegion := idsByRegion(refs, func(r providers.DiskRef) (string, string) { return firstNonEmpty(r.Region, r.Zone), r.ID })
	out := make(map[string]providers.DiskState, len(refs))
	for _, k := range regions {
		ids := byRegion[k]
		res := "disk " + strings.Join(ids, ", ")
		rg, err := d.region("Describe", res, k)
		if err != nil {
			return nil, err
		}
		vs, err := d.describeVolumes(ctx, rg, "Describe", res, ids)
		if err != nil {
			return nil, err
		}
		ss, err := d.volumeStates(ctx, rg, "Describe", vs)
		if err != nil {
			return nil, err
		}
		maps.Copy(out, ss)
	}
	return out, nil
}

// waitVolume waits until the volume is in one of states.
func (c *core) waitVolume(ctx context.Context, op string, ref providers.DiskRef, states ...ec2types.VolumeState) (ec2types.Volume, error) {
	var v ec2types.Volume
	err := c.poll(ctx, func() (bool, error) {
		var err error
		_, v, err = c.volume(ctx, op, ref)
		if err != nil {
			return false, err
		}
		if a := attachment(v); a != nil && (a.State == ec2types.VolumeAttachmentStateAttaching || a.State == ec2types.VolumeAttachmentStateDetaching) {
			return false, nil
		}
		return slices.Contains(states, v.State), nil
	})
	return v, err
}

// Snapshot implements providers.Disks: CreateSnapshot tagged (waiting for
// a volume still being created first), then it waits until completed.
func (d disks) Snapshot(ctx context.Context, ref providers.DiskRef, tags providers.Tags) (providers.SnapshotRef, error) {
	rg, _, err := d.volume(ctx, "Snapshot", ref)
	if err != nil {
		return providers.SnapshotRef{}, err
	}
	if _, err := d.waitVolume(ctx, "Snapshot", ref, ec2types.VolumeStateAvailable, ec2types.VolumeStateInUse); err != nil {
		return providers.SnapshotRef{}, err
	}
	var out *ec2.CreateSnapshotOutput
	err = d.call(ctx, rg, bucketSnapVol, "Snapshot", "disk "+ref.ID, func(ctx context.Context) (err error) {
		out, err = rg.ec2.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: sdk.String(ref.ID),
			Description:       sdk.String("fixfleet: before changing " + ref.ID),
			TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeSnapshot, tags)}})
		return err
	})
	if err != nil {
		return providers.SnapshotRef{}, err
	}
	s := providers.SnapshotRef{ID: sdk.ToString(out.SnapshotId), Region: rg.region, Zone: ref.Zone}
	return s, d.waitSnapshot(ctx, rg, "Snapshot", s.ID)
}

func (c *core) waitSnapshot(ctx context.Context, rg *regional, op, id string) error {
	return c.poll(ctx, func() (bool, error) {
		ss, err := c.describeSnapshots(ctx, rg, op, "snapshot "+id, filter("snapshot-id", id), nil)
		if err != nil {
			return false, err
		}
		if len(ss) == 0 {
			return false, providers.Errorf(providers.ErrNotFound, op, "snapshot "+id, "no such snapshot")
		}
		if ss[0].State == ec2types.SnapshotStateError {
			return false, providers.Errorf(providers.ErrPermanent, op, "snapshot "+id, "snapshot failed: %s", sdk.ToString(ss[0].StateMessage))
		}
		return ss[0].State == ec2types.SnapshotStateCompleted, nil
	})
}

// FindSnapshots implements providers.Disks (every region in scope).
func (d disks) FindSnapshots(ctx context.Context, tags providers.Tags) ([]providers.SnapshotState, error) {
	var out []providers.SnapshotState
	for _, r := range d.order {
		rg := d.regions[r]
		fs := tagFilters(tags)
		if len(fs) == 0 {
			fs = []ec2types.Filter{filter("owner-id", d.owner)}
		}
		ss, err := d.describeSnapshots(ctx, rg, "FindSnapshots", "snapshots in "+r, fs[0], nil, fs[1:]...)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			out = append(out, providers.SnapshotState{Ref: providers.SnapshotRef{ID: sdk.ToString(s.SnapshotId), Region: r},
				DiskID: sdk.ToString(s.VolumeId), Ready: s.State == ec2types.SnapshotStateCompleted, Tags: tagMap(s.Tags)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref.ID < out[j].Ref.ID })
	return out, nil
}

// FindDisks implements providers.Disks (every region in scope).
func (d disks) FindDisks(ctx context.Context, tags providers.Tags) ([]providers.DiskState, error) {
	var out []providers.DiskState
	for _, r := range d.order {
		rg := d.regions[r]
		vs, err := d.describeVolumes(ctx, rg, "FindDisks", "volumes in "+r, nil, tagFilters(tags)...)
		if err != nil {
			return nil, err
		}
		ss, err := d.volumeStates(ctx, rg, "FindDisks", vs)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Ref.ID < out[j].Ref.ID })
	return out, nil
}

// Detach implements providers.Disks: DetachVolume, then it waits until
// the volume is available. A volume not attached to vm is fine.
func (d disks) Detach(ctx context.Context, vm providers.VMRef, ref providers.DiskRef) error {
	rg, v, err := d.volume(ctx, "Detach", ref)
	if err != nil {
		return err
	}
	if a := attachment(v); a != nil && sdk.ToString(a.InstanceId) == vm.ID && a.State != ec2types.VolumeAttachmentStateDetaching {
		if a.State == ec2types.VolumeAttachmentStateAttaching {
			if _, err := d.waitVolume(ctx, "Detach", ref, ec2types.VolumeStateInUse, ec2types.VolumeStateAvailable); err != nil {
				return err
			}
		}
		err := d.call(ctx, rg, bucketMutating, "Detach", "disk "+ref.ID+" from vm "+vm.String(), func(ctx context.Context) error {
			_, err := rg.ec2.DetachVolume(ctx, &ec2.DetachVolumeInput{VolumeId: sdk.String(ref.ID), InstanceId: sdk.String(vm.ID)})
			return err
		})
		if err != nil {
			return err
		}
	} else if a == nil || sdk.ToString(a.InstanceId) != vm.ID {
		return nil
	}
	_, err = d.waitVolume(ctx, "Detach", ref, ec2types.VolumeStateAvailable)
	return err
}

// Attach implements providers.Disks: at the instance's root device when
// boot, else at the first free /dev/xvd[f-p]; then it waits until
// attached. Same availability zone only.
func (d disks) Attach(ctx context.Context, vm providers.VMRef, ref providers.DiskRef, boot bool) error {
	res := "disk " + ref.ID + " to vm " + vm.String()
	unlock, err := d.devLock.Lock(ctx, vm.ID, ref.ID)
	if err != nil {
		return fmt.Errorf("Attach %s: %w", res, err)
	}
	defer unlock()
	for attempt := 0; ; attempt++ {
		rg, v, err := d.volume(ctx, "Attach", ref)
		if err != nil {
			return err
		}
		_, i, err := d.instance(ctx, "Attach", vm)
		if err != nil {
			return err
		}
		root := sdk.ToString(i.RootDeviceName)
		if a := attachment(v); a != nil && a.State != ec2types.VolumeAttachmentStateDetaching {
			if sdk.ToString(a.InstanceId) == vm.ID && (sdk.ToString(a.Device) == root) == boot {
				_, err := d.waitVolume(ctx, "Attach", ref, ec2types.VolumeStateInUse)
				return err
			}
			return providers.Errorf(providers.ErrConflict, "Attach", res, "volume is attached to %s at %s; detach it first", sdk.ToString(a.InstanceId), sdk.ToString(a.Device))
		}
		if z := zoneOf(i); z != sdk.ToString(v.AvailabilityZone) {
			return providers.Errorf(providers.ErrConflict, "Attach", res, "volume is in %s, instance in %s", sdk.ToString(v.AvailabilityZone), z)
		}
		if v, err = d.waitVolume(ctx, "Attach", ref, ec2types.VolumeStateAvailable); err != nil {
			return err
		}
		dev := root
		if !boot {
			used := map[string]bool{}
			for _, m := range i.BlockDeviceMappings {
				used[strings.TrimPrefix(sdk.ToString(m.DeviceName), "/dev/")] = true
			}
			dev = ""
			for _, ch := range dataDevice {
				if n := "xvd" + string(ch); !used[n] && !used["sd"+string(ch)] {
					dev = n
					break
				}
			}
			if dev == "" {
				return providers.Errorf(providers.ErrConflict, "Attach", res, "no free device name xvdf-xvdp on the instance")
			}
		}
		err = d.call(ctx, rg, bucketMutating, "Attach", res, func(ctx context.Context) error {
			_, err := rg.ec2.AttachVolume(ctx, &ec2.AttachVolumeInput{VolumeId: sdk.String(ref.ID), InstanceId: sdk.String(vm.ID), Device: sdk.String(dev)})
			return err
		})
		if errors.Is(err, providers.ErrPermanent) && strings.Contains(err.Error(), "already in use") && attempt < 3 {
			continue // someone took the device: look again
		}
		if err != nil {
			return err
		}
		_, err = d.waitVolume(ctx, "Attach", ref, ec2types.VolumeStateInUse)
		return err
	}
}

// FromSnapshot implements providers.Disks: CreateVolume (gp3) tagged in
// zone, after the snapshot completes; then it waits until available.
func (d disks) FromSnapshot(ctx context.Context, s providers.SnapshotRef, zone string, tags providers.Tags) (providers.DiskRef, error) {
	rg, err := d.region("FromSnapshot", "snapshot "+s.ID, firstNonEmpty(s.Region, zone))
	if err != nil {
		return providers.DiskRef{}, err
	}
	if err := d.waitSnapshot(ctx, rg, "FromSnapshot", s.ID); err != nil {
		return providers.DiskRef{}, err
	}
	return d.createVolume(ctx, rg, "FromSnapshot", s.ID, zone, tags)
}

func (c *core) createVolume(ctx context.Context, rg *regional, op, snap, zone string, tags providers.Tags) (providers.DiskRef, error) {
	var out *ec2.CreateVolumeOutput
	err := c.call(ctx, rg, bucketSnapVol, op, "snapshot "+snap+" in "+zone, func(ctx context.Context) (err error) {
		out, err = rg.ec2.CreateVolume(ctx, &ec2.CreateVolumeInput{SnapshotId: sdk.String(snap), AvailabilityZone: sdk.String(zone),
			VolumeType: ec2types.VolumeTypeGp3, TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeVolume, tags)}})
		return err
	})
	if err != nil {
		return providers.DiskRef{}, err
	}
	ref := providers.DiskRef{ID: sdk.ToString(out.VolumeId), Region: rg.region, Zone: zone}
	_, err = c.waitVolume(ctx, op, ref, ec2types.VolumeStateAvailable)
	return ref, err
}

var _ providers.CopyDeleter = disks{}

// DeleteCopy implements providers.CopyDeleter: it deletes volume ref, a
// copy a run made, only while the volume carries every one of tags and no
// instance holds it, and waits until EC2 reports it gone.
//
// No tags given is ErrConflict before any call. Then, polling on the
// provider's clock (PollInterval), each look reads the volume with
// DescribeVolumes: gone (or deleted) is done, so a retry after a
// DeleteVolume whose reply was lost is fine; deleting is waited for; a
// volume missing one of tags, or attached or attaching to an instance, is
// ErrConflict naming it, and nothing is deleted; one still being created
// or detached is waited for. Otherwise it calls DeleteVolume once (EC2's
// mutating bucket), whose InvalidVolume.NotFound is done too (another
// caller deleted it first). EC2's errors are classified as every call's
// (VolumeInUse and IncorrectState, a state that changed since the look:
// ErrConflict). A region outside the account's scope is ErrNotFound.
func (d disks) DeleteCopy(ctx context.Context, ref providers.DiskRef, tags providers.Tags) error {
	const op = "DeleteCopy"
	res := "disk " + ref.ID
	if len(tags) == 0 {
		return providers.Errorf(providers.ErrConflict, op, res, "no tags given: fixfleet deletes only the copies it tagged")
	}
	rg, err := d.region(op, res, firstNonEmpty(ref.Region, ref.Zone))
	if err != nil {
		return err
	}
	asked := false
	return d.poll(ctx, func() (bool, error) {
		_, v, err := d.volume(ctx, op, ref)
		switch {
		case errors.Is(err, providers.ErrNotFound):
			return true, nil
		case err != nil:
			return false, err
		case v.State == ec2types.VolumeStateDeleted:
			return true, nil
		case v.State == ec2types.VolumeStateDeleting:
			return false, nil
		}
		if err := providers.DeletableCopy(op, diskState(rg.region, v), tags); err != nil {
			return false, err
		}
		detaching := attachment(v) != nil && attachment(v).State == ec2types.VolumeAttachmentStateDetaching
		if v.State == ec2types.VolumeStateCreating || detaching || asked {
			return false, nil // still being created or detached; or deleted, not yet shown so
		}
		err = d.call(ctx, rg, bucketMutating, op, res, func(ctx context.Context) error {
			_, err := rg.ec2.DeleteVolume(ctx, &ec2.DeleteVolumeInput{VolumeId: sdk.String(ref.ID)})
			return err
		})
		if errors.Is(err, providers.ErrNotFound) {
			return true, nil
		}
		if err != nil {
			return false, err
		}
		asked = true
		return false, nil
	})
}

type backups struct{ *core }

// List implements providers.Backups: the completed snapshots of the VM's
// root volume (AWS Backup, CreateImage or manual), any order; ListMany of
// the one VM. Errors: ErrNotFound when the instance does not exist.
func (b backups) List(ctx context.Context, vm providers.VMRef) ([]inventory.Backup, error) {
	got, err := b.ListMany(ctx, []providers.VMRef{vm})
	if err != nil {
		return nil, err
	}
	bs, ok := got[vm.ID]
	if !ok {
		return nil, providers.Errorf(providers.ErrNotFound, "Backups", "vm "+vm.String(), "no such instance")
	}
	return bs, nil
}

// ListMany lists the backups of many VMs (the assessment's batched
// listing): per region, one DescribeInstances for their root volumes, then
// one DescribeSnapshots of those volumes' completed snapshots (each filter
// chunked as EC2 limits it). A VM that does not exist is absent from the
// result.
func (b backups) ListMany(ctx context.Context, vms []providers.VMRef) (map[string][]inventory.Backup, error) {
	regions, byRegion := idsByRegion(vms, func(vm providers.VMRef) (string, string) { return firstNonEmpty(vm.Region, vm.Zone), vm.ID })
	out := make(map[string][]inventory.Backup, len(vms))
	for _, k := range regions {
		ids := byRegion[k]
		res := "vm " + strings.Join(ids, ", ")
		rg, err := b.region("Backups", res, k)
		if err != nil {
			return nil, err
		}
		is, err := b.describeInstances(ctx, rg, "Backups", res, ids)
		if err != nil {
			return nil, err
		}
		ofVolume := map[string]string{} // root volume -> instance
		var roots []string
		for _, i := range is {
			if gone(i) {
				continue
			}
			id := sdk.ToString(i.InstanceId)
			out[id] = nil
			if root, _ := rootVolume(i); root != "" {
				ofVolume[root] = id
				roots = append(roots, root)
			}
		}
		if len(roots) == 0 {
			continue
		}
		ss, err := b.describeSnapshots(ctx, rg, "Backups", res, filter("status", "completed"), roots)
		if err != nil {
			return nil, err
		}
		for _, s := range ss {
			if id, ok := ofVolume[sdk.ToString(s.VolumeId)]; ok {
				out[id] = append(out[id], backupOf(id, s))
			}
		}
	}
	return out, nil
}

// Restore implements providers.Backups: a new volume from the backup's
// snapshot in zone; the VM is not touched.
func (b backups) Restore(ctx context.Context, bk inventory.Backup, zone string, tags providers.Tags) (providers.DiskRef, error) {
	rg, err := b.region("Restore", "backup "+bk.ID, zone)
	if err != nil {
		return providers.DiskRef{}, err
	}
	return b.createVolume(ctx, rg, "Restore", bk.ID, zone, tags)
}

type helpers struct{ *core }

// Images implements providers.Helpers: the newest Amazon
// Windows_Server-<release>-English-Full-Base AMI per release and region (or
// the golden AMIs of options.helper_images), offered in each zone of the
// region that is in the account's scope (its configured zones, else every
// available zone DescribeAvailabilityZones lists). An AMI is regional: the
// zones of a region share its ID.
func (h helpers) Images(ctx context.Context) ([]providers.HelperImage, error) {
	var out []providers.HelperImage
	for _, r := range h.order {
		ims, err := h.images(ctx, h.regions[r])
		if err != nil {
			return nil, err
		}
		out = append(out, ims...)
	}
	return out, nil
}

func (h helpers) images(ctx context.Context, rg *regional) ([]providers.HelperImage, error) {
	res := "images in " + rg.region
	var found map[string]ec2types.Image
	var err error
	if len(h.opts.HelperImages) > 0 {
		var want []string
		for _, id := range h.opts.HelperImages {
			want = append(want, id)
		}
		found, err = h.describeImages(ctx, rg, "Images", res, want, nil)
	} else {
		found, err = h.describeImages(ctx, rg, "Images", res, nil, []ec2types.Filter{filter("name", "Windows_Server-*-English-Full-Base-*"),
			filter("platform", "windows"), filter("state", "available")}, "amazon")
	}
	if err != nil {
		return nil, err
	}
	best := map[string]ec2types.Image{} // release -> newest AMI
	for _, im := range found {
		rel := releaseOf(sdk.ToString(im.Name), "")
		for r, id := range h.opts.HelperImages {
			if id == sdk.ToString(im.ImageId) {
				rel = r
			}
		}
		if rel == "" {
			continue
		}
		if b, ok := best[rel]; !ok || sdk.ToString(im.CreationDate) > sdk.ToString(b.CreationDate) {
			best[rel] = im
		}
	}
	if len(best) == 0 {
		return nil, nil
	}
	zones, err := h.zones(ctx, rg)
	if err != nil {
		return nil, err
	}
	var out []providers.HelperImage
	for rel, im := range best {
		v := inventory.WindowsVersion{Release: rel}
		if m := buildRE.FindStringSubmatch(sdk.ToString(im.Description)); m != nil {
			v.Build = m[1]
		}
		for _, z := range zones {
			out = append(out, providers.HelperImage{Region: rg.region, Zone: z, Windows: v, ImageID: sdk.ToString(im.ImageId)})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Zone+out[i].Windows.Release < out[j].Zone+out[j].Windows.Release
	})
	return out, nil
}

// zones returns the zones of rg in the account's scope: its configured
// zones of that region, else the region's available zones, asked of
// DescribeAvailabilityZones once and remembered.
func (c *core) zones(ctx context.Context, rg *regional) ([]string, error) {
	if zs := c.zonesIn(rg.region); len(zs) > 0 {
		return zs, nil
	}
	c.mu.Lock()
	zs, ok := c.azs[rg.region]
	c.mu.Unlock()
	if ok {
		return zs, nil
	}
	var page *ec2.DescribeAvailabilityZonesOutput
	err := c.call(ctx, rg, bucketNonMutating, "Zones", "zones of "+rg.region, func(ctx context.Context) (err error) {
		page, err = rg.ec2.DescribeAvailabilityZones(ctx, &ec2.DescribeAvailabilityZonesInput{
			Filters: []ec2types.Filter{filter("state", "available"), filter("zone-type", "availability-zone")}})
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, z := range page.AvailabilityZones {
		if n := sdk.ToString(z.ZoneName); n != "" {
			zs = append(zs, n)
		}
	}
	sort.Strings(zs)
	c.mu.Lock()
	c.azs[rg.region] = zs
	c.mu.Unlock()
	return zs, nil
}

// Acquire implements providers.Helpers: a helper tagged fixfleet-role=helper,
// fixfleet-windows=<release> and tags in zone (started if stopped), else one
// launched with RunInstances from the zone's image; then it waits until
// running.
func (h helpers) Acquire(ctx context.Context, zone string, win inventory.WindowsVersion, tags providers.Tags) (providers.VMRef, error) {
	res := fmt.Sprintf("helper (Windows Server %s in %s)", win.Release, zone)
	rg, err := h.region("Acquire", res, zone)
	if err != nil {
		return providers.VMRef{}, err
	}
	all := providers.Tags{providers.TagRole: roleHelper, tagWindows: win.Release}
	for k, v := range tags {
		all[k] = v
	}
	is, err := h.describeInstances(ctx, rg, "Acquire", res, nil, append(tagFilters(all), filter("availability-zone", zone),
		filter("instance-state-name", "pending", "running", "stopping", "stopped"))...)
	if err != nil {
		return providers.VMRef{}, err
	}
	var ref providers.VMRef
	if len(is) > 0 {
		sort.Slice(is, func(a, b int) bool {
			return powerOf(is[a]) == inventory.PowerRunning && powerOf(is[b]) != inventory.PowerRunning
		})
		i := is[0]
		ref = providers.VMRef{ID: sdk.ToString(i.InstanceId), Region: rg.region, Zone: zone, Name: tagMap(i.Tags)["Name"]}
	} else {
		ims, err := h.images(ctx, rg)
		if err != nil {
			return providers.VMRef{}, err
		}
		image := ""
		for _, im := range ims {
			if im.Zone == zone && im.Windows.Release == win.Release {
				image = im.ImageID
			}
		}
		if image == "" {
			return providers.VMRef{}, providers.Errorf(providers.ErrNotFound, "Acquire", res, "no Windows Server %s image for zone %s", win.Release, zone)
		}
		all["Name"] = "fixfleet-helper-" + win.Release + "-" + zone
		in := &ec2.RunInstancesInput{ImageId: sdk.String(image), InstanceType: ec2types.InstanceType(h.opts.HelperInstanceType),
			MinCount: sdk.Int32(1), MaxCount: sdk.Int32(1), ClientToken: sdk.String(newToken()),
			Placement: &ec2types.Placement{AvailabilityZone: sdk.String(zone)}, SecurityGroupIds: h.opts.HelperSecurityGroups,
			TagSpecifications: []ec2types.TagSpecification{tagSpec(ec2types.ResourceTypeInstance, all), tagSpec(ec2types.ResourceTypeVolume, all)}}
		if sn := h.opts.HelperSubnets[zone]; sn != "" {
			in.SubnetId = sdk.String(sn)
		}
		var out *ec2.RunInstancesOutput
		if err := h.call(ctx, rg, bucketStartRun, "Acquire", res, func(ctx context.Context) (err error) {
			out, err = rg.ec2.RunInstances(ctx, in)
			return err
		}); err != nil {
			return providers.VMRef{}, err
		}
		if len(out.Instances) == 0 {
			return providers.VMRef{}, providers.Errorf(providers.ErrUnavailable, "Acquire", res, "RunInstances returned no instance")
		}
		ref = providers.VMRef{ID: sdk.ToString(out.Instances[0].InstanceId), Region: rg.region, Zone: zone, Name: all["Name"]}
	}
	return ref, power(h).Start(ctx, []providers.VMRef{ref})
}

// FindHelpers lists the instances, in every region in scope, that carry
// all of tags and are not terminated: the helper pool's sweep of a run's
// helpers it does not know (one whose RunInstances reply was lost, one a
// killed process made). Read-only.
func (h helpers) FindHelpers(ctx context.Context, tags providers.Tags) ([]providers.VMRef, error) {
	var out []providers.VMRef
	for _, r := range h.order {
		is, err := h.describeInstances(ctx, h.regions[r], "FindHelpers", "helpers in "+r, nil,
			append(tagFilters(tags), filter("instance-state-name", "pending", "running", "stopping", "stopped"))...)
		if err != nil {
			return nil, err
		}
		for _, i := range is {
			out = append(out, providers.VMRef{ID: sdk.ToString(i.InstanceId), Region: r, Zone: zoneOf(i), Name: tagMap(i.Tags)["Name"]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// Release implements providers.Helpers: TerminateInstances, refused while
// any volume but the helper's own root (the one deleted on termination) is
// attached; then it waits until the instance is gone.
func (h helpers) Release(ctx context.Context, vm providers.VMRef) error {
	res := "helper " + vm.String()
	rg, i, err := h.instance(ctx, "Release", vm)
	if errors.Is(err, providers.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if tagMap(i.Tags)[providers.TagRole] != roleHelper {
		return providers.Errorf(providers.ErrPermanent, "Release", res, "not a fixfleet helper (no tag %s=%s); only helpers are ever terminated", providers.TagRole, roleHelper)
	}
	var foreign []string
	for _, m := range i.BlockDeviceMappings {
		if m.Ebs == nil {
			continue
		}
		own := sdk.ToString(m.DeviceName) == sdk.ToString(i.RootDeviceName) && sdk.ToBool(m.Ebs.DeleteOnTermination)
		if !own {
			foreign = append(foreign, sdk.ToString(m.Ebs.VolumeId)+" at "+sdk.ToString(m.DeviceName))
		}
	}
	if len(foreign) > 0 {
		return providers.Errorf(providers.ErrConflict, "Release", res, "volumes still attached: %s; detach them first", strings.Join(foreign, ", "))
	}
	if err := h.call(ctx, rg, bucketMutating, "Release", res, func(ctx context.Context) error {
		_, err := rg.ec2.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{vm.ID}})
		return err
	}); err != nil && !errors.Is(err, providers.ErrNotFound) {
		return err
	}
	return h.poll(ctx, func() (bool, error) {
		_, _, err := h.instance(ctx, "Release", vm)
		if errors.Is(err, providers.ErrNotFound) {
			return true, nil
		}
		return false, err
	})
}
