package report

import (
	"html/template"
	"io"
	"time"

	"github.com/fixfleet/fixfleet/internal/render"
)

// ChartID is the id of the HTML report's chart of healthy VMs over time.
const ChartID = "healthy-chart"

// SummaryID is the id of the HTML report's summary section.
const SummaryID = "summary"

// page is the HTML report: one file, inline CSS and SVG, no script, no
// external reference (the Content-Security-Policy forbids loading any).
// html/template escapes every text for its context.
var page = template.Must(template.New("report").Funcs(template.FuncMap{
	"clean":  render.Text,
	"name":   displayName,
	"detail": kindDetail,
	"dur":    func(n int, d time.Duration) string { return duration(n, d) },
	"utc":    func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>fixfleet — {{clean .R.Title}}</title>
<style>
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5em 2em; color: #1d1d1d; max-width: 1200px; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; padding-bottom: 0.2em; }
.sub { color: #555; margin-top: 0; }
.cards { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 1em 0; }
.card { border-radius: 6px; padding: 0.6em 1em; min-width: 9em; border: 1px solid #ccc; background: #fafafa; }
.card .n { font-size: 1.8em; font-weight: 600; display: block; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f0f0f0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.fixed { background: #dff3e0; border-color: #7cc47f; }
.healthy { background: #e3f0fb; border-color: #86b6e0; }
.no-path { background: #fff1d6; border-color: #e0b04a; }
.failed { background: #fbdcdc; border-color: #d66; }
.not-finished { background: #ececec; border-color: #aaa; }
.badge { display: inline-block; border-radius: 4px; padding: 0 0.4em; border: 1px solid; font-size: 0.9em; }
.group { border-left: 6px solid #e0b04a; padding: 0.2em 0 0.2em 0.8em; margin: 1em 0; }
.group.failed { border-left-color: #d66; background: none; }
.group.no-path { background: none; }
.group h3 { margin: 0.2em 0; font-size: 1.05em; }
.group ul { columns: 3 18em; margin: 0.3em 0; }
.why { color: #444; }
.kind { margin: 0.5em 0 0; }
tr.fixed td, tr.healthy td, tr.no-path td, tr.failed td, tr.not-finished td { border-color: #ccc; }
</style>
</head>
<body>
<section id="` + SummaryID + `">
<h1>{{clean .R.Title}}</h1>
<p class="sub">plan {{clean .R.PlanID}}{{if not .R.Started.IsZero}} · started {{utc .R.Started}} UTC{{end}} · elapsed {{.Elapsed}}{{if .R.Message}} · why it stopped: {{clean .R.Message}}{{end}}</p>
<div class="cards">
<div class="card"><span class="n">{{.R.Counts.VMs}}</span>VMs</div>
<div class="card fixed"><span class="n">{{.R.Counts.Fixed}}</span>fixed</div>
<div class="card healthy"><span class="n">{{.R.Counts.Healthy}}</span>healthy, untouched</div>
<div class="card no-path"><span class="n">{{.R.Counts.NoPath}}</span>no path: a person must act</div>
<div class="card failed"><span class="n">{{.R.Counts.Failed}}</span>failed (surprises): look first</div>
<div class="card not-finished"><span class="n">{{.R.Counts.NotFinished}}</span>not finished</div>
<div class="card"><span class="n">{{dur .R.TimeToHealthy.N .R.TimeToHealthy.P50}}</span>time to healthy, p50 (p90 {{dur .R.TimeToHealthy.N .R.TimeToHealthy.P90}})</div>
</div>
<h2>Outcomes per tenant</h2>
<table>
<thead><tr><th>Tenant</th><th>VMs</th><th>Fixed</th><th>Healthy untouched</th><th>No path</th><th>Failed (surprises)</th><th>Not finished</th><th>Time to healthy p50</th><th>p90</th></tr></thead>
<tbody>
{{- range .R.Tenants}}
<tr><td>{{clean .Name}}</td><td class="num">{{.VMs}}</td><td class="num{{if .Fixed}} fixed{{end}}">{{.Fixed}}</td><td class="num{{if .Healthy}} healthy{{end}}">{{.Healthy}}</td><td class="num{{if .NoPath}} no-path{{end}}">{{.NoPath}}</td><td class="num{{if .Failed}} failed{{end}}">{{.Failed}}</td><td class="num{{if .NotFinished}} not-finished{{end}}">{{.NotFinished}}</td><td class="num">{{dur .TimeToHealthy.N .TimeToHealthy.P50}}</td><td class="num">{{dur .TimeToHealthy.N .TimeToHealthy.P90}}</td></tr>
{{- end}}
</tbody>
</table>
<h2>Healthy VMs over time, per tenant</h2>
{{.Chart}}
</section>
<section id="for-a-person">
<h2>{{.R.ForAPersonTitle}}</h2>
{{- if not .R.ForAPerson}}
<p>None.</p>
{{- end}}
{{- range .R.ForAPerson}}
<div class="group {{print .Outcome}}">
<h3><span class="badge {{print .Outcome}}">{{clean (print .Outcome)}}</span> {{clean (print .Status)}}: {{if .Code}}{{clean (print .Code)}}{{else}}no reason code{{end}} — {{len .VMs}} VMs</h3>
<p class="why">{{.Description}}{{if .Common}}<br>All say: {{clean .Common}}{{end}}</p>
{{- range .Kinds}}
<p class="kind">{{if .Detail}}{{clean (detail .)}} — {{end}}{{len .VMs}} VMs:</p>
<ul>
{{- range .VMs}}
<li>{{clean .Tenant}} / {{clean .Account}} / {{clean (name .)}}</li>
{{- end}}
</ul>
{{- end}}
</div>
{{- end}}
</section>
{{- if .R.Kept}}
<section id="original-disks-kept">
<h2>Original OS disks kept</h2>
<p class="sub">To roll a VM back, put its original disk back.</p>
<table>
<thead><tr><th>Tenant</th><th>Account</th><th>VM</th><th>Strategy</th><th>Original OS disk</th></tr></thead>
<tbody>
{{- range .R.Kept}}
<tr><td>{{clean .Tenant}}</td><td>{{clean .Account}}</td><td title="{{clean .VM}}">{{if .Name}}{{clean .Name}}{{else}}{{clean .VM}}{{end}}</td><td>{{clean (print .Strategy)}}</td><td>{{clean .Disk}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
{{- end}}
<section id="vms">
<h2>VMs</h2>
<table>
<thead><tr><th>Tenant</th><th>Account</th><th>Name</th><th>Wave</th><th>Strategy</th><th>Status</th><th>Code</th><th>Reason</th></tr></thead>
<tbody>
{{- range .R.VMs}}
<tr class="{{print .Outcome}}"><td>{{clean .Tenant}}</td><td>{{clean .Account}}</td><td title="{{clean .Key}}">{{clean (name .)}}</td><td class="num">{{.Wave}}</td><td>{{clean (print .Strategy)}}</td><td class="{{print .Outcome}}">{{clean (print .Status)}}</td><td>{{clean (print .Code)}}</td><td>{{clean .VMResult.Reason}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
<section id="events">
<h2>Events</h2>
<table>
<thead><tr><th>At (UTC)</th><th>Kind</th><th>VM</th><th>Message</th></tr></thead>
<tbody>
{{- range .R.Events}}
<tr><td>{{utc .At}}</td><td>{{clean .Kind}}</td><td>{{clean .VMKey}}</td><td>{{clean .Message}}</td></tr>
{{- end}}
</tbody>
</table>
</section>
</body>
</html>
`))

// Chart is the report's chart of healthy VMs over time, one line per
// tenant.
func (r *Report) Chart() render.StepChart {
	c := render.StepChart{ID: ChartID, Title: "Healthy VMs over time, per tenant", YLabel: "healthy VMs", End: r.End}
	for _, t := range r.Tenants {
		s := render.Series{Name: t.Name}
		for _, p := range t.HealthyOverTime {
			s.Points = append(s.Points, render.Point{X: p.At, Y: p.Count})
		}
		c.Series = append(c.Series, s)
	}
	return c
}

// HTML writes the report as one self-contained HTML page.
func (r *Report) HTML(w io.Writer) error {
	return page.Execute(w, struct {
		R       *Report
		Elapsed string
		Chart   template.HTML
	}{r, r.Elapsed.Round(time.Second).String(), r.Chart().SVG()})
}
