package main

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// TestPlanJSON: `plan --sim --format json` prints a plan whose vms array has,
// for every VM, an id, a valid state and a strategy, plus an estimate; and
// -o writes the same plan, which plan.Read accepts.
func TestPlanJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "plan.json")
	code, stdout, stderr := runCLI(t, "plan", "--sim", "--vms", "60", "--seed", "7", "--time-scale", "3000", "-o", "json", "--out-file", out)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		VMs []struct {
			ID       string `json:"id"`
			State    string `json:"state"`
			Strategy string `json:"strategy"`
		} `json:"vms"`
		Estimate *struct {
			DurationSeconds int64          `json:"duration_seconds"`
			APICalls        map[string]int `json:"api_calls"`
		} `json:"estimate"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("stdout is not JSON: %v", err)
	}
	if len(doc.VMs) != 60 {
		t.Fatalf("%d VMs in the plan, want 60", len(doc.VMs))
	}
	strategies := map[string]bool{}
	for _, s := range plan.AllStrategies {
		strategies[string(s)] = true
	}
	for _, v := range doc.VMs {
		if v.ID == "" || !inventory.State(v.State).ValidInPlan() || !strategies[v.Strategy] {
			t.Errorf("bad VM entry %+v", v)
		}
	}
	if doc.Estimate == nil || doc.Estimate.DurationSeconds <= 0 || len(doc.Estimate.APICalls) == 0 {
		t.Errorf("estimate missing or empty: %+v", doc.Estimate)
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := plan.Read(f)
	if err != nil {
		t.Fatalf("plan written with -o does not read back: %v", err)
	}
	if len(p.VMs) != 60 {
		t.Errorf("-o plan has %d VMs", len(p.VMs))
	}
}

// TestScenarioRoundTrip: what `sim export` prints loads back with
// --scenario and exports identically, and every VM has an id and a truth.
func TestScenarioRoundTrip(t *testing.T) {
	code, first, stderr := runCLI(t, "sim", "export", "--vms", "30", "--seed", "5")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		VMs []struct {
			ID    string `json:"id"`
			Truth string `json:"truth"`
		} `json:"vms"`
	}
	if err := json.Unmarshal([]byte(first), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.VMs) != 30 {
		t.Fatalf("%d VMs exported, want 30", len(doc.VMs))
	}
	for _, v := range doc.VMs {
		if v.ID == "" || v.Truth == "" {
			t.Errorf("VM without id or truth: %+v", v)
		}
	}
	file := filepath.Join(t.TempDir(), "world.json")
	if err := os.WriteFile(file, []byte(first), 0o600); err != nil {
		t.Fatal(err)
	}
	code, second, stderr := runCLI(t, "sim", "export", "--scenario", file)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if first != second {
		t.Errorf("export → --scenario → export differs")
	}
	// The loaded world plans like any other.
	if code, _, stderr := runCLI(t, "plan", "--sim", "--scenario", file, "--time-scale", "3000", "--format", "csv"); code != 0 {
		t.Errorf("plan on the loaded scenario: exit %d: %s", code, stderr)
	}
}

// TestOutputFlag: -o takes a format; for one release, -o FILE on plan still
// writes the plan, with a deprecation warning; a bad format exits 2; and
// `version` prints the module version and commit (or says they are unknown).
func TestOutputFlag(t *testing.T) {
	file := filepath.Join(t.TempDir(), "plan.json")
	code, stdout, stderr := runCLI(t, "plan", "--sim", "--vms", "5", "--time-scale", "5000", "-o", file)
	if code != 0 || !strings.Contains(stderr, "deprecated") || !strings.Contains(stderr, "--out-file") {
		t.Errorf("plan -o FILE: exit %d, stderr %q: want 0 and a deprecation warning naming --out-file", code, stderr)
	}
	if _, err := os.Stat(file); err != nil {
		t.Errorf("plan -o FILE wrote no file: %v", err)
	}
	if !strings.Contains(stdout, "Estimate") {
		t.Errorf("plan -o FILE: stdout is not the table: %.200s", stdout)
	}
	if code, _, stderr := runCLI(t, "inventory", "--sim", "--vms", "5", "-o", "xml"); code != exitUsage || !strings.Contains(stderr, "--output") {
		t.Errorf("inventory -o xml: exit %d, want %d naming --output: %s", code, exitUsage, stderr)
	}
	code, stdout, _ = runCLI(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "fixfleet ") || !strings.Contains(stdout, "commit ") {
		t.Errorf("version: exit %d: %q", code, stdout)
	}
}

// TestHelpHabits: every command's help has examples and the exit codes,
// and the simulator's flags appear only under sim and demo.
func TestHelpHabits(t *testing.T) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, s := range c.Commands() {
			if s.Name() == "help" || s.Name() == "completion" {
				continue
			}
			path := strings.Fields(s.CommandPath())[1:]
			code, stdout, _ := runCLI(t, append(path, "--help")...)
			if code != 0 || !strings.Contains(stdout, "Exit codes:") {
				t.Errorf("%s --help: exit %d, no exit codes", s.CommandPath(), code)
			}
			if s.Runnable() && !strings.Contains(stdout, "Examples:") {
				t.Errorf("%s --help has no examples", s.CommandPath())
			}
			isSim := path[0] == "sim" || path[0] == "demo"
			if strings.Contains(stdout, "--time-scale") != isSim && len(path) == 1 {
				t.Errorf("%s --help: simulator flags shown %v, want %v", s.CommandPath(), !isSim, isSim)
			}
			walk(s)
		}
	}
	walk(newRootCmd(strings.NewReader(""), io.Discard, io.Discard))
}
