package readiness_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/readiness"
	"github.com/fixfleet/fixfleet/simulation"
)

// planted is a healthy fleet with the planted gaps, and the VMs
// (world IDs) each gap must be found on.
type planted struct {
	sc   world.Scenario
	want map[readiness.Kind][]string
}

const plantedVMs = 40

// healthyFleet is a healthy single-account fleet in zones (nil: the
// generator's) with nothing missing: every VM backed up 6 h ago, every
// BitLocker key escrowed, WinRM open and allowed in Safe Mode, every
// release's image in every zone, every action allowed, no helper quota.
func healthyFleet(t *testing.T, zones []string) world.Scenario {
	t.Helper()
	mix, err := world.ParseMix("healthy=100")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := world.GenerateScenario(world.GenOptions{VMs: plantedVMs, Seed: 15, Mix: mix, Zones: zones})
	if err != nil {
		t.Fatal(err)
	}
	sc.Faults = world.Faults{Throttle: world.ThrottleOff}
	for i := range sc.VMs {
		v := &sc.VMs[i]
		v.Tags["role"] = "app"
		v.Condition.WinRM, v.Condition.SafeModeWinRM = world.WinRMOpen, true
		v.Backups = []world.BackupSpec{{ID: fmt.Sprintf("bk-%d", i), Kind: "archive", TakenAt: sc.Now.Add(-6 * time.Hour), SizeGB: v.OSDisk.SizeGB}}
		if b := v.OSDisk.BitLocker; b != nil {
			b.Escrowed = true
		}
	}
	last := sc.Zones[len(sc.Zones)-1]
	for _, im := range sc.Images {
		if im.Release == "2016" && im.Zone != last {
			im.Zone, im.ImageID = last, "img-win2016-"+last
			sc.Images = append(sc.Images, im)
			break
		}
	}
	return sc
}

// plantFleet is healthyFleet with the planted gaps: 2 DCs, one
// without a backup; 5 BitLocker VMs without an escrowed key; no 2016
// image in the last zone, where some 2016 VMs are; 10 VMs whose WinRM
// does not start in Safe Mode; the account denied the actions in denied;
// a helper quota of 1.
//
// With regional, the 2016 image goes from every zone: on AWS an image
// (AMI) is regional, so a zone without one is a region without one.
func plantFleet(t *testing.T, zones []string, denied []providers.Action, regional bool) planted {
	t.Helper()
	sc := healthyFleet(t, zones)
	p := planted{want: map[readiness.Kind][]string{}}
	noImage := sc.Zones[len(sc.Zones)-1]
	sc.Images = slices.DeleteFunc(sc.Images, func(im world.ImageSpec) bool {
		return (im.Zone == noImage || regional) && im.Release == "2016"
	})
	for i := range sc.VMs {
		v := &sc.VMs[i]
		switch {
		case i < 2: // the two DCs; the second has no backup
			v.Tags["role"] = "dc"
			if i == 1 {
				v.Backups = nil
				p.want[readiness.NoBackup] = append(p.want[readiness.NoBackup], v.ID)
				p.want[readiness.RoleBackup] = append(p.want[readiness.RoleBackup], v.ID)
			}
		case i < 7: // BitLocker without an escrowed key
			v.OSDisk.BitLocker = &world.BitLockerSpec{KeyID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i),
				RecoveryKey: "111111-222222-333333-444444-555555-666666-777777-888888", Escrowed: false}
			p.want[readiness.KeyNotEscrowed] = append(p.want[readiness.KeyNotEscrowed], v.ID)
		case i >= 20 && i < 30:
			v.Condition.SafeModeWinRM = false
			p.want[readiness.NoSafeModeWinRM] = append(p.want[readiness.NoSafeModeWinRM], v.ID)
		case i >= 30 && v.Windows.Release == "2016":
			v.Zone = noImage // 2016 VMs in the zone without a 2016 image
		}
		if (v.Zone == noImage || regional) && v.Windows.Release == "2016" {
			p.want[readiness.NoHelperImage] = append(p.want[readiness.NoHelperImage], v.ID)
		}
		p.want[readiness.PermissionDenied] = append(p.want[readiness.PermissionDenied], v.ID)
	}
	if len(p.want[readiness.NoHelperImage]) == 0 {
		t.Fatalf("no 2016 VM in zone %s; pick another seed", noImage)
	}
	sc.Limits.Denied = map[string][]providers.Action{world.DefaultAccount: denied}
	sc.Limits.HelpersPerAccount = 1
	p.sc = sc
	return p
}

// TestReadyFleet: a fleet with nothing missing is ready, every VM has a
// full repair path, and there is no fix.
func TestReadyFleet(t *testing.T) {
	r, audit, _ := run(t, planted{sc: healthyFleet(t, nil)}, simulation.FaceSim)
	if !r.Ready || len(r.Fixes) != 0 {
		t.Errorf("ready %v, fixes %+v", r.Ready, r.Fixes)
	}
	if len(r.Tenants) != 1 || r.Tenants[0].Score != 1 || r.Tenants[0].Ready != plantedVMs {
		t.Errorf("tenants %+v, want every VM ready", r.Tenants)
	}
	if audit.HealthyTouched != 0 {
		t.Errorf("healthy_touched %d", audit.HealthyTouched)
	}
}

// run opens the planted world through face and runs readiness.
func run(t *testing.T, p planted, face string) (*readiness.Report, world.Audit, func(string) string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "scenario.json")
	b, err := json.Marshal(p.sc)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	be, err := simulation.Open(simulation.Options{World: simulation.WorldOptions{Scenario: path}, Face: face, TimeScale: 600})
	if err != nil {
		t.Fatal(err)
	}
	defer be.Close()
	ctx := context.Background()
	f, err := be.OpenFleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := readiness.Run(ctx, f, policy.Default(), fleet.AssessOptions{}, readiness.Options{})
	if err != nil {
		t.Fatal(err)
	}
	a, err := be.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	calls := be.World().Stats()
	for _, op := range []string{"StopVMs", "StartVMs", "RestartVM", "Snapshot", "DetachDisk", "AttachDisk",
		"DiskFromSnapshot", "RestoreBackup", "CreateHelper", "ReleaseHelper", "SwapBootDisk"} {
		if n := calls.Calls[op]; n != 0 {
			t.Errorf("%s: %d mutating calls %s", face, n, op)
		}
	}
	return r, a, be.WorldID
}

// found lists the world IDs of the VMs each gap was found on.
func found(r *readiness.Report, worldID func(string) string) map[readiness.Kind][]string {
	out := map[readiness.Kind][]string{}
	for _, v := range r.VMs {
		for _, k := range v.Gaps {
			out[k] = append(out[k], worldID(lastPart(v.Key)))
		}
	}
	for _, f := range r.Fixes {
		if f.Kind == readiness.RoleBackup {
			for _, k := range f.Keys {
				out[f.Kind] = append(out[f.Kind], worldID(lastPart(k)))
			}
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func lastPart(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '/' {
			return key[i+1:]
		}
	}
	return key
}

// TestPlantedGapsSim is the done-when through the simulator's own
// face: every planted gap is found, nothing else, and nothing is touched.
func TestPlantedGapsSim(t *testing.T) {
	p := plantFleet(t, nil, []providers.Action{providers.ActCreateHelper}, false)
	r, audit, worldID := run(t, p, simulation.FaceSim)
	checkPlanted(t, p, r, audit, worldID)
	acct := r.Accounts[0]
	if !acct.Quota.Known || acct.Quota.Limit != 1 || acct.HelpersNeeded <= 1 {
		t.Errorf("quota %+v, helpers needed %d: want a known quota of 1 below the need", acct.Quota, acct.HelpersNeeded)
	}
	if len(r.NotCheckable) != 0 {
		t.Errorf("the simulator's face can check everything; not checkable: %v", r.NotCheckable)
	}
	if len(r.NotRunnable) != 1 || !strings.Contains(r.NotRunnable[0], "copy-and-swap") {
		t.Errorf("not runnable here: %q, want copy-and-swap (the world's disks detach)", r.NotRunnable)
	}
}

func checkPlanted(t *testing.T, p planted, r *readiness.Report, audit world.Audit, worldID func(string) string) {
	t.Helper()
	p.want = maps.Clone(p.want)
	p.want[readiness.HelperQuota] = nil
	for _, v := range r.VMs {
		if slices.Contains(v.Gaps, readiness.HelperQuota) {
			p.want[readiness.HelperQuota] = append(p.want[readiness.HelperQuota], worldID(lastPart(v.Key)))
		}
	}
	if len(p.want[readiness.HelperQuota]) == 0 {
		t.Error("the helper quota of 1 was not found")
	}
	checkPlantedExceptQuota(t, p, r, audit, worldID)
}

// checkPlantedExceptQuota checks the planted gaps p.want (the helper-quota
// one as given), nothing touched, the estimate and the score.
func checkPlantedExceptQuota(t *testing.T, p planted, r *readiness.Report, audit world.Audit, worldID func(string) string) {
	t.Helper()
	if audit.HealthyTouched != 0 {
		t.Errorf("healthy_touched = %d, want 0: %+v", audit.HealthyTouched, audit.HealthyTouchedEvents)
	}
	if inv := audit.Invariants(); inv != (world.Invariants{}) {
		t.Errorf("invariants %+v, want all 0", inv)
	}
	got := found(r, worldID)
	want := maps.Clone(p.want)
	for k := range want {
		sort.Strings(want[k])
	}
	for _, k := range sortedKinds(got, want) {
		if !slices.Equal(got[k], want[k]) {
			t.Errorf("gap %s: found on %v, planted on %v", k, got[k], want[k])
		}
	}
	if r.Ready {
		t.Error("report says ready")
	}
	if r.Estimate.VMs != plantedVMs || r.Estimate.DurationSeconds <= 0 {
		t.Errorf("estimate %+v: want %d VMs and a duration", r.Estimate, plantedVMs)
	}
	// Every VM boot-loops in the worst case: each is acted on or left to a person.
	if e := r.Estimate; e.Acted+e.Manual != plantedVMs {
		t.Errorf("estimate %+v: acted + manual, want %d", e, plantedVMs)
	}
	if n := len(r.Tenants); n != 1 || r.Tenants[0].Score != 0 {
		t.Errorf("tenants %+v: one tenant whose every VM lacks the denied action", r.Tenants)
	}
}

func sortedKinds(ms ...map[readiness.Kind][]string) []readiness.Kind {
	var out []readiness.Kind
	for _, m := range ms {
		for k := range m {
			if !slices.Contains(out, k) {
				out = append(out, k)
			}
		}
	}
	slices.Sort(out)
	return out
}

// TestPlantedGapsAWS: the same through the real AWS provider against the
// EC2 emulator: permissions by EC2 DryRun, the quota from max-instances.
func TestPlantedGapsAWS(t *testing.T) {
	p := plantFleet(t, []string{"ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"}, []providers.Action{providers.ActCreateHelper}, true)
	r, audit, worldID := run(t, p, simulation.FaceAWS)
	checkPlanted(t, p, r, audit, worldID)
	acct := r.Accounts[0]
	if !acct.Quota.Known || acct.Quota.Room != 1 {
		t.Errorf("quota %+v: want room for 1 helper", acct.Quota)
	}
	for _, perm := range acct.Permissions {
		want := providers.AllowedYes
		if perm.Action == providers.ActCreateHelper {
			want = providers.AllowedNo
		}
		if perm.Allowed != want {
			t.Errorf("permission %s: %s (%s), want %s", perm.Action, perm.Allowed, perm.How, want)
		}
	}
	if len(r.NotCheckable) != 0 {
		t.Errorf("EC2 can check everything here; not checkable: %v", r.NotCheckable)
	}
}

// sakuraCreate are the actions Sakura's "create" level adds to "arrange":
// a role lacking create-helper lacks them all (Sakura's permissions are
// levels, not actions).
var sakuraCreate = []providers.Action{providers.ActSnapshot, providers.ActCreateDisk, providers.ActRestoreBackup,
	providers.ActCreateHelper, providers.ActDeleteHelper}

// TestPlantedGapsSakura: the same through the real Sakura provider against
// its emulator. Sakura tells a permission level (auth-status), not
// actions, and has no quota API: the account at level "arrange" is found,
// the helper quota is reported as not checkable instead of as a gap. The
// provider shows no console, which is found on every VM.
func TestPlantedGapsSakura(t *testing.T) {
	p := plantFleet(t, nil, sakuraCreate, false)
	r, audit, worldID := run(t, p, simulation.FaceSakura)
	// No helper-quota gap can be found through this face.
	for _, v := range r.VMs {
		if slices.Contains(v.Gaps, readiness.HelperQuota) {
			t.Fatalf("%s: a helper-quota gap through a face that cannot read quotas", v.Key)
		}
	}
	p.want[readiness.HelperQuota] = nil
	// The Sakura provider reads no console yet (the API's VNC console is
	// not used): a real gap of every VM through this face, not planted.
	for _, v := range p.sc.VMs {
		p.want[readiness.NoConsole] = append(p.want[readiness.NoConsole], v.ID)
	}
	checkPlantedExceptQuota(t, p, r, audit, worldID)
	acct := r.Accounts[0]
	for _, perm := range acct.Permissions {
		want := providers.AllowedYes
		if slices.Contains(sakuraCreate, perm.Action) {
			want = providers.AllowedNo
		}
		if perm.Allowed != want {
			t.Errorf("permission %s: %s (%s), want %s", perm.Action, perm.Allowed, perm.How, want)
		}
	}
	if len(r.NotCheckable) != 1 || !strings.Contains(r.NotCheckable[0], "helper quota") {
		t.Errorf("not checkable: %q, want the helper quota only", r.NotCheckable)
	}
}
