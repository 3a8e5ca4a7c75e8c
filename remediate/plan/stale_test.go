package plan

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
)

func TestCheckFresh(t *testing.T) {
	p, err := Build(baseInput(bigFleet(10)...))
	if err != nil {
		t.Fatal(err)
	}
	var acted, idle *VMPlan
	for i := range p.VMs {
		switch {
		case p.VMs[i].Acts() && acted == nil:
			acted = &p.VMs[i]
		case !p.VMs[i].Acts() && idle == nil:
			idle = &p.VMs[i]
		}
	}
	live := func(edit func([]inventory.VM) []inventory.VM) []inventory.VM {
		var vms []inventory.VM
		for _, a := range bigFleet(10) {
			vms = append(vms, a.VM)
		}
		return edit(vms)
	}
	same := func(v []inventory.VM) []inventory.VM { return v }
	drop := func(key string) func([]inventory.VM) []inventory.VM {
		return func(vms []inventory.VM) []inventory.VM {
			var out []inventory.VM
			for _, v := range vms {
				if v.Key() != key {
					out = append(out, v)
				}
			}
			return out
		}
	}
	tests := []struct {
		name   string
		age    time.Duration
		limit  int
		live   []inventory.VM
		errHas []string
	}{
		{"fresh", 10 * time.Minute, 60, live(same), nil},
		{"too old", 61 * time.Minute, 60, live(same), []string{"made 1h1m0s ago", "plan_max_age_minutes (60)", "--allow-stale"}},
		{"no age limit", 100 * time.Hour, 0, live(same), nil},
		{"VM gone", time.Minute, 60, live(drop(acted.Key)), []string{"- " + acted.Key + ": no longer in the fleet"}},
		{"VM not acted on gone", time.Minute, 60, live(drop(idle.Key)), nil},
		{"OS disk swapped", time.Minute, 60, live(func(v []inventory.VM) []inventory.VM {
			for i := range v {
				if v[i].Key() == acted.Key {
					v[i].OSDisk.ID = "disk-other"
				}
			}
			return v
		}), []string{"~ " + acted.Key + ": OS disk disk-", "disk-other now"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := *p
			q.Policy.PlanMaxAgeMinutes = tt.limit
			err := CheckFresh(&q, q.CreatedAt.Add(tt.age), tt.live)
			if tt.errHas == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var se *StaleError
			if !errors.As(err, &se) {
				t.Fatalf("error %v, want a *StaleError", err)
			}
			for _, w := range tt.errHas {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}
