package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory/journal"
)

// runCLI runs one command line in-process and returns its exit code and
// outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestConfigErrors: each broken config fails with exit code 2 and an error
// that names the culprit.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		naming []string
	}{
		{name: "unreadable file", args: []string{"plan", "--config", "testdata/no-such-file.yaml"}, code: exitUsage,
			naming: []string{"testdata/no-such-file.yaml"}},
		{name: "unknown key", args: []string{"plan", "--config", "testdata/unknown-key.yaml"}, code: exitUsage,
			naming: []string{"unknown-key.yaml", "zone", "valid keys"}},
		{name: "bad zone", args: []string{"inventory", "--config", "testdata/bad-zone.yaml"}, code: exitUsage,
			naming: []string{"is9z", "is1a"}},
		{name: "missing credential reference", args: []string{"plan", "--config", "testdata/missing-credential.yaml"}, code: exitUsage,
			naming: []string{"FIXFLEET_TEST_UNSET_PASSWORD"}},
		{name: "bad policy value", args: []string{"plan", "--config", "testdata/bad-policy.yaml"}, code: exitUsage,
			naming: []string{"bad-policy.yaml", "max_restarts"}},
		{name: "missing API key names the variables", args: []string{"plan", "--config", "testdata/valid-sakura.yaml"}, code: exitProvider,
			naming: []string{"acme/prod", "SAKURACLOUD_ACCESS_TOKEN", "SAKURACLOUD_ACCESS_TOKEN_SECRET"}},
		{name: "azure account without subscriptions says what to give", args: []string{"plan", "--config", "testdata/azure.yaml"}, code: exitUsage,
			naming: []string{"azure.yaml", "subscriptions", "az account list"}},
		{name: "region that does not exist", args: []string{"plan", "--config", "testdata/unknown-region.yaml"}, code: exitUsage,
			naming: []string{"ap-northeast-9", "ap-northeast-1", "options.endpoint"}},
		{name: "missing argument", args: []string{"apply"}, code: exitUsage, naming: []string{"accepts 1 arg"}},
		{name: "extra argument", args: []string{"inventory", "now"}, code: exitUsage, naming: []string{"now"}},
		{name: "unknown command", args: []string{"plna"}, code: exitUsage, naming: []string{"plna"}},
		{name: "bad format", args: []string{"plan", "--sim", "--format", "xml"}, code: exitUsage,
			naming: []string{"--format", "xml", "json"}},
		{name: "bad mix", args: []string{"plan", "--sim", "--mix", "healthy=x"}, code: exitUsage,
			naming: []string{"--mix", "healthy"}},
		{name: "unknown flag", args: []string{"plan", "--vm", "3"}, code: exitUsage, naming: []string{"--vm"}},
		{name: "missing scenario", args: []string{"plan", "--sim", "--scenario", "testdata/nope.json"}, code: exitUsage,
			naming: []string{"testdata/nope.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FIXFLEET_TEST_UNSET_PASSWORD", "")
			t.Setenv("SAKURACLOUD_ACCESS_TOKEN", "")
			t.Setenv("SAKURACLOUD_ACCESS_TOKEN_SECRET", "")
			code, _, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			for _, n := range tt.naming {
				if !strings.Contains(stderr, n) {
					t.Errorf("error does not name %q: %s", n, stderr)
				}
			}
		})
	}
}

// TestApplyLockAndUnlock: a second apply on a locked journal exits 4 naming
// the holder; unlock needs --reason and --yes, and frees the journal.
func TestApplyLockAndUnlock(t *testing.T) {
	db := filepath.Join(t.TempDir(), "j.db")
	j, err := journal.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	release, err := j.Lock(t.Context(), journal.Owner{Host: "lost-host", PID: 4242, Command: "fixfleet apply"})
	if err != nil {
		t.Fatal(err)
	}
	_ = release // the holder is "lost": it never releases
	j.Close()

	plan := filepath.Join(t.TempDir(), "plan.json")
	if code, _, stderr := runCLI(t, "plan", "--sim", "--vms", "5", "--time-scale", "5000", "--out-file", plan, "-o", "json"); code != 0 {
		t.Fatalf("plan: %s", stderr)
	}
	url, _ := serveWorld(t)
	code, _, stderr := runCLI(t, "apply", plan, "--sim-endpoint", url, "--journal", db, "--yes", "--allow-stale")
	if code != exitLocked || !strings.Contains(stderr, "lost-host") || !strings.Contains(stderr, "4242") {
		t.Errorf("apply on a locked journal: exit %d, want %d naming the holder; stderr: %s", code, exitLocked, stderr)
	}
	if code, _, _ := runCLI(t, "unlock", "--journal", db); code != exitUsage {
		t.Errorf("unlock without --reason/--yes: exit %d, want %d", code, exitUsage)
	}
	code, stdout, stderr := runCLI(t, "unlock", "--journal", db, "--reason", "host lost in the incident", "--yes")
	if code != 0 || !strings.Contains(stdout, "lost-host") {
		t.Errorf("unlock: exit %d: %s %s", code, stdout, stderr)
	}
	j, err = journal.Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if h, _, locked, err := j.LockHolder(t.Context()); err != nil || locked {
		t.Errorf("after unlock the journal is still locked by %+v (%v)", h, err)
	}
}

// TestApplyNeedsConfirmation: without --yes and without a terminal, apply
// refuses and changes nothing.
func TestApplyNeedsConfirmation(t *testing.T) {
	plan := filepath.Join(t.TempDir(), "plan.json")
	if code, _, stderr := runCLI(t, "plan", "--sim", "--vms", "5", "--time-scale", "5000", "--out-file", plan, "-o", "json"); code != 0 {
		t.Fatalf("plan: %s", stderr)
	}
	db := filepath.Join(t.TempDir(), "j.db")
	code, _, stderr := runCLI(t, "apply", plan, "--sim-endpoint", "http://127.0.0.1:1", "--journal", db)
	if code != exitUsage || !strings.Contains(stderr, "--yes") {
		t.Errorf("exit %d, want %d mentioning --yes: %s", code, exitUsage, stderr)
	}
	if _, err := os.Stat(db); err == nil {
		t.Errorf("a refused apply created the journal")
	}
}

// TestApplyRejectsMalformedPlan: a broken plan file fails with exit 2 and
// an error naming the file.
func TestApplyRejectsMalformedPlan(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(bad, []byte(`{"version":"fixfleet.plan/v1","vms":[{"id":1}]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runCLI(t, "apply", bad, "--sim-endpoint", "http://127.0.0.1:1", "--yes")
	if code != exitUsage || !strings.Contains(stderr, bad) {
		t.Errorf("exit %d, want %d naming %s: %s", code, exitUsage, bad, stderr)
	}
}

// TestStatusSeesGoneHolder: after an apply was killed, status says its lock
// is held by a process that is gone, not that an apply is running.
func TestStatusSeesGoneHolder(t *testing.T) {
	db := filepath.Join(t.TempDir(), "j.db")
	// A scale of 1000, not 5000: under -race on two cores a CPU stall at
	// 5000× became simulated minutes, and a reboot-retry restart once
	// caught a VM that had recovered meanwhile (the demo then fails its
	// invariants). This test is about status, not the demo's timing.
	if code, _, stderr := runCLI(t, "demo", "--vms", "5", "--seed", "3", "--time-scale", "1000", "--journal", db, "--format", "json"); code != 0 {
		t.Fatalf("demo: %s", stderr)
	}
	// The run is done: --watch shows it once and returns.
	if code, stdout, stderr := runCLI(t, "status", "--journal", db, "--watch=1h"); code != 0 || strings.Count(stdout, "Run plan-") != 1 {
		t.Errorf("status --watch on a finished run: exit %d, want one status shown:\n%s%s", code, stdout, stderr)
	}
	host, _ := os.Hostname()
	j, err := journal.Open(t.Context(), db, journal.WithHost(host))
	if err != nil {
		t.Fatal(err)
	}
	// A lock left by a process of this host that no longer exists.
	if _, err := j.Lock(t.Context(), journal.Owner{Host: host, PID: 1 << 22, Command: "fixfleet apply"}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	code, stdout, stderr := runCLI(t, "status", "--journal", db)
	if code != 0 || !strings.Contains(stdout, "that process is gone") {
		t.Errorf("status: exit %d, want a note that the holder is gone:\n%s%s", code, stdout, stderr)
	}
}
