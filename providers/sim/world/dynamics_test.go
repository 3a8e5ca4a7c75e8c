package world

import (
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
)

func TestBootLoop(t *testing.T) {
	tests := []struct {
		name        string
		recover     int
		stuckAfter  int
		crashes     int
		wantTruth   string // after an hour
		wantLoop    string
		wantBootsGE int
	}{
		{"cycles forever", 0, 0, 0, TruthBootLoop, LoopCycling, 15},
		{"recovers on boot 3", 3, 0, 0, TruthHealthy, "", 3},
		{"sticks after 2 crashes", 0, 2, 0, TruthBootLoop, LoopStuck, 1},
		{"sticks before it would recover", 5, 2, 0, TruthBootLoop, LoopStuck, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := vmSpec("1", img2019, badFile)
			v.LastBootAt = t0
			v.Condition.RecoverAfterBoots, v.Condition.StuckAfterCrashes, v.Condition.Crashes = tc.recover, tc.stuckAfter, tc.crashes
			w, clk := load(t, scenario(v))
			s := sig(t, w, "vm-1")
			if *s.BootCount != 0 || !strings.Contains(s.Console, "Starting Windows") || *s.InstanceReachable {
				t.Fatalf("at boot: %+v", s)
			}
			clk.Advance(2 * time.Minute)
			if s := sig(t, w, "vm-1"); !strings.Contains(s.Console, "csagent.sys") && !strings.Contains(s.Console, "Starting Windows") {
				t.Fatalf("console after 2 min: %q", s.Console)
			}
			clk.Advance(time.Hour)
			s = sig(t, w, "vm-1")
			truth, _ := w.Truth("vm-1")
			if truth != tc.wantTruth || *s.BootCount < tc.wantBootsGE {
				t.Fatalf("truth %s boots %d, want %s >= %d", truth, *s.BootCount, tc.wantTruth, tc.wantBootsGE)
			}
			if l := w.Export().VMs[0].Condition.Loop; l != tc.wantLoop {
				t.Fatalf("loop %q, want %q", l, tc.wantLoop)
			}
			if tc.wantTruth == TruthHealthy {
				if *s.BootCount != tc.recover || !*s.InstanceReachable || !strings.Contains(s.Console, "Ctrl+Alt+Delete") {
					t.Fatalf("recovered VM: %+v", s)
				}
				if f := w.Export().VMs[0].OSDisk.Files[0]; f.Header != goodHeader || f.ModTime.Before(inc.BadUntil) {
					t.Fatalf("file not fixed: %+v", f)
				}
				if w.Audit().NaturalRecoveries != 1 {
					t.Fatal("natural recovery not counted")
				}
			}
			if tc.wantLoop == LoopStuck && !strings.Contains(s.Console, "Automatic Repair") {
				t.Fatalf("stuck console: %q", s.Console)
			}
		})
	}
}

func TestStuckResetCountsTowardRecovery(t *testing.T) {
	v := vmSpec("1", img2019, badFile)
	v.Condition.StuckAfterCrashes, v.Condition.Crashes, v.Condition.RecoverAfterBoots = 2, 2, 2
	w, clk := load(t, scenario(v))
	if tr, _ := w.Truth("vm-1"); tr != TruthBootLoop || w.Export().VMs[0].Condition.Loop != LoopStuck {
		t.Fatal("not stuck at start")
	}
	for boot := 1; boot <= 2; boot++ {
		wait(clk, must[Pending](t)(w.RestartVM(ctx, "sim", "vm-1")))
		clk.Advance(10 * time.Minute)
	}
	if tr, _ := w.Truth("vm-1"); tr != TruthHealthy {
		t.Fatalf("after 2 resets truth %s", tr)
	}
}

func TestSafeModeRepairLive(t *testing.T) {
	v := vmSpec("1", img2019, badFile)
	v.OSDisk.SafeBootFlag = true
	v.Condition.SafeModeWinRM = true // listed under SafeBoot\Network
	w, clk := load(t, scenario(v))
	if tr, _ := w.Truth("vm-1"); tr != TruthSafeMode {
		t.Fatalf("truth %s", tr)
	}
	if s := sig(t, w, "vm-1"); !*s.InstanceReachable || !strings.Contains(s.Console, "Safe Mode") {
		t.Fatalf("signals %+v", s)
	}
	// The right way: snapshot first.
	must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
	m := machineOf(t, w, "vm-1")
	p := must[guest.ProbeResult](t)(m.Probe(ctx, guest.ProbeParams{Dir: inc.RelDirectory(), Pattern: inc.Pattern}))
	if p.BootMode != inventory.BootSafeMode || !p.SafeBootFlag || len(p.Files) != 1 || p.Files[0].Header != inc.Header {
		t.Fatalf("probe %+v", p)
	}
	del := must[guest.DeleteResult](t)(m.DeleteFiles(ctx, guest.DeleteParams{Root: "C:", Criteria: criteria()}))
	if len(del.Deleted) != 1 {
		t.Fatalf("delete %+v", del)
	}
	if r := must[guest.SafeBootResult](t)(m.ClearSafeBoot(ctx, guest.ClearSafeBootParams{})); !r.WasSet {
		t.Fatal("flag was not set")
	}
	// Still in safe mode until restarted; the export says so.
	if vs := w.Export().VMs[0]; vs.BootMode != "safe" || vs.Truth != TruthSafeMode {
		t.Fatalf("export %+v", vs)
	}
	wait(clk, must[Pending](t)(w.RestartVM(ctx, "sim", "vm-1")))
	clk.Advance(6 * time.Minute)
	if tr, _ := w.Truth("vm-1"); tr != TruthHealthy {
		t.Fatalf("after repair truth %s", tr)
	}
	if a := w.Audit(); !a.Clean() || a.RecoveredBetweenCheckAndAct != 0 {
		t.Fatalf("audit %+v", a)
	}
}

func TestDeleteFilesKeepsGoodAndForeign(t *testing.T) {
	v := vmSpec("1", img2019, badFile,
		FileSpec{Name: "C-00000291-00000000-00000031.sys", Size: 1, ModTime: inc.BadFrom.Add(time.Minute), Header: "00000000"},
		FileSpec{Name: "C-00000285-00000000-00000001.sys", Size: 1, ModTime: inc.BadFrom, Header: inc.Header})
	v.OSDisk.SafeBootFlag = true
	v.Condition.SafeModeWinRM = true                            // listed under SafeBoot\Network
	v.OSDisk.Files[0].Name = "c-00000291-00000000-00000032.SYS" // Windows names are case-insensitive
	w, _ := load(t, scenario(v))
	must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
	m := machineOf(t, w, "vm-1")
	del := must[guest.DeleteResult](t)(m.DeleteFiles(ctx, guest.DeleteParams{Root: "C:", Criteria: criteria()}))
	if len(del.Deleted) != 1 || len(del.Kept) != 1 {
		t.Fatalf("deleted %v kept %v", del.Deleted, del.Kept)
	}
	if n := len(w.Export().VMs[0].OSDisk.Files); n != 2 {
		t.Fatalf("%d files left, want 2", n)
	}
}

// TestDeleteDenied: a guest that denies the deletion fails the script
// (Remove-Item's access denied) and changes nothing; a helper deletes the
// file from the same disk offline.
func TestDeleteDenied(t *testing.T) {
	v := vmSpec("1", img2019, badFile)
	v.OSDisk.SafeBootFlag = true
	v.Condition.SafeModeWinRM, v.Condition.DeleteDenied = true, true
	w, clk := load(t, scenario(v))
	if !w.Export().VMs[0].Condition.DeleteDenied {
		t.Fatal("the export loses delete_denied")
	}
	must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
	_, err := machineOf(t, w, "vm-1").DeleteFiles(ctx, guest.DeleteParams{Root: "C:", Criteria: criteria()})
	if err == nil || !strings.Contains(err.Error(), "is denied") {
		t.Fatalf("delete in a denying guest: %v, want access denied", err)
	}
	if n := len(w.Export().VMs[0].OSDisk.Files); n != 1 {
		t.Fatalf("%d files left after a denied delete, want the bad file kept", n)
	}
	helperMount(t, w, clk, true) // deletes the file offline, and checks it did
	if n := len(w.Export().VMs[0].OSDisk.Files); n != 0 {
		t.Fatalf("%d files left after the offline deletion, want none", n)
	}
}

// helperMount runs the helper-mount strategy on vm-1; right says whether to
// do it right (snapshot, identity recorded, restored and verified).
func helperMount(t *testing.T, w *World, clk *ManualClock, right bool) {
	t.Helper()
	if right {
		s := must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", map[string]string{"r": "1"}))
		clk.Set(s.ReadyAt)
	}
	wait(clk, must[Pending](t)(w.StopVMs(ctx, "sim", []string{"vm-1"}, true)))
	h := must[HelperInfo](t)(w.AcquireHelper(ctx, "sim", "is1a", win2019, map[string]string{"role": "helper"}, nil))
	clk.Set(h.ReadyAt)
	clk.Advance(6 * time.Minute)
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
	wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", h.Ref.ID, "disk-1", false)))
	m := machineOf(t, w, h.Ref.ID)
	ls := must[guest.ListDisksResult](t)(m.ListDisks(ctx, guest.ListDisksParams{}))
	if len(ls.Disks) != 2 || !ls.Disks[0].IsBoot || ls.Disks[1].Serial != "disk-1" || !ls.Disks[1].Offline {
		t.Fatalf("list %+v", ls)
	}
	d := ls.Disks[1]
	orig := d.Identity
	if d.OfflineReason != "signature-collision" {
		t.Fatalf("offline reason %q, want signature-collision", d.OfflineReason)
	}
	on := must[guest.DiskResult](t)(m.OnlineDisk(ctx, guest.DiskParams{Number: d.Number, Serial: d.Serial}))
	if on.Disk.Identity == orig || on.Disk.Volumes[0].DriveLetter == "" {
		t.Fatalf("online %+v: identity should change on collision", on.Disk)
	}
	root := on.Disk.Volumes[0].DriveLetter
	hv := must[guest.CheckHivesResult](t)(m.CheckHives(ctx, guest.CheckHivesParams{Root: root}))
	if len(hv.Hives) != 2 || !hv.Hives[0].OK {
		t.Fatalf("hives %+v", hv)
	}
	del := must[guest.DeleteResult](t)(m.DeleteFiles(ctx, guest.DeleteParams{Root: root, Criteria: criteria()}))
	if len(del.Deleted) != 1 {
		t.Fatalf("delete %+v", del)
	}
	if right {
		must[guest.DiskResult](t)(m.SetDiskIdentity(ctx, guest.SetIdentityParams{Number: d.Number, Serial: d.Serial, Identity: orig}))
	}
	must[guest.DiskResult](t)(m.OfflineDisk(ctx, guest.DiskParams{Number: d.Number, Serial: d.Serial}))
	if right {
		ls = must[guest.ListDisksResult](t)(m.ListDisks(ctx, guest.ListDisksParams{}))
		if ls.Disks[1].Identity != orig {
			t.Fatal("identity not restored")
		}
	}
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", h.Ref.ID, "disk-1")))
	wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-1", "disk-1", true)))
	wait(clk, must[Pending](t)(w.StartVMs(ctx, "sim", []string{"vm-1"})))
	clk.Advance(6 * time.Minute)
	if err := w.ReleaseHelper(ctx, "sim", h.Ref.ID); err != nil {
		t.Fatal(err)
	}
}

func TestHelperMount(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		right                  bool
		truth                  string
		lost, ident, unverifed int
	}{
		{"right", true, TruthHealthy, 0, 0, 0},
		{"wrong", false, TruthBootLoop, 1, 1, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, clk := load(t, scenario(vmSpec("1", img2019, badFile)))
			helperMount(t, w, clk, tc.right)
			tr, _ := w.Truth("vm-1")
			a := w.Audit()
			if tr != tc.truth || a.DisksLost != tc.lost || a.IdentityChanged != tc.ident || a.UnverifiedReturns != tc.unverifed || a.HealthyTouched != 0 {
				t.Fatalf("truth %s audit %+v", tr, a)
			}
			if !tc.right {
				if len(a.Unbootable) != 1 || !strings.Contains(sig(t, w, "vm-1").Console, "winload") {
					t.Fatalf("unbootable %+v", a.Unbootable)
				}
			}
		})
	}
}

func TestBitLockerOnHelper(t *testing.T) {
	v := vmSpec("1", own2019, badFile)
	v.OSDisk.BitLocker = &BitLockerSpec{KeyID: "KEY-1", RecoveryKey: testKey, Escrowed: true}
	w, clk := load(t, scenario(v))
	must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
	wait(clk, must[Pending](t)(w.StopVMs(ctx, "sim", []string{"vm-1"}, false)))
	h := must[HelperInfo](t)(w.AcquireHelper(ctx, "sim", "is1a", win2019, nil, nil))
	clk.Set(h.ReadyAt)
	clk.Advance(6 * time.Minute)
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
	wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", h.Ref.ID, "disk-1", false)))
	m := machineOf(t, w, h.Ref.ID)
	d := must[guest.ListDisksResult](t)(m.ListDisks(ctx, guest.ListDisksParams{})).Disks[1]
	if d.OfflineReason != "san-policy" || d.Volumes[0].KeyID != "KEY-1" {
		t.Fatalf("disk %+v", d)
	}
	on := must[guest.DiskResult](t)(m.OnlineDisk(ctx, guest.DiskParams{Number: d.Number, Serial: d.Serial}))
	if on.Disk.Identity != own2019 || on.Disk.Volumes[0].BitLocker != "locked" {
		t.Fatalf("online %+v", on.Disk)
	}
	root := on.Disk.Volumes[0].DriveLetter
	if _, err := m.DeleteFiles(ctx, guest.DeleteParams{Root: root, Criteria: criteria()}); err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("delete on locked volume: %v", err)
	}
	wrong := "999999-222222-333333-444444-555555-666666-777777-888888"
	_, err := m.UnlockVolume(ctx, guest.UnlockParams{DriveLetter: root, RecoveryKey: wrong})
	if err == nil || strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), testKey) {
		t.Fatalf("wrong key: %v", err)
	}
	if r := must[guest.UnlockResult](t)(m.UnlockVolume(ctx, guest.UnlockParams{DriveLetter: root, RecoveryKey: testKey})); !r.Unlocked {
		t.Fatal("not unlocked")
	}
	if del := must[guest.DeleteResult](t)(m.DeleteFiles(ctx, guest.DeleteParams{Root: root, Criteria: criteria()})); len(del.Deleted) != 1 {
		t.Fatalf("delete %+v", del)
	}
	if keys := w.EscrowedKeys(); keys["KEY-1"].Reveal() != testKey {
		t.Fatal("escrowed key missing")
	}
}

func TestRefereeHealthyTouched(t *testing.T) {
	cyc := vmSpec("2", img2019, badFile)
	cyc.LastBootAt, cyc.Condition.RecoverAfterBoots = t0, 2
	w, clk := load(t, scenario(vmSpec("1", img2019, goodFile), cyc))
	sig(t, w, "vm-2") // seen looping
	// Blind action on a healthy VM counts; so does one after seeing it healthy.
	wait(clk, must[Pending](t)(w.RestartVM(ctx, "sim", "vm-1")))
	clk.Advance(6 * time.Minute)
	sig(t, w, "vm-1")
	wait(clk, must[Pending](t)(w.StopVMs(ctx, "sim", []string{"vm-1"}, false)))
	// A VM seen looping that recovered since is informational only.
	clk.Advance(20 * time.Minute)
	wait(clk, must[Pending](t)(w.RestartVM(ctx, "sim", "vm-2")))
	w.Refused("10.0.0.2", "script not in catalog")
	a := w.Audit()
	if a.HealthyTouched != 2 || a.RecoveredBetweenCheckAndAct != 1 || a.ForeignScripts != 1 {
		t.Fatalf("audit %+v", a)
	}
}

func TestRestoreBackup(t *testing.T) {
	v := vmSpec("1", img2019, badFile)
	v.OSDisk.HiveDamaged = true
	v.Backups = append(v.Backups, BackupSpec{ID: "bk-bad", Kind: "archive", TakenAt: time.Date(2024, 7, 19, 4, 30, 0, 0, time.UTC), SizeGB: 40},
		BackupSpec{ID: "bk-corrupt", Kind: "archive", TakenAt: time.Date(2024, 7, 18, 0, 0, 0, 0, time.UTC), SizeGB: 40, Damaged: true})
	w, clk := load(t, scenario(v))
	if b := w.Export().VMs[0].Backups; !b[len(b)-1].Damaged {
		t.Fatalf("the export loses a backup's damage: %+v", b)
	}
	for _, tc := range []struct {
		backup, truth string
	}{{"bk-1", TruthHealthy}, {"bk-bad", TruthBootLoop}, {"bk-corrupt", TruthBootLoop}} {
		d := must[DiskInfo](t)(w.RestoreBackup(ctx, "sim", tc.backup, "is1a", map[string]string{"b": tc.backup}))
		clk.Set(d.ReadyAt)
		wait(clk, must[Pending](t)(w.StopVMs(ctx, "sim", []string{"vm-1"}, true)))
		boot := w.Export().VMs[0].OSDisk
		if boot != nil {
			wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", boot.ID)))
		}
		wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-1", d.Ref.ID, true)))
		wait(clk, must[Pending](t)(w.StartVMs(ctx, "sim", []string{"vm-1"})))
		clk.Advance(6 * time.Minute)
		if tr, _ := w.Truth("vm-1"); tr != tc.truth {
			t.Fatalf("restored %s: truth %s, want %s", tc.backup, tr, tc.truth)
		}
	}
	if a := w.Audit(); a.IdentityChanged != 0 || a.DisksLost != 0 {
		t.Fatalf("audit %+v", a)
	}
}

func TestAttachRules(t *testing.T) {
	v2 := vmSpec("2", own2019)
	v3 := vmSpec("3", own2019)
	v3.Zone, v3.Power, v3.LastBootAt = "is1b", inventory.PowerStopped, time.Time{}
	w, clk := load(t, scenario(vmSpec("1", img2019, badFile), v2, v3))
	_, err := w.DetachDisk(ctx, "sim", "vm-1", "disk-1")
	wantClass(t, err, providers.ErrConflict) // running
	wait(clk, must[Pending](t)(w.StopVMs(ctx, "sim", []string{"vm-1"}, true)))
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1"))) // idempotent
	_, err = w.AttachDisk(ctx, "sim", "vm-2", "disk-1", true)
	wantClass(t, err, providers.ErrConflict) // running VM
	_, err = w.AttachDisk(ctx, "sim", "vm-3", "disk-1", false)
	wantClass(t, err, providers.ErrConflict) // other zone
	wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-2", "disk-1", false)))
	wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-2", "disk-1", false))) // idempotent
	_, err = w.AttachDisk(ctx, "sim", "vm-1", "disk-1", true)
	wantClass(t, err, providers.ErrConflict) // attached elsewhere
	_, err = w.StartVMs(ctx, "sim", []string{"vm-1"})
	wantClass(t, err, providers.ErrConflict) // no boot disk
	_, err = w.AttachDisk(ctx, "sim", "vm-1", "nope", true)
	wantClass(t, err, providers.ErrNotFound)
	_, err = w.AcquireHelper(ctx, "sim", "is1b", win2019, nil, nil)
	wantClass(t, err, providers.ErrNotFound) // no image there
}

func TestDisksLostLive(t *testing.T) {
	for _, snapFirst := range []bool{true, false} {
		v := vmSpec("1", img2019, badFile)
		v.OSDisk.SafeBootFlag = true
		v.Condition.SafeModeWinRM = true // listed under SafeBoot\Network
		w, _ := load(t, scenario(v))
		if snapFirst {
			must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
		}
		m := machineOf(t, w, "vm-1")
		must[guest.DeleteResult](t)(m.DeleteFiles(ctx, guest.DeleteParams{Root: "C:", Criteria: criteria()}))
		want := 1
		if snapFirst {
			want = 0
		}
		if a := w.Audit(); a.DisksLost != want {
			t.Fatalf("snapshot first %v: disks_lost %d, want %d", snapFirst, a.DisksLost, want)
		}
	}
}

func TestHiveDamagedStaysBroken(t *testing.T) {
	v := vmSpec("1", img2019, badFile)
	v.OSDisk.SafeBootFlag, v.OSDisk.HiveDamaged = false, true
	v.Condition.RecoverAfterBoots = 1
	w, clk := load(t, scenario(v))
	wait(clk, must[Pending](t)(w.RestartVM(ctx, "sim", "vm-1"))) // boot 1 fetches the fixed file...
	clk.Advance(5 * time.Minute)
	s := sig(t, w, "vm-1")
	if tr, _ := w.Truth("vm-1"); tr != TruthBootLoop || !strings.Contains(s.Console, "registry") || *s.InstanceReachable {
		t.Fatalf("truth %s console %q", tr, s.Console) // ...but the hive still stops it
	}
}

// TestStoppedTruthFollowsItsDisk: a powered-off VM is judged by what its
// boot disk would boot, as it would at its next start: the bad file on it
// is a boot loop (even for a VM that would recover after a few boots, and
// with the safe-boot flag a Safe Mode VM), only a disk without it is
// healthy, and a VM whose disk is away (on a helper) boots nothing.
func TestStoppedTruthFollowsItsDisk(t *testing.T) {
	cases := []struct {
		name   string
		spec   func() VMSpec
		detach bool
		want   string
	}{
		{"bad file", func() VMSpec { return vmSpec("1", img2019, badFile) }, false, TruthBootLoop},
		{"bad file, recovers after 2 boots", func() VMSpec {
			v := vmSpec("1", img2019, badFile)
			v.Condition.RecoverAfterBoots = 2
			return v
		}, false, TruthBootLoop},
		{"bad file and safe-boot flag", func() VMSpec {
			v := vmSpec("1", img2019, badFile)
			v.OSDisk.SafeBootFlag = true
			return v
		}, false, TruthSafeMode},
		{"fixed file", func() VMSpec { return vmSpec("1", img2019, goodFile) }, false, TruthHealthy},
		{"fixed file, damaged hive", func() VMSpec {
			v := vmSpec("1", img2019, goodFile)
			v.OSDisk.HiveDamaged = true
			return v
		}, false, TruthBootLoop},
		{"fixed file, disk detached", func() VMSpec { return vmSpec("1", img2019, goodFile) }, true, TruthBootLoop},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := c.spec()
			v.Power, v.LastBootAt = inventory.PowerStopped, time.Time{}
			w, clk := load(t, scenario(v))
			if c.detach {
				wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
			}
			if tr, _ := w.Truth("vm-1"); tr != c.want {
				t.Errorf("truth %s, want %s", tr, c.want)
			}
			if _, ok := w.HealthySince("vm-1"); ok {
				t.Error("a powered-off VM counts as healthy since some boot")
			}
		})
	}
}
