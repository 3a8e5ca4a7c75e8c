package simulation

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/fleet"
)

// TestScenarioTenantsEveryFace: a scenario with several tenants, one with
// two accounts, plans every one of its VMs through every face, each under
// its own tenant and account: nothing silently dropped or doubled.
func TestScenarioTenantsEveryFace(t *testing.T) {
	for _, face := range []string{FaceSim, FaceSakura, FaceAWS} {
		t.Run(face, func(t *testing.T) {
			mix, err := world.ParseMix("healthy=40,safe-mode=30,boot-loop=30")
			if err != nil {
				t.Fatal(err)
			}
			gen := world.GenOptions{VMs: 40, Seed: 11, Mix: mix, Accounts: []string{"acme-prod", "acme-dev", "beta-prod", "corp-prod"}}
			if face == FaceAWS {
				gen.Zones = awsZones
			}
			sc, err := world.GenerateScenario(gen)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int{} // tenant/account -> VMs
			for i := range sc.VMs {
				sc.VMs[i].Tenant, _, _ = strings.Cut(sc.VMs[i].Account, "-")
				want[sc.VMs[i].Tenant+"/"+sc.VMs[i].Account]++
			}
			b, err := world.MarshalScenario(sc)
			if err != nil {
				t.Fatal(err)
			}
			file := filepath.Join(t.TempDir(), "tenants.json")
			if err := os.WriteFile(file, b, 0o600); err != nil {
				t.Fatal(err)
			}
			be, err := Open(Options{World: WorldOptions{Scenario: file}, Face: face, TimeScale: 3000})
			if err != nil {
				t.Fatal(err)
			}
			defer be.Close()
			f, err := be.OpenFleet(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			p, err := f.Plan(t.Context(), f.Policy, fleet.AssessOptions{AssessOptions: classify.AssessOptions{Window: 2e9, Samples: 2}})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]int{}
			for _, v := range p.VMs {
				got[v.Tenant+"/"+v.Account]++
			}
			if len(p.VMs) != len(sc.VMs) || len(got) != len(want) {
				t.Errorf("planned %d VMs in %v, want %d in %v", len(p.VMs), got, len(sc.VMs), want)
			}
			for k, n := range want {
				if got[k] != n {
					t.Errorf("%s: %d VMs planned, want %d", k, got[k], n)
				}
			}
			if len(p.Skipped) != 0 {
				t.Errorf("accounts skipped: %+v", p.Skipped)
			}
		})
	}
}
