package render

import (
	"fmt"
	"html"
	"html/template"
	"strings"
	"time"
)

// Point is one step of a Series: from X on (time since the chart's
// origin), the value is Y.
type Point struct {
	X time.Duration
	Y int
}

// Series is one line of a StepChart. Points must be in increasing X.
type Series struct {
	Name   string
	Points []Point
}

// StepChart is a chart of counts that change in steps over time (healthy
// VMs over a run), one line per series.
type StepChart struct {
	// ID is the svg element's id attribute (letters, digits, '-' only).
	ID     string
	Title  string
	YLabel string
	// End is where the time axis ends (at least the last point's X).
	End    time.Duration
	Series []Series
}

// seriesColors are the lines' colours, in series order (cycling).
var seriesColors = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22"}

// Chart geometry, in SVG user units.
const (
	chartW, chartH           = 760, 300
	padL, padR, padT, padB   = 48, 190, 28, 36
	plotW, plotH             = chartW - padL - padR, chartH - padT - padB
	yTicks                   = 5
	legendRow, legendSwatchW = 18, 14
	maxLegend                = (plotH - legendRow) / legendRow // legend rows that fit beside the plot
)

// SVG returns the chart as a self-contained inline <svg> element (no
// script, no external reference). Names are escaped and cleaned of control
// characters. A chart with no series or no points says so in its plot area.
func (c StepChart) SVG() template.HTML {
	var b strings.Builder
	end := c.End
	maxY := 0
	for _, s := range c.Series {
		for _, p := range s.Points {
			end = max(end, p.X)
			maxY = max(maxY, p.Y)
		}
	}
	if end <= 0 {
		end = time.Second
	}
	maxY = niceCeil(maxY)
	x := func(d time.Duration) float64 { return padL + float64(d)/float64(end)*plotW }
	y := func(v int) float64 { return padT + plotH - float64(v)/float64(maxY)*plotH }
	fmt.Fprintf(&b, `<svg id="%s" xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" aria-label="%s">`,
		html.EscapeString(safeID(c.ID)), chartW, chartH, chartW, chartH, html.EscapeString(clean(c.Title, false)))
	fmt.Fprintf(&b, `<title>%s</title>`, html.EscapeString(clean(c.Title, false)))
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="#ffffff" stroke="#999"/>`, padL, padT, plotW, plotH)
	for i := 0; i <= yTicks; i++ {
		v := maxY * i / yTicks
		fmt.Fprintf(&b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#e4e4e4"/>`, padL, padL+plotW, y(v), y(v))
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" font-size="11" text-anchor="end" fill="#444">%d</text>`, padL-6, y(v)+4, v)
	}
	for i := 0; i <= 4; i++ {
		d := end * time.Duration(i) / 4
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" font-size="11" text-anchor="middle" fill="#444">%s</text>`, x(d), padT+plotH+16, shortDuration(d))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" fill="#444">%s</text>`, padL, padT-10, html.EscapeString(clean(c.YLabel, false)))
	fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="11" text-anchor="end" fill="#444">time since the run started</text>`, padL+plotW, chartH-4)
	drawn := 0
	for i, s := range c.Series {
		if len(s.Points) == 0 {
			continue
		}
		drawn++
		col := SeriesColor(i)
		var d strings.Builder
		fmt.Fprintf(&d, "M%.1f %.1f", x(s.Points[0].X), y(s.Points[0].Y))
		for _, p := range s.Points[1:] {
			fmt.Fprintf(&d, " H%.1f V%.1f", x(p.X), y(p.Y))
		}
		fmt.Fprintf(&d, " H%.1f", x(end))
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2.5"/>`, d.String(), col)
		if drawn > maxLegend {
			continue
		}
		ly := padT + (drawn-1)*legendRow
		last := s.Points[len(s.Points)-1].Y
		fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="4" fill="%s"/>`, padL+plotW+12, ly+5, legendSwatchW, col)
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" fill="#222">%s (%d)</text>`, padL+plotW+12+legendSwatchW+6, ly+11,
			html.EscapeString(truncate(clean(s.Name, false), 20)), last)
	}
	if drawn > maxLegend {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="12" fill="#222">… and %d more</text>`, padL+plotW+12, padT+maxLegend*legendRow+11, drawn-maxLegend)
	}
	if drawn == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" font-size="13" text-anchor="middle" fill="#666">nothing recorded yet</text>`, padL+plotW/2, padT+plotH/2)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) //nolint:gosec // built above; every text is escaped
}

// SeriesColor is the colour ("#rrggbb") of series i's line.
func SeriesColor(i int) string { return seriesColors[i%len(seriesColors)] }

// niceCeil rounds a chart's top up to a value whose yTicks divide evenly.
func niceCeil(v int) int {
	if v <= 0 {
		return yTicks
	}
	return (v + yTicks - 1) / yTicks * yTicks
}

// shortDuration writes d as "0", "45s", "12m" or "1h05m".
func shortDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// safeID keeps letters, digits and '-'.
func safeID(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return -1
	}, s)
}

// Text returns untrusted text with terminal control characters and
// newlines neutralised, for callers that build their own output (it is not
// escaped for any syntax).
func Text(s string) string { return clean(s, false) }
