package report

import (
	"bytes"
	"encoding/csv"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/remediate/apply"
)

func build(t *testing.T, tenant string) *Report {
	t.Helper()
	res, evs := fixture()
	r, err := Build(res, evs, tenant)
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
		flagged := 0
		for _, row := range person {
			if row[4] == "flagged" {
				flagged++
			}
		}
		if flagged != r.Counts.Flagged {
			t.Errorf("tenant %q: flagged for a person %d, flagged rows %d", tenant, r.Counts.Flagged, flagged)
		}
		sum := 0
		for _, tn := range r.Tenants {
			sum += tn.VMs
			if tn.Fixed+tn.Healthy+tn.Flagged+tn.Failed+tn.NotFinished != tn.VMs {
				t.Errorf("tenant %q: outcomes do not add up: %+v", tn.Name, tn.Counts)
			}
		}
		if sum != len(r.VMs) || r.Counts.VMs != len(r.VMs) {
			t.Errorf("tenant %q: %d VMs in tenants, %d counted, %d rows", tenant, sum, r.Counts.VMs, len(r.VMs))
		}
	}
	if r := build(t, ""); r.Counts.Flagged != 51 || r.Counts.Failed != 1 || r.Counts.Fixed != 16 {
		t.Errorf("counts %+v, want 51 flagged, 1 failed, 16 fixed", r.Counts)
	}
}

func TestGroupsByReason(t *testing.T) {
	r := build(t, "")
	if len(r.ForAPerson) != 3 {
		t.Fatalf("%d groups, want 3: %+v", len(r.ForAPerson), r.ForAPerson)
	}
	g := r.ForAPerson[0]
	if g.Code != apply.ReasonPlannedManual || len(g.VMs) != 49 || g.Message != "no strategy is allowed: encrypted disk without a recovery key" {
		t.Errorf("largest group: %s with %d VMs, message %q", g.Code, len(g.VMs), g.Message)
	}
	for _, v := range g.VMs {
		if v.Reason != "" {
			t.Errorf("%s repeats the group's text: %q", v.Key, v.Reason)
		}
	}
	// acme's two needs-person VMs have different texts: each keeps its own.
	np := r.ForAPerson[1]
	if np.Code != apply.ReasonNeedsPerson || len(np.VMs) != 2 {
		t.Fatalf("second group: %+v", np)
	}
	kept := 0
	for _, v := range np.VMs {
		if v.Reason != "" {
			kept++
		}
	}
	if kept != 1 {
		t.Errorf("needs-person: %d VMs keep a text differing from %q, want 1", kept, np.Message)
	}
	// The 49 manual VMs appear once each in the markdown, and the common
	// text once.
	var md bytes.Buffer
	if err := r.Markdown(&md); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(md.String(), "encrypted disk without a recovery key"); n != 1 {
		t.Errorf("markdown repeats the common text %d times", n)
	}
	if n := strings.Count(md.String(), "\n- globex"); n != 50 {
		t.Errorf("markdown lists %d globex VMs, want 50 (49 manual + 1 failed)", n)
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
	if _, err := Build(res, evs, "initech"); err == nil || !strings.Contains(err.Error(), `"acme", "globex"`) {
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
	for _, want := range []string{`<svg id="` + ChartID + `"`, `<section id="` + SummaryID + `">`, "&lt;script&gt;", "flagged for a person",
		"<path d=", "Outcomes per tenant", `class="num flagged">2<`} {
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
