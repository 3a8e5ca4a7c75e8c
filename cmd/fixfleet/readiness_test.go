package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// readiness on a generated healthy fleet (with the generator's gaps: VMs
// without backups, keys not escrowed, a zone without a 2016 image) exits 7
// and its JSON names the fixes. (A ready fleet is remediate/readiness's
// TestReadyFleet.)
func TestReadinessCommand(t *testing.T) {
	code, out, errOut := runCLI(t, "readiness", "--sim", "--vms", "12", "--mix", "healthy=100", "--time-scale", "2000",
		"--window", "1m", "--samples", "2", "--format", "json")
	if code != exitNotReady {
		t.Fatalf("exit %d, want %d; stderr %s", code, exitNotReady, errOut)
	}
	var doc struct {
		Version string `json:"version"`
		Ready   bool   `json:"ready"`
		Fixes   []struct {
			Kind string `json:"kind"`
			VMs  int    `json:"vms"`
		} `json:"fixes"`
		Tenants []struct {
			VMs int `json:"vms"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if doc.Version != "fixfleet.readiness/v1" || doc.Ready || len(doc.Fixes) == 0 || len(doc.Tenants) != 1 || doc.Tenants[0].VMs != 12 {
		t.Errorf("document %+v", doc)
	}
	if !strings.Contains(errOut, "not ready") {
		t.Errorf("stderr does not say not ready: %q", errOut)
	}
	if code, _, errOut := runCLI(t, "readiness", "--sim", "--max-backup-age", "0s"); code != exitUsage {
		t.Errorf("--max-backup-age 0s: exit %d (%s), want %d", code, errOut, exitUsage)
	}
}
