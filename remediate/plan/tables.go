package plan

import (
	"fmt"
	"strings"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/classify"
)

// Tables renders p for people: one row per VM (with its tenant and
// account), the estimate, the summary, and the skipped accounts if any.
func Tables(p *Plan) []render.Table {
	vms := render.Table{Title: "Plan " + p.ID, Headers: []string{"VM", "Name", "Tenant", "Account", "Zone", "State", "Strategy", "Fallbacks", "Wave", "Risks", "Why"}}
	for _, v := range p.VMs {
		var fb []string
		for _, s := range v.Fallbacks {
			fb = append(fb, string(s))
		}
		wave := ""
		if v.Wave > 0 {
			wave = fmt.Sprint(v.Wave)
		}
		vms.Rows = append(vms.Rows, []string{v.ID, v.Name, v.Tenant, v.Account, v.Zone, string(v.State), string(v.Strategy),
			strings.Join(fb, ", "), wave, strings.Join(v.Risks, "; "), strings.Join(v.Reasons, "; ")})
	}
	est := render.Table{Title: "Estimate", Headers: []string{"", ""}}
	est.Rows = append(est.Rows,
		[]string{"duration", p.Estimate.Duration},
		[]string{"canary wave ends after", fmt.Sprintf("%ds", p.Estimate.CanarySeconds)},
		[]string{"API calls", fmt.Sprint(p.Estimate.APICallsTotal)},
	)
	for _, s := range AllStrategies {
		if n := p.Estimate.ByStrategy[s]; n > 0 {
			est.Rows = append(est.Rows, []string{"VMs " + string(s), fmt.Sprint(n)})
		}
	}
	summary := render.Table{Title: "Summary", Headers: []string{"What to know first"}}
	for _, l := range p.Summary.Lines {
		summary.Rows = append(summary.Rows, []string{l})
	}
	return append([]render.Table{vms, est, summary}, classify.SkippedTables(p.Skipped)...)
}
