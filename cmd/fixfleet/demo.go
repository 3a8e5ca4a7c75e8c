package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

type demoOpts struct {
	provider  string
	world     worldOpts
	faults    faultOpts
	journal   string
	format    string
	overrides policyOverrides
}

func newDemoCmd(stdout, stderr io.Writer) *cobra.Command {
	var o demoOpts
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole incident on a simulated world: inventory, plan, apply, audit",
		Long: `demo generates (or loads) a simulated world, classifies it, plans, applies the plan
with the progress display, and ends with a summary and the world's own invariant
counters (computed by the world, not by fixfleet). No account, no network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), o, stdout, stderr) },
	}
	cmd.Flags().StringVar(&o.provider, "provider", "sim", "face of the simulated cloud the incident runs through: sim (in-process), sakura or aws (the real cloud client against an emulator of its API on loopback)")
	o.world.addFlags(cmd.Flags(), 3000)
	o.faults.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.journal, "journal", "", "journal file (default: a temporary one, removed at the end)")
	cmd.Flags().StringVar(&o.format, "format", "table", "summary format: "+strings.Join(render.FormatNames(), ", "))
	o.overrides.addFlags(cmd.Flags(), true)
	return cmd
}

// demoSummary is the JSON document `fixfleet demo --format json` prints.
type demoSummary struct {
	VMsTotal      int            `json:"vms_total"`
	HealthyBefore int            `json:"healthy_before"`
	Fixed         int            `json:"fixed"`
	ByStrategy    map[string]int `json:"by_strategy"`
	// FoundHealthy were planned for repair but had recovered by themselves
	// when re-checked: left untouched.
	FoundHealthy int         `json:"found_healthy"`
	Flagged      int         `json:"flagged"`
	FlaggedVMs   []flaggedVM `json:"flagged_vms"`
	Failed       int         `json:"failed"`
	// Unresolved lists VMs that are neither healthy (by the world's truth)
	// nor flagged for a person: must be empty.
	Unresolved []string `json:"unresolved"`
	RunStatus  string   `json:"run_status"`
	ElapsedSim string   `json:"elapsed_sim"`
	ElapsedSec float64  `json:"elapsed_sim_seconds"`
	WallSec    float64  `json:"wall_seconds"`
	// PeakMemoryMB is the process\'s peak resident memory (0 where unknown).
	PeakMemoryMB float64    `json:"peak_memory_mb"`
	Retries      int        `json:"retries"`
	Breaker      int        `json:"breaker_openings"`
	Invariants   invariants `json:"invariants"`
	// Violations says what the world counted against the invariants.
	Violations []string       `json:"violations"`
	TruthAfter map[string]int `json:"truth_after"`
	// Provider is the face the incident ran through; API counts its calls
	// as the cloud (or its emulator) saw them.
	Provider string   `json:"provider"`
	API      apiStats `json:"api"`
}

// apiStats are the control-plane calls of a demo, counted by the side that
// answered them (the world, or the cloud API emulator in front of it).
type apiStats struct {
	Calls     map[string]int `json:"calls"`
	Total     int            `json:"total"`
	Throttled int            `json:"throttled"`
	// Instances counts, per action that takes many VMs per call
	// (StopInstances, StartInstances), the VMs its calls named: against
	// Calls it shows what batching saved.
	Instances map[string]int `json:"instances,omitempty"`
}

type flaggedVM struct {
	ID       string `json:"id"`
	Name     string `json:"name,omitempty"`
	Strategy string `json:"strategy"`
	Reason   string `json:"reason"`
}

func runDemo(ctx context.Context, o demoOpts, stdout, stderr io.Writer) error {
	format, err := parseFormat(o.format)
	if err != nil {
		return err
	}
	wallStart := time.Now()
	w, b, err := openFace("--provider", o.provider, &o.world, &o.faults)
	if err != nil {
		return err
	}
	f, err := fleetOn(ctx, b)
	if err != nil {
		b.close()
		return err
	}
	defer f.Close()
	progress := progressTo(stderr)
	simStart := f.clock.Now()
	p, err := f.plan(ctx, classify.AssessOptions{}, o.overrides, progress)
	if err != nil {
		return err
	}
	journalPath := o.journal
	if journalPath == "" {
		dir, err := os.MkdirTemp("", "fixfleet-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		journalPath = filepath.Join(dir, "fixfleet.db")
	}
	if progress != nil {
		fmt.Fprintf(progress, "plan %s: %s\n", p.ID, strings.Join(p.Summary.Lines, "; "))
	}
	if err := o.faults.scheduleOutage(w); err != nil {
		return err
	}
	res, err := f.apply(ctx, p, nil, journalPath, applySettings{}, progress)
	if err != nil {
		return err
	}
	audit, err := b.audit(ctx)
	if err != nil {
		return err
	}
	s := summarize(p, res, audit.Truth, b.worldID, time.Since(wallStart))
	s.Provider, s.API = o.provider, apiStatsOf(b, audit)
	s.ElapsedSec = f.clock.Now().Sub(simStart).Seconds()
	s.ElapsedSim = f.clock.Now().Sub(simStart).Round(time.Second).String()
	s.Invariants, s.Violations, s.TruthAfter = invariantsOf(audit), violations(audit), audit.TruthCounts
	s.PeakMemoryMB = peakRSSMB()
	if err := render.Render(stdout, format, s, demoTables(s)...); err != nil {
		return err
	}
	return s.broken()
}

// broken says how the demo's outcome breaks fixfleet's promises: a run not
// done, a VM neither healthy nor flagged, an invariant counter above 0.
func (s demoSummary) broken() error {
	var why []string
	if s.RunStatus != string(apply.RunDone) {
		why = append(why, "the run did not finish")
	}
	if len(s.Unresolved) > 0 {
		why = append(why, fmt.Sprintf("%d VMs neither healthy nor flagged", len(s.Unresolved)))
	}
	if s.Invariants != (invariants{}) {
		why = append(why, "invariant counters above 0: "+strings.Join(s.Violations, "; "))
	}
	if len(why) == 0 {
		return nil
	}
	return runPaused{status: apply.RunStatus(s.RunStatus), msg: strings.Join(why, "; ")}
}

// apiStatsOf counts the demo's control-plane calls: the emulator's per
// operation when one fronted the world, else the world's own.
func apiStatsOf(b *simBackend, a world.Audit) apiStats {
	s := apiStats{Calls: a.Calls.Calls, Throttled: a.Calls.Throttled}
	if b.apiCalls != nil {
		s.Calls = b.apiCalls()
	}
	if b.apiThrottled != nil {
		s.Throttled = b.apiThrottled()
	}
	if b.apiInstances != nil {
		s.Instances = b.apiInstances()
	}
	for _, n := range s.Calls {
		s.Total += n
	}
	return s
}

// summarize builds the demo summary from the plan, the run's result and the
// world's truth after the run.
func summarize(p *plan.Plan, res *apply.Result, truth map[string]string, worldID func(string) string, wall time.Duration) demoSummary {
	s := demoSummary{
		VMsTotal: len(p.VMs), Fixed: res.Fixed, ByStrategy: map[string]int{}, FoundHealthy: res.SkippedHealthy,
		Failed: res.Failed, RunStatus: string(res.Status), WallSec: wall.Seconds(), Retries: res.Retries, Breaker: res.BreakerOpenings,
		FlaggedVMs: []flaggedVM{}, Unresolved: []string{},
	}
	for _, st := range strategy.Default().Names() {
		s.ByStrategy[string(st)] = res.FixedBy[st]
	}
	byKey := map[string]plan.VMPlan{}
	for _, v := range p.VMs {
		byKey[v.Key] = v
		if v.Strategy == plan.None {
			s.HealthyBefore++
		}
	}
	for _, r := range res.VMs {
		v := byKey[r.Key]
		switch {
		case r.Status == apply.StatusFlagged || r.Status == apply.StatusFailed:
			s.FlaggedVMs = append(s.FlaggedVMs, flaggedVM{ID: v.ID, Name: v.Name, Strategy: string(r.Strategy), Reason: r.Reason})
		case truth[worldID(v.ID)] != world.TruthHealthy:
			s.Unresolved = append(s.Unresolved, v.ID+" ("+string(r.Status)+", truth "+truth[worldID(v.ID)]+")")
		}
	}
	sort.Slice(s.FlaggedVMs, func(i, j int) bool { return s.FlaggedVMs[i].ID < s.FlaggedVMs[j].ID })
	s.Flagged = len(s.FlaggedVMs)
	return s
}

func demoTables(s demoSummary) []render.Table {
	t := render.Table{Title: "Demo: " + s.RunStatus, Headers: []string{"", ""}, Rows: [][]string{
		{"VMs", fmt.Sprint(s.VMsTotal)},
		{"healthy before (never touched)", fmt.Sprint(s.HealthyBefore)},
		{"fixed", fmt.Sprint(s.Fixed)},
		{"recovered by themselves (found healthy on re-check)", fmt.Sprint(s.FoundHealthy)},
		{"flagged for a person", fmt.Sprint(s.Flagged)},
		{"failed", fmt.Sprint(s.Failed)},
		{"unresolved (must be 0)", fmt.Sprint(len(s.Unresolved))},
		{"simulated time", s.ElapsedSim},
		{"wall time", fmt.Sprintf("%.1fs", s.WallSec)},
		{"peak memory", fmt.Sprintf("%.0f MiB", s.PeakMemoryMB)},
		{"API calls (" + s.Provider + ") / throttled", fmt.Sprintf("%d / %d", s.API.Total, s.API.Throttled)},
		{"API retries / breaker openings", fmt.Sprintf("%d / %d", s.Retries, s.Breaker)},
	}}
	for _, k := range []string{"reboot-retry", "delete-file", "helper-mount", "restore-backup"} {
		t.Rows = append(t.Rows, []string{"fixed by " + k, fmt.Sprint(s.ByStrategy[k])})
	}
	inv := render.Table{Title: "Invariants (computed by the world)", Headers: []string{"counter", "value"}, Rows: [][]string{
		{"healthy_touched", fmt.Sprint(s.Invariants.HealthyTouched)},
		{"disks_lost", fmt.Sprint(s.Invariants.DisksLost)},
		{"identity_changed", fmt.Sprint(s.Invariants.IdentityChanged)},
		{"unverified_returns", fmt.Sprint(s.Invariants.UnverifiedReturns)},
		{"foreign_scripts", fmt.Sprint(s.Invariants.ForeignScripts)},
	}}
	fl := render.Table{Title: "Flagged for a person", Headers: []string{"VM", "Name", "Strategy", "Reason"}}
	for _, v := range s.FlaggedVMs {
		fl.Rows = append(fl.Rows, []string{v.ID, v.Name, v.Strategy, v.Reason})
	}
	for _, v := range s.Violations {
		inv.Rows = append(inv.Rows, []string{"violation", v})
	}
	return []render.Table{t, inv, fl}
}
