package invdoc

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
)

type keys map[string]bool

func (k keys) HasKey(id string) bool { return k[id] }

func fleetOf() *classify.Fleet {
	vm := func(id, key string) inventory.Assessed {
		return inventory.Assessed{VM: inventory.VM{ID: id, Location: inventory.Location{Tenant: "t", Account: "a", Provider: "aws", Zone: "z"},
			Windows: inventory.WindowsVersion{Release: "2019"},
			OSDisk:  inventory.Disk{ID: "vol-" + id, Encryption: inventory.Encryption{BitLocker: key != "", KeyID: key}}},
			Classification: inventory.Classification{State: inventory.StateHealthy}}
	}
	return &classify.Fleet{VMs: []inventory.Assessed{vm("i-1", "K1"), vm("i-2", "K2"), vm("i-3", "")},
		Accounts: []classify.AccountFacts{{Account: providers.Account{Tenant: "t", Name: "a", Provider: "aws"}}}}
}

// Build says per BitLocker disk whether the key source holds its key; the
// document reads back equal.
func TestBuildRoundTrip(t *testing.T) {
	d := Build(fleetOf(), time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC), "crowdstrike-2024-07-19", keys{"K1": true})
	if d.VMs[0].KeyInSource == nil || !*d.VMs[0].KeyInSource || d.VMs[1].KeyInSource == nil || *d.VMs[1].KeyInSource || d.VMs[2].KeyInSource != nil {
		t.Errorf("key_in_source: %v %v %v", d.VMs[0].KeyInSource, d.VMs[1].KeyInSource, d.VMs[2].KeyInSource)
	}
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	back, err := Read(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if !bytes.Equal(b, b2) {
		t.Errorf("round trip differs:\n%s\n%s", b, b2)
	}
}

func TestReadRefuses(t *testing.T) {
	good, _ := json.Marshal(Build(fleetOf(), time.Now(), "x", nil))
	for _, tc := range []struct{ name, doc, want string }{
		{"unknown field", strings.Replace(string(good), `"incident"`, `"incidnt"`, 1), "unknown field"},
		{"other version", strings.Replace(string(good), Version, "fixfleet.inventory/v9", 1), "fixfleet.inventory/v9"},
		{"no zone", strings.Replace(string(good), `"zone":"z"`, `"zone":""`, 1), "vms[0]"},
		{"bad state", strings.Replace(string(good), `"state":"healthy"`, `"state":"fine"`, 1), "vms[0]"},
	} {
		if _, err := Read(strings.NewReader(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.name, err, tc.want)
		}
	}
}
