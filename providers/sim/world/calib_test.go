package world

import (
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory/timing"
)

func TestRestoreTakesItsOwnTime(t *testing.T) {
	w, clk := load(t, scenario(vmSpec("1", img2019, badFile)))
	d := must[DiskInfo](t)(w.RestoreBackup(ctx, "sim", "bk-1", "is1a", nil))
	if took := d.ReadyAt.Sub(clk.Now()); took < calib.BackupRestore.Min || took > calib.BackupRestore.Max {
		t.Fatalf("restore takes %s, want %s-%s", took, calib.BackupRestore.Min, calib.BackupRestore.Max)
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
