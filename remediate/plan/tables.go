package plan

import (
	"cmp"
	"fmt"
	"strings"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/classify"
)

// Tables renders p for people: one row per VM (with its tenant and
// account), the estimate, the summary, and the skipped accounts if any.
func Tables(p *Plan) []render.Table {
	vms := render.Table{Name: "vms", Title: "Plan " + p.ID, Headers: []string{"VM", "Name", "Tenant", "Account", "Zone", "State", "Strategy", "Fallbacks", "Helper", "Wave", "Risks", "Why", "Tier"}}
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
			strings.Join(fb, ", "), v.Helper.String(), wave, strings.Join(v.Risks, "; "), strings.Join(v.Reasons, "; "), p.TierName(v.Tier)})
	}
	est := render.Table{Name: "estimate", Title: "Estimate", Headers: []string{"", ""}}
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
	summary := render.Table{Name: "summary", Title: "Summary", Headers: []string{"What to know first"}}
	for _, l := range p.Summary.Lines {
		summary.Rows = append(summary.Rows, []string{l})
	}
	out := []render.Table{vms, est, summary}
	if len(p.Tiers) > 0 {
		tiers := render.Table{Name: "tiers", Title: "Tiers, in order (a tier starts when the one before it is done, or after " + tierTimeout(p.Policy) + ")",
			Headers: []string{"Tier", "Name", "Selector", "VMs", "Acted on"}}
		for _, t := range p.Tiers {
			tiers.Rows = append(tiers.Rows, []string{fmt.Sprint(t.Number), t.Name, cmp.Or(t.Selector, "(every other VM)"), fmt.Sprint(t.VMs), fmt.Sprint(t.Act)})
		}
		out = append(out, tiers)
	}
	return append(out, classify.SkippedTables(p.Skipped)...)
}

// Confirmation is what an operator approves before apply: the summary,
// the accounts with their VMs acted on, and the first n VMs of each
// strategy (by name when they have one).
func Confirmation(p *Plan, n int) []string {
	out := append([]string{"Plan " + p.ID + ":"}, p.Summary.Lines...)
	var accts []string
	acts, all := map[string]int{}, map[string]int{}
	byStrategy := map[string][]string{}
	for _, v := range p.VMs {
		k := AccountKey(v.Tenant, v.Account)
		if all[k] == 0 {
			accts = append(accts, k)
		}
		all[k]++
		if v.Acts() {
			acts[k]++
			byStrategy[string(v.Strategy)] = append(byStrategy[string(v.Strategy)], cmp.Or(v.Name, v.ID))
		}
	}
	for i, a := range accts {
		accts[i] = fmt.Sprintf("%s (%d of %d VMs acted on)", a, acts[a], all[a])
	}
	out = append(out, "accounts: "+strings.Join(accts, ", "))
	for _, s := range AllStrategies {
		vms := byStrategy[string(s)]
		if len(vms) == 0 {
			continue
		}
		line := fmt.Sprintf("%s, %d VMs: %s", s, len(vms), strings.Join(vms[:min(n, len(vms))], ", "))
		if len(vms) > n {
			line += fmt.Sprintf(" and %d more", len(vms)-n)
		}
		out = append(out, line)
	}
	return out
}
