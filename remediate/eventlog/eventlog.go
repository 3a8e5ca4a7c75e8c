// Package eventlog writes an apply's events as log lines, one per event,
// for when no terminal shows the progress line (a CI job, a pipe, a file):
// text by default, or JSON, each stamped with the event's time (RFC 3339,
// UTC) and the time elapsed since the run's first event.
package eventlog

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/remediate/apply"
)

// Format is a log line format.
type Format string

// The formats.
const (
	Text Format = "text"
	JSON Format = "json"
)

// ParseFormat parses a --log-format value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case Text, JSON:
		return f, nil
	}
	return "", fmt.Errorf("unknown log format %q: valid formats are text, json", s)
}

// Set implements pflag.Value (a --log-format flag).
func (f *Format) Set(s string) error {
	v, err := ParseFormat(s)
	if err == nil {
		*f = v
	}
	return err
}

// String implements pflag.Value.
func (f *Format) String() string { return string(*f) }

// Type implements pflag.Value.
func (f *Format) Type() string { return "text|json" }

// Log writes events to w. Safe for concurrent use.
type Log struct {
	mu     sync.Mutex
	w      io.Writer
	format Format
	start  time.Time
}

// New returns a log writing f lines to w.
func New(w io.Writer, f Format) *Log { return &Log{w: w, format: f} }

// line is one event in JSON.
type line struct {
	Time           string  `json:"time"`
	ElapsedSeconds float64 `json:"elapsed_seconds"`
	Kind           string  `json:"kind"`
	VM             string  `json:"vm,omitempty"`
	Strategy       string  `json:"strategy,omitempty"`
	Step           string  `json:"step,omitempty"`
	Attempt        int     `json:"attempt,omitempty"`
	Message        string  `json:"message,omitempty"`
}

// Event implements apply.Options.Events. Step begin/end events are left
// out (the journal has them); everything else is one line.
func (l *Log) Event(e apply.Event) {
	if e.Kind == apply.EvStepBegun || e.Kind == apply.EvStepEnded {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.start.IsZero() {
		l.start = e.At
	}
	x := line{Time: e.At.UTC().Format(time.RFC3339), ElapsedSeconds: e.At.Sub(l.start).Round(time.Millisecond).Seconds(),
		Kind: e.Kind, VM: e.VMKey, Strategy: string(e.Strategy), Step: e.Step, Attempt: e.Attempt, Message: oneLine(e.Message)}
	if l.format == JSON {
		b, _ := json.Marshal(x) // strings and numbers: cannot fail
		fmt.Fprintf(l.w, "%s\n", b)
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s +%s %s", x.Time, e.At.Sub(l.start).Round(time.Second), x.Kind)
	for _, kv := range [][2]string{{"vm", x.VM}, {"strategy", x.Strategy}, {"step", x.Step}} {
		if kv[1] != "" {
			fmt.Fprintf(&b, " %s=%s", kv[0], kv[1])
		}
	}
	if x.Attempt > 0 {
		fmt.Fprintf(&b, " attempt=%d", x.Attempt)
	}
	if x.Message != "" {
		b.WriteString(": " + x.Message)
	}
	fmt.Fprintln(l.w, b.String())
}

// oneLine keeps a message on its line: newlines and other control
// characters become spaces (messages may quote cloud text).
func oneLine(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}
