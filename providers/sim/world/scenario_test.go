package world

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/guest"
)

func TestParseScenarioStrict(t *testing.T) {
	good, err := MarshalScenario(scenario(vmSpec("1", img2019, badFile)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, doc, want string
	}{
		{"unknown top-level field", strings.Replace(string(good), `"seed"`, `"sead"`, 1), `unknown field "sead"`},
		{"unknown vm field", strings.Replace(string(good), `"zone": "is1a",`, `"zone": "is1a", "colour": "red",`, 1), `unknown field "colour"`},
		{"trailing data", string(good) + "{}", "trailing data"},
		{"empty", "", "empty document"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseScenario(strings.NewReader(tc.doc))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := ParseScenario(bytes.NewReader(good)); err != nil {
		t.Fatal(err)
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(sc *Scenario)
		wants []string
	}{
		{"version", func(sc *Scenario) { sc.Version = "v0" }, []string{"version"}},
		{"incident", func(sc *Scenario) { sc.Incident = "log4j" }, []string{"incident", "log4j"}},
		{"vm zone", func(sc *Scenario) { sc.VMs[0].Zone = "us-east-1a" }, []string{"vm vm-1", "zone", "us-east-1a"}},
		{"identity", func(sc *Scenario) { sc.VMs[0].OSDisk.Identity.ID = "xyz" }, []string{"vm vm-1", "os_disk.identity.id"}},
		{"style", func(sc *Scenario) { sc.VMs[0].OSDisk.Identity.Style = "apm" }, []string{"vm vm-1", "identity.style"}},
		{"truth value", func(sc *Scenario) { sc.VMs[0].Truth = "fine" }, []string{"vm vm-1", "truth"}},
		{"truth disagrees", func(sc *Scenario) { sc.VMs[0].Truth = TruthHealthy }, []string{"vm vm-1", "truth", "boot-loop"}},
		{"loop disagrees", func(sc *Scenario) { sc.VMs[0].Condition.Loop = LoopStuck }, []string{"vm vm-1", "condition.loop"}},
		{"winrm", func(sc *Scenario) { sc.VMs[0].Condition.WinRM = "maybe" }, []string{"vm vm-1", "condition.winrm"}},
		{"power", func(sc *Scenario) { sc.VMs[0].Power = "paused" }, []string{"vm vm-1", "power"}},
		{"power_until", func(sc *Scenario) { sc.VMs[0].Power = inventory.PowerStopping }, []string{"vm vm-1", "power_until"}},
		{"duplicate vm", func(sc *Scenario) { sc.VMs = append(sc.VMs, sc.VMs[0]) }, []string{"vm vm-1", "twice"}},
		{"duplicate ip", func(sc *Scenario) {
			v := vmSpec("2", img2019)
			v.PrivateIP = "10.0.0.1"
			sc.VMs = append(sc.VMs, v)
		}, []string{"vm vm-2", "private_ip"}},
		{"bad ip", func(sc *Scenario) { sc.VMs[0].PrivateIP = "192.168.0.1" }, []string{"vm vm-1", "private_ip"}},
		{"file header", func(sc *Scenario) { sc.VMs[0].OSDisk.Files[0].Header = "zz" }, []string{"vm vm-1", "files[0].header"}},
		{"file name", func(sc *Scenario) { sc.VMs[0].OSDisk.Files[0].Name = `..\x.sys` }, []string{"vm vm-1", "files[0].name"}},
		{"negative recover", func(sc *Scenario) { sc.VMs[0].Condition.RecoverAfterBoots = -1 }, []string{"vm vm-1", "recover_after_boots"}},
		{"backup time", func(sc *Scenario) { sc.VMs[0].Backups[0].TakenAt = time.Time{} }, []string{"vm vm-1", "backups[0].taken_at"}},
		{"recovery key", func(sc *Scenario) {
			sc.VMs[0].OSDisk.BitLocker = &BitLockerSpec{KeyID: "K", RecoveryKey: "secret-123"}
		}, []string{"vm vm-1", "recovery_key"}},
		{"rate", func(sc *Scenario) { sc.Faults.ErrorRate = 2 }, []string{"faults.error_rate"}},
		{"throttle", func(sc *Scenario) { sc.Faults.Throttle = "lots" }, []string{"faults.throttle"}},
		{"image zone", func(sc *Scenario) { sc.Images[0].Zone = "zz" }, []string{"images[0].zone"}},
		{"attached to nothing", func(sc *Scenario) {
			sc.Disks = []DiskSpec{{ID: "d9", Zone: "is1a", Account: "sim", AttachedTo: "vm-404",
				ContentSpec: ContentSpec{SizeGB: 1, Identity: own2019}}}
		}, []string{"disk d9", "attached_to"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sc := scenario(vmSpec("1", img2019, badFile))
			tc.edit(&sc)
			_, err := Load(sc, NewManualClock(t0))
			if err == nil {
				t.Fatal("no error")
			}
			for _, want := range tc.wants {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not mention %q", err, want)
				}
			}
			if strings.Contains(err.Error(), "secret-123") {
				t.Error("error shows the recovery key")
			}
		})
	}
}

func TestParseMix(t *testing.T) {
	m, err := ParseMix(DefaultMixSpec)
	if err != nil || m.String() != DefaultMixSpec {
		t.Fatalf("%v %q", err, m.String())
	}
	for _, tc := range []struct{ in, want string }{
		{"healthy=1,zombie=3", `"zombie=3"`},
		{"healthy=x", `"healthy=x"`},
		{"healthy=-1", `"healthy=-1"`},
		{"healthy", `"healthy"`},
		{"healthy=1,healthy=2", "twice"},
		{"healthy=0", "above 0"},
	} {
		if _, err := ParseMix(tc.in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMix(%q) = %v, want %s", tc.in, err, tc.want)
		}
	}
}

func TestGeneratedMix(t *testing.T) {
	const n = 1000
	w, _ := mustGen(t, GenOptions{VMs: n, Seed: 11})
	sc := w.Export()
	kinds := map[string]int{}
	var bitlocker, escrowed, imageID, backups, badWindowOnly, none, hive int
	imgIDs := map[inventory.DiskIdentity]bool{}
	for _, im := range sc.Images {
		imgIDs[im.Identity] = true
	}
	for _, v := range sc.VMs {
		switch {
		case v.Condition.WinRM == WinRMBlocked:
			kinds["winrm-blocked"]++
		case v.Condition.WinRM == WinRMBadCredentials:
			kinds["bad-credentials"]++
		case v.Power == inventory.PowerStopped:
			kinds["stopped"]++
		default:
			kinds[v.Truth+"/"+v.Condition.Loop]++
		}
		if b := v.OSDisk.BitLocker; b != nil {
			bitlocker++
			if b.Escrowed {
				escrowed++
			}
		}
		if imgIDs[v.OSDisk.Identity] {
			imageID++
		}
		switch {
		case len(v.Backups) == 0:
			none++
		case len(v.Backups) == 1 && !v.Backups[0].TakenAt.Before(inc.BadFrom):
			badWindowOnly++
		default:
			backups++
		}
		if v.OSDisk.HiveDamaged {
			hive++
		}
	}
	near := func(name string, got int, want float64) {
		if d := float64(got) - want; d < -want*0.25-5 || d > want*0.25+5 {
			t.Errorf("%s: %d, want about %.0f", name, got, want)
		}
	}
	near("healthy", kinds["healthy/"], 350)
	near("cycling+stuck", kinds["boot-loop/cycling"]+kinds["boot-loop/stuck"], 400)
	near("safe-mode", kinds["safe-mode/"], 100)
	near("stopped", kinds["stopped"], 30)
	near("winrm-blocked", kinds["winrm-blocked"], 70)
	near("bad-credentials", kinds["bad-credentials"], 50)
	near("bitlocker", bitlocker, 300)
	near("escrowed", escrowed, 240)
	near("image identity", imageID, 750)
	near("daily backups", backups, 750)
	near("bad-window backup only", badWindowOnly, 100)
	near("no backup", none, 150)
	if hive == 0 {
		t.Error("no hive-damaged VM")
	}
	if len(sc.Images) != len(sc.Zones)*3-1 {
		t.Errorf("%d images, want one combination missing", len(sc.Images))
	}
}

func TestRoundTripMidRun(t *testing.T) {
	w, clk := mustGen(t, GenOptions{VMs: 200, Seed: 5})
	clk.Advance(37 * time.Minute)
	// Leave things half done: a snapshot, a helper with a disk online on
	// it, a VM stopping, a disk attaching.
	sc := w.Export()
	var target VMSpec
	for _, v := range sc.VMs {
		if v.Zone == "is1a" && v.Windows.Release == "2019" && v.Truth == TruthBootLoop && v.Power == inventory.PowerRunning {
			target = v
			break
		}
	}
	must[SnapshotInfo](t)(w.Snapshot(ctx, "sim", target.OSDisk.ID, map[string]string{"run": "r1"}))
	wait(clk, must[Pending](t)(w.StopVMs(ctx, "sim", []string{target.ID}, true)))
	h := must[HelperInfo](t)(w.AcquireHelper(ctx, "sim", "is1a", win2019, map[string]string{"run": "r1"}, nil))
	clk.Set(h.ReadyAt)
	clk.Advance(6 * time.Minute)
	wait(clk, must[Pending](t)(w.DetachDisk(ctx, "sim", target.ID, target.OSDisk.ID)))
	wait(clk, must[Pending](t)(w.AttachDisk(ctx, "sim", h.Ref.ID, target.OSDisk.ID, false)))
	m := machineOf(t, w, h.Ref.ID)
	must[guest.DiskResult](t)(m.OnlineDisk(ctx, guest.DiskParams{Number: 1, Serial: target.OSDisk.ID}))
	must[Pending](t)(w.StopVMs(ctx, "sim", []string{sc.VMs[0].ID}, false))
	for _, when := range []time.Duration{0, 3 * time.Minute} {
		clk.Advance(when)
		j1 := exportJSON(t, w)
		sc2, err := ParseScenario(bytes.NewReader(j1))
		if err != nil {
			t.Fatal(err)
		}
		w2, err := Load(sc2, NewManualClock(clk.Now()))
		if err != nil {
			t.Fatal(err)
		}
		if j2 := exportJSON(t, w2); !bytes.Equal(j1, j2) {
			t.Fatalf("round trip differs:\n%s", firstDiff(j1, j2))
		}
	}
}

func TestLargeWorld(t *testing.T) {
	if testing.Short() {
		t.Skip("10,000 VMs")
	}
	w, clk := mustGen(t, GenOptions{VMs: 10000, Seed: 1})
	clk.Advance(6 * time.Hour)
	a := w.Audit()
	if len(a.Truth) != 10000 || a.NaturalRecoveries == 0 {
		t.Fatalf("truths %d, recoveries %d", len(a.Truth), a.NaturalRecoveries)
	}
}
