package classify

import (
	"fmt"
	"strings"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory"
)

// Tables renders f for people: one row per VM (with its tenant and
// account), the count per state, and the skipped accounts if any.
func (f *Fleet) Tables() []render.Table {
	t := render.Table{Name: "fleet", Title: "Fleet", Headers: []string{"VM", "Name", "Tenant", "Account", "Zone", "Windows", "Power", "State", "Why"}}
	byState := map[inventory.State]int{}
	for _, x := range f.VMs {
		c := x.Classification
		byState[c.State]++
		t.Rows = append(t.Rows, []string{x.VM.ID, x.VM.Name, x.VM.Tenant, x.VM.Account, x.VM.Zone,
			x.VM.Windows.Release, string(x.VM.Power), string(c.State), strings.Join(c.Reasons, "; ")})
	}
	counts := render.Table{Name: "by-state", Title: "By state", Headers: []string{"State", "VMs"}}
	for _, s := range inventory.States {
		counts.Rows = append(counts.Rows, []string{string(s), fmt.Sprint(byState[s])})
	}
	return append([]render.Table{t, counts}, SkippedTables(f.Skipped)...)
}

// SkippedTables is a table of the skipped accounts (none when there are
// none).
func SkippedTables(s []SkippedAccount) []render.Table {
	if len(s) == 0 {
		return nil
	}
	t := render.Table{Name: "skipped-accounts", Title: "Skipped accounts", Headers: []string{"Tenant", "Account", "Provider", "Why"}}
	for _, a := range s {
		t.Rows = append(t.Rows, []string{a.Tenant, a.Account, a.Provider, a.Reason})
	}
	return []render.Table{t}
}
