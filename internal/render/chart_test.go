package render

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestStepChartSVG(t *testing.T) {
	tests := []struct {
		name     string
		chart    StepChart
		paths    int
		contains []string
		lacks    []string
	}{
		{"empty", StepChart{ID: "c"}, 0, []string{`<svg id="c"`, "nothing recorded yet"}, []string{"<path"}},
		{"two series, hostile name", StepChart{ID: `x"><script>`, Title: "t", Series: []Series{
			{Name: "acme", Points: []Point{{0, 2}, {time.Minute, 3}, {2 * time.Minute, 7}}},
			{Name: "<b>evil</b>\x1b[2J", Points: []Point{{0, 0}, {90 * time.Second, 1}}},
		}}, 2, []string{`<svg id="xscript"`, "acme (7)", "&lt;b&gt;evil&lt;/b&gt;", ">10<", "2m"}, []string{"<b>", "\x1b", "<script"}},
	}
	var many []Series
	for i := range 20 {
		many = append(many, Series{Name: fmt.Sprintf("tenant-%02d", i), Points: []Point{{0, i}}})
	}
	tests = append(tests, struct {
		name     string
		chart    StepChart
		paths    int
		contains []string
		lacks    []string
	}{"more tenants than the legend holds", StepChart{ID: "m", Series: many}, 20, []string{"tenant-11 (11)", fmt.Sprintf("… and %d more", 20-maxLegend)}, []string{"tenant-19 ("}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svg := string(tt.chart.SVG())
			if n := strings.Count(svg, "<path"); n != tt.paths {
				t.Errorf("%d paths, want %d", n, tt.paths)
			}
			for _, s := range tt.contains {
				if !strings.Contains(svg, s) {
					t.Errorf("lacks %q:\n%s", s, svg)
				}
			}
			for _, s := range tt.lacks {
				if strings.Contains(svg, s) {
					t.Errorf("contains %q", s)
				}
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "0", 45 * time.Second: "45s", 12 * time.Minute: "12m", 65 * time.Minute: "1h05m"} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
