package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// hookReceiver is a loopback Slack and Teams webhook. The first request
// to each path is answered 429 with Retry-After: 1.
type hookReceiver struct {
	mu        sync.Mutex
	throttled map[string]bool
	got       map[string][]string // path → messages' texts, in arrival order
}

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.throttled[r.URL.Path] {
		h.throttled[r.URL.Path] = true
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	var m struct {
		Text        string `json:"text"`
		Attachments []struct {
			Content struct {
				Body []struct{ Text string }
			}
		}
	}
	if err := json.Unmarshal(b, &m); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	text := m.Text
	if len(m.Attachments) > 0 && len(m.Attachments[0].Content.Body) > 0 {
		text = m.Attachments[0].Content.Body[0].Text
	}
	h.got[r.URL.Path] = append(h.got[r.URL.Path], text)
}

// TestDemoNotifiesAndReports: a demo with --notify slack and teams sends
// the run's events, in order, to a loopback receiver that throttles first;
// the report command then writes per-tenant and per-table files.
func TestDemoNotifiesAndReports(t *testing.T) {
	h := &hookReceiver{throttled: map[string]bool{}, got: map[string][]string{}}
	srv := httptest.NewServer(h)
	defer srv.Close()
	dir := t.TempDir()
	db := filepath.Join(dir, "j.db")
	code, _, stderr := runCLI(t, "demo", "--vms", "12", "--seed", "3", "--time-scale", "5000", "--journal", db,
		"--notify", "slack="+srv.URL+"/services/T0/B0/tok", "--notify", "teams="+srv.URL+"/teams/tok")
	if code != 0 && code != 5 {
		t.Fatalf("demo: exit %d: %s", code, stderr)
	}
	if strings.Contains(stderr, "/tok") {
		t.Errorf("stderr shows a webhook URL: %s", stderr)
	}
	h.mu.Lock()
	for _, path := range []string{"/services/T0/B0/tok", "/teams/tok"} {
		got := h.got[path]
		t.Logf("%s received %q", path, got)
		if len(got) < 4 {
			t.Errorf("%s received %d messages: %q", path, len(got), got)
			continue
		}
		if !strings.Contains(got[0], "started") {
			t.Errorf("%s: first message %q, want run started", path, got[0])
		}
		last := got[len(got)-1]
		if !strings.Contains(last, " done") && !strings.Contains(last, " paused") {
			t.Errorf("%s: last message %q, want run done or paused", path, last)
		}
		all := strings.Join(got, "\n")
		for _, want := range []string{"canary", "tenant sim done"} {
			if !strings.Contains(all, want) {
				t.Errorf("%s: no message with %q in %q", path, want, got)
			}
		}
	}
	h.mu.Unlock()

	out := filepath.Join(dir, "per-tenant")
	if code, stdout, stderr := runCLI(t, "report", "--journal", db, "--per-tenant", out, "--format", "markdown"); code != 0 || !strings.Contains(stdout, "sim\t") {
		t.Fatalf("report --per-tenant: exit %d: %s %s", code, stdout, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "sim.md")); err != nil || !strings.Contains(string(b), "For a person") {
		t.Errorf("per-tenant report: %v %.200s", err, b)
	}
	csvDir := filepath.Join(dir, "csv")
	if code, _, stderr := runCLI(t, "report", "--journal", db, "--csv-dir", csvDir); code != 0 {
		t.Fatalf("report --csv-dir: exit %d: %s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(csvDir, "vms.csv")); err != nil || !strings.HasPrefix(string(b), "tenant,account,vm,") {
		t.Errorf("vms.csv: %v %.100s", err, b)
	}
	for _, args := range [][]string{
		{"--table", "nope"},
		{"--table", "vms", "--format", "html"},
		{"--tenant", "initech"},
		{"--tenant", "sim", "--per-tenant", out},
	} {
		if code, _, stderr := runCLI(t, append([]string{"report", "--journal", db}, args...)...); code != 2 {
			t.Errorf("report %v: exit %d, want 2: %s", args, code, stderr)
		}
	}
	if code, stdout, _ := runCLI(t, "report", "--journal", db, "--tenant", "sim", "--format", "csv", "--table", "tenants"); code != 0 || !strings.HasPrefix(stdout, "tenant,vms,fixed") {
		t.Errorf("report --tenant sim --table tenants: exit %d: %s", code, stdout)
	}
}
