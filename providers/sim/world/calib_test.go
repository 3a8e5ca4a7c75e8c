package world

import (
	"errors"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
)

func TestRestoreTakesItsOwnTime(t *testing.T) {
	w, clk := load(t, scenario(vmSpec("1", img2019, badFile)))
	d := must[DiskInfo](t)(w.RestoreBackup(ctx, "sim", "bk-1", "is1a", nil))
	if r, took := timing.Of(timing.OpBackupRestore), d.ReadyAt.Sub(clk.Now()); took < r.Min || took > r.Max {
		t.Fatalf("restore takes %s, want %s-%s", took, r.Min, r.Max)
	}
}

func TestIncrementalDiscountOnlyForIncrementalClouds(t *testing.T) {
	for _, full := range []bool{false, true} {
		sc := scenario(vmSpec("1", img2019, badFile))
		sc.FullCopySnapshots = full
		w, clk := load(t, sc)
		first := must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
		clk.Set(first.ReadyAt)
		var longest time.Duration
		for range 10 {
			s := must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
			longest = max(longest, s.ReadyAt.Sub(s.TakenAt))
		}
		// Incremental: at most the factor times the longest first snapshot.
		limit := time.Duration(float64(timing.Of(timing.OpSnapshot).Max) * calib.IncrementalSnapshotFactor)
		if (longest > limit) != full {
			t.Errorf("full copies %v: later snapshots take up to %s (incremental limit %s)", full, longest, limit)
		}
	}
}

// TestCopyContinuesItsSnapshotLineage: the first snapshot of a disk made
// from a snapshot is incremental (EBS), unless snapshot families are per
// disk (Azure): the same world's draw, times the factor or not.
func TestCopyContinuesItsSnapshotLineage(t *testing.T) {
	took := map[bool]time.Duration{}
	for _, perDisk := range []bool{false, true} {
		sc := scenario(vmSpec("1", img2019, badFile))
		sc.PerDiskSnapshots = perDisk
		w, clk := load(t, sc)
		s := must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
		clk.Set(s.ReadyAt)
		c := must[DiskInfo](t)(w.DiskFromSnapshot(ctx, "sim", s.Ref.ID, "is1a", nil))
		clk.Set(c.ReadyAt)
		cs := must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", c.Ref.ID, nil))
		took[perDisk] = cs.ReadyAt.Sub(cs.TakenAt)
	}
	if want := time.Duration(float64(took[true]) * calib.IncrementalSnapshotFactor); took[false] != want || took[true] < timing.Of(timing.OpSnapshot).Min {
		t.Errorf("the copy's first snapshot took %s with lineage, %s per disk: want %s (the factor) and a full one", took[false], took[true], want)
	}
}

func TestAcceptedAttachAndDetachCanFail(t *testing.T) {
	v := vmSpec("1", img2019, badFile)
	v.Power = inventory.PowerStopped
	w, clk := load(t, scenario(v))
	if err := w.SetFaults(Faults{Throttle: ThrottleOff, AsyncFailRate: 1}); err != nil {
		t.Fatal(err)
	}
	// The detach is accepted, then fails: the disk is the boot disk again.
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
	if d := must[DiskInfo](t)(w.DescribeDisk(ctx, "sim", "disk-1")); d.AttachedTo != "vm-1" || !d.Boot {
		t.Fatalf("after a failed detach: %+v", d)
	}
	if err := w.SetFaults(Faults{Throttle: ThrottleOff}); err != nil {
		t.Fatal(err)
	}
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
	if err := w.SetFaults(Faults{Throttle: ThrottleOff, AsyncFailRate: 1}); err != nil {
		t.Fatal(err)
	}
	// The attach is accepted, then fails: the disk is left detached.
	wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-1", "disk-1", true)))
	if d := must[DiskInfo](t)(w.DescribeDisk(ctx, "sim", "disk-1")); d.AttachedTo != "" {
		t.Fatalf("after a failed attach: %+v", d)
	}
	if got := w.Stats().AsyncFailed; got != 2 {
		t.Fatalf("async_failed %d, want 2", got)
	}
}

// TestZoneBoundSnapshots: where snapshots are zone resources (Sakura's
// archives), a disk is made from one only in its zone.
func TestZoneBoundSnapshots(t *testing.T) {
	sc := scenario(vmSpec("1", img2019, badFile))
	sc.ZoneBoundSnapshots = true
	w, clk := load(t, sc)
	s := must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
	clk.Set(s.ReadyAt)
	if _, err := w.DiskFromSnapshot(ctx, "sim", s.Ref.ID, "is1b", nil); !errors.Is(err, providers.ErrPermanent) {
		t.Fatalf("a disk in another zone: err = %v, want a permanent refusal", err)
	}
	must[DiskInfo](t)(w.DiskFromSnapshot(ctx, "sim", s.Ref.ID, "is1a", nil))
}
