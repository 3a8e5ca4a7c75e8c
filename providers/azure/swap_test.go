package azure_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/azureapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// newWorld generates a small Azure-zoned world on a manual clock, with no
// throttling and no injected faults.
func newWorld(t *testing.T, vms int) *world.World {
	t.Helper()
	f := world.Faults{Throttle: world.ThrottleOff, Latency: 1}
	w, err := world.Generate(world.GenOptions{VMs: vms, Seed: 3, Zones: azureZones, Clock: world.NewManualClock(world.DefaultOrigin), Faults: &f})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// brokenVMs are the world's boot-looping fleet VMs with a boot disk (none
// of them may be touched while healthy).
func brokenVMs(w *world.World) []world.VMSpec {
	var out []world.VMSpec
	for _, v := range w.Export().VMs {
		if v.Truth == world.TruthBootLoop && v.OSDisk != nil {
			out = append(out, v)
		}
	}
	return out
}

// copyOf makes a tagged copy of world VM src's OS disk in zone through the
// provider: snapshot, then a disk from the snapshot.
func copyOf(t *testing.T, srv *azureapi.Server, p *providers.Provider, src world.VMSpec, zone string) providers.DiskRef {
	t.Helper()
	tags := providers.Tags{providers.TagRun: "swap-test", providers.TagVM: src.ID, providers.TagRole: "copy-" + zone}
	s, err := p.Disks.Snapshot(t.Context(), providers.DiskRef{ID: srv.ARMID(world.DefaultAccount, src.OSDisk.ID)}, tags)
	if err != nil {
		t.Fatalf("Snapshot of %s: %v", src.ID, err)
	}
	d, err := p.Disks.FromSnapshot(t.Context(), s, zone, tags)
	if err != nil {
		t.Fatalf("FromSnapshot of %s: %v", src.ID, err)
	}
	return d
}

// bootDisk is the world ID of a world VM's boot disk now ("" if none).
func bootDisk(t *testing.T, w *world.World, id string) string {
	t.Helper()
	for _, v := range w.Export().VMs {
		if v.ID == id {
			if v.OSDisk == nil {
				return ""
			}
			return v.OSDisk.ID
		}
	}
	t.Fatalf("no VM %s in the world", id)
	return ""
}

// TestSwapRollback: copy and swap puts the copy in as OS disk and keeps the
// original, detached; the rollback swap restores the original and leaves
// the repaired copy kept, detached; both are idempotent, and the referee
// counts nothing but that kept copy.
func TestSwapRollback(t *testing.T) {
	w := newWorld(t, 24)
	srv, p := open(t, w, world.DefaultAccount, azureapi.Options{})
	sw, ok := p.Disks.(providers.OSDiskSwapper)
	if !ok {
		t.Fatal("the azure provider's Disks does not implement providers.OSDiskSwapper")
	}
	v := brokenVMs(w)[0]
	ref := providers.VMRef{ID: srv.ARMID(world.DefaultAccount, v.ID), Zone: v.Zone}
	orig := providers.DiskRef{ID: srv.ARMID(world.DefaultAccount, v.OSDisk.ID), Zone: v.Zone}
	cp := copyOf(t, srv, p, v, v.Zone)
	ctx := t.Context()

	if err := p.Power.Stop(ctx, []providers.VMRef{ref}, true); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := sw.SwapOSDisk(ctx, ref, cp); err != nil {
			t.Fatalf("swap to the copy (call %d): %v", i+1, err)
		}
	}
	if got, want := bootDisk(t, w, v.ID), srv.WorldID(cp.ID); got != want || want == "" {
		t.Fatalf("after the swap the world's boot disk of %s is %q, want the copy %q", v.ID, got, want)
	}
	st, err := p.Disks.Describe(ctx, orig)
	if err != nil || st.AttachedTo != "" {
		t.Fatalf("the original after the swap: %+v, %v; want kept, detached", st, err)
	}

	for i := range 2 {
		if err := sw.SwapOSDisk(ctx, ref, orig); err != nil {
			t.Fatalf("rollback swap (call %d): %v", i+1, err)
		}
	}
	if got := bootDisk(t, w, v.ID); got != v.OSDisk.ID {
		t.Fatalf("after the rollback the world's boot disk of %s is %q, want the original %q", v.ID, got, v.OSDisk.ID)
	}
	st, err = p.Disks.Describe(ctx, orig)
	if err != nil || st.AttachedTo != ref.ID || !st.Boot {
		t.Errorf("Describe original after rollback = %+v, %v; want the OS disk of %s", st, err, ref.ID)
	}
	kept, err := p.Disks.FindDisks(ctx, providers.Tags{providers.TagRun: "swap-test", providers.TagVM: v.ID})
	if err != nil || len(kept) != 1 || kept[0].Ref.ID != cp.ID || kept[0].AttachedTo != "" {
		t.Errorf("the repaired copy after rollback: %+v, %v; want %s kept, detached", kept, err, cp.ID)
	}
	if err := p.Power.Start(ctx, []providers.VMRef{ref}); err != nil {
		t.Fatal(err)
	}
	// The kept copy is, to the referee, the one leaked resource: keeping
	// it after a rollback is deliberate (for the operator to inspect and
	// delete); nothing else may count.
	a := w.Audit()
	leak := a.LeakedResources == 1 && a.LeakedList[0].ID == srv.WorldID(cp.ID)
	a.LeakedResources, a.LeakedList = 0, nil
	if !leak || !a.Clean() {
		t.Errorf("the referee counts breaches beyond the kept copy %s: %v", srv.WorldID(cp.ID), a.Violations())
	}
}

// TestSwapRefusals: a running VM, another Hyper-V generation, another
// security type and an attached disk are refused, with the error class
// (and the typed mismatch) the contract names, and nothing changes.
func TestSwapRefusals(t *testing.T) {
	w := newWorld(t, 48)
	broken := brokenVMs(w)
	gen := func(v world.VMSpec) string { g, _ := w.DiskGeneration(v.Account, v.OSDisk.ID); return g }
	target := broken[0]
	var sameGen, otherGen *world.VMSpec
	for i := range broken[1:] {
		v := &broken[i+1]
		if gen(*v) == gen(target) && sameGen == nil {
			sameGen = v
		}
		if gen(*v) != gen(target) && otherGen == nil {
			otherGen = v
		}
	}
	if sameGen == nil || otherGen == nil {
		t.Fatalf("the world lacks boot-looping VMs of both generations")
	}
	// The target VM uses trusted launch; so does its own disk's copy.
	srv, p := open(t, w, world.DefaultAccount, azureapi.Options{TrustedLaunch: []string{target.ID}})
	sw := p.Disks.(providers.OSDiskSwapper)
	ctx := t.Context()
	ref := providers.VMRef{ID: srv.ARMID(world.DefaultAccount, target.ID), Zone: target.Zone}
	own := copyOf(t, srv, p, target, target.Zone)
	standard := copyOf(t, srv, p, *sameGen, target.Zone)
	otherGeneration := copyOf(t, srv, p, *otherGen, target.Zone)

	if err := sw.SwapOSDisk(ctx, ref, own); !errors.Is(err, providers.ErrConflict) {
		t.Errorf("swap on a running VM: %v, want ErrConflict", err)
	}
	if err := p.Power.Stop(ctx, []providers.VMRef{ref}, true); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		disk     providers.DiskRef
		property string
	}{
		{"another generation", otherGeneration, "hyperVGeneration"},
		{"another security type", standard, "securityType"},
	} {
		err := sw.SwapOSDisk(ctx, ref, c.disk)
		var mm *providers.BootMismatchError
		if !errors.Is(err, providers.ErrPermanent) || !errors.As(err, &mm) || mm.Property != c.property {
			t.Errorf("swap to %s: %v, want ErrPermanent with a BootMismatchError on %s", c.name, err, c.property)
		}
	}
	if got := bootDisk(t, w, target.ID); got != target.OSDisk.ID {
		t.Errorf("after refused swaps the boot disk of %s is %s, want %s", target.ID, got, target.OSDisk.ID)
	}
	h, err := p.Helpers.Acquire(ctx, target.Zone, inventory.WindowsVersion{Release: target.Windows.Release},
		providers.Tags{providers.TagRun: "swap-test", providers.TagRole: "helper"})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Disks.Attach(ctx, h, own, false); err != nil {
		t.Fatal(err)
	}
	if err := sw.SwapOSDisk(ctx, ref, own); !errors.Is(err, providers.ErrConflict) {
		t.Errorf("swap to a disk attached to a helper: %v, want ErrConflict", err)
	}
	if err := p.Disks.Detach(ctx, h, own); err != nil {
		t.Fatal(err)
	}
	if err := sw.SwapOSDisk(ctx, ref, own); err != nil {
		t.Errorf("swap to the VM's own trusted-launch copy: %v", err)
	}
}

// TestFindHelpers: the helpers a run made are listed by its tags (the
// helper pool releases those an earlier, killed process of the run made),
// and no other VM is.
func TestFindHelpers(t *testing.T) {
	w := newWorld(t, 12)
	target := brokenVMs(w)[0]
	_, p := open(t, w, world.DefaultAccount, azureapi.Options{})
	ctx := t.Context()
	finder, ok := p.Helpers.(interface {
		FindHelpers(context.Context, providers.Tags) ([]providers.VMRef, error)
	})
	if !ok {
		t.Fatal("the Azure provider's helpers cannot be listed by tag")
	}
	run := providers.Tags{providers.TagRun: "find-test", providers.TagRole: "helper"}
	h, err := p.Helpers.Acquire(ctx, target.Zone, inventory.WindowsVersion{Release: target.Windows.Release}, run)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tags providers.Tags
		want []string
	}{
		{run, []string{h.ID}},
		{providers.Tags{providers.TagRun: "another-run", providers.TagRole: "helper"}, nil},
	} {
		got, err := finder.FindHelpers(ctx, c.tags)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
			if r.Zone != target.Zone {
				t.Errorf("helper %s in zone %q, want %s", r.ID, r.Zone, target.Zone)
			}
		}
		if !slices.Equal(ids, c.want) {
			t.Errorf("FindHelpers(%v) = %v, want %v", c.tags, ids, c.want)
		}
	}
}

// TestSwapDeallocatesStoppedVM: a VM powered off but still allocated (shut
// down from inside its guest: "VM stopped") gets its OS disk swapped; the
// provider deallocates it first, as Azure requires. A running VM is still
// refused.
func TestSwapDeallocatesStoppedVM(t *testing.T) {
	w := newWorld(t, 12)
	target := brokenVMs(w)[0]
	srv, p := open(t, w, world.DefaultAccount, azureapi.Options{StoppedAllocated: []string{target.ID}})
	sw := p.Disks.(providers.OSDiskSwapper)
	ctx := t.Context()
	ref := providers.VMRef{ID: srv.ARMID(world.DefaultAccount, target.ID), Zone: target.Zone}
	own := copyOf(t, srv, p, target, target.Zone)
	if err := sw.SwapOSDisk(ctx, ref, own); !errors.Is(err, providers.ErrConflict) {
		t.Errorf("swap on a running VM: %v, want ErrConflict", err)
	}
	// The guest shuts itself down: the world stops the VM, the cloud keeps
	// it allocated.
	pend, err := w.StopVMs(ctx, world.DefaultAccount, []string{target.ID}, false)
	if err != nil {
		t.Fatal(err)
	}
	w.Clock().(*world.ManualClock).Set(pend.Until)
	if err := sw.SwapOSDisk(ctx, ref, own); err != nil {
		t.Fatalf("swap on a stopped, still allocated VM: %v", err)
	}
	if got := bootDisk(t, w, target.ID); got == target.OSDisk.ID {
		t.Errorf("after the swap the boot disk of %s is still its original %s", target.ID, got)
	}
}
