package aws_test

import (
	"errors"
	"strings"
	"testing"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// copyFixture is a fixture with a VM and a detached copy of its root
// volume tagged tags.
type copyFixture struct {
	*fixture
	vm   inventory.VM
	copy providers.DiskRef
	tags providers.Tags
}

func newCopyFixture(t *testing.T, faults *world.Faults, extra string) *copyFixture {
	t.Helper()
	f := newFixture(t, 6, faults, extra)
	c := ctx(t)
	vms, err := f.p.Enumerator.List(c)
	if err != nil {
		t.Fatal(err)
	}
	vm := vms[0]
	tags := providers.Tags{providers.TagRun: "run1", providers.TagVM: vm.ID, providers.TagRole: "os-disk-copy"}
	snap, err := f.p.Disks.Snapshot(c, providers.DiskRef{ID: vm.OSDisk.ID, Region: vm.Region, Zone: vm.Zone}, tags)
	if err != nil {
		t.Fatal(err)
	}
	cp, err := f.p.Disks.FromSnapshot(c, snap, vm.Zone, tags)
	if err != nil {
		t.Fatal(err)
	}
	return &copyFixture{fixture: f, vm: vm, copy: cp, tags: tags}
}

// exists reports whether the world still holds the volume shown as id.
func (f *copyFixture) exists(t *testing.T, id string) bool {
	t.Helper()
	wid, _ := f.srv.WorldID(id)
	sc := f.w.Export()
	for _, d := range sc.Disks {
		if d.ID == wid {
			return true
		}
	}
	for _, v := range append(sc.VMs, sc.Helpers...) {
		if v.OSDisk != nil && v.OSDisk.ID == wid {
			return true
		}
	}
	return false
}

func deleter(t *testing.T, p *providers.Provider) providers.CopyDeleter {
	t.Helper()
	del, ok := p.Disks.(providers.CopyDeleter)
	if !ok {
		t.Fatal("the AWS provider's Disks is not a providers.CopyDeleter")
	}
	return del
}

// TestDeleteCopyRefuses: DeleteCopy refuses, with ErrConflict naming the
// volume, a call without tags, a copy missing one of them, a VM's own root
// volume and an attached copy, and deletes none of them; an unknown
// volume is already gone.
func TestDeleteCopyRefuses(t *testing.T) {
	f := newCopyFixture(t, nil, "")
	c := ctx(t)
	del := deleter(t, f.p)
	root := providers.DiskRef{ID: f.vm.OSDisk.ID, Region: f.vm.Region, Zone: f.vm.Zone}
	other := providers.Tags{providers.TagRun: "run2", providers.TagVM: f.vm.ID, providers.TagRole: "os-disk-copy"}
	more := providers.Tags{"extra": "x"}
	for k, v := range f.tags {
		more[k] = v
	}
	for _, tc := range []struct {
		name string
		d    providers.DiskRef
		tags providers.Tags
	}{
		{"no tags", f.copy, nil},
		{"empty tags", f.copy, providers.Tags{}},
		{"another run's tags", f.copy, other},
		{"a tag the copy lacks", f.copy, more},
		{"the VM's own root volume", root, f.tags},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := del.DeleteCopy(c, tc.d, tc.tags)
			if !errors.Is(err, providers.ErrConflict) || !strings.Contains(err.Error(), tc.d.ID) {
				t.Fatalf("DeleteCopy = %v, want ErrConflict naming %s", err, tc.d.ID)
			}
		})
	}
	if err := f.p.Disks.Attach(c, providers.Ref(f.vm), f.copy, false); err != nil {
		t.Fatal(err)
	}
	err := del.DeleteCopy(c, f.copy, f.tags)
	if !errors.Is(err, providers.ErrConflict) || !strings.Contains(err.Error(), f.copy.ID) || !strings.Contains(err.Error(), f.vm.ID) {
		t.Fatalf("DeleteCopy of an attached copy = %v, want ErrConflict naming %s and %s", err, f.copy.ID, f.vm.ID)
	}
	if n := f.srv.Stats().Calls["DeleteVolume"]; n != 0 {
		t.Errorf("DeleteVolume called %d times for refused deletions", n)
	}
	for _, id := range []string{f.copy.ID, root.ID} {
		if !f.exists(t, id) {
			t.Errorf("volume %s was deleted", id)
		}
	}
	if err := del.DeleteCopy(c, providers.DiskRef{ID: "vol-0123456789abcdef0", Zone: awsZones[0]}, f.tags); err != nil {
		t.Errorf("DeleteCopy of an unknown volume = %v, want nil (already gone)", err)
	}
	if err := del.DeleteCopy(c, providers.DiskRef{ID: f.copy.ID, Region: "us-east-1"}, f.tags); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("DeleteCopy in a region outside the account = %v, want ErrNotFound", err)
	}
}

// TestDeleteCopy deletes a detached copy and a copy still being created
// (it waits), each once; a second DeleteCopy is fine, and Describe then
// says not found.
func TestDeleteCopy(t *testing.T) {
	f := newCopyFixture(t, nil, "")
	c := ctx(t)
	del := deleter(t, f.p)
	// A copy still being created: CreateVolume straight at the emulator.
	snaps, err := f.p.Disks.FindSnapshots(c, f.tags)
	if err != nil || len(snaps) != 1 {
		t.Fatalf("FindSnapshots = %+v, %v", snaps, err)
	}
	out, err := ec2.NewFromConfig(rawConfig(f.srv)).CreateVolume(c, &ec2.CreateVolumeInput{SnapshotId: sdk.String(snaps[0].Ref.ID),
		AvailabilityZone: sdk.String(f.vm.Zone), TagSpecifications: []ec2types.TagSpecification{{ResourceType: ec2types.ResourceTypeVolume,
			Tags: []ec2types.Tag{{Key: sdk.String(providers.TagRun), Value: sdk.String("run1")}}}}})
	if err != nil || out.State != ec2types.VolumeStateCreating {
		t.Fatalf("CreateVolume = %+v, %v; want a volume being created", out, err)
	}
	creating := providers.DiskRef{ID: sdk.ToString(out.VolumeId), Zone: f.vm.Zone}
	for _, d := range []providers.DiskRef{f.copy, creating} {
		for i := range 2 {
			if err := del.DeleteCopy(c, d, providers.Tags{providers.TagRun: "run1"}); err != nil {
				t.Fatalf("DeleteCopy %s (call %d): %v", d.ID, i+1, err)
			}
		}
		if f.exists(t, d.ID) {
			t.Errorf("volume %s is still in the world after DeleteCopy", d.ID)
		}
		if _, err := f.p.Disks.Describe(c, d); !errors.Is(err, providers.ErrNotFound) {
			t.Errorf("Describe of deleted %s = %v, want ErrNotFound", d.ID, err)
		}
	}
	if n := f.srv.Stats().Calls["DeleteVolume"]; n != 2 {
		t.Errorf("DeleteVolume called %d times for two copies deleted twice each, want 2", n)
	}
	// The emulator's answer to an attached root volume, read by the SDK.
	_, err = ec2.NewFromConfig(rawConfig(f.srv)).DeleteVolume(c, &ec2.DeleteVolumeInput{VolumeId: sdk.String(f.vm.OSDisk.ID)})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "VolumeInUse" {
		t.Errorf("DeleteVolume of an attached root volume = %v, want VolumeInUse", err)
	}
}

// TestDeleteCopyReplyLost: DeleteVolume's reply is lost after the world
// deleted the copy. With the SDK's retries, its second attempt answers
// InvalidVolume.NotFound and DeleteCopy succeeds at once; with none, the
// first DeleteCopy is ErrUnavailable and the caller's retry finds the copy
// gone: nil.
func TestDeleteCopyReplyLost(t *testing.T) {
	faults := func() *world.Faults {
		return &world.Faults{Throttle: world.ThrottleOff, Latency: 1, DropReplies: []world.DropReply{{Op: "DeleteDisk", Nth: 1}}}
	}
	t.Run("SDK retries", func(t *testing.T) {
		f := newCopyFixture(t, faults(), "")
		if err := deleter(t, f.p).DeleteCopy(ctx(t), f.copy, f.tags); err != nil {
			t.Fatalf("DeleteCopy: %v", err)
		}
		st := f.srv.Stats()
		if st.Calls["DeleteVolume"] != 2 || st.Dropped == 0 {
			t.Errorf("DeleteVolume %d calls, %d dropped; want the reply dropped and one retry", st.Calls["DeleteVolume"], st.Dropped)
		}
		if f.exists(t, f.copy.ID) {
			t.Errorf("volume %s is still in the world", f.copy.ID)
		}
	})
	t.Run("caller retries", func(t *testing.T) {
		f := newCopyFixture(t, faults(), "retry_max_attempts: 1\n")
		del, c := deleter(t, f.p), ctx(t)
		err := del.DeleteCopy(c, f.copy, f.tags)
		if !errors.Is(err, providers.ErrUnavailable) || !providers.Retryable(err) || !strings.Contains(err.Error(), f.copy.ID) {
			t.Fatalf("DeleteCopy with its reply lost = %v, want ErrUnavailable naming %s", err, f.copy.ID)
		}
		if err := del.DeleteCopy(c, f.copy, f.tags); err != nil {
			t.Fatalf("DeleteCopy retried: %v, want nil", err)
		}
		if f.exists(t, f.copy.ID) {
			t.Errorf("volume %s is still in the world", f.copy.ID)
		}
	})
}
