package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// TestTargeting: --tenant, --account, --only, --exclude and --selector
// narrow inventory and plan to the VMs they name, and bad ones exit 2.
func TestTargeting(t *testing.T) {
	base := []string{"--sim", "--vms", "12", "--seed", "4", "--time-scale", "5000", "-o", "json"}
	tests := []struct {
		name string
		cmd  string
		args []string
		want []string // VM IDs, sorted; nil with code 2
		code int
		err  string
	}{
		{name: "only by ID and name", cmd: "inventory", args: []string{"--only", "vm-00003", "--only", "iis-00006"}, want: []string{"vm-00003", "vm-00006"}},
		{name: "exclude", cmd: "plan", args: []string{"--only", "vm-00001,vm-00002,vm-00003", "--exclude", "vm-00002"}, want: []string{"vm-00001", "vm-00003"}},
		{name: "selector", cmd: "plan", args: []string{"--selector", "role=sql,env=stg"}, want: []string{"vm-00005"}},
		{name: "tenant", cmd: "inventory", args: []string{"--tenant", "sim", "--only", "vm-00004"}, want: []string{"vm-00004"}},
		{name: "unknown tenant", cmd: "plan", args: []string{"--tenant", "acme"}, code: exitUsage, err: `--tenant "acme": no such tenant; tenants are sim`},
		{name: "unknown account", cmd: "inventory", args: []string{"--account", "sim/prod"}, code: exitUsage, err: "no such account"},
		{name: "only names no VM", cmd: "plan", args: []string{"--only", "vm-99999"}, code: exitUsage, err: "--only vm-99999: no such VM"},
		{name: "bad selector", cmd: "plan", args: []string{"--selector", "role"}, code: exitUsage, err: "--selector"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runCLI(t, append(append([]string{tt.cmd}, base...), tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d: %s", code, tt.code, stderr)
			}
			if tt.code != 0 {
				if !strings.Contains(stderr, tt.err) {
					t.Errorf("stderr %q does not say %q", stderr, tt.err)
				}
				return
			}
			var doc struct {
				VMs []struct{ ID string } `json:"vms"`
			}
			if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, v := range doc.VMs {
				got = append(got, v.ID)
			}
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("VMs %v, want %v", got, tt.want)
			}
		})
	}
}

// TestApplyExcludeNeverTouched: apply --exclude (and --only) acts on the
// selected VMs only; the world shows the excluded ones still broken and
// the run never names them.
func TestApplyExcludeNeverTouched(t *testing.T) {
	url, w := serveWorld(t)
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if code, _, stderr := runCLI(t, "plan", "--sim-endpoint", url, "--allow-data-loss", "--out-file", planFile); code != 0 {
		t.Fatalf("plan: exit %d: %s", code, stderr)
	}
	p, _, err := plan.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	// Excluded: safe-mode VMs, which never heal by themselves.
	var excluded, others []string
	for _, v := range p.VMs {
		switch {
		case !v.Acts():
		case v.State == inventory.StateSafeMode && len(excluded) < 3:
			excluded = append(excluded, v.ID)
		case len(others) < 3:
			others = append(others, v.ID)
		}
	}
	if len(excluded) < 3 || len(others) < 3 {
		t.Fatalf("the plan acts on too few VMs: %v %v", excluded, others)
	}
	acted := append(append([]string(nil), excluded...), others...)
	db := filepath.Join(t.TempDir(), "j.db")
	code, stdout, stderr := runCLI(t, "apply", planFile, "--sim-endpoint", url, "--journal", db, "--yes", "-o", "json",
		"--only", strings.Join(acted, ","), "--exclude", excluded[0], "--exclude", strings.Join(excluded[1:], ","))
	if code != 0 && code != exitPaused {
		t.Fatalf("apply: exit %d: %s", code, stderr)
	}
	var res struct {
		VMs []struct {
			Key    string `json:"key"`
			Status string `json:"status"`
		} `json:"vms"`
	}
	if err := json.Unmarshal([]byte(stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.VMs) != 3 {
		t.Errorf("the run has %d VMs, want the 3 selected: %+v", len(res.VMs), res.VMs)
	}
	for _, v := range res.VMs {
		for _, x := range excluded {
			if strings.HasSuffix(v.Key, "/"+x) {
				t.Errorf("excluded VM %s is in the run (%s)", x, v.Status)
			}
		}
	}
	for _, id := range excluded {
		if truth, _ := w.Truth(id); truth == "healthy" {
			t.Errorf("excluded VM %s was repaired: the world says %s", id, truth)
		}
	}
	fixed := 0
	for _, id := range acted[3:] {
		if truth, _ := w.Truth(id); truth == "healthy" {
			fixed++
		}
	}
	if fixed == 0 {
		t.Errorf("none of the selected VMs %v was repaired", acted[3:])
	}
}

// TestApplyRefusesStalePlan: a plan the live fleet has drifted from (here:
// made on a larger world, so some of its VMs are not in the live one) is
// refused with the differences, exit 2, unless --allow-stale.
func TestApplyRefusesStalePlan(t *testing.T) {
	planFile := filepath.Join(t.TempDir(), "plan.json")
	if code, _, stderr := runCLI(t, "plan", "--sim", "--vms", "60", "--seed", "2", "--time-scale", "5000", "--out-file", planFile); code != 0 {
		t.Fatalf("plan: %s", stderr)
	}
	url, _ := serveWorld(t)
	code, _, stderr := runCLI(t, "apply", planFile, "--sim-endpoint", url, "--journal", filepath.Join(t.TempDir(), "j.db"), "--yes")
	if code != exitUsage || !strings.Contains(stderr, "drifted") || !strings.Contains(stderr, "--allow-stale") || !strings.Contains(stderr, ": no longer in the fleet") {
		t.Errorf("apply of a drifted plan: exit %d, want %d listing the drift: %s", code, exitUsage, stderr)
	}
}
