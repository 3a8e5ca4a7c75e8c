package readiness

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

var now = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

type keySet map[string]bool

func (k keySet) HasKey(id string) bool { return k[id] }

// input is one healthy, fully prepared VM in account t/a, to spoil.
func input() Input {
	vm := inventory.VM{Location: inventory.Location{Tenant: "t", Account: "a", Provider: "sim", Zone: "z1"}, ID: "vm-1",
		Windows: inventory.WindowsVersion{Release: "2019"}, Tags: map[string]string{"role": "dc"},
		OSDisk:  inventory.Disk{ID: "d-1", Encryption: inventory.Encryption{BitLocker: true, KeyID: "K1"}},
		Backups: []inventory.Backup{{ID: "b-1", TakenAt: now.Add(-2 * time.Hour)}}}
	c := inventory.Classification{State: inventory.StateHealthy, Evidence: inventory.Evidence{Samples: []inventory.Signals{{ConsoleAvailable: true}}}}
	return Input{
		Now: now, Policy: policy.Default(), Keys: keySet{"K1": true},
		Fleet: &classify.Fleet{VMs: []inventory.Assessed{{VM: vm, Classification: c}},
			Accounts: []classify.AccountFacts{{Account: providers.Account{Tenant: "t", Name: "a", Provider: "sim"},
				Capabilities: []string{"enumerate", "observe", "guest", "power", "disks", "backups", "helpers"},
				Helpers:      []providers.HelperImage{{Zone: "z1", Windows: inventory.WindowsVersion{Release: "2019"}, ImageID: "img"}}}}},
		Guest:    map[string]GuestCheck{"t/a/vm-1": {Status: GuestOK, SafeModeWinRM: true}},
		Accounts: map[string]AccountChecks{"t/a": {Checkable: true, Quota: providers.Quota{Known: true, Unlimited: true}}},
	}
}

func TestEvaluateGaps(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(*Input)
		want  []Kind
	}{
		{"ready", func(*Input) {}, nil},
		{"stale backup", func(in *Input) { in.Fleet.VMs[0].VM.Backups[0].TakenAt = now.Add(-30 * time.Hour) }, []Kind{StaleBackup}},
		{"no backup", func(in *Input) { in.Fleet.VMs[0].VM.Backups = nil }, []Kind{NoBackup}},
		{"key unknown", func(in *Input) { in.Keys = keySet{} }, []Kind{KeyNotEscrowed}},
		{"no key source", func(in *Input) { in.Keys = nil }, []Kind{KeyNotEscrowed}},
		{"guest reports BitLocker the cloud does not know", func(in *Input) {
			in.Fleet.VMs[0].VM.OSDisk.Encryption = inventory.Encryption{}
			in.Guest["t/a/vm-1"] = GuestCheck{Status: GuestOK, SafeModeWinRM: true, BitLocker: true, KeyID: "K2"}
		}, []Kind{KeyNotEscrowed}},
		{"other release only", func(in *Input) { in.Fleet.Accounts[0].Helpers[0].Windows.Release = "2022" }, []Kind{NoHelperImage}},
		{"unreachable", func(in *Input) { in.Guest["t/a/vm-1"] = GuestCheck{Status: GuestUnreachable} }, []Kind{WinRMUnreachable}},
		{"credentials", func(in *Input) { in.Guest["t/a/vm-1"] = GuestCheck{Status: GuestAuth} }, []Kind{WinRMAuth}},
		{"no guest access", func(in *Input) { in.Guest["t/a/vm-1"] = GuestCheck{Status: GuestNoAccess} }, []Kind{NoGuestAccess}},
		{"safe mode", func(in *Input) { in.Guest["t/a/vm-1"] = GuestCheck{Status: GuestOK} }, []Kind{NoSafeModeWinRM}},
		{"console", func(in *Input) { in.Fleet.VMs[0].Classification.Evidence.Samples[0].ConsoleAvailable = false }, []Kind{NoConsole}},
		{"not healthy", func(in *Input) {
			in.Fleet.VMs[0].Classification.State = inventory.StateBootLoop
			delete(in.Guest, "t/a/vm-1")
		}, []Kind{NotHealthy}},
		{"capability", func(in *Input) {
			in.Fleet.Accounts[0].Capabilities = []string{"enumerate", "observe", "guest", "power", "disks", "helpers"}
		}, []Kind{MissingCapability}},
		{"denied", func(in *Input) {
			in.Accounts["t/a"] = AccountChecks{Checkable: true, Permissions: []providers.Permission{{Action: providers.ActStop, Allowed: providers.AllowedNo}},
				Quota: providers.Quota{Known: true, Unlimited: true}}
		}, []Kind{PermissionDenied}},
		{"strategy disabled: its needs go", func(in *Input) {
			in.Policy.Strategies = []policy.Strategy{policy.RebootRetry}
			in.Fleet.VMs[0].VM.Backups = nil
			in.Keys = nil
			in.Guest["t/a/vm-1"] = GuestCheck{Status: GuestOK}
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := input()
			tc.spoil(&in)
			r := Evaluate(in)
			if got := r.VMs[0].Gaps; !slices.Equal(got, tc.want) {
				t.Errorf("gaps %v (%v), want %v", got, r.VMs[0].Details, tc.want)
			}
			if r.Ready != (len(tc.want) == 0) {
				t.Errorf("ready %v with gaps %v; fixes %+v", r.Ready, tc.want, r.Fixes)
			}
		})
	}
}

// A role group of two with one stale member is one fix naming that one.
func TestEvaluateRoleGroup(t *testing.T) {
	in := input()
	second := in.Fleet.VMs[0]
	second.VM.ID = "vm-2"
	second.VM.Backups = []inventory.Backup{{ID: "b-2", TakenAt: now.Add(-48 * time.Hour)}}
	in.Fleet.VMs = append(in.Fleet.VMs, second)
	in.Guest["t/a/vm-2"] = GuestCheck{Status: GuestOK, SafeModeWinRM: true}
	r := Evaluate(in)
	var role []Fix
	for _, f := range r.Fixes {
		if f.Kind == RoleBackup {
			role = append(role, f)
		}
	}
	if len(role) != 1 || !slices.Equal(role[0].Keys, []string{"t/a/vm-2"}) || !strings.Contains(role[0].Text, "1 of 2") {
		t.Errorf("role fixes %+v", role)
	}
	if r.Tenants[0].Ready != 1 || r.Tenants[0].Score != 0.5 {
		t.Errorf("tenant %+v", r.Tenants[0])
	}
}

// Every format renders, and the not-checkable table appears when needed.
func TestReportRenders(t *testing.T) {
	in := input()
	in.Accounts["t/a"] = AccountChecks{}
	r := Evaluate(in)
	for _, f := range render.Formats() {
		var b bytes.Buffer
		if err := render.Render(&b, f, r, r.Tables()...); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if f != render.FormatJSON && !strings.Contains(b.String(), "offers no check without effect") {
			t.Errorf("%s: the not-checkable line is missing:\n%s", f, b.String())
		}
	}
}
