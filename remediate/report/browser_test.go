package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/fixfleet/fixfleet/internal/render"
)

// chromiumPath is where the browser test finds Chromium: $CHROMIUM, or
// Debian's /usr/bin/chromium.
func chromiumPath() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	return "/usr/bin/chromium"
}

// TestHTMLInChromium opens a generated report in headless Chromium, takes a
// screenshot of the chart and reads the summary: the chart must show the
// tenants' lines (pixels of the series colours, not just a blank frame) and
// the summary its figures. .ci/run installs Chromium; elsewhere the test
// fails saying how to install it, unless FIXFLEET_SKIP_BROWSER=1.
func TestHTMLInChromium(t *testing.T) {
	if os.Getenv("FIXFLEET_SKIP_BROWSER") == "1" {
		t.Skip("FIXFLEET_SKIP_BROWSER=1: the report is not checked in a browser")
	}
	bin := chromiumPath()
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("no Chromium at %s (%v): install it (apt-get install -y chromium), or set CHROMIUM to its path; FIXFLEET_SKIP_BROWSER=1 skips this check", bin, err)
	}
	var page bytes.Buffer
	if err := build(t, "").HTML(&page); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "report.html")
	if err := os.WriteFile(file, page.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.WindowSize(1280, 2000))
	// A bound on a wedged browser (it stops the whole browser), not a
	// timing assertion.
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	ctx, cancelTab := chromedp.NewContext(ctx)
	defer cancelTab()

	u := url.URL{Scheme: "file", Path: file}
	if err := chromedp.Do(ctx, chromedp.Navigate(u.String()), chromedp.WaitVisible(chromedp.ID(ChartID))); err != nil {
		t.Fatalf("chromium: %v", err)
	}
	shot, err := chromedp.Run(ctx, chromedp.Screenshot(chromedp.ID(ChartID)))
	if err != nil {
		t.Fatalf("chromium: screenshot of the chart: %v", err)
	}
	summary, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(SummaryID)))
	if err != nil {
		t.Fatalf("chromium: summary text: %v", err)
	}
	img, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	t.Logf("chart %v: %d non-background pixels, per series colour %v", img.Bounds().Size(), nonBackground(img), seriesPixels(img))
	if b := img.Bounds().Size(); b.X < 300 || b.Y < 150 {
		t.Errorf("chart rendered at %v: too small to read", b)
	}
	if n := nonBackground(img); n < 2000 {
		t.Errorf("chart area nearly blank: %d non-background pixels", n)
	}
	// Each of the three tenants' lines is drawn in its colour.
	for i, n := range seriesPixels(img) {
		if n < 50 {
			t.Errorf("series %d (%s): %d pixels of its colour in the chart", i, render.SeriesColor(i), n)
		}
	}
	for _, want := range []string{"Run run-1: done", "no path: a person must act", "49", "Outcomes per tenant", "acme", "globex", "time to healthy"} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary lacks %q:\n%s", want, summary)
		}
	}
}

// nonBackground counts the pixels that are not white.
func nonBackground(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			if r>>8 < 245 || g>>8 < 245 || bl>>8 < 245 {
				n++
			}
		}
	}
	return n
}

// seriesPixels counts, for the first three series colours, the pixels
// close to that colour.
func seriesPixels(img image.Image) []int {
	var want [3][3]int
	for i := range want {
		c := render.SeriesColor(i)
		for j := range 3 {
			want[i][j] = hexByte(c[1+2*j : 3+2*j])
		}
	}
	counts := make([]int, 3)
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			px := [3]int{int(r >> 8), int(g >> 8), int(bl >> 8)}
			for i, w := range want {
				if abs(px[0]-w[0]) < 24 && abs(px[1]-w[1]) < 24 && abs(px[2]-w[2]) < 24 {
					counts[i]++
				}
			}
		}
	}
	return counts
}

func hexByte(s string) int {
	v := 0
	for _, c := range s {
		v <<= 4
		switch {
		case c >= '0' && c <= '9':
			v += int(c - '0')
		case c >= 'a' && c <= 'f':
			v += int(c-'a') + 10
		}
	}
	return v
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
