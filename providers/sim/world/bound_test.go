package world

import (
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
)

// The least durations of the table, spelled out so that the expected
// bounds below are computed by hand, not by the code under test.
const (
	stopMin    = 30 * time.Second
	detachMin  = 5 * time.Second
	attachMin  = 5 * time.Second
	startMin   = 10 * time.Second
	restartMin = 10 * time.Second
	upMin      = 2 * time.Minute
	scriptMin  = 2 * time.Second
	provMin    = 90 * time.Second
	restoreMin = 10 * time.Minute
	snapMin    = 3 * time.Minute
	copyMin    = 1 * time.Minute  // a disk from a snapshot
	incrMin    = 36 * time.Second // an incremental snapshot: snapMin × calib.IncrementalSnapshotFactor
)

func TestBoundTableMinima(t *testing.T) {
	// The hand computations below rest on these figures of the table.
	for op, want := range map[timing.Op]time.Duration{timing.OpStop: stopMin, timing.OpDetach: detachMin, timing.OpAttach: attachMin,
		timing.OpStart: startMin, timing.OpRestart: restartMin, timing.OpBootToWinRM: upMin, timing.OpGuestScript: scriptMin,
		timing.OpBackupRestore: restoreMin, timing.OpSnapshot: snapMin, timing.OpDiskFromSnapshot: copyMin} {
		if got := timing.Of(op).Min; got != want {
			t.Errorf("timing %s min = %v, the bound tests assume %v", op, got, want)
		}
	}
	if calib.HelperProvisioning.Min != provMin {
		t.Errorf("helper provisioning min = %v, the bound tests assume %v", calib.HelperProvisioning.Min, provMin)
	}
}

// offline is the offline chain of a running VM: stop and detach (or the
// helper's creation and boot, if longer), then attach, one script, detach,
// attach as boot, start, boot.
var offline = max(stopMin+detachMin+attachMin, provMin+upMin) + scriptMin + detachMin + attachMin + startMin + upMin

func loopVM(n int) VMSpec {
	v := vmSpec("1", own2019, badFile)
	v.ID, v.OSDisk.ID = fmt.Sprintf("vm-%d", n), fmt.Sprintf("disk-%d", n)
	v.PrivateIP = fmt.Sprintf("10.1.%d.%d", n/200, 1+n%200)
	v.BootCount = 1
	v.Backups[0].ID = fmt.Sprintf("bk-%d-1", n)
	return v
}

// restoreOf is the world's draw of backup id's restore time: the same at
// every restore of it (World.restoreTime), within the table's range.
func restoreOf(w *World, id string) time.Duration {
	return w.hashDur(timing.Of(timing.OpBackupRestore), "restore", id)
}

func TestLowerBound(t *testing.T) {
	safe := func() VMSpec {
		v := loopVM(1)
		v.OSDisk.SafeBootFlag = true
		v.Condition.SafeModeWinRM = true
		return v
	}
	// WinRM is not listed under SafeBoot\Network: silent in Safe Mode.
	safeSilent := func() VMSpec {
		v := safe()
		v.Condition.SafeModeWinRM = false
		return v
	}
	denying := func() VMSpec {
		v := safe()
		v.Condition.DeleteDenied = true
		return v
	}
	damagedBackups := func() VMSpec {
		v := loopVM(1)
		for i := range v.Backups {
			v.Backups[i].Damaged = true
		}
		return v
	}
	lockedNoKey := func() VMSpec {
		v := loopVM(1)
		v.OSDisk.BitLocker = &BitLockerSpec{KeyID: "k", RecoveryKey: testKey, Escrowed: false}
		return v
	}
	// The key escrowed nowhere, but WinRM listed under SafeBoot\Network.
	lockedSafeWinRM := func() VMSpec {
		v := lockedNoKey()
		v.Condition.SafeModeWinRM = true
		return v
	}
	stuck := func() VMSpec {
		v := loopVM(1)
		v.BootCount, v.Condition.Crashes, v.Condition.StuckAfterCrashes, v.Condition.RecoverAfterBoots = 3, 3, 3, 5
		return v
	}
	hives := func() VMSpec {
		v := loopVM(1)
		v.OSDisk.HiveDamaged = true
		return v
	}
	// Powered off with the bad file, its key escrowed nowhere, recovering
	// on its next boot.
	stoppedNoKey := func() VMSpec {
		v := lockedNoKey()
		v.Power, v.Condition.RecoverAfterBoots = inventory.PowerStopped, 2
		return v
	}
	many := func(n int, throttle string) Scenario {
		var vs []VMSpec
		for i := range n {
			vs = append(vs, loopVM(i))
		}
		sc := scenario(vs...)
		sc.Faults.Throttle = throttle
		return sc
	}
	withScenario := func(f func(*Scenario), vms ...VMSpec) Scenario {
		sc := scenario(vms...)
		f(&sc)
		return sc
	}
	secs := func(d time.Duration) float64 { return d.Seconds() }
	tests := []struct {
		name      string
		sc        Scenario
		opts      BoundOptions
		want      float64 // seconds; < 0: computed by wantFn
		wantFn    func(w *World) float64
		repairs   int
		unrepairs int
		bucket    string
	}{
		{name: "healthy VM: nothing to do", sc: scenario(vmSpec("1", own2019, goodFile)), want: 0},
		{name: "boot loop, no natural recovery: offline", sc: scenario(loopVM(1)), want: secs(offline), repairs: 1},
		{name: "clean backup without data loss allowed: still offline", sc: scenario(loopVM(1)), want: secs(offline), repairs: 1},
		{name: "clean backup, data loss allowed: offline, faster than a restore", sc: scenario(loopVM(1)), opts: BoundOptions{AllowDataLoss: true},
			want: secs(offline), repairs: 1},
		{name: "clean backup, data loss allowed, no helper image: restore", sc: withScenario(func(sc *Scenario) { sc.Images = nil }, loopVM(1)), opts: BoundOptions{AllowDataLoss: true},
			want: -1, wantFn: func(w *World) float64 {
				return secs(max(stopMin+detachMin, restoreOf(w, "bk-1-1")) + attachMin + startMin + upMin)
			}, repairs: 1},
		{name: "safe mode, WinRM open: online", sc: scenario(safe()), want: secs(scriptMin + restartMin + upMin), repairs: 1},
		{name: "safe mode, WinRM not started in Safe Mode: offline", sc: scenario(safeSilent()), want: secs(offline), repairs: 1},
		{name: "safe mode, the guest denies the deletion: offline", sc: scenario(denying()), want: secs(offline), repairs: 1},
		{name: "damaged backups, data loss allowed: offline", sc: scenario(damagedBackups()), opts: BoundOptions{AllowDataLoss: true}, want: secs(offline), repairs: 1},
		{name: "BitLocker key not escrowed, no other way: unrepairable", sc: scenario(lockedNoKey()), want: 0, unrepairs: 1},
		// offline's chain, its VM booting into Safe Mode; then a
		// script and a restart out of it.
		{name: "BitLocker key not escrowed, WinRM starts in Safe Mode: the flag set offline, repaired in Safe Mode", sc: scenario(lockedSafeWinRM()),
			want: secs(offline + scriptMin + restartMin + upMin), repairs: 1},
		{name: "BitLocker key not escrowed, WinRM in Safe Mode, no helper image in its zone: unrepairable",
			sc: withScenario(func(sc *Scenario) { sc.Images[0].Zone = "is1b" }, lockedSafeWinRM()), want: 0, unrepairs: 1},
		{name: "powered off, no key, WinRM in Safe Mode, left stopped: unrepairable",
			sc: scenario(func() VMSpec { v := lockedSafeWinRM(); v.Power = inventory.PowerStopped; return v }()), want: 0, unrepairs: 1},
		{name: "damaged hives, no restore allowed: unrepairable (no script mends a hive)", sc: scenario(hives()), want: 0, unrepairs: 1},
		{name: "damaged hives, data loss allowed: restore", sc: scenario(hives()), opts: BoundOptions{AllowDataLoss: true},
			want: -1, wantFn: func(w *World) float64 {
				return secs(max(stopMin+detachMin, restoreOf(w, "bk-1-1")) + attachMin + startMin + upMin)
			}, repairs: 1},
		{name: "powered off, no key, stopped VMs left stopped: unrepairable", sc: scenario(stoppedNoKey()), want: 0, unrepairs: 1},
		{name: "powered off, no key, data loss allowed, left stopped: unrepairable (nothing shows the disk broken)", sc: scenario(stoppedNoKey()),
			opts: BoundOptions{AllowDataLoss: true}, want: 0, unrepairs: 1},
		{name: "powered off, damaged hives, data loss allowed: read on a helper, then restored", sc: scenario(func() VMSpec { v := hives(); v.Power = inventory.PowerStopped; return v }()),
			opts: BoundOptions{AllowDataLoss: true}, want: -1, wantFn: func(w *World) float64 {
				return secs(max(detachMin, restoreOf(w, "bk-1-1")) + attachMin + startMin + upMin)
			}, repairs: 1},
		{name: "powered off, no key, stopped VMs started: a start and its boot", sc: scenario(stoppedNoKey()), opts: BoundOptions{StartStopped: true}, want: -1,
			wantFn: func(w *World) float64 {
				return secs(startMin + w.hashDur(timing.Of(timing.OpBootToWinRM), "vm-1", "up", 2))
			}, repairs: 1},
		{name: "no helper image in any zone: unrepairable", sc: withScenario(func(sc *Scenario) { sc.Images = nil }, loopVM(1)), want: 0, unrepairs: 1},
		// Stop, snapshot (incremental after an early one), copy, attach
		// (longer than the helper's creation and boot); a script; detach,
		// snapshot (incremental: the copy continues its source's
		// lineage), copy back, attach as boot, start, boot.
		{name: "helper image only in another zone: a copy there and back", sc: withScenario(func(sc *Scenario) { sc.Images[0].Zone = "is1b" }, loopVM(1)),
			want: secs(max(stopMin+incrMin+copyMin+attachMin, provMin+upMin) + scriptMin + detachMin + incrMin + copyMin + attachMin + startMin + upMin), repairs: 1},
		{name: "a copy there and back, snapshot families per disk: the copy's first snapshot is full",
			sc:   withScenario(func(sc *Scenario) { sc.Images[0].Zone, sc.PerDiskSnapshots = "is1b", true }, loopVM(1)),
			want: secs(max(stopMin+incrMin+copyMin+attachMin, provMin+upMin) + scriptMin + detachMin + snapMin + copyMin + attachMin + startMin + upMin), repairs: 1},
		{name: "helper image only in another zone, snapshots bound to their zone: unrepairable",
			sc: withScenario(func(sc *Scenario) { sc.Images[0].Zone, sc.ZoneBoundSnapshots = "is1b", true }, loopVM(1)), want: 0, unrepairs: 1},
		{name: "a copy there and back, snapshots are full copies",
			sc:   withScenario(func(sc *Scenario) { sc.Images[0].Zone, sc.FullCopySnapshots = "is1b", true }, loopVM(1)),
			want: secs(max(stopMin+snapMin+copyMin+attachMin, provMin+upMin) + scriptMin + detachMin + snapMin + copyMin + attachMin + startMin + upMin), repairs: 1},
		{name: "stuck, recovers on boot 5: two restarts and boot 5's drawn boot time", sc: scenario(stuck()), want: -1,
			wantFn: func(w *World) float64 {
				return secs(2*restartMin + w.hashDur(timing.Of(timing.OpBootToWinRM), "vm-1", "up", 5))
			}, repairs: 1},
		{name: "stuck, recovers on boot 5, two restarts allowed", sc: scenario(stuck()), opts: BoundOptions{MaxRestarts: 2}, want: -1,
			wantFn: func(w *World) float64 {
				return secs(2*restartMin + w.hashDur(timing.Of(timing.OpBootToWinRM), "vm-1", "up", 5))
			}, repairs: 1},
		{name: "stuck, recovers on boot 5, one restart allowed, no helper image: unrepairable within the policy",
			sc: withScenario(func(sc *Scenario) { sc.Images = nil }, stuck()), opts: BoundOptions{MaxRestarts: 1},
			want: 0, unrepairs: 1},
		// 500 offline-only VMs in one account: 4 mutating calls each.
		{name: "EC2 buckets: mutating calls bind", sc: many(500, ThrottleEC2), want: float64(500*4-50) / 5, repairs: 500, bucket: "sim/mutating"},
		// One bucket for everything: 5 calls each and one helper.
		{name: "simple bucket", sc: many(800, ThrottleSimple), want: float64(800*5+1-20) / 10, repairs: 800, bucket: "sim/all"},
		{name: "throttling off: the chain binds", sc: many(500, ThrottleOff), want: secs(offline), repairs: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, _ := load(t, tt.sc)
			want := tt.want
			if tt.wantFn != nil {
				want = tt.wantFn(w)
			}
			b := w.LowerBound(tt.opts)
			if b.Seconds != want || b.Repairable != tt.repairs || b.Unrepairable != tt.unrepairs || b.APIBucket != tt.bucket {
				t.Errorf("bound = %+v, want %v s, %d repairable, %d unrepairable, bucket %q", b, want, tt.repairs, tt.unrepairs, tt.bucket)
			}
			if len(b.RepairableVMs) != b.Repairable {
				t.Errorf("%d repairable VMs listed, %d counted", len(b.RepairableVMs), b.Repairable)
			}
			if b.Seconds != max(b.ChainSeconds, b.APISeconds, b.HelperSeconds) {
				t.Errorf("bound %v is not the largest term of %+v", b.Seconds, b)
			}
		})
	}
}

// TestLowerBoundBelowRepairs drives repairs on a manual clock and checks
// that none beats the bound: the fastest restart path (restart as soon as
// the VM runs again), and the offline and restore repairs of the world's
// own tests. The restart path is tight: it exceeds the bound only by the
// restarts' draws above the table's minimum.
func TestLowerBoundBelowRepairs(t *testing.T) {
	upAt := func(w *World) time.Time {
		w.mu.Lock()
		defer w.mu.Unlock()
		v := w.vms["vm-1"]
		w.advance(v, w.clk.Now())
		return v.boot.upAt
	}
	t.Run("restarts", func(t *testing.T) {
		v := loopVM(1)
		v.BootCount, v.Condition.Crashes, v.Condition.StuckAfterCrashes, v.Condition.RecoverAfterBoots = 3, 3, 3, 5
		w, clk := load(t, scenario(v))
		b := w.LowerBound(BoundOptions{})
		start := clk.Now()
		var extra time.Duration
		for i := range 2 {
			p := must[Pending](t)(w.RestartVM(ctx, "sim", "vm-1"))
			extra += p.Until.Sub(clk.Now()) - restartMin
			wait(clk, p)
			if i == 0 && w.powerOf("vm-1") != inventory.PowerRunning {
				t.Fatal("not running after the restart")
			}
		}
		clk.Set(upAt(w))
		if tr, _ := w.Truth("vm-1"); tr != TruthHealthy {
			t.Fatalf("truth %s after boot 5", tr)
		}
		if took := clk.Now().Sub(start); took.Seconds() != b.Seconds+extra.Seconds() {
			t.Errorf("repair took %v, bound %vs + draws above the minimum %v", took, b.Seconds, extra)
		}
	})
	t.Run("restore", func(t *testing.T) {
		v := loopVM(1)
		v.OSDisk.HiveDamaged = true
		sc := scenario(v)
		sc.Images = nil
		w, clk := load(t, sc)
		b := w.LowerBound(BoundOptions{AllowDataLoss: true})
		start := clk.Now()
		wait(clk, must[Pending](t)(w.StopVMs(ctx, "sim", []string{"vm-1"}, true)))
		wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
		// The restore began at the start: a bound on any repair takes
		// the restore's own time, whoever waits for what.
		d := must[DiskInfo](t)(w.RestoreBackup(ctx, "sim", "bk-1-1", "is1a", nil))
		if got, want := d.ReadyAt.Sub(clk.Now()), restoreOf(w, "bk-1-1"); got != want {
			t.Fatalf("restore takes %v, want the backup's draw %v", got, want)
		}
		clk.Set(d.ReadyAt)
		wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-1", d.Ref.ID, true)))
		wait(clk, must[Pending](t)(w.StartVMs(ctx, "sim", []string{"vm-1"})))
		clk.Set(upAt(w))
		if tr, _ := w.Truth("vm-1"); tr != TruthHealthy {
			t.Fatalf("truth %s after the restore", tr)
		}
		if took := clk.Now().Sub(start); took.Seconds() < b.Seconds {
			t.Errorf("repair took %v, under the bound %vs", took, b.Seconds)
		}
		if restoreOf(w, "bk-1-1") == restoreMin {
			t.Fatal("the backup's draw is the table's minimum: the test cannot tell the draw from the minimum")
		}
		if b.Seconds < (restoreOf(w, "bk-1-1") + attachMin + startMin + upMin).Seconds() {
			t.Errorf("bound %vs is below the backup's own restore time %v and what follows it", b.Seconds, restoreOf(w, "bk-1-1"))
		}
	})
	t.Run("offline", func(t *testing.T) {
		w, clk := load(t, scenario(vmSpec("1", img2019, badFile)))
		b := w.LowerBound(BoundOptions{})
		start := clk.Now()
		helperMount(t, w, clk, true)
		if tr, _ := w.Truth("vm-1"); tr != TruthHealthy {
			t.Fatalf("truth %s", tr)
		}
		if took := upAt(w).Sub(start); took.Seconds() < b.Seconds {
			t.Errorf("repair took %v, under the bound %vs", took, b.Seconds)
		}
	})
}

// TestDrawsIgnoreCallOrder: the same calls at the same instant, made in
// either order, give every VM the same durations and every created
// resource the same ID (draws are keyed, not taken from a shared stream).
func TestDrawsIgnoreCallOrder(t *testing.T) {
	run := func(order ...int) map[string]string {
		w, _ := load(t, scenario(loopVM(1), loopVM(2)))
		out := map[string]string{}
		for _, n := range order {
			id, disk := fmt.Sprintf("vm-%d", n), fmt.Sprintf("disk-%d", n)
			out[disk] = must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", disk, nil)).Ref.ID
			out[id] = must[Pending](t)(w.StopVMs(ctx, "sim", []string{id}, true)).Until.String()
		}
		return out
	}
	a, b := run(1, 2), run(2, 1)
	if !maps.Equal(a, b) {
		t.Errorf("order 1,2: %v\norder 2,1: %v", a, b)
	}
}
