// The provider against iaas-api-go's own in-process fake driver, written by
// the client's authors: an independent check of our reading of the API.
package sakura

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sacloud/iaas-api-go"
	"github.com/sacloud/iaas-api-go/fake"
	"github.com/sacloud/iaas-api-go/search"
	"github.com/sacloud/iaas-api-go/types"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// TestFakeDriver runs the provider against iaas-api-go's own in-process
// fake driver: an independent check of how the provider reads the API
// (power transitions, 409 on a second boot, disk connection order,
// archives from disks, lineage).
func TestFakeDriver(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	api := apis{server: fake.NewServerOp(), disk: fake.NewDiskOp(), archive: fake.NewArchiveOp()}
	const zone = "is1a"
	// A public Windows Server 2019 archive (the fake has Linux ones only,
	// and does not persist updates of public archives: put one in its store).
	pub, err := api.archive.Find(ctx, zone, &iaas.FindCondition{Filter: search.Filter{search.Key("Scope"): search.ExactMatch("shared")}})
	if err != nil || pub.Count == 0 {
		t.Fatalf("fake has no public archive: %v", err)
	}
	win := *pub.Archives[0]
	win.ID = types.ID(113299999001)
	win.Name, win.Tags = "Windows Server 2019 Datacenter Edition", types.Tags{"distro-ver-2019", "os-windows"}
	fake.DataStore.Put(fake.ResourceArchive, zone, win.ID, &win)
	srv, err := api.server.Create(ctx, zone, &iaas.ServerCreateRequest{CPU: 2, MemoryMB: 4096, Name: "web-1", Tags: types.Tags{"env=prod"},
		ConnectedSwitches: []*iaas.ConnectedSwitch{{Scope: types.Scopes.Shared}}, InterfaceDriver: types.InterfaceDrivers.VirtIO})
	if err != nil {
		t.Fatal(err)
	}
	d, err := api.disk.Create(ctx, zone, &iaas.DiskCreateRequest{DiskPlanID: types.DiskPlans.SSD, Connection: types.DiskConnections.VirtIO,
		SourceArchiveID: win.ID, ServerID: srv.ID, SizeMB: 20480, Name: "web-1"}, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	p := newProvider(api, scope{tenant: "t", account: "a", zones: []string{zone}},
		Options{Rate: 1000, Burst: 1000, Poll: 5 * time.Millisecond}, clock.Real{})
	ref := providers.VMRef{ID: srv.ID.String(), Zone: zone}
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	must(p.Power.Start(ctx, []providers.VMRef{ref}), "Start")
	must(p.Power.Start(ctx, []providers.VMRef{ref}), "Start again (idempotent)")
	vms, err := p.Enumerator.List(ctx)
	must(err, "List")
	var found *inventory.VM
	for i := range vms {
		if vms[i].ID == ref.ID {
			found = &vms[i]
		}
	}
	if found == nil || found.Windows.Release != "2019" || found.OSDisk.ID != d.ID.String() || found.Power != inventory.PowerRunning || found.Tags["env"] != "prod" {
		t.Fatalf("List: %+v", found)
	}
	dref := providers.DiskRef{ID: d.ID.String(), Zone: zone}
	if err := p.Disks.Detach(ctx, ref, dref); !errors.Is(err, providers.ErrConflict) {
		t.Fatalf("Detach from a running server: %v, want ErrConflict", err)
	}
	must(p.Power.Stop(ctx, []providers.VMRef{ref}, true), "Stop")
	must(p.Power.Stop(ctx, []providers.VMRef{ref}, true), "Stop again (idempotent)")
	tags := providers.Tags{providers.TagRun: "r1", providers.TagVM: ref.ID, providers.TagRole: "snapshot"}
	snap, err := p.Disks.Snapshot(ctx, dref, tags)
	must(err, "Snapshot")
	ss, err := p.Disks.FindSnapshots(ctx, tags)
	must(err, "FindSnapshots")
	if len(ss) != 1 || ss[0].Ref.ID != snap.ID || ss[0].DiskID != dref.ID {
		t.Fatalf("FindSnapshots: %+v", ss)
	}
	must(p.Disks.Detach(ctx, ref, dref), "Detach")
	must(p.Disks.Detach(ctx, ref, dref), "Detach again (idempotent)")
	if err := p.Power.Start(ctx, []providers.VMRef{ref}); !errors.Is(err, providers.ErrConflict) {
		t.Fatalf("Start without a boot disk: %v, want ErrConflict", err)
	}
	copyTags := providers.Tags{providers.TagRun: "r1", providers.TagVM: ref.ID, providers.TagRole: "copy"}
	nd, err := p.Disks.FromSnapshot(ctx, snap, zone, copyTags)
	must(err, "FromSnapshot")
	must(p.Disks.Attach(ctx, ref, nd, true), "Attach as boot")
	st, err := p.Disks.Describe(ctx, nd)
	must(err, "Describe")
	if st.AttachedTo != ref.ID || !st.Boot || st.Tags[providers.TagRole] != "copy" {
		t.Fatalf("Describe: %+v", st)
	}
	must(p.Disks.Attach(ctx, ref, nd, true), "Attach again (idempotent)")
	if err := p.Disks.Attach(ctx, ref, dref, true); !errors.Is(err, providers.ErrConflict) {
		t.Fatalf("a second boot disk: %v, want ErrConflict", err)
	}
	must(p.Power.Start(ctx, []providers.VMRef{ref}), "Start on the copy")
	if err := p.Power.Restart(ctx, ref); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	// DeleteCopy: never a connected disk, nor one without all the tags.
	del := p.Disks.(providers.CopyDeleter)
	if err := del.DeleteCopy(ctx, nd, copyTags); !errors.Is(err, providers.ErrConflict) || !strings.Contains(err.Error(), nd.ID) {
		t.Fatalf("DeleteCopy of the booted copy: %v, want ErrConflict naming %s", err, nd.ID)
	}
	spareTags := providers.Tags{providers.TagRun: "r1", providers.TagVM: ref.ID, providers.TagRole: "spare"}
	spare, err := p.Disks.FromSnapshot(ctx, snap, zone, spareTags)
	must(err, "FromSnapshot (spare)")
	for _, tags := range []providers.Tags{nil, {providers.TagRun: "r2", providers.TagVM: ref.ID, providers.TagRole: "spare"}, {"other": "x"}} {
		if err := del.DeleteCopy(ctx, spare, tags); !errors.Is(err, providers.ErrConflict) || !strings.Contains(err.Error(), spare.ID) {
			t.Fatalf("DeleteCopy with tags %v: %v, want ErrConflict naming %s", tags, err, spare.ID)
		}
	}
	must(del.DeleteCopy(ctx, spare, providers.Tags{providers.TagRun: "r1", providers.TagRole: "spare"}), "DeleteCopy (a subset of its tags)")
	must(del.DeleteCopy(ctx, spare, spareTags), "DeleteCopy again (idempotent)")
	if _, err := p.Disks.Describe(ctx, spare); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("Describe of the deleted copy: %v, want ErrNotFound", err)
	}
}
