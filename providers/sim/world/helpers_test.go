package world

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
)

var (
	t0       = DefaultOrigin
	img2019  = inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "0A62F411"}
	own2019  = inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "12345678"}
	win2019  = inventory.WindowsVersion{Release: "2019", Build: "17763.6054"}
	inc      = inventory.BuiltinIncidents()[inventory.CrowdStrike20240719]
	badFile  = FileSpec{Name: badFileName, Size: fileSize, ModTime: inc.BadFrom, Header: inc.Header}
	goodFile = FileSpec{Name: badFileName, Size: fileSize, ModTime: inc.BadUntil.Add(10 * time.Minute), Header: goodHeader}
	testKey  = "111111-222222-333333-444444-555555-666666-777777-888888"
	ctx      = context.Background()
)

// scenario is a small hand-made world: zone is1a (and is1b), a 2019 image
// in is1a only, no faults, no latency.
func scenario(vms ...VMSpec) Scenario {
	return Scenario{
		Version: ScenarioVersion, Seed: 42, Incident: inventory.CrowdStrike20240719, Now: t0,
		Zones:            []string{"is1a", "is1b"},
		Images:           []ImageSpec{{Zone: "is1a", Release: "2019", Build: "17763.6054", ImageID: "img-2019", Identity: img2019}},
		GuestAccess:      GuestAccessSpec{Username: "Administrator", Password: "pw-sim"},
		ConsoleAvailable: true,
		Faults:           Faults{Throttle: ThrottleOff},
		VMs:              vms,
	}
}

// vmSpec is a running VM in is1a whose disk has identity id and the files.
func vmSpec(n string, id inventory.DiskIdentity, files ...FileSpec) VMSpec {
	return VMSpec{
		ID: "vm-" + n, Zone: "is1a", Windows: win2019, Power: inventory.PowerRunning,
		LastBootAt: t0.Add(-time.Hour), PrivateIP: "10.0.0." + n,
		OSDisk:    &DiskSpec{ID: "disk-" + n, ContentSpec: ContentSpec{SizeGB: 40, Identity: id, Files: files}},
		Condition: ConditionSpec{WinRM: WinRMOpen},
		Backups:   []BackupSpec{{ID: "bk-" + n, Kind: "archive", TakenAt: time.Date(2024, 7, 19, 0, 0, 0, 0, time.UTC), SizeGB: 40}},
	}
}

func load(t *testing.T, sc Scenario) (*World, *ManualClock) {
	t.Helper()
	clk := NewManualClock(sc.Now)
	w, err := Load(sc, clk)
	if err != nil {
		t.Fatal(err)
	}
	return w, clk
}

func must[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func wantClass(t *testing.T, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("error = %v, want class %v", err, class)
	}
}

// wait advances the clock to p.Until.
func wait(clk *ManualClock, p Pending) { clk.Set(p.Until) }

func sig(t *testing.T, w *World, id string) inventory.Signals {
	t.Helper()
	m, err := w.Observe(ctx, "sim", []string{id})
	if err != nil {
		t.Fatal(err)
	}
	return m[id]
}

func machineOf(t *testing.T, w *World, id string) winrmd.Machine {
	t.Helper()
	w.mu.Lock()
	ip := w.vms[id].ip
	w.mu.Unlock()
	m, ok := w.Authenticate(ip, "Administrator", w.GuestPassword().Reveal())
	if !ok {
		t.Fatalf("cannot log on to %s", id)
	}
	return m
}

func criteria() guest.FileCriteria {
	return guest.FileCriteria{Dir: inc.RelDirectory(), Pattern: inc.Pattern, BadFrom: inc.BadFrom, BadUntil: inc.BadUntil, Header: inc.Header}
}

// powerOf is a test aid: v's power state now.
func (w *World) powerOf(id string) inventory.PowerState {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vms[id]
	if v == nil {
		return ""
	}
	w.advance(v, w.clk.Now())
	return v.power
}
