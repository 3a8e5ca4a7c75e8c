package world

import (
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/invdoc"
)

func inventoryDoc(n int) invdoc.Document {
	d := invdoc.Document{Version: invdoc.Version, GeneratedAt: t0, Incident: inventory.CrowdStrike20240719}
	for i := range n {
		id := "i-" + string(rune('a'+i))
		d.VMs = append(d.VMs, invdoc.VM{ID: id, State: inventory.StateHealthy, VM: inventory.VM{ID: id, Name: "n" + id,
			Location: inventory.Location{Tenant: "t", Account: "a", Provider: "aws", Zone: "z1"}, Windows: win2019,
			OSDisk: inventory.Disk{ID: "vol-" + id, SizeGB: 80}}})
	}
	return d
}

// Shares deal the kinds out exactly; the world loads; unknown releases
// and bad profiles are errors naming them.
func TestFromInventoryProfiles(t *testing.T) {
	for _, tc := range []struct {
		profile string
		want    map[string]int // truth -> VMs
		err     string
	}{
		{profile: "", want: map[string]int{"boot-loop": 10}},
		{profile: "boot-loop=50,safe-mode=30,healthy=20", want: map[string]int{"boot-loop": 5, "safe-mode": 3, "healthy": 2}},
		{profile: "as-is", want: map[string]int{"healthy": 10}},
		{profile: "sometimes", err: "incident profile"},
	} {
		sc, err := FromInventory(inventoryDoc(10), InventoryOptions{Seed: 1, Profile: tc.profile})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want one naming %q", tc.profile, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.profile, err)
		}
		w, _ := load(t, sc)
		got := map[string]int{}
		for _, v := range w.Export().VMs {
			got[v.Truth]++
			if v.OSDisk.SizeGB != 80 || v.Tenant != "t" {
				t.Errorf("%s: disk %d GB, tenant %q: not the inventory's", v.ID, v.OSDisk.SizeGB, v.Tenant)
			}
		}
		for k, n := range tc.want {
			if got[k] != n {
				t.Errorf("%q: truths %v, want %v", tc.profile, got, tc.want)
			}
		}
		if sc.Faults.Throttle != ThrottleEC2 {
			t.Errorf("an aws account's copy throttles %q, want EC2's buckets", sc.Faults.Throttle)
		}
	}
	d := inventoryDoc(1)
	d.VMs[0].Windows.Release = ""
	if _, err := FromInventory(d, InventoryOptions{}); err == nil || !strings.Contains(err.Error(), "i-a") {
		t.Errorf("unknown release: %v", err)
	}
}
