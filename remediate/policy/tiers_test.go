package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestParseTiers(t *testing.T) {
	p, err := parse(t, "tiers:\n  - {name: domain-controllers, selector: role=dc}\n  - name: databases\n    selector: role=db, env=prod\ntier_timeout_minutes: 30")
	if err != nil {
		t.Fatal(err)
	}
	want := []Tier{{Name: "domain-controllers", Selector: "role=dc"}, {Name: "databases", Selector: "role=db, env=prod"}}
	if !slices.Equal(p.Tiers, want) || p.TierTimeoutMinutes != 30 {
		t.Errorf("tiers %+v timeout %d", p.Tiers, p.TierTimeoutMinutes)
	}
	if got := p.TierNames(); !slices.Equal(got, []string{"domain-controllers", "databases", RestTier}) {
		t.Errorf("names %v", got)
	}
	tests := []struct {
		tags map[string]string
		want int
	}{
		{map[string]string{"role": "dc"}, 1},
		{map[string]string{"role": "db", "env": "prod"}, 2},
		{map[string]string{"role": "db", "env": "test"}, 3}, // every tag of the selector must hold
		{map[string]string{"role": "web"}, 3},
		{nil, 3},
	}
	for _, tt := range tests {
		if got := p.TierOf(tt.tags); got != tt.want {
			t.Errorf("TierOf(%v) = %d, want %d", tt.tags, got, tt.want)
		}
	}
	if got := Default().TierOf(map[string]string{"role": "dc"}); got != 0 {
		t.Errorf("no tiers: TierOf = %d, want 0", got)
	}
}

func TestParseTierErrors(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string
	}{
		{"not a list", "tiers: role=dc", []string{"policy.tiers (line 1): \"role=dc\" is not a list of tiers"}},
		{"unknown key", "tiers:\n  - {name: dc, selektor: role=dc}", []string{"policy.tiers[0].selektor (line 2): unknown key; valid keys are name, selector"}},
		{"bad selector", "tiers:\n  - {name: dc, selector: role}", []string{`policy.tiers[0].selector: "role" is not key=value`}},
		{"empty value", "tiers:\n  - {name: dc, selector: role=}", []string{`policy.tiers[0].selector: "role=" is not key=value`}},
		{"tag twice", "tiers:\n  - {name: dc, selector: 'role=dc,role=db'}", []string{`policy.tiers[0].selector: tag "role" is given twice`}},
		{"duplicate name", "tiers:\n  - {name: dc, selector: role=dc}\n  - {name: dc, selector: role=db}", []string{`policy.tiers[1].name: "dc" is already the name of tiers[0]`}},
		{"rest is reserved", "tiers:\n  - {name: rest, selector: role=dc}", []string{`policy.tiers[0].name: "rest" is the name of the last tier`}},
		{"no name", "tiers:\n  - {selector: role=dc}", []string{"policy.tiers[0].name: is required"}},
		{"bad name", "tiers:\n  - {name: Domain Controllers, selector: role=dc}", []string{`policy.tiers[0].name: "Domain Controllers" is not valid`}},
		{"name not a string", "tiers:\n  - {name: 3, selector: role=dc}", []string{`policy.tiers[0].name (line 2): "3" is not a string`}},
		{"negative timeout", "tier_timeout_minutes: -1", []string{"policy.tier_timeout_minutes: -1 must be 0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.src)
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\nlacks %q", err, w)
				}
			}
		})
	}
}
