package classify

import (
	"fmt"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory"
)

// Doc is the JSON document of `fixfleet inventory`.
type Doc struct {
	GeneratedAt time.Time               `json:"generated_at"`
	Incident    string                  `json:"incident"`
	ByState     map[inventory.State]int `json:"by_state"`
	VMs         []DocVM                 `json:"vms"`
	Skipped     []SkippedAccount        `json:"skipped_accounts,omitempty"`
}

// DocVM is one VM of a Doc: the VM, its state, why, and the evidence.
type DocVM struct {
	ID    string          `json:"id"`
	State inventory.State `json:"state"`
	inventory.VM
	Reasons  []string             `json:"reasons"`
	BadFiles []inventory.FileFact `json:"bad_files,omitempty"`
	Evidence inventory.Evidence   `json:"evidence"`
}

// Doc is f as the inventory's JSON document, made at now.
func (f *Fleet) Doc(now time.Time, incident string) Doc {
	doc := Doc{GeneratedAt: now, Incident: incident, ByState: map[inventory.State]int{}, VMs: []DocVM{}, Skipped: f.Skipped}
	for _, x := range f.VMs {
		c := x.Classification
		doc.ByState[c.State]++
		doc.VMs = append(doc.VMs, DocVM{ID: x.VM.ID, State: c.State, VM: x.VM, Reasons: c.Reasons, BadFiles: c.BadFiles, Evidence: c.Evidence})
	}
	return doc
}

// Tables renders f for people: one row per VM (with its tenant and
// account), the count per state, and the skipped accounts if any.
func (f *Fleet) Tables() []render.Table {
	t := render.Table{Title: "Fleet", Headers: []string{"VM", "Name", "Tenant", "Account", "Zone", "Windows", "Power", "State", "Why"}}
	byState := map[inventory.State]int{}
	for _, x := range f.VMs {
		c := x.Classification
		byState[c.State]++
		t.Rows = append(t.Rows, []string{x.VM.ID, x.VM.Name, x.VM.Tenant, x.VM.Account, x.VM.Zone,
			x.VM.Windows.Release, string(x.VM.Power), string(c.State), strings.Join(c.Reasons, "; ")})
	}
	counts := render.Table{Title: "By state", Headers: []string{"State", "VMs"}}
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
	t := render.Table{Title: "Skipped accounts", Headers: []string{"Tenant", "Account", "Provider", "Why"}}
	for _, a := range s {
		t.Rows = append(t.Rows, []string{a.Tenant, a.Account, a.Provider, a.Reason})
	}
	return []render.Table{t}
}
