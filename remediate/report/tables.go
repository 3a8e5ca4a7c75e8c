package report

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/render"
)

// The report's tables, by the name `fixfleet report --table` takes. Their
// CSV columns are stable (docs/reports.md); new columns are only ever
// added at the end.
const (
	TableSummary    = "summary"
	TableTenants    = "tenants"
	TableForAPerson = "for-a-person"
	TableKept       = "original-disks-kept"
	TableVMs        = "vms"
	TableEvents     = "events"
)

// TableNames lists the tables in the order reports show them.
func TableNames() []string {
	return []string{TableSummary, TableTenants, TableForAPerson, TableKept, TableVMs, TableEvents}
}

// Columns of each table's CSV form.
var columns = map[string][]string{
	TableSummary:    {"measure", "value"},
	TableTenants:    {"tenant", "vms", "fixed", "healthy_untouched", "no_path", "failed", "not_finished", "healthy_p50_seconds", "healthy_p90_seconds"},
	TableForAPerson: {"tenant", "account", "vm", "name", "outcome", "status", "reason_code", "reason"},
	TableKept:       {"tenant", "account", "vm", "name", "strategy", "original_disk_id"},
	TableVMs:        {"tenant", "account", "vm", "name", "wave", "strategy", "status", "reason_code", "reason"},
	TableEvents:     {"at", "kind", "tenant", "vm", "strategy", "message"},
}

// Columns returns a table's CSV columns, or an error naming the tables.
func Columns(name string) ([]string, error) {
	c, ok := columns[name]
	if !ok {
		return nil, fmt.Errorf("no table %q: the report's tables are %s", name, strings.Join(TableNames(), ", "))
	}
	return c, nil
}

// Table returns one table for people (titled, with readable headers), or
// an error naming the tables.
func (r *Report) Table(name string) (render.Table, error) {
	if _, err := Columns(name); err != nil {
		return render.Table{}, err
	}
	switch name {
	case TableSummary:
		return r.summaryTable(), nil
	case TableTenants:
		t := r.CSV(name)
		t.Title, t.Headers = "Outcomes per tenant", []string{"Tenant", "VMs", "Fixed", "Healthy untouched", "No path", "Failed (surprises)", "Not finished", "Time to healthy p50", "p90"}
		for i, tn := range r.Tenants {
			t.Rows[i][7], t.Rows[i][8] = duration(tn.TimeToHealthy.N, tn.TimeToHealthy.P50), duration(tn.TimeToHealthy.N, tn.TimeToHealthy.P90)
		}
		return t, nil
	case TableForAPerson:
		return r.groupTable(), nil
	case TableKept:
		t := r.CSV(name)
		t.Name, t.Title, t.Headers = name, "Original OS disks kept (to roll back, put the disk back)", []string{"Tenant", "Account", "VM", "Name", "Strategy", "Original OS disk"}
		return t, nil
	case TableVMs:
		t := r.CSV(name)
		t.Title, t.Headers = "VMs", []string{"Tenant", "Account", "VM", "Name", "Wave", "Strategy", "Status", "Code", "Reason"}
		return t, nil
	}
	t := r.CSV(name)
	t.Title, t.Headers = "Events", []string{"At (UTC)", "Kind", "Tenant", "VM", "Strategy", "Message"}
	return t, nil
}

// Tables returns every table for people, in TableNames order.
func (r *Report) Tables() []render.Table {
	out := make([]render.Table, 0, len(columns))
	for _, n := range TableNames() {
		t, _ := r.Table(n) // every name is known
		out = append(out, t)
	}
	return out
}

// Brief is the summary, the grouped list of VMs for a person and, when
// there are any, the original OS disks kept: what apply and status print.
func (r *Report) Brief() []render.Table {
	out := []render.Table{r.summaryTable(), r.groupTable()}
	if len(r.Kept) > 0 {
		t, _ := r.Table(TableKept)
		out = append(out, t)
	}
	return out
}

// CSV returns one table with its stable columns as headers and plain
// values (seconds as numbers, times in RFC 3339 UTC), untitled. name must
// be one of TableNames (see Columns).
func (r *Report) CSV(name string) render.Table {
	t := render.Table{Headers: columns[name]}
	add := func(cells ...string) { t.Rows = append(t.Rows, cells) }
	switch name {
	case TableSummary:
		c := r.Counts
		add("run_id", r.RunID)
		add("plan_id", r.PlanID)
		add("status", string(r.Status))
		add("message", r.Message)
		add("tenant", r.Tenant)
		add("vms", strconv.Itoa(c.VMs))
		add("fixed", strconv.Itoa(c.Fixed))
		add("healthy_untouched", strconv.Itoa(c.Healthy))
		add("no_path", strconv.Itoa(c.NoPath))
		add("failed", strconv.Itoa(c.Failed))
		add("not_finished", strconv.Itoa(c.NotFinished))
		add("healthy_p50_seconds", seconds(r.TimeToHealthy.N, r.TimeToHealthy.P50))
		add("healthy_p90_seconds", seconds(r.TimeToHealthy.N, r.TimeToHealthy.P90))
		add("elapsed_seconds", seconds(1, r.Elapsed))
		add("retries", strconv.Itoa(r.Retries))
		add("breaker_openings", strconv.Itoa(r.BreakerOpenings))
	case TableTenants:
		for _, tn := range r.Tenants {
			c := tn.Counts
			add(tn.Name, strconv.Itoa(c.VMs), strconv.Itoa(c.Fixed), strconv.Itoa(c.Healthy), strconv.Itoa(c.NoPath),
				strconv.Itoa(c.Failed), strconv.Itoa(c.NotFinished),
				seconds(tn.TimeToHealthy.N, tn.TimeToHealthy.P50), seconds(tn.TimeToHealthy.N, tn.TimeToHealthy.P90))
		}
	case TableForAPerson:
		for _, v := range r.VMs {
			if v.Outcome.ForAPerson() {
				add(v.Tenant, v.Account, v.Key, v.Name, string(v.Outcome), string(v.Status), string(v.Code), v.VMResult.Reason)
			}
		}
	case TableKept:
		for _, k := range r.Kept {
			add(k.Tenant, k.Account, k.VM, k.Name, string(k.Strategy), k.Disk)
		}
	case TableVMs:
		for _, v := range r.VMs {
			add(v.Tenant, v.Account, v.Key, v.Name, strconv.Itoa(v.Wave), string(v.Strategy), string(v.Status), string(v.Code), v.VMResult.Reason)
		}
	case TableEvents:
		tenantOf := map[string]string{}
		for _, v := range r.VMs {
			tenantOf[v.Key] = v.Tenant
		}
		for _, e := range r.Events {
			add(e.At.UTC().Format(time.RFC3339), e.Kind, tenantOf[e.VMKey], e.VMKey, e.Strategy, e.Message)
		}
	}
	return t
}

// summaryRows are the summary's lines for people: label and value.
func (r *Report) summaryRows() [][2]string {
	c := r.Counts
	rows := [][2]string{
		{"VMs", strconv.Itoa(c.VMs)},
		{"fixed", strconv.Itoa(c.Fixed)},
	}
	by := map[string]int{}
	var strategies []string
	for _, v := range r.VMs {
		if v.Outcome == OutcomeFixed {
			if by[string(v.Strategy)] == 0 {
				strategies = append(strategies, string(v.Strategy))
			}
			by[string(v.Strategy)]++
		}
	}
	sort.Strings(strategies)
	for _, s := range strategies {
		rows = append(rows, [2]string{"  fixed by " + s, strconv.Itoa(by[s])})
	}
	rows = append(rows, [][2]string{
		{"healthy, untouched", strconv.Itoa(c.Healthy)},
		{"no path: a person must act", strconv.Itoa(c.NoPath)},
		{"failed (surprises): a person must look first", strconv.Itoa(c.Failed)},
		{"not finished", strconv.Itoa(c.NotFinished)},
		{"elapsed", r.Elapsed.Round(time.Second).String()},
	}...)
	if r.TimeToHealthy.N > 0 {
		rows = append(rows, [2]string{"time to healthy p50 / p90", duration(r.TimeToHealthy.N, r.TimeToHealthy.P50) + " / " + duration(r.TimeToHealthy.N, r.TimeToHealthy.P90)})
	}
	if r.Retries > 0 || r.BreakerOpenings > 0 {
		rows = append(rows, [2]string{"retries / breaker openings", fmt.Sprintf("%d / %d", r.Retries, r.BreakerOpenings)})
	}
	if r.Message != "" {
		rows = append(rows, [2]string{"why it stopped", r.Message})
	}
	return rows
}

// Title names the run (and the tenant of a narrowed report).
func (r *Report) Title() string {
	t := "Run " + r.RunID + ": " + string(r.Status)
	if r.Tenant != "" {
		t += " — tenant " + r.Tenant
	}
	return t
}

func (r *Report) summaryTable() render.Table {
	t := render.Table{Name: TableSummary, Title: r.Title(), Headers: []string{"", "VMs"}}
	for _, row := range r.summaryRows() {
		t.Rows = append(t.Rows, []string{row[0], row[1]})
	}
	return t
}

// groupTable is one row per group of VMs for a person.
func (r *Report) groupTable() render.Table {
	t := render.Table{Name: TableForAPerson, Title: r.ForAPersonTitle(),
		Headers: []string{"Reason", "VMs", "What it means", "Which"}}
	for _, g := range r.ForAPerson {
		what := g.Description
		if g.Common != "" {
			what += "\nAll say: " + g.Common
		}
		var which []string
		for i, k := range g.Kinds {
			if i == maxKinds {
				which = append(which, fmt.Sprintf("… and %d other kinds (see the vms table)", len(g.Kinds)-i))
				break
			}
			line := fmt.Sprintf("%d: %s", len(k.VMs), vmList(k.VMs, 8))
			if k.Detail != "" {
				line = kindDetail(k) + " — " + line
			}
			which = append(which, line)
		}
		t.Rows = append(t.Rows, []string{g.label(), strconv.Itoa(len(g.VMs)), what, strings.Join(which, "\n")})
	}
	return t
}

// ForAPersonTitle heads the section of VMs for a person, with its counts.
func (r *Report) ForAPersonTitle() string {
	return fmt.Sprintf("For a person: %d VMs (%d failed by surprise, look first; %d with no path, a person must act), by outcome and reason",
		r.Counts.ForAPerson(), r.Counts.Failed, r.Counts.NoPath)
}

// label names a group: its outcome, then its status and reason code.
func (g Group) label() string {
	code := string(g.Code)
	if code == "" {
		code = "no reason code"
	}
	return string(g.Outcome) + " — " + string(g.Status) + ": " + code
}

// maxKinds is how many kinds of a group the terminal table shows.
const maxKinds = 6

// kindDetail is a kind's detail, marked as an example when its VMs'
// texts differ in numbers.
func kindDetail(k Kind) string {
	if k.Varies {
		return k.Detail + " (e.g.)"
	}
	return k.Detail
}

// vmList names up to n VMs ("tenant/name"), then how many more.
func vmList(vms []VM, n int) string {
	var names []string
	for i, v := range vms {
		if i == n {
			names = append(names, fmt.Sprintf("… and %d more", len(vms)-n))
			break
		}
		names = append(names, v.Tenant+"/"+displayName(v))
	}
	return strings.Join(names, ", ")
}

// duration writes a percentile for people ("—" when there were none).
func duration(n int, d time.Duration) string {
	if n == 0 {
		return "—"
	}
	return d.Round(time.Second).String()
}

// seconds writes a percentile for CSV ("" when there were none).
func seconds(n int, d time.Duration) string {
	if n == 0 {
		return ""
	}
	return strconv.FormatFloat(d.Seconds(), 'f', 3, 64)
}

// displayName is a VM's name, or its key when it has none.
func displayName(v VM) string {
	if v.Name != "" {
		return v.Name
	}
	return v.Key
}
