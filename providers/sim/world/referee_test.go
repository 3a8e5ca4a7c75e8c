package world

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
)

// Each test below drives the world the way a buggy orchestrator would and
// checks that the referee's counter fires, and that the correct way leaves
// it at 0.

// sensorDir is a realistic sensor directory: the bad file, an older
// version of the same channel file (matches the glob, predates the
// window), a fixed 05:27+ copy under the next name, and the driver.
func sensorDir() []FileSpec {
	return []FileSpec{badFile,
		{Name: "C-00000291-00000000-00000031.sys", Size: fileSize, ModTime: inc.BadFrom.Add(-20 * time.Hour), Header: oldHeader},
		{Name: fixedFileName, Size: fileSize, ModTime: inc.BadUntil.Add(5 * time.Minute), Header: goodHeader},
		{Name: "csagent.sys", Size: 1_542_536, ModTime: inc.BadFrom.Add(-30 * 24 * time.Hour), Header: "4D5A9000"},
	}
}

func TestWrongfulDeletions(t *testing.T) {
	yearStart := func(y int) time.Time { return time.Date(y, 1, 1, 0, 0, 0, 0, time.UTC) }
	cases := []struct {
		name     string
		criteria func(c guest.FileCriteria) guest.FileCriteria
		want     int // wrongful deletions
	}{
		{"the incident's own criteria", func(c guest.FileCriteria) guest.FileCriteria { return c }, 0},
		{"pattern * over 2000-2100 without header", func(c guest.FileCriteria) guest.FileCriteria {
			c.Pattern, c.BadFrom, c.BadUntil, c.Header = "*", yearStart(2000), yearStart(2100), ""
			return c
		}, 3},
		// The same incident definition with a wrong verdict on the
		// orchestrator's side: its window never closes.
		{"window never closes", func(c guest.FileCriteria) guest.FileCriteria {
			c.BadUntil, c.Header = yearStart(2100), ""
			return c
		}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := vmSpec("1", img2019, sensorDir()...)
			w, _ := load(t, scenario(v))
			must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
			w.mu.Lock()
			w.vms["vm-1"].power, w.vms["vm-1"].boot = inventory.PowerRunning, bootState{kind: bootSafe} // a safe-mode guest
			w.vms["vm-1"].cond.safeModeWinRM = true
			w.mu.Unlock()
			m := machineOf(t, w, "vm-1")
			del := must[guest.DeleteResult](t)(m.DeleteFiles(ctx, guest.DeleteParams{Root: "C:", Criteria: tc.criteria(criteria())}))
			a := w.Audit()
			if a.WrongfulDeletions != tc.want || len(a.WrongfulDeletionList) != tc.want {
				t.Fatalf("deleted %d files; wrongful_deletions %d %v, want %d", len(del.Deleted), a.WrongfulDeletions, a.WrongfulDeletionList, tc.want)
			}
			if (tc.want == 0) != a.Clean() {
				t.Errorf("Clean() = %v with %+v", a.Clean(), a.Invariants())
			}
		})
	}
}

// The referee judges files by its own reading of the incident, not by
// inventory.Incident.Verdict.
func TestRefereeVerdictIsItsOwn(t *testing.T) {
	w := &World{incident: inc}
	cases := []struct {
		f    file
		want bool
	}{
		{file{name: badFileName, mod: inc.BadFrom, header: inc.Header}, true},
		{file{name: "c-00000291-00000000-00000032.SYS", mod: inc.BadFrom, header: inc.Header}, true},
		{file{name: badFileName, mod: inc.BadUntil, header: inc.Header}, false},
		{file{name: badFileName, mod: inc.BadFrom.Add(-time.Second), header: inc.Header}, false},
		{file{name: badFileName, mod: inc.BadFrom, header: goodHeader}, false},
		{file{name: "C-00000285-00000000-00000002.sys", mod: inc.BadFrom, header: inc.Header}, false},
		{file{name: "csagent.sys", mod: inc.BadFrom, header: inc.Header}, false},
	}
	for _, tc := range cases {
		if got := w.isBad(tc.f); got != tc.want {
			t.Errorf("isBad(%+v) = %v, want %v", tc.f, got, tc.want)
		}
	}
}

func TestForeignBootDisk(t *testing.T) {
	for _, foreign := range []bool{false, true} {
		v1, v2 := vmSpec("1", img2019, badFile), vmSpec("2", img2019, badFile)
		v1.Name, v2.Name = "web-1", "db-2"
		v1.Power, v2.Power = inventory.PowerStopped, inventory.PowerStopped
		w, clk := load(t, scenario(v1, v2))
		bk := "bk-1"
		if foreign {
			bk = "bk-2" // the other VM's backup
		}
		d := must[DiskInfo](t)(w.RestoreBackup(ctx, "sim", bk, "is1a", nil))
		clk.Set(d.ReadyAt)
		wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
		wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-1", d.Ref.ID, true)))
		wait(clk, must[Pending](t)(w.StartVMs(ctx, "sim", []string{"vm-1"})))
		clk.Advance(10 * time.Minute)
		if tr, _ := w.Truth("vm-1"); tr != TruthHealthy {
			t.Fatalf("foreign %v: truth %s", foreign, tr)
		}
		p := must[guest.ProbeResult](t)(machineOf(t, w, "vm-1").Probe(ctx, guest.ProbeParams{Dir: inc.RelDirectory(), Pattern: inc.Pattern}))
		a := w.Audit()
		if foreign {
			if p.Hostname != "db-2" {
				t.Errorf("the guest booted from db-2's disk calls itself %q", p.Hostname)
			}
			if a.ForeignBootDisks != 1 || a.ForeignBootDiskList[0].Origin != "vm-2" || a.StrandedOriginals != 1 {
				t.Fatalf("foreign_boot_disks %d %v, stranded_originals %d", a.ForeignBootDisks, a.ForeignBootDiskList, a.StrandedOriginals)
			}
			continue
		}
		if p.Hostname != "web-1" || !a.Clean() {
			t.Fatalf("own backup: hostname %q, audit %+v %v", p.Hostname, a.Invariants(), a.Violations())
		}
	}
}

func TestStrandedOriginalOnHelper(t *testing.T) {
	v := vmSpec("1", img2019, badFile)
	v.Power = inventory.PowerStopped
	w, clk := load(t, scenario(v))
	h := must[HelperInfo](t)(w.AcquireHelper(ctx, "sim", "is1a", win2019, nil, nil))
	clk.Set(h.ReadyAt)
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
	p := must[Pending](t)(w.AttachDisk(ctx, "sim", h.Ref.ID, "disk-1", false))
	if a := w.Audit(); a.StrandedOriginals != 0 {
		t.Fatalf("mid-attach: stranded_originals %d", a.StrandedOriginals)
	}
	wait(clk, p)
	if a := w.Audit(); a.StrandedOriginals != 1 || a.StrandedOriginalList[0].On != h.Ref.ID || a.LeakedResources != 1 {
		t.Fatalf("stranded %v leaked %v", a.StrandedOriginalList, a.LeakedList)
	}
	// Put back and release: nothing left.
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", h.Ref.ID, "disk-1")))
	wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-1", "disk-1", true)))
	if err := w.ReleaseHelper(ctx, "sim", h.Ref.ID); err != nil {
		t.Fatal(err)
	}
	if a := w.Audit(); !a.Clean() {
		t.Fatalf("audit %+v %v", a.Invariants(), a.Violations())
	}
}

// crashing is a boot-looping VM whose next boot fetches the fixed file.
func crashing() VMSpec {
	v := vmSpec("1", img2019, badFile)
	v.LastBootAt = t0.Add(-30 * time.Second)
	v.BootCount = 5
	v.Condition.RecoverAfterBoots = 6
	return v
}

func TestStaleExcuses(t *testing.T) {
	cases := []struct {
		name       string
		dropReply  bool          // the observation's reply is lost
		actAfter   time.Duration // from the observation
		wantTouch  int
		wantExcuse int
	}{
		{"recent observation excuses", false, 10 * time.Minute, 0, 1},
		{"healthy for hours after a stale observation", false, 6 * time.Hour, 1, 0},
		{"observation whose reply was lost", true, 10 * time.Minute, 1, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, clk := load(t, scenario(crashing()))
			if tc.dropReply {
				if err := w.SetFaults(Faults{Throttle: ThrottleOff, DropAfterRate: 1}); err != nil {
					t.Fatal(err)
				}
			}
			_, err := w.Observe(ctx, "sim", []string{"vm-1"}) // sees it crashing
			if tc.dropReply != (err != nil) {
				t.Fatalf("observe: %v", err)
			}
			if err := w.SetFaults(Faults{Throttle: ThrottleOff}); err != nil {
				t.Fatal(err)
			}
			clk.Advance(tc.actAfter) // it resets and comes up healthy meanwhile
			if tr, _ := w.Truth("vm-1"); tr != TruthHealthy {
				t.Fatalf("truth %s", tr)
			}
			must[Pending](t)(w.RestartVM(ctx, "sim", "vm-1"))
			a := w.Audit()
			if a.HealthyTouched != tc.wantTouch || a.RecoveredBetweenCheckAndAct != tc.wantExcuse {
				t.Fatalf("healthy_touched %d recovered_between %d, want %d %d", a.HealthyTouched, a.RecoveredBetweenCheckAndAct, tc.wantTouch, tc.wantExcuse)
			}
		})
	}
}

func TestGuestFaults(t *testing.T) {
	cases := []struct {
		name       string
		faults     Faults
		wantErr    bool
		wantDrop   bool // the connection dropped (winrmd.ErrDropped)
		wantEffect bool
	}{
		{"none", Faults{}, false, false, true},
		{"drop before", Faults{GuestDropBeforeRate: 1}, true, true, false},
		{"guest error", Faults{GuestErrorRate: 1}, true, false, false},
		{"reply lost after the effect", Faults{GuestDropAfterRate: 1}, true, true, true},
		{"slow", Faults{GuestSlowRate: 1}, false, false, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := vmSpec("1", img2019, badFile)
			v.OSDisk.SafeBootFlag, v.Condition.SafeModeWinRM = true, true
			w, _ := load(t, scenario(v))
			must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
			m := machineOf(t, w, "vm-1")
			tc.faults.Throttle = ThrottleOff
			if err := w.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			errs := 0
			for range 20 { // ClearSafeBoot is idempotent
				if _, err := m.ClearSafeBoot(ctx, guest.ClearSafeBootParams{}); err != nil {
					errs++
					if errors.Is(err, winrmd.ErrDropped) != tc.wantDrop {
						t.Fatalf("error %v: dropped %v, want %v", err, errors.Is(err, winrmd.ErrDropped), tc.wantDrop)
					}
				}
			}
			if want := map[bool]int{true: 20, false: 0}[tc.wantErr]; errs != want {
				t.Fatalf("%d errors in 20 scripts, want %d", errs, want)
			}
			if vs := w.Export().VMs[0]; vs.OSDisk.SafeBootFlag == tc.wantEffect {
				t.Fatalf("safe-boot flag %v after the scripts, want effect %v", vs.OSDisk.SafeBootFlag, tc.wantEffect)
			}
			if got := w.Stats().GuestInjected; (got > 0) != tc.wantErr {
				t.Fatalf("guest_injected %d", got)
			}
		})
	}
}

// onHelper puts stopped vm-1's disk (snapshotted first) on a helper of the
// same image and onlines it there: Windows changes its identity; then the
// orchestrator writes ident on it.
func onHelper(t *testing.T, ident inventory.DiskIdentity) (*World, *ManualClock, HelperInfo, winrmd.Machine) {
	t.Helper()
	v := vmSpec("1", img2019, badFile)
	v.Power = inventory.PowerStopped
	w, clk := load(t, scenario(v))
	must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
	h := must[HelperInfo](t)(w.AcquireHelper(ctx, "sim", "is1a", win2019, nil, nil))
	clk.Set(h.ReadyAt)
	clk.Advance(10 * time.Minute)
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
	wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", h.Ref.ID, "disk-1", false)))
	m := machineOf(t, w, h.Ref.ID)
	must[guest.DiskResult](t)(m.OnlineDisk(ctx, guest.DiskParams{Number: 1, Serial: "disk-1"}))
	must[guest.DiskResult](t)(m.SetDiskIdentity(ctx, guest.SetIdentityParams{Number: 1, Serial: "disk-1", Identity: ident}))
	return w, clk, h, m
}

// A listing whose reply was lost verifies nothing: returning the disk then
// is unverified.
func TestLostReplyOnGuestScript(t *testing.T) {
	for _, lost := range []bool{false, true} {
		w, clk, h, m := onHelper(t, img2019)
		if lost {
			if err := w.SetFaults(Faults{Throttle: ThrottleOff, GuestDropAfterRate: 1}); err != nil {
				t.Fatal(err)
			}
		}
		_, err := m.ListDisks(ctx, guest.ListDisksParams{})
		if lost != errors.Is(err, winrmd.ErrDropped) {
			t.Fatalf("list: %v", err)
		}
		if err := w.SetFaults(Faults{Throttle: ThrottleOff}); err != nil {
			t.Fatal(err)
		}
		must[guest.DiskResult](t)(m.OfflineDisk(ctx, guest.DiskParams{Number: 1, Serial: "disk-1"}))
		wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", h.Ref.ID, "disk-1")))
		wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-1", "disk-1", true)))
		want := map[bool]int{true: 1, false: 0}[lost]
		if a := w.Audit(); a.UnverifiedReturns != want {
			t.Fatalf("reply lost %v: unverified_returns %d, want %d", lost, a.UnverifiedReturns, want)
		}
	}
}

func TestUnverifiedReturnWrongIdentity(t *testing.T) {
	wrong := inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "0BADF00D"}
	cases := []struct {
		name   string
		ident  inventory.DiskIdentity
		copyIt bool // return a copy made after the change instead
		want   int
	}{
		{"restored and listed", img2019, false, 0},
		{"listed with a wrong identity", wrong, false, 1},
		{"a copy of a disk listed with a wrong identity", wrong, true, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, clk, h, m := onHelper(t, tc.ident)
			must[guest.ListDisksResult](t)(m.ListDisks(ctx, guest.ListDisksParams{}))
			must[guest.DiskResult](t)(m.OfflineDisk(ctx, guest.DiskParams{Number: 1, Serial: "disk-1"}))
			wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", h.Ref.ID, "disk-1")))
			ret := "disk-1"
			if tc.copyIt {
				s := must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
				clk.Set(s.ReadyAt)
				d := must[DiskInfo](t)(w.DiskFromSnapshot(ctx, "sim", s.Ref.ID, "is1a", nil))
				clk.Set(d.ReadyAt)
				ret = d.Ref.ID
			}
			wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-1", ret, true)))
			if a := w.Audit(); a.UnverifiedReturns != tc.want {
				t.Fatalf("unverified_returns %d %v, want %d", a.UnverifiedReturns, a.UnverifiedReturnList, tc.want)
			}
		})
	}
}

func TestDroppedHelperCreates(t *testing.T) {
	cases := []struct {
		name  string
		token string
		want  int // helpers in the end
	}{
		{"no client token: every create creates", "", 5},
		{"client token honoured", "run-1/vm-1/helper", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := load(t, scenario(vmSpec("1", img2019, badFile)))
			if err := w.SetFaults(Faults{Throttle: ThrottleOff, DropAfterRate: 1}); err != nil {
				t.Fatal(err)
			}
			for range 5 {
				_, err := w.CreateHelper(ctx, "sim", "is1a", win2019, map[string]string{"run": "1"}, tc.token)
				wantClass(t, err, providers.ErrUnavailable)
			}
			if a := w.Audit(); a.LeakedResources != tc.want {
				t.Fatalf("leaked_resources %d %v, want %d", a.LeakedResources, a.LeakedList, tc.want)
			}
		})
	}
}

func TestHelperLimits(t *testing.T) {
	sc := scenario(vmSpec("1", img2019, badFile))
	sc.Limits = Limits{HelpersPerAccount: 2, HelpersPerZone: map[string]int{"is1a": 1}}
	w, _ := load(t, sc)
	must[HelperInfo](t)(w.CreateHelper(ctx, "sim", "is1a", win2019, nil, ""))
	_, err := w.CreateHelper(ctx, "sim", "is1a", win2019, nil, "")
	wantClass(t, err, providers.ErrConflict)
	sc.Limits = Limits{HelpersPerZone: map[string]int{"nowhere": 1}}
	if _, err := Load(sc, NewManualClock(sc.Now)); err == nil {
		t.Fatal("a capacity for an unknown zone loaded")
	}
}

func TestSafeModeWinRMOnlyWhereEnabled(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		v := vmSpec("1", img2019, badFile)
		v.OSDisk.SafeBootFlag, v.Condition.SafeModeWinRM = true, enabled
		w, _ := load(t, scenario(v))
		if got := w.Listening("10.0.0.1"); got != enabled {
			t.Errorf("safe mode, WinRM enabled for it %v: listening %v", enabled, got)
		}
	}
}

func TestClearSafeBootWithoutSnapshotLosesDisk(t *testing.T) {
	v := vmSpec("1", img2019, badFile)
	v.OSDisk.SafeBootFlag, v.Condition.SafeModeWinRM = true, true
	w, _ := load(t, scenario(v))
	must[guest.SafeBootResult](t)(machineOf(t, w, "vm-1").ClearSafeBoot(ctx, guest.ClearSafeBootParams{}))
	if a := w.Audit(); a.DisksLost != 1 {
		t.Fatalf("disks_lost %d", a.DisksLost)
	}
}

// TestLeftoverSnapshots: the first snapshot of a disk for each purpose
// (its tags) is kept by design; every later one with the same tags is a
// leftover, beside the leaked helpers and disks.
func TestLeftoverSnapshots(t *testing.T) {
	safety := map[string]string{"fixfleet-role": "snapshot"}
	source := map[string]string{"fixfleet-role": "copy-source"}
	cases := []struct {
		name      string
		snapshots []map[string]string // tags of each snapshot of disk-1, in order
		helper    bool
		want      int
	}{
		{"none", nil, false, 0},
		{"one kept by design", []map[string]string{nil}, false, 0},
		{"a duplicate", []map[string]string{nil, nil}, false, 1},
		{"two duplicates and a helper", []map[string]string{nil, nil, nil}, true, 3},
		{"one per purpose", []map[string]string{safety, source}, false, 0},
		{"a duplicate of one purpose", []map[string]string{safety, source, safety}, false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, clk := load(t, scenario(vmSpec("1", img2019, badFile)))
			for _, tags := range tc.snapshots {
				must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", tags))
				clk.Set(clk.Now().Add(time.Minute))
			}
			if tc.helper {
				must[HelperInfo](t)(w.CreateHelper(ctx, "sim", "is1a", win2019, nil, ""))
			}
			a := w.Audit()
			if a.Leftovers != tc.want || len(a.LeftoverList) != tc.want {
				t.Fatalf("leftovers %d %v, want %d", a.Leftovers, a.LeftoverList, tc.want)
			}
			for _, l := range a.LeftoverList {
				if l.Kind == "snapshot" && l.On != "disk-1" {
					t.Errorf("leftover %+v, want a snapshot of disk-1", l)
				}
			}
		})
	}
}

// TestLostWrites: a disk made from a snapshot becomes a VM's boot disk.
// Only if the VM's Windows was up (and writing) after the snapshot was
// taken are writes lost; its own disk back, a copy of the stopped disk and
// a backup's restore lose none the referee counts.
func TestLostWrites(t *testing.T) {
	cases := []struct {
		name      string
		snapFirst bool   // snapshot while the VM runs, then stop; else stop, then snapshot
		boot      string // "copy", "own" or "backup"
		want      int
	}{
		{"a copy of a snapshot taken while it ran", true, "copy", 1},
		{"a copy of a snapshot taken after the stop", false, "copy", 0},
		{"its own disk back", true, "own", 0},
		{"a backup restored (the policy's allowed loss)", true, "backup", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w, clk := load(t, scenario(vmSpec("1", img2019)))
			stop := func() {
				wait(clk, must[Pending](t)(w.StopVMs(ctx, "sim", []string{"vm-1"}, false)))
			}
			if !tc.snapFirst {
				stop()
			}
			s := must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", "disk-1", nil))
			clk.Set(clk.Now().Add(10 * time.Minute))
			if tc.snapFirst {
				stop()
			}
			wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", "vm-1", "disk-1")))
			boot := "disk-1"
			switch tc.boot {
			case "copy":
				clk.Set(s.ReadyAt)
				d := must[DiskInfo](t)(w.DiskFromSnapshot(ctx, "sim", s.Ref.ID, "is1a", nil))
				clk.Set(d.ReadyAt)
				boot = d.Ref.ID
			case "backup":
				d := must[DiskInfo](t)(w.RestoreBackup(ctx, "sim", "bk-1", "is1a", nil))
				clk.Set(d.ReadyAt)
				boot = d.Ref.ID
			}
			if clk.Now().Before(s.ReadyAt) {
				clk.Set(s.ReadyAt)
			}
			wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", "vm-1", boot, true)))
			a := w.Audit()
			if a.LostWrites != tc.want || len(a.LostWriteList) != tc.want || a.Invariants().LostWrites != tc.want {
				t.Fatalf("lost_writes %d %+v, want %d", a.LostWrites, a.LostWriteList, tc.want)
			}
			if tc.want > 0 && !strings.Contains(strings.Join(a.Violations(), "\n"), "writes between are lost") {
				t.Errorf("violations %q do not name the lost writes", a.Violations())
			}
		})
	}
}
