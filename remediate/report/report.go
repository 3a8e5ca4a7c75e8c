// Package report turns one run, as the journal holds it, into the report a
// manager reads: the outcome per tenant, healthy VMs over time per tenant
// (from the journal's events), the time to healthy, the VMs left to a
// person grouped by reason, every VM and the event log. It writes that
// report as self-contained HTML (inline CSS and SVG), as Markdown for a
// ticket, and as named tables (one CSV file per table, with stable columns
// documented in docs/reports.md).
//
// Every count in a report is computed from its own VM rows, so the summary
// and the rows cannot disagree.
package report

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/apply"
)

// Outcome is a VM's status as a report groups it: the executor's typed
// outcome (apply.Reason.Outcome), with "not-finished" for pending.
type Outcome string

// Outcomes, in the order reports show them.
const (
	OutcomeFixed   Outcome = "fixed"   // healthy after fixfleet acted
	OutcomeHealthy Outcome = "healthy" // healthy without a change (planned healthy, or found healthy on re-check)
	// OutcomeNoPath: left to a person as the plan foresaw (planned manual,
	// no strategy could repair it, account not configured): nothing went
	// wrong, a person must act.
	OutcomeNoPath Outcome = "no-path"
	// OutcomeFailed: ended by a surprise (a step said a person must act,
	// an abort that failed or could not undo, every strategy failed): a
	// person must look first.
	OutcomeFailed      Outcome = "failed"
	OutcomeNotFinished Outcome = "not-finished" // pending or running
)

// OutcomeOf classifies a VM by its status and reason code. A flagged VM
// whose code is not a foreseen no-path one (or that has no code, from an
// older journal) counts as failed: a person must look first.
func OutcomeOf(s journal.VMStatus, code apply.Reason) Outcome {
	switch s {
	case apply.StatusFixed:
		return OutcomeFixed
	case apply.StatusSkippedHealthy, apply.StatusUntouchedHealthy:
		return OutcomeHealthy
	case apply.StatusFlagged:
		if code.Outcome() == apply.OutcomeNoPath {
			return OutcomeNoPath
		}
		return OutcomeFailed
	case apply.StatusFailed:
		return OutcomeFailed
	}
	return OutcomeNotFinished
}

// ForAPerson says whether a VM of this outcome is left to a person.
func (o Outcome) ForAPerson() bool { return o == OutcomeNoPath || o == OutcomeFailed }

// Counts are VMs per outcome.
type Counts struct {
	VMs         int `json:"vms"`
	Fixed       int `json:"fixed"`
	Healthy     int `json:"healthy_untouched"`
	NoPath      int `json:"no_path"`
	Failed      int `json:"failed"`
	NotFinished int `json:"not_finished"`
}

func (c *Counts) add(o Outcome) {
	c.VMs++
	switch o {
	case OutcomeFixed:
		c.Fixed++
	case OutcomeHealthy:
		c.Healthy++
	case OutcomeNoPath:
		c.NoPath++
	case OutcomeFailed:
		c.Failed++
	default:
		c.NotFinished++
	}
}

// ForAPerson is no path plus failed: the VMs a person must look at.
func (c Counts) ForAPerson() int { return c.NoPath + c.Failed }

// Percentiles are the p50 and p90 (nearest rank) of some durations.
type Percentiles struct {
	N   int           `json:"n"`
	P50 time.Duration `json:"-"`
	P90 time.Duration `json:"-"`
	// Seconds, for JSON.
	P50Seconds float64 `json:"p50_seconds"`
	P90Seconds float64 `json:"p90_seconds"`
}

func percentiles(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration { return s[max(0, int(math.Ceil(q*float64(len(s))))-1)] }
	p := Percentiles{N: len(s), P50: rank(0.5), P90: rank(0.9)}
	p.P50Seconds, p.P90Seconds = p.P50.Seconds(), p.P90.Seconds()
	return p
}

// Tenant is one tenant's outcome.
type Tenant struct {
	Name string `json:"tenant"`
	Counts
	// TimeToHealthy is, over the tenant's fixed VMs, the time from the
	// run's start to the VM's fixed event.
	TimeToHealthy Percentiles `json:"time_to_healthy"`
	// Healthy is the number of healthy VMs (fixed or healthy untouched)
	// over time since the run started: the first point is the start.
	HealthyOverTime []Step `json:"healthy_over_time"`
}

// Step is one change of a count at an offset from the run's start.
type Step struct {
	At    time.Duration `json:"-"`
	AtSec float64       `json:"at_seconds"`
	Count int           `json:"count"`
}

// VM is one VM row of a report.
type VM struct {
	apply.VMResult
	Outcome Outcome `json:"outcome"`
}

// Group is the VMs left to a person for one outcome and reason code.
type Group struct {
	Outcome     Outcome          `json:"outcome"`
	Status      journal.VMStatus `json:"status"`
	Code        apply.Reason     `json:"reason_code"`
	Description string           `json:"description"`
	// Common is what every VM's reason text in the group says (its
	// clauses shared by all), "" when nothing is shared.
	Common string `json:"common"`
	// Kinds split the group by the rest of their reason text, largest
	// first.
	Kinds []Kind `json:"kinds"`
	// VMs are all the group's VMs, sorted by tenant, account, name.
	VMs []VM `json:"vms"`
}

// Kind is the VMs of a group whose reason texts, past the group's common
// part, say the same but for numbers (addresses, ports, counts).
type Kind struct {
	// Detail is the first VM's text past the common part ("" when the
	// common part is all); Varies says the others differ in numbers.
	Detail string `json:"detail"`
	Varies bool   `json:"varies,omitempty"`
	VMs    []VM   `json:"vms"`
}

// Report is one run's report, possibly narrowed to one tenant.
type Report struct {
	RunID   string          `json:"run_id"`
	PlanID  string          `json:"plan_id"`
	Status  apply.RunStatus `json:"status"`
	Message string          `json:"message,omitempty"`
	// Tenant is the tenant the report is narrowed to ("" for all).
	Tenant  string        `json:"tenant,omitempty"`
	Started time.Time     `json:"started"`
	Elapsed time.Duration `json:"-"`
	// ElapsedSeconds is Elapsed in seconds.
	ElapsedSeconds  float64     `json:"elapsed_seconds"`
	Retries         int         `json:"retries"`
	BreakerOpenings int         `json:"breaker_openings"`
	Counts          Counts      `json:"counts"`
	TimeToHealthy   Percentiles `json:"time_to_healthy"`
	Tenants         []Tenant    `json:"tenants"`
	ForAPerson      []Group     `json:"for_a_person"`
	// Kept are the original OS disks the repairs replaced and kept, for
	// a roll-back.
	Kept []KeptDisk `json:"original_disks_kept"`
	VMs  []VM       `json:"vms"`
	// End is the offset of the last event from the start (the chart's
	// time axis).
	End    time.Duration   `json:"-"`
	Events []journal.Event `json:"events"`
}

// Tenants lists the tenants of a run's VMs, sorted.
func Tenants(res *apply.Result) []string {
	var out []string
	for _, v := range res.VMs {
		if !slices.Contains(out, v.Tenant) {
			out = append(out, v.Tenant)
		}
	}
	sort.Strings(out)
	return out
}

// Build makes the report of a run from its result, its journaled events
// and the original OS disks it kept (KeptDisks), narrowed to tenant when not "" (an unknown tenant is an error
// listing the run's tenants). Run-wide events (no VM) stay in a narrowed
// report.
func Build(res *apply.Result, events []journal.Event, kept []KeptDisk, tenant string) (*Report, error) {
	if tenant != "" && !slices.Contains(Tenants(res), tenant) {
		return nil, fmt.Errorf("run %s has no tenant %q: its tenants are %s", res.RunID, tenant, quoteList(Tenants(res)))
	}
	r := &Report{RunID: res.RunID, PlanID: res.PlanID, Status: res.Status, Message: res.Message, Tenant: tenant,
		Elapsed: res.Elapsed, ElapsedSeconds: res.Elapsed.Seconds(), Retries: res.Retries, BreakerOpenings: res.BreakerOpenings}
	tenantOf := map[string]string{}
	for _, v := range res.VMs {
		if tenant != "" && v.Tenant != tenant {
			continue
		}
		tenantOf[v.Key] = v.Tenant
		vm := VM{VMResult: v, Outcome: OutcomeOf(v.Status, v.Code)}
		r.VMs = append(r.VMs, vm)
		r.Counts.add(vm.Outcome)
	}
	for _, e := range events {
		if _, ok := tenantOf[e.VMKey]; ok || e.VMKey == "" {
			r.Events = append(r.Events, e)
		}
		if r.Started.IsZero() && (e.Kind == apply.EvRunStarted || e.Kind == apply.EvRunResumed) {
			r.Started = e.At
		}
	}
	if r.Started.IsZero() && len(r.Events) > 0 {
		r.Started = r.Events[0].At
	}
	for _, k := range kept {
		if _, ok := tenantOf[k.VM]; ok {
			r.Kept = append(r.Kept, k)
		}
	}
	r.buildTenants(tenantOf)
	r.ForAPerson = groups(r.VMs)
	return r, nil
}

// buildTenants fills Tenants, TimeToHealthy and End from the VMs and
// events: a VM counts as healthy from the start when it was healthy
// untouched with no event (planned healthy), and from its vm.fixed or
// vm.skipped-healthy event otherwise.
func (r *Report) buildTenants(tenantOf map[string]string) {
	byName := map[string]*Tenant{}
	var names []string
	tenantRec := func(name string) *Tenant {
		t, ok := byName[name]
		if !ok {
			t = &Tenant{Name: name}
			byName[name] = t
			names = append(names, name)
		}
		return t
	}
	healthyEvent := map[string]bool{}
	for _, e := range r.Events {
		if e.Kind == apply.EvVMFixed || e.Kind == apply.EvVMSkippedHealthy {
			healthyEvent[e.VMKey] = true
		}
	}
	base := map[string]int{}
	for _, v := range r.VMs {
		t := tenantRec(v.Tenant)
		t.Counts.add(v.Outcome)
		if v.Status == apply.StatusUntouchedHealthy && !healthyEvent[v.Key] {
			base[v.Tenant]++
		}
	}
	sort.Strings(names)
	for _, n := range names {
		byName[n].HealthyOverTime = []Step{{Count: base[n]}}
	}
	var all []time.Duration
	perTenant := map[string][]time.Duration{}
	seen := map[string]bool{}
	for _, e := range r.Events {
		at := max(0, e.At.Sub(r.Started))
		r.End = max(r.End, at)
		if e.Kind != apply.EvVMFixed && e.Kind != apply.EvVMSkippedHealthy || seen[e.VMKey] {
			continue
		}
		name, ok := tenantOf[e.VMKey]
		if !ok {
			continue
		}
		seen[e.VMKey] = true
		t := byName[name]
		n := t.HealthyOverTime[len(t.HealthyOverTime)-1].Count + 1
		t.HealthyOverTime = append(t.HealthyOverTime, Step{At: at, AtSec: at.Seconds(), Count: n})
		if e.Kind == apply.EvVMFixed {
			all = append(all, at)
			perTenant[name] = append(perTenant[name], at)
		}
	}
	r.TimeToHealthy = percentiles(all)
	for _, n := range names {
		t := byName[n]
		t.TimeToHealthy = percentiles(perTenant[n])
		r.Tenants = append(r.Tenants, *t)
	}
}

// describe says what a reason code means, for the grouped list.
func describe(status journal.VMStatus, code apply.Reason) string {
	switch code {
	case apply.ReasonPlannedManual:
		return "The plan found no safe automatic repair; a person must repair these VMs."
	case apply.ReasonNoPath:
		return "Every planned repair found it cannot repair these VMs and left them safe, as the plan foresaw; a person must repair them."
	case apply.ReasonNeedsPerson:
		return "A repair step stopped and said a person must act."
	case apply.ReasonAbortNeedsPerson:
		return "A repair stopped part-way and could not be undone cleanly; a person must finish or undo it."
	case apply.ReasonNoStrategyLeft:
		return "Every allowed repair was tried and failed."
	case apply.ReasonAccountNotConfigured:
		return "fixfleet has no credentials or provider for the VM's account; configure it and apply again."
	case apply.ReasonAbortFailed:
		return "A repair and its undo both failed: check where the VM's disk is before anything else."
	case "":
		return "No reason code was recorded (a journal from an older fixfleet); see each VM's reason."
	}
	return fmt.Sprintf("%s (%s).", status, code)
}

// groups gathers the VMs for a person by outcome (failed, a person must
// look first, then no path), then status and reason code, largest group
// first within an outcome; within a group, the clauses of the reason text
// ("; "-separated) every VM shares become Common, and the VMs are split
// into Kinds by the rest with numbers masked. VMs are sorted by tenant,
// account, name.
func groups(vms []VM) []Group {
	type key struct {
		o Outcome
		s journal.VMStatus
		c apply.Reason
	}
	by := map[key]*Group{}
	var keys []key
	for _, v := range vms {
		if !v.Outcome.ForAPerson() {
			continue
		}
		k := key{v.Outcome, v.Status, v.Code}
		g, ok := by[k]
		if !ok {
			g = &Group{Outcome: v.Outcome, Status: v.Status, Code: v.Code, Description: describe(v.Status, v.Code)}
			by[k] = g
			keys = append(keys, k)
		}
		g.VMs = append(g.VMs, v)
	}
	out := make([]Group, 0, len(keys))
	for _, k := range keys {
		g := by[k]
		sort.SliceStable(g.VMs, func(i, j int) bool {
			a, b := g.VMs[i], g.VMs[j]
			return a.Tenant+"\x00"+a.Account+"\x00"+a.Name+"\x00"+a.Key < b.Tenant+"\x00"+b.Account+"\x00"+b.Name+"\x00"+b.Key
		})
		g.kinds()
		out = append(out, *g)
	}
	rank := func(o Outcome) int {
		if o == OutcomeFailed {
			return 0
		}
		return 1
	}
	sort.SliceStable(out, func(i, j int) bool {
		if a, b := rank(out[i].Outcome), rank(out[j].Outcome); a != b {
			return a < b
		}
		if len(out[i].VMs) != len(out[j].VMs) {
			return len(out[i].VMs) > len(out[j].VMs)
		}
		return string(out[i].Status)+string(out[i].Code) < string(out[j].Status)+string(out[j].Code)
	})
	return out
}

// clauseSep separates the clauses of a reason text (the planner and the
// executor join reasons with it).
const clauseSep = "; "

// digits are masked when VMs' details are compared.
var digits = regexp.MustCompile(`[0-9]+`)

// kinds fills Common and Kinds from the VMs' reason texts.
func (g *Group) kinds() {
	split := make([][]string, len(g.VMs))
	count := map[string]int{}
	for i, v := range g.VMs {
		split[i] = strings.Split(v.VMResult.Reason, clauseSep)
		seen := map[string]bool{}
		for _, c := range split[i] {
			if !seen[c] {
				seen[c] = true
				count[c]++
			}
		}
	}
	var common []string
	for _, c := range split[0] {
		if count[c] == len(g.VMs) && c != "" && !slices.Contains(common, c) {
			common = append(common, c)
		}
	}
	rest := make([]string, len(g.VMs))
	for i := range g.VMs {
		var r []string
		for _, c := range split[i] {
			if !slices.Contains(common, c) {
				r = append(r, c)
			}
		}
		rest[i] = strings.Join(r, clauseSep)
	}
	// A lead-in every remaining text shares ("left to a person by the
	// plan: …") joins the common part.
	if lead := commonLead(rest); lead != "" {
		common = append([]string{strings.TrimSuffix(lead, ": ")}, common...)
		for i := range rest {
			rest[i] = strings.TrimPrefix(rest[i], lead)
		}
	}
	g.Common = strings.Join(common, clauseSep)
	index := map[string]int{}
	for i, v := range g.VMs {
		m := digits.ReplaceAllString(rest[i], "#")
		j, ok := index[m]
		if !ok {
			j = len(g.Kinds)
			index[m] = j
			g.Kinds = append(g.Kinds, Kind{Detail: rest[i]})
		}
		k := &g.Kinds[j]
		k.Varies = k.Varies || rest[i] != k.Detail
		k.VMs = append(k.VMs, v)
	}
	sort.SliceStable(g.Kinds, func(i, j int) bool { return len(g.Kinds[i].VMs) > len(g.Kinds[j].VMs) })
}

// commonLead is the longest prefix of every text that ends with ": ", ""
// when there is none (or one text only).
func commonLead(texts []string) string {
	if len(texts) < 2 {
		return ""
	}
	p := texts[0]
	for _, t := range texts[1:] {
		n := 0
		for n < len(p) && n < len(t) && p[n] == t[n] {
			n++
		}
		p = p[:n]
	}
	i := strings.LastIndex(p, ": ")
	if i < 0 {
		return ""
	}
	return p[:i+2]
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return strings.Join(q, ", ")
}
