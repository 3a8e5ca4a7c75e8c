package plan

import (
	"fmt"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// tieredFleet is n boot-looping VMs; every 10th is a domain controller
// (role=dc), every 10th from the 5th a database (role=db), one healthy
// database, the rest untagged.
func tieredFleet(n int) []inventory.Assessed {
	var out []inventory.Assessed
	for i := range n {
		a := vmIn([]string{"prod", "dev"}[i%2], fmt.Sprintf("vm-%03d", i), inventory.StateBootLoop)
		switch i % 10 {
		case 0:
			a.VM.Tags = map[string]string{"role": "dc"}
		case 5:
			a.VM.Tags = map[string]string{"role": "db"}
		}
		out = append(out, a)
	}
	h := vmIn("prod", "db-healthy", inventory.StateHealthy)
	h.VM.Tags = map[string]string{"role": "db"}
	return append(out, h)
}

func TestTiers(t *testing.T) {
	dcdb := []policy.Tier{{Name: "domain-controllers", Selector: "role=dc"}, {Name: "databases", Selector: "role=db"}}
	tests := []struct {
		name      string
		tiers     []policy.Tier
		canary    int
		waveSize  int
		wantTiers string // name:vms/act per tier
		// wantWaves is each wave's tier:size.
		wantWaves string
	}{
		{"no tiers", nil, 3, 20, "", "0:3 0:20 0:17"},
		{"dc then db then rest", dcdb, 3, 20, "domain-controllers:4/4 databases:5/4 rest:32/32", "1:3 1:1 2:4 3:20 3:12"},
		{"canary larger than the first tier", dcdb, 6, 20, "domain-controllers:4/4 databases:5/4 rest:32/32", "1:4 2:4 3:20 3:12"},
		{"a tier no VM matches", []policy.Tier{{Name: "web", Selector: "role=web"}, {Name: "databases", Selector: "role=db"}}, 2, 30,
			"web:0/0 databases:5/4 rest:36/36", "2:2 2:2 3:30 3:6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := baseInput(tieredFleet(40)...)
			in.Policy.Tiers, in.Policy.Canary, in.Policy.WaveSize = tt.tiers, tt.canary, tt.waveSize
			p, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			var tiers, waves []string
			for _, tr := range p.Tiers {
				tiers = append(tiers, fmt.Sprintf("%s:%d/%d", tr.Name, tr.VMs, tr.Act))
			}
			for _, w := range p.Waves {
				waves = append(waves, fmt.Sprintf("%d:%d", w.Tier, len(w.VMs)))
			}
			if got := strings.Join(tiers, " "); got != tt.wantTiers {
				t.Errorf("tiers %q, want %q", got, tt.wantTiers)
			}
			if got := strings.Join(waves, " "); got != tt.wantWaves {
				t.Errorf("waves %q, want %q", got, tt.wantWaves)
			}
			for _, v := range p.VMs {
				want := in.Policy.TierOf(v.Tags)
				if v.Tier != want {
					t.Errorf("%s: tier %d, want %d", v.Key, v.Tier, want)
				}
			}
			if len(tt.tiers) > 0 && !strings.Contains(strings.Join(p.Summary.Lines, "\n"), "tiers, in order: "+tt.tiers[0].Name) {
				t.Errorf("summary does not show the tiers: %q", p.Summary.Lines)
			}
			tables := Tables(p)
			if vms := tables[0]; vms.Headers[len(vms.Headers)-1] != "Tier" || vms.Rows[0][len(vms.Headers)-1] != p.TierName(p.VMs[0].Tier) {
				t.Errorf("plan table's tier column: %v / %v", vms.Headers, vms.Rows[0])
			}
			// Round trip: the written plan validates.
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTiersValidate: a plan whose waves break the tier order, or whose
// tiers are not the policy's, is refused.
func TestTiersValidate(t *testing.T) {
	in := baseInput(tieredFleet(20)...)
	in.Policy.Tiers = []policy.Tier{{Name: "domain-controllers", Selector: "role=dc"}}
	tests := []struct {
		name  string
		spoil func(p *Plan)
		want  string
	}{
		{"waves out of tier order", func(p *Plan) { p.Waves[0], p.Waves[len(p.Waves)-1] = p.Waves[len(p.Waves)-1], p.Waves[0] }, "tiers run in order"},
		{"VM in another tier's wave", func(p *Plan) { p.VMs[0].Tier = 2 }, "is of tier 2, the wave of tier 1"},
		{"tier out of range", func(p *Plan) { p.VMs[1].Tier = 7 }, "tier 7, but the plan has 2 tiers"},
		{"tiers renamed", func(p *Plan) { p.Tiers[0].Name = "dcs" }, `but the policy's tier 1 is "domain-controllers"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			tt.spoil(p)
			if err := p.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
}
