package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/simulation"
)

// TestConsoleConfirmed: on a cloud that shows no console, VMs stuck at the
// recovery screen are unknown; listed in a --console-confirmed file they
// are planned as boot-looping, a healthy VM listed by mistake stays
// healthy, and a name the fleet does not have is an error.
func TestConsoleConfirmed(t *testing.T) {
	wo := simulation.WorldOptions{VMs: 20, Seed: 8, Mix: "stuck=60,healthy=40", NoConsole: true}
	w, err := simulation.NewWorld(wo, simulation.Frozen)
	if err != nil {
		t.Fatal(err)
	}
	var stuck []string
	healthy := ""
	for _, v := range w.Export().VMs {
		switch {
		case v.Condition.Loop == world.LoopStuck && v.Power == inventory.PowerRunning:
			stuck = append(stuck, v.ID+" BSOD on the VNC console")
		case v.Truth == world.TruthHealthy && v.Condition.WinRM == world.WinRMOpen && healthy == "":
			healthy = v.Name
		}
	}
	if len(stuck) < 3 || healthy == "" {
		t.Fatalf("world has %d stuck VMs and healthy %q: choose another seed", len(stuck), healthy)
	}
	dir := t.TempDir()
	write := func(name string, lines ...string) string {
		f := filepath.Join(dir, name)
		if err := os.WriteFile(f, []byte("# seen on the consoles\n"+strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return f
	}
	args := []string{"plan", "--sim", "--vms", "20", "--seed", "8", "--mix", wo.Mix, "--no-console", "--time-scale", "3000", "--format", "json"}

	code, _, stderr := runCLI(t, append(args, "--console-confirmed", write("typo.txt", append(stuck, "vm-99999")...))...)
	if code != exitUsage || !strings.Contains(stderr, "vm-99999") {
		t.Errorf("a VM not in the fleet: exit %d, want %d naming it: %s", code, exitUsage, stderr)
	}

	code, stdout, stderr := runCLI(t, append(args, "--console-confirmed", write("ok.txt", append(stuck, healthy)...))...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var p struct {
		VMs []struct {
			ID, Name, State, Strategy string
			Reasons                   []string
		} `json:"vms"`
	}
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, s := range stuck {
		listed[strings.Fields(s)[0]] = true
	}
	for _, v := range p.VMs {
		reasons := strings.Join(v.Reasons, "; ")
		switch {
		case listed[v.ID]:
			if v.State != string(inventory.StateBootLoop) || !strings.Contains(reasons, "an operator saw") {
				t.Errorf("%s (confirmed stuck): %s, %q", v.ID, v.State, reasons)
			}
		case v.Name == healthy:
			if v.State != string(inventory.StateHealthy) || !strings.Contains(reasons, "out of date") {
				t.Errorf("%s (healthy, listed by mistake): %s, %q", v.Name, v.State, reasons)
			}
		}
	}
}
