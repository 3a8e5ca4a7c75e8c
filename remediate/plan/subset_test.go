package plan

import (
	"bytes"
	"strings"
	"testing"
)

// TestSubset: a subset holds exactly the kept VMs, its waves keep their
// order renumbered from 1 with emptied ones dropped, it validates and
// round-trips, and its ID differs from the plan's.
func TestSubset(t *testing.T) {
	in := baseInput(bigFleet(50)...)
	in.Policy.Canary = 4
	in.Policy.WaveSize = 7
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	canary := map[string]bool{}
	for _, k := range p.Waves[0].VMs {
		canary[k] = true
	}
	tests := []struct {
		name string
		keep func(VMPlan) bool
	}{
		{"one account", func(v VMPlan) bool { return v.Account == "dev" }},
		{"no canary VM", func(v VMPlan) bool { return !canary[v.Key] }},
		{"every third", func(v VMPlan) bool { return strings.HasSuffix(v.ID, "3") || strings.HasSuffix(v.ID, "6") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub := Subset(p, tt.keep, "sel-test")
			if sub == nil {
				t.Fatal("nil subset")
			}
			want := 0
			for _, v := range p.VMs {
				if tt.keep(v) {
					want++
				}
			}
			if len(sub.VMs) != want || sub.ID == p.ID {
				t.Errorf("%d VMs, ID %s: want %d VMs and an ID other than %s", len(sub.VMs), sub.ID, want, p.ID)
			}
			for _, v := range sub.VMs {
				if !tt.keep(v) {
					t.Errorf("%s is in the subset but not kept", v.Key)
				}
			}
			if err := sub.Validate(); err != nil {
				t.Fatalf("subset does not validate: %v", err)
			}
			var buf bytes.Buffer
			if err := Write(&buf, sub); err != nil {
				t.Fatal(err)
			}
			if _, err := Read(&buf); err != nil {
				t.Errorf("subset does not read back: %v", err)
			}
			if err := p.Validate(); err != nil || len(p.Waves[0].VMs) != len(canary) {
				t.Errorf("Subset changed the original plan: %v", err)
			}
		})
	}
	if Subset(p, func(VMPlan) bool { return false }, "none") != nil {
		t.Error("a subset of nothing is not nil")
	}
}

// TestConfirmation: the confirmation names every account with its VMs
// acted on, and the first VMs of each strategy, then how many more.
func TestConfirmation(t *testing.T) {
	p, err := Build(baseInput(bigFleet(30)...))
	if err != nil {
		t.Fatal(err)
	}
	text := strings.Join(Confirmation(p, 2), "\n")
	for _, want := range []string{"Plan plan-1:", "acme/prod (", "acme/dev (", "of 15 VMs acted on)", "reboot-retry, ", "srv-vm-000, srv-vm-001 and ", "more"} {
		if !strings.Contains(text, want) {
			t.Errorf("confirmation does not say %q:\n%s", want, text)
		}
	}
}
