package readiness

import (
	"fmt"
	"strings"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/providers"
)

// Tables renders the report for every output format: the score per
// tenant, the ranked fixes, the accounts, the worst-case estimate, the VMs
// with gaps, and what could not be checked.
func (r *Report) Tables() []render.Table {
	verdict := "READY: every VM has a full repair path"
	if !r.Ready {
		verdict = fmt.Sprintf("NOT READY: %d fixes", len(r.Fixes))
	}
	tenants := render.Table{Title: "Readiness by tenant (" + verdict + ")", Headers: []string{"Tenant", "VMs", "Full repair path", "Score"}}
	for _, t := range r.Tenants {
		tenants.Rows = append(tenants.Rows, []string{t.Tenant, fmt.Sprint(t.VMs), fmt.Sprint(t.Ready), fmt.Sprintf("%.0f%%", 100*t.Score)})
	}
	fixes := render.Table{Title: "Fixes, most VMs first", Headers: []string{"#", "Fix", "Kind", "VMs"}}
	for i, f := range r.Fixes {
		fixes.Rows = append(fixes.Rows, []string{fmt.Sprint(i + 1), f.Text, string(f.Kind), fmt.Sprint(f.VMs)})
	}
	accts := render.Table{Title: "Accounts: permissions and helper quota", Headers: []string{"Account", "Provider", "VMs", "Denied", "Helper quota", "Helpers needed"}}
	for _, a := range r.Accounts {
		var denied []string
		for _, p := range a.Permissions {
			if p.Allowed == providers.AllowedNo {
				denied = append(denied, string(p.Action))
			}
		}
		accts.Rows = append(accts.Rows, []string{a.Tenant + "/" + a.Account, a.Provider, fmt.Sprint(a.VMs),
			orDash(strings.Join(denied, ", ")), quotaText(a), fmt.Sprint(a.HelpersNeeded)})
	}
	est := render.Table{Title: "If every VM failed at once (the planner's estimate)", Headers: []string{"VMs", "Acted on", "Left to a person", "Time to a healthy fleet"}}
	est.Rows = [][]string{{fmt.Sprint(r.Estimate.VMs), fmt.Sprint(r.Estimate.Acted), fmt.Sprint(r.Estimate.Manual), orDash(r.Estimate.Duration)}}
	vms := render.Table{Title: "VMs without a full repair path", Headers: []string{"VM", "Name", "Zone", "Release", "Gaps"}}
	for _, v := range r.VMs {
		if !v.Ready {
			vms.Rows = append(vms.Rows, []string{v.Key, v.Name, v.Zone, v.Release, strings.Join(v.Details, "; ")})
		}
	}
	tables := []render.Table{tenants, fixes, accts, est, vms}
	if len(r.NotCheckable) > 0 {
		nc := render.Table{Title: "Not checkable without effect", Headers: []string{"What"}}
		for _, s := range r.NotCheckable {
			nc.Rows = append(nc.Rows, []string{s})
		}
		tables = append(tables, nc)
	}
	return tables
}

func quotaText(a AccountSummary) string {
	q := a.Quota
	switch {
	case !a.Checkable || !q.Known:
		return "not checkable"
	case q.Unlimited:
		return "no quota"
	}
	return fmt.Sprintf("%d free of %d", q.Room, q.Limit)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
