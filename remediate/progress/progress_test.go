package progress

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fixfleet/fixfleet/remediate/apply"
)

func TestFit(t *testing.T) {
	tests := []struct {
		line  string
		width int
		want  string
	}{
		{"short", 80, "short"},
		{"exactly10!", 10, "exactly10!"},
		{"eleven char", 10, "eleven ch…"},
		{"cut · at a dot", 7, "cut…"},
		{"日本語のテキスト", 5, "日本語の…"},
		{"x", 0, ""},
	}
	for _, tt := range tests {
		if got := Fit(tt.line, tt.width); got != tt.want || utf8.RuneCountInString(got) > max(tt.width, 0) {
			t.Errorf("Fit(%q, %d) = %q, want %q", tt.line, tt.width, got, tt.want)
		}
	}
}

var t0 = time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)

// TestDisplayAt80Columns feeds an apply's events to a display on an
// 80-column terminal: every redraw is one line of at most 79 columns that
// starts with \r and erase-line (so it redraws in place), and it says the
// elapsed time, the ETA, the API's state in plain words and the VMs for a
// person (flagged plus the plan's manual ones).
func TestDisplayAt80Columns(t *testing.T) {
	var buf bytes.Buffer
	d := New(&buf, Options{Total: 300, Manual: 52, Estimate: 20 * time.Minute, Width: func() int { return 80 }})
	ev := func(sec int, kind, vm, msg string) apply.Event {
		return apply.Event{At: t0.Add(time.Duration(sec) * time.Second), Kind: kind, VMKey: vm, Message: msg}
	}
	steps := []struct {
		e    apply.Event
		want []string // in the status line after e
	}{
		{ev(0, apply.EvRunStarted, "", "apply started"), []string{"0/300 done", "0s elapsed, ETA ~20m00s", "API ok"}},
		{ev(1, apply.EvWaveStarted, "", "canary started: 4 of its 4 VMs to do"), []string{"canary 0/300"}},
		{ev(2, apply.EvVMStarted, "acme/prod/vm-1", ""), []string{"2s elapsed"}},
		{ev(62, apply.EvVMFlagged, "acme/prod/vm-1", "no key"), []string{"canary 1/300 done", "1m02s elapsed, ETA ~19m55s", "for a person 53"}},
		{apply.Event{At: t0.Add(70 * time.Second), Kind: apply.EvBreakerOpen, Message: "breaker open: 5 errors", Wait: 30 * time.Second},
			[]string{"API paused: errors, retrying in 30s"}},
		{ev(90, apply.EvStepRetry, "acme/prod/vm-2", ""), []string{"API paused: errors, retrying in 10s"}},
		{ev(101, apply.EvBreakerClosed, "", ""), []string{"API ok"}},
	}
	for i, s := range steps {
		buf.Reset()
		d.Event(s.e)
		out := buf.String()
		last := out[strings.LastIndex(out, "\r\033[K")+len("\r\033[K"):]
		if strings.ContainsAny(last, "\r\n") || utf8.RuneCountInString(last) > 79 {
			t.Errorf("step %d: status line %q: not one line of at most 79 columns", i, last)
		}
		for _, w := range s.want {
			if !strings.Contains(d.Line(), w) {
				t.Errorf("step %d: line %q does not say %q", i, d.Line(), w)
			}
		}
		if !strings.HasPrefix(out, "\r\033[K") {
			t.Errorf("step %d: output %q does not start by returning to the line's start and erasing it", i, out)
		}
	}
	if !strings.Contains(d.Line(), "acme/prod 1/1") {
		t.Errorf("no per-account count in %q", d.Line())
	}
	if fitted := Fit(d.Line(), 79); !strings.Contains(fitted, "elapsed, ETA") || !strings.Contains(fitted, "API ok") {
		t.Errorf("at 80 columns the line loses the elapsed time, ETA or API state: %q", fitted)
	}
}

// TestDisplayNil: a display without a writer shows nothing and does not
// fail.
func TestDisplayNil(t *testing.T) {
	d := New(nil, Options{Total: 1})
	d.Event(apply.Event{At: t0, Kind: apply.EvVMStarted, VMKey: "a/b/c"})
	d.Done()
}
