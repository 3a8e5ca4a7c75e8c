package eventlog

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/remediate/apply"
)

var t0 = time.Date(2026, 12, 4, 15, 0, 0, 0, time.UTC)

func events() []apply.Event {
	return []apply.Event{
		{At: t0, Kind: apply.EvRunStarted, Message: "apply of plan p started: 3 VMs, 1 wave(s)"},
		{At: t0.Add(time.Second), Kind: apply.EvStepBegun, VMKey: "acme/prod/vm-1", Step: "stop"},
		{At: t0.Add(65 * time.Second), Kind: apply.EvStepRetry, VMKey: "acme/prod/vm-1", Strategy: "reboot-retry", Step: "stop", Attempt: 2, Message: "throttled"},
		{At: t0.Add(90 * time.Second), Kind: apply.EvBreakerOpen, Message: "control-plane breaker open:\n5 errors"},
		{At: t0.Add(125*time.Second + 400*time.Millisecond), Kind: apply.EvVMFixed, VMKey: "acme/prod/vm-1", Strategy: "reboot-retry", Message: "fixed"},
	}
}

func TestText(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, Text)
	for _, e := range events() {
		l.Event(e)
	}
	want := []string{
		"2026-12-04T15:00:00Z +0s run.started: apply of plan p started: 3 VMs, 1 wave(s)",
		"2026-12-04T15:01:05Z +1m5s step.retry vm=acme/prod/vm-1 strategy=reboot-retry step=stop attempt=2: throttled",
		"2026-12-04T15:01:30Z +1m30s breaker.open: control-plane breaker open: 5 errors",
		"2026-12-04T15:02:05Z +2m5s vm.fixed vm=acme/prod/vm-1 strategy=reboot-retry: fixed",
	}
	if got := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	l := New(&buf, JSON)
	for _, e := range events() {
		l.Event(e)
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines, want 4 (step.begun left out):\n%s", len(lines), buf.String())
	}
	var last line
	if err := json.Unmarshal([]byte(lines[3]), &last); err != nil {
		t.Fatal(err)
	}
	want := line{Time: "2026-12-04T15:02:05Z", ElapsedSeconds: 125.4, Kind: apply.EvVMFixed, VM: "acme/prod/vm-1", Strategy: "reboot-retry", Message: "fixed"}
	if last != want {
		t.Errorf("got %+v\nwant %+v", last, want)
	}
	if _, err := time.Parse(time.RFC3339, last.Time); err != nil {
		t.Errorf("time %q is not RFC 3339: %v", last.Time, err)
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]Format{"text": Text, "JSON": JSON, " json ": JSON} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseFormat("xml"); err == nil || !strings.Contains(err.Error(), "text, json") {
		t.Errorf("ParseFormat(xml): %v", err)
	}
}
