package progress

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
)

// stepClock is a clock a test moves by hand.
type stepClock struct{ now time.Time }

func (c *stepClock) Now() time.Time                             { return c.now }
func (c *stepClock) Sleep(context.Context, time.Duration) error { return nil }

// TestAssessLine: an assessment of two accounts at 80 columns says the
// phase, the accounts done, elapsed time, the sampling window's ETA, each
// account's state and retries in plain words; each redraw is one line of
// at most 79 columns.
func TestAssessLine(t *testing.T) {
	clk := &stepClock{now: t0}
	is1a := providers.Account{Tenant: "acme", Name: "is1a", Provider: "sakura"}
	beta := providers.Account{Tenant: "beta", Name: "prod", Provider: "aws"}
	var buf bytes.Buffer
	a := NewAssess(&buf, func() int { return 80 }, clk, 10*time.Minute, []providers.Account{is1a, beta})
	dns := fmt.Errorf("account acme/is1a: listing VMs: %w", &net.DNSError{Err: "no such host", Name: "secure.sakura.ad.jp"})
	steps := []struct {
		after time.Duration
		p     classify.AccountProgress
		want  []string
	}{
		{0, classify.AccountProgress{Account: is1a, Phase: classify.Listing}, []string{"listing 0/2 accounts", "0s elapsed", "acme/is1a listing", "beta/prod waiting"}},
		{4 * time.Second, classify.AccountProgress{Account: is1a, Phase: classify.Retrying, Attempt: 3, Attempts: 6, Err: dns, Wait: 8 * time.Second},
			[]string{"acme/is1a DNS failure, retry 3/5 in 8s"}},
		{20 * time.Second, classify.AccountProgress{Account: beta, Phase: classify.Sampling, VMs: 120}, []string{"sampling 0/2", "20s elapsed, ETA 10m00s", "beta/prod 120 VMs sampling"}},
		{5 * time.Minute, classify.AccountProgress{Account: is1a, Phase: classify.Skipped, Err: dns}, []string{"sampling 1/2", "5m00s elapsed, ETA 5m20s", "acme/is1a skipped"}},
		{10 * time.Minute, classify.AccountProgress{Account: beta, Phase: classify.Done, VMs: 120}, []string{"sampling 2/2", "beta/prod 120 VMs done"}},
	}
	for i, s := range steps {
		clk.now = t0.Add(s.after)
		buf.Reset()
		a.Event(s.p)
		out := buf.String()
		last := out[strings.LastIndex(out, "\r\033[K")+len("\r\033[K"):]
		if strings.ContainsAny(last, "\r\n") || utf8.RuneCountInString(last) > 79 {
			t.Errorf("step %d: status line %q: not one line of at most 79 columns", i, last)
		}
		for _, w := range s.want {
			if !strings.Contains(a.Line(), w) {
				t.Errorf("step %d: line %q does not say %q", i, a.Line(), w)
			}
		}
		if i == 3 && !strings.Contains(out, "skipped acme/is1a: DNS failure\n") {
			t.Errorf("no full line for the skipped account: %q", out)
		}
	}
}

func TestWhy(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{&net.DNSError{Err: "no such host", Name: "x"}, "DNS failure"},
		{providers.Errorf(providers.ErrThrottled, "List", "r", "429"), "throttled"},
		{providers.Errorf(providers.ErrUnavailable, "List", "r", "503"), "API unavailable"},
		{context.DeadlineExceeded, "timed out"},
		{nil, "ok"},
	}
	for _, tt := range tests {
		if got := Why(tt.err); got != tt.want {
			t.Errorf("Why(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}
