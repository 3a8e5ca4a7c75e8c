package simulation

import (
	"context"
	"fmt"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/providers/sim/simapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// Tables renders the summary for people.
func (s Summary) Tables() []render.Table {
	t := render.Table{Name: "summary", Title: "Demo: " + string(s.RunStatus), Headers: []string{"", ""}, Rows: [][]string{
		{"VMs", fmt.Sprint(s.VMsTotal)},
		{"healthy before (never touched)", fmt.Sprint(s.HealthyBefore)},
		{"fixed", fmt.Sprint(s.Fixed)},
		{"recovered by themselves (found healthy on re-check)", fmt.Sprint(s.FoundHealthy)},
		{"flagged for a person", fmt.Sprint(s.Flagged)},
		{"  no path: a person must act (as the plan foresaw)", fmt.Sprint(s.NoPath)},
		{"  surprises (the plan did not foresee)", fmt.Sprint(s.Surprises)},
		{"failed", fmt.Sprint(s.Failed)},
		{"unresolved (must be 0)", fmt.Sprint(len(s.Unresolved))},
		{"simulated time", s.ElapsedSim},
		{"wall time", fmt.Sprintf("%.1fs", s.WallSec)},
		{"peak memory", fmt.Sprintf("%.0f MiB", s.PeakMemoryMB)},
		{"API calls (" + s.Provider + ") / throttled", fmt.Sprintf("%d / %d", s.API.Total, s.API.Throttled)},
		{"API retries / breaker openings", fmt.Sprintf("%d / %d", s.Retries, s.Breaker)},
	}}
	if s.DurationsNote != "" {
		t.Rows = append(t.Rows, []string{"simulated durations", s.DurationsNote})
	}
	for _, k := range strategy.Default().Names() {
		t.Rows = append(t.Rows, []string{"fixed by " + string(k), fmt.Sprint(s.ByStrategy[string(k)])})
	}
	fl := render.Table{Name: "flagged", Title: "Flagged for a person", Headers: []string{"VM", "Name", "Strategy", "Outcome", "Reason"}}
	for _, v := range s.FlaggedVMs {
		fl.Rows = append(fl.Rows, []string{v.ID, v.Name, v.Strategy, string(v.Outcome), v.Reason})
	}
	kept := render.Table{Name: "original-disks-kept", Title: "Original OS disks kept (roll back by putting them back)", Headers: []string{"VM", "Original disk", "Present"}}
	for _, k := range s.KeptOriginals {
		kept.Rows = append(kept.Rows, []string{k.VM, k.Disk, fmt.Sprint(k.Present)})
	}
	return []render.Table{t, invariantsTable(s.Invariants, s.Violations), fl, kept}
}

// AuditDoc is `sim audit --format json`: the world's Audit with its
// counters also gathered under "invariants".
type AuditDoc struct {
	world.Audit
	Invariants Invariants `json:"invariants"`
}

// NewAuditDoc gathers a's counters.
func NewAuditDoc(a world.Audit) AuditDoc { return AuditDoc{Audit: a, Invariants: InvariantsOf(a)} }

// AuditAt asks the world served at url (`fixfleet sim serve`) for its
// own account of itself. An unreachable world is a *DialError naming url.
func AuditAt(ctx context.Context, url string) (AuditDoc, error) {
	r, err := simapi.Dial(ctx, url)
	if err != nil {
		return AuditDoc{}, &DialError{fmt.Errorf("%s: %w", url, err)}
	}
	defer r.Close()
	a, err := r.Audit(ctx)
	if err != nil {
		return AuditDoc{}, err
	}
	return NewAuditDoc(a), nil
}

// Tables renders the audit for people: the counters and the true
// condition of the VMs now.
func (d AuditDoc) Tables() []render.Table {
	c := render.Table{Name: "truth", Title: "True condition now", Headers: []string{"truth", "VMs"}}
	for _, k := range []string{world.TruthHealthy, world.TruthSafeMode, world.TruthBootLoop} {
		c.Rows = append(c.Rows, []string{k, fmt.Sprint(d.TruthCounts[k])})
	}
	return []render.Table{invariantsTable(d.Invariants, nil), c}
}

// invariantsTable shows the world's referee counters and, in words, the
// violations it counted.
func invariantsTable(inv Invariants, violations []string) render.Table {
	t := render.Table{Name: "invariants", Title: "Invariants (computed by the world)", Headers: []string{"counter", "value"}}
	for _, c := range inv.Counters() {
		t.Rows = append(t.Rows, []string{c.Name, fmt.Sprint(c.Value)})
	}
	for _, v := range violations {
		t.Rows = append(t.Rows, []string{"violation", v})
	}
	return t
}
