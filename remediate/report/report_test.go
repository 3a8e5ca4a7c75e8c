package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/apply"
)

func build(t *testing.T, tenant string) *Report {
	t.Helper()
	res, evs := fixture()
	r, err := Build(res, evs, fixtureKept(res), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestCountsMatchRows: every count the summary shows equals the rows it
// stands for, for the whole run and for each tenant.
func TestCountsMatchRows(t *testing.T) {
	res, _ := fixture()
	for _, tenant := range append([]string{""}, Tenants(res)...) {
		r := build(t, tenant)
		person := r.CSV(TableForAPerson).Rows
		inGroups := 0
		for _, g := range r.ForAPerson {
			inGroups += len(g.VMs)
		}
		if r.Counts.ForAPerson() != len(person) || inGroups != len(person) {
			t.Errorf("tenant %q: summary says %d for a person, the table has %d rows, the groups %d VMs", tenant, r.Counts.ForAPerson(), len(person), inGroups)
		}
		rows := map[string]int{}
		for _, row := range person {
			rows[row[4]]++
		}
		if rows[string(OutcomeNoPath)] != r.Counts.NoPath || rows[string(OutcomeFailed)] != r.Counts.Failed {
			t.Errorf("tenant %q: counts no path %d failed %d, rows %v", tenant, r.Counts.NoPath, r.Counts.Failed, rows)
		}
		grouped := map[Outcome]int{}
		for _, g := range r.ForAPerson {
			for _, v := range g.VMs {
				if v.Outcome != g.Outcome {
					t.Errorf("tenant %q: %s (%s) in a %s group", tenant, v.Key, v.Outcome, g.Outcome)
				}
			}
			grouped[g.Outcome] += len(g.VMs)
		}
		if grouped[OutcomeNoPath] != r.Counts.NoPath || grouped[OutcomeFailed] != r.Counts.Failed {
			t.Errorf("tenant %q: groups hold %v, counts %+v", tenant, grouped, r.Counts)
		}
		sum := 0
		for _, tn := range r.Tenants {
			sum += tn.VMs
			if tn.Fixed+tn.Healthy+tn.NoPath+tn.Failed+tn.NotFinished != tn.VMs {
				t.Errorf("tenant %q: outcomes do not add up: %+v", tn.Name, tn.Counts)
			}
		}
		if sum != len(r.VMs) || r.Counts.VMs != len(r.VMs) {
			t.Errorf("tenant %q: %d VMs in tenants, %d counted, %d rows", tenant, sum, r.Counts.VMs, len(r.VMs))
		}
	}
	// acme's 2 needs-person VMs and globex's abort-failed one are
	// surprises; globex's 49 planned-manual ones have no path.
	if r := build(t, ""); r.Counts.NoPath != 49 || r.Counts.Failed != 3 || r.Counts.Fixed != 16 {
		t.Errorf("counts %+v, want 49 no path, 3 failed, 16 fixed", r.Counts)
	}
}

func TestGroupsByReason(t *testing.T) {
	r := build(t, "")
	if len(r.ForAPerson) != 3 {
		t.Fatalf("%d groups, want 3: %+v", len(r.ForAPerson), r.ForAPerson)
	}
	// Failed (surprises) first, then no path; largest first within.
	var order []string
	for _, g := range r.ForAPerson {
		order = append(order, string(g.Outcome)+"/"+string(g.Code))
	}
	if want := "failed/needs-person failed/abort-failed no-path/planned-manual"; strings.Join(order, " ") != want {
		t.Errorf("groups %v, want %s", order, want)
	}
	g := r.ForAPerson[2]
	if g.Code != apply.ReasonPlannedManual || len(g.VMs) != 49 || g.Common != "no strategy is allowed: encrypted disk without a recovery key" ||
		len(g.Kinds) != 1 || g.Kinds[0].Detail != "" || len(g.Kinds[0].VMs) != 49 {
		t.Errorf("largest group: %s with %d VMs, common %q, kinds %d", g.Code, len(g.VMs), g.Common, len(g.Kinds))
	}
	// acme's two needs-person VMs differ only in a number: one kind,
	// shown as an example.
	np := r.ForAPerson[0]
	if np.Code != apply.ReasonNeedsPerson || len(np.VMs) != 2 || len(np.Kinds) != 1 || !np.Kinds[0].Varies ||
		np.Kinds[0].Detail != "console shows BitLocker recovery (8)" {
		t.Fatalf("second group: %+v", np)
	}
	// The 49 manual VMs are named once each in the markdown, and the
	// common text once.
	var md bytes.Buffer
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(md.String(), "encrypted disk without a recovery key"); n != 1 {
		t.Errorf("markdown repeats the common text %d times", n)
	}
	for _, v := range r.VMs {
		want := 0
		if v.Outcome.ForAPerson() {
			want = 1
		}
		if n := strings.Count(md.String(), render.MarkdownText(v.Name)+","); n+strings.Count(md.String(), render.MarkdownText(v.Name)+"\n") != want {
			t.Errorf("markdown names %s %d times, want %d", v.Name, n, want)
		}
	}
}

// TestKinds: the clauses every VM's text shares, and a shared lead-in,
// become the group's common text; the rest splits the VMs into kinds,
// numbers aside.
func TestKinds(t *testing.T) {
	const tail = "state unknown: fixfleet will not act on it; resolve the doubt above, then assess and plan again"
	vm := func(name, reason string) VM {
		return VM{VMResult: apply.VMResult{Key: "t/a/" + name, Tenant: "t", Account: "a", Name: name, Status: apply.StatusFlagged, Code: apply.ReasonPlannedManual, Reason: reason}, Outcome: OutcomeNoPath}
	}
	vms := []VM{
		vm("a", "left to a person by the plan: WinRM does not answer (nothing answers at 10.0.0.43:5985); "+tail),
		vm("b", "left to a person by the plan: WinRM does not answer (nothing answers at 10.0.0.7:5985); "+tail),
		vm("c", "left to a person by the plan: powered off: starting it would show whether it loops; "+tail),
		vm("d", "left to a person by the plan: WinRM does not answer (nothing answers at 10.0.0.9:5985); "+tail),
	}
	gs := groups(vms)
	if len(gs) != 1 {
		t.Fatalf("%d groups", len(gs))
	}
	g := gs[0]
	if g.Common != "left to a person by the plan; "+tail {
		t.Errorf("common %q", g.Common)
	}
	if len(g.Kinds) != 2 || len(g.Kinds[0].VMs) != 3 || !g.Kinds[0].Varies || g.Kinds[0].Detail != "WinRM does not answer (nothing answers at 10.0.0.43:5985)" ||
		len(g.Kinds[1].VMs) != 1 || g.Kinds[1].Varies || g.Kinds[1].Detail != "powered off: starting it would show whether it loops" {
		t.Errorf("kinds %+v", g.Kinds)
	}
	// One VM alone: its whole text is common, nothing repeated.
	one := groups(vms[2:3])[0]
	if one.Common != vms[2].VMResult.Reason || len(one.Kinds) != 1 || one.Kinds[0].Detail != "" {
		t.Errorf("one VM: common %q kinds %+v", one.Common, one.Kinds)
	}
}

func TestHealthyOverTime(t *testing.T) {
	r := build(t, "")
	want := map[string][]int{
		"acme":   {2, 3, 4, 5, 6, 7, 8},
		"globex": {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10},
	}
	for _, tn := range r.Tenants {
		w, ok := want[tn.Name]
		if !ok {
			continue
		}
		var got []int
		var last time.Duration
		for _, s := range tn.HealthyOverTime {
			got = append(got, s.Count)
			if s.At < last {
				t.Errorf("%s: time goes back at %v", tn.Name, s.At)
			}
			last = s.At
		}
		if !equalInts(got, w) {
			t.Errorf("%s healthy over time %v, want %v", tn.Name, got, w)
		}
	}
	if r.End != 22*time.Minute {
		t.Errorf("end %v, want 22m (the run.done event)", r.End)
	}
}

func TestPercentiles(t *testing.T) {
	m := time.Minute
	tests := []struct {
		in       []time.Duration
		p50, p90 time.Duration
	}{
		{nil, 0, 0},
		{[]time.Duration{5 * m}, 5 * m, 5 * m},
		{[]time.Duration{4 * m, 1 * m, 3 * m, 2 * m}, 2 * m, 4 * m},
		{[]time.Duration{1 * m, 2 * m, 3 * m, 4 * m, 5 * m, 6 * m, 7 * m, 8 * m, 9 * m, 10 * m}, 5 * m, 9 * m},
	}
	for _, tt := range tests {
		p := percentiles(tt.in)
		if p.N != len(tt.in) || p.P50 != tt.p50 || p.P90 != tt.p90 {
			t.Errorf("percentiles(%v) = %+v, want p50 %v p90 %v", tt.in, p, tt.p50, tt.p90)
		}
	}
	// acme's fixed VMs became healthy at minutes 1..6.
	r := build(t, "acme")
	if r.TimeToHealthy.N != 6 || r.TimeToHealthy.P50 != 3*m || r.TimeToHealthy.P90 != 6*m {
		t.Errorf("acme time to healthy %+v", r.TimeToHealthy)
	}
}

func TestNarrowToTenant(t *testing.T) {
	r := build(t, "acme")
	if len(r.VMs) != 10 || len(r.Tenants) != 1 || r.Counts.Fixed != 6 {
		t.Errorf("acme report: %d VMs, %d tenants, counts %+v", len(r.VMs), len(r.Tenants), r.Counts)
	}
	for _, e := range r.Events {
		if e.VMKey != "" && !strings.HasPrefix(e.VMKey, "acme/") {
			t.Errorf("acme report holds %s's event", e.VMKey)
		}
	}
	res, evs := fixture()
	if _, err := Build(res, evs, nil, "initech"); err == nil || !strings.Contains(err.Error(), `"acme", "globex"`) {
		t.Errorf("unknown tenant: %v", err)
	}
}

// TestCSVTables: every table parses as CSV with its documented columns
// and rows of the same width.
func TestCSVTables(t *testing.T) {
	r := build(t, "")
	for _, name := range TableNames() {
		var buf bytes.Buffer
		if err := render.Render(&buf, render.FormatCSV, nil, r.CSV(name)); err != nil {
			t.Fatal(err)
		}
		recs, err := csv.NewReader(&buf).ReadAll() // fails on rows of another width
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		cols, _ := Columns(name)
		if strings.Join(recs[0], ",") != strings.Join(cols, ",") {
			t.Errorf("%s columns %v, want %v", name, recs[0], cols)
		}
		if len(recs) < 2 {
			t.Errorf("%s: no rows", name)
		}
	}
	vms := r.CSV(TableVMs)
	if vms.Rows[0][0] != "acme" || vms.Rows[0][1] != "acct-a" {
		t.Errorf("vms row lacks tenant and account: %v", vms.Rows[0])
	}
	if _, err := Columns("nope"); err == nil || !strings.Contains(err.Error(), "summary, tenants") {
		t.Errorf("unknown table: %v", err)
	}
}

// TestHTMLSelfContained: the page loads nothing, runs nothing, and shows
// hostile names as text.
func TestHTMLSelfContained(t *testing.T) {
	var buf bytes.Buffer
	if err := build(t, "").HTML(&buf); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, bad := range []string{"<script", "src=", "@import", "url(", "<link", `<script>alert`} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
	refs := regexp.MustCompile(`https?://[^"' ]*`).FindAllString(page, -1)
	for _, u := range refs {
		if u != "http://www.w3.org/2000/svg" {
			t.Errorf("page references %s", u)
		}
	}
	for _, want := range []string{`<svg id="` + ChartID + `"`, `<section id="` + SummaryID + `">`, "&lt;script&gt;", "no path: a person must act",
		"<path d=", "Outcomes per tenant", `class="num failed">2<`, `class="num no-path">49<`, "Original OS disks kept", "disk-globex-50-orig"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// The summary comes before the VM rows.
	if strings.Index(page, "Outcomes per tenant") > strings.Index(page, `<section id="vms">`) {
		t.Error("summary after the VM rows")
	}
	// One path per tenant with VMs in the chart.
	if n := strings.Count(page, "<path d="); n != 3 {
		t.Errorf("%d chart lines, want 3", n)
	}
	if !strings.Contains(page, " "+strconv.Itoa(49)+" VMs</h3>") {
		t.Error("the 49 manual VMs are not one group")
	}
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestOutcomeOf(t *testing.T) {
	tests := []struct {
		status journal.VMStatus
		code   apply.Reason
		want   Outcome
	}{
		{apply.StatusFixed, apply.ReasonFixed, OutcomeFixed},
		{apply.StatusFixed, apply.ReasonHealthyAfter, OutcomeFixed},
		{apply.StatusUntouchedHealthy, apply.ReasonPlannedHealthy, OutcomeHealthy},
		{apply.StatusSkippedHealthy, apply.ReasonFoundHealthy, OutcomeHealthy},
		{apply.StatusFlagged, apply.ReasonPlannedManual, OutcomeNoPath},
		{apply.StatusFlagged, apply.ReasonNoPath, OutcomeNoPath},
		{apply.StatusFlagged, apply.ReasonAccountNotConfigured, OutcomeNoPath},
		{apply.StatusFlagged, apply.ReasonNeedsPerson, OutcomeFailed},
		{apply.StatusFlagged, apply.ReasonNoStrategyLeft, OutcomeFailed},
		{apply.StatusFlagged, apply.ReasonAbortNeedsPerson, OutcomeFailed},
		{apply.StatusFlagged, "", OutcomeFailed}, // an older journal: look first
		{apply.StatusFailed, apply.ReasonAbortFailed, OutcomeFailed},
		{apply.StatusPending, apply.ReasonWaiting, OutcomeNotFinished},
		{apply.StatusRunning, apply.ReasonRunning, OutcomeNotFinished},
	}
	for _, tt := range tests {
		if got := OutcomeOf(tt.status, tt.code); got != tt.want {
			t.Errorf("OutcomeOf(%s, %s) = %s, want %s", tt.status, tt.code, got, tt.want)
		}
	}
}

// facts is a FactReader over a map of VM key to facts.
type facts map[string]map[string]string

func (f facts) Facts(_ context.Context, _, vmKey string) (map[string]string, error) {
	return f[vmKey], nil
}

// TestKeptDisks: every VM with an original_disk_id fact is listed, in run
// order, in the table, the Markdown and a narrowed report of its tenant
// only.
func TestKeptDisks(t *testing.T) {
	res, evs := fixture()
	kept, err := KeptDisks(context.Background(), facts{
		res.VMs[3].Key:  {"original_disk_id": "disk-a", "swapped": "true"},
		res.VMs[60].Key: {"original_disk_id": "disk-b"},
		res.VMs[4].Key:  {"snapshot_id": "snap-1"},
	}, res)
	if err != nil {
		t.Fatal(err)
	}
	if len(kept) != 2 || kept[0].VM != res.VMs[3].Key || kept[0].Disk != "disk-a" || kept[1].Tenant != "globex" || kept[1].Disk != "disk-b" {
		t.Fatalf("kept %+v", kept)
	}
	r, err := Build(res, evs, kept, "acme")
	if err != nil {
		t.Fatal(err)
	}
	rows := r.CSV(TableKept).Rows
	if len(rows) != 1 || rows[0][2] != res.VMs[3].Key || rows[0][5] != "disk-a" {
		t.Errorf("acme's kept disks %v", rows)
	}
	var md bytes.Buffer
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(md.String(), "Original OS disks kept") || !strings.Contains(md.String(), "disk-a") || strings.Contains(md.String(), "disk-b") {
		t.Errorf("markdown kept disks:\n%s", md.String())
	}
	if b := r.Brief(); len(b) != 3 || !strings.HasPrefix(b[2].Title, "Original OS disks kept") {
		t.Errorf("brief lacks the kept disks: %d tables", len(b))
	}
}
