package simulation_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/simulation"
	"github.com/fixfleet/fixfleet/simulation/simtest"
)

// incident2024World is the 2024 Sakura Cloud incident's 10-server fleet
// (docs/simulator.md, "The 2024 Sakura Cloud fleet").
const incident2024World = "testdata/sakura-2024.json"

// incident2024Goal is issue 10's goal for that fleet: from opening the
// fleet to the end of the apply, on virtual time.
const incident2024Goal = 30 * time.Minute

// facesZones renames a Sakura scenario's zones for the faces whose clouds
// name zones otherwise (the same fleet, in that cloud's zones).
var facesZones = map[string]map[string]string{
	simulation.FaceAWS:   {"is1a": "ap-northeast-1a", "tk1a": "ap-northeast-1c"},
	simulation.FaceAzure: {"is1a": "japaneast-1", "tk1a": "japaneast-2"},
}

// scenarioFor writes file's scenario with its zones renamed by zones (nil:
// file itself) into dir and returns its path.
func scenarioFor(t *testing.T, file string, zones map[string]string, dir string) string {
	t.Helper()
	if zones == nil {
		return file
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc, err := world.ParseScenario(f)
	if err != nil {
		t.Fatal(err)
	}
	rename := func(z string) string {
		if r, ok := zones[z]; ok {
			return r
		}
		t.Fatalf("zone %q has no name on this face", z)
		return z
	}
	for i := range sc.Zones {
		sc.Zones[i] = rename(sc.Zones[i])
	}
	for i := range sc.Images {
		sc.Images[i].Zone = rename(sc.Images[i].Zone)
	}
	for i := range sc.VMs {
		sc.VMs[i].Zone = rename(sc.VMs[i].Zone)
	}
	b, err := world.MarshalScenario(sc)
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "scenario.json")
	if err := os.WriteFile(out, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return out
}

// vmOutcomes reads from the journal of the latest run how each VM ended:
// "name: strategy status", sorted, and the duration of each VM's steps.
func vmOutcomes(t *testing.T, db string) []string {
	t.Helper()
	vms, byVM := latestRun(t, db)
	var out []string
	for _, v := range vms {
		st := byVM[v.VMKey]
		var first, last time.Time
		var names []string
		for _, s := range st {
			if first.IsZero() || s.BegunAt.Before(first) {
				first = s.BegunAt
			}
			if s.EndedAt.After(last) {
				last = s.EndedAt
			}
			names = append(names, fmt.Sprintf("%s/%s %s", s.Strategy, s.Step, s.EndedAt.Sub(s.BegunAt).Round(time.Second)))
		}
		out = append(out, fmt.Sprintf("%s: %s %s (%s, %s → %s): %s", v.Name, v.Strategy, v.Status, last.Sub(first).Round(time.Second),
			first.Format("15:04:05"), last.Format("15:04:05"), strings.Join(names, ", ")))
	}
	slices.Sort(out)
	return out
}

// TestIncident2024Fleet is issue 11's done-when for the 2024 Sakura Cloud
// incident's fleet, through every face, on virtual time: 10 Windows
// servers (5 in Safe Mode, two of them with WinRM under SafeBoot\Network
// and three without; 3 that recover by themselves after 1 to 3 boots; 2
// domain controllers that never recover, dc-02 with no backup; every OS
// disk carrying its image's disk identity) end 10/10 healthy by the
// world's truth, none flagged, every invariant 0, with the default policy:
// no data loss allowed, as an operator would keep it for domain
// controllers (a restored DC rolls its directory back), so the DCs are
// repaired on their own disks (copy-and-swap on Azure). It logs each VM's
// strategy and steps, and each face's makespan (from opening the fleet to
// the end of the apply and the world's audit) against issue 10's goal of
// 30 simulated minutes, which it does not assert: no face meets it yet
// (docs/simulator.md says where the time goes).
func TestIncident2024Fleet(t *testing.T) {
	t.Parallel() // virtual time: CPU contention cannot change its outcome
	for _, face := range []string{simulation.FaceSim, simulation.FaceSakura, simulation.FaceAWS, simulation.FaceAzure} {
		t.Run(face, func(t *testing.T) {
			dir := t.TempDir()
			o := simulation.RunOptions{
				Options: simulation.Options{World: simulation.WorldOptions{Scenario: scenarioFor(t, incident2024World, facesZones[face], dir)}, Face: face},
				Journal: filepath.Join(dir, "j.db"),
			}
			s := simtest.Run(t, o)
			checkOutcome(t, s)
			for _, line := range vmOutcomes(t, o.Journal) {
				t.Log(line)
			}
			if s.VMsTotal != 10 || s.TruthAfter["healthy"] != 10 {
				t.Errorf("%d VMs, truth after %v: want 10/10 healthy", s.VMsTotal, s.TruthAfter)
			}
			if s.Flagged != 0 {
				t.Errorf("%d flagged: %+v", s.Flagged, s.FlaggedVMs)
			}
			t.Logf("%s: fixed %d %v, found healthy %d, healthy before %d; makespan %s (assessment %s), goal %s; %d API calls",
				face, s.Fixed, s.ByStrategy, s.FoundHealthy, s.HealthyBefore, s.ElapsedSim,
				time.Duration(s.AssessSec*float64(time.Second)).Round(time.Second), incident2024Goal, s.API.Total)
		})
	}
}
