package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/simulation"
)

// checkPartialPlan: a 3-tenant fleet.yaml (the drill's tenant, a second
// tenant on the same account, and a third whose Azure account cannot be
// opened) still plans the first two, names the third as skipped on stderr
// and in the plan, and exits 7; with --strict it exits 3.
func checkPartialPlan(t *testing.T, drillYAML string) {
	b, err := os.ReadFile(drillYAML)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	tenants := cfg["tenants"].([]any)
	first := tenants[0].(map[string]any)["name"].(string)
	beta := map[string]any{"name": "beta", "accounts": tenants[0].(map[string]any)["accounts"]}
	// An Azure account that validates but cannot be opened: its CA file is
	// missing (checked before any network call).
	broken := map[string]any{"name": "gamma", "accounts": []any{map[string]any{"name": "prod", "provider": "azure", "regions": []string{"japaneast"},
		"options": map[string]any{"subscriptions": []string{"0b1f6471-1bf0-4dda-aec3-111122223333"}, "ca_file": filepath.Join(filepath.Dir(drillYAML), "no-such-ca.pem")}}}}
	cfg["tenants"] = append(tenants, broken, beta)
	b, err = yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	three := filepath.Join(filepath.Dir(drillYAML), "three-tenants.yaml")
	if err := os.WriteFile(three, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI(t, "plan", "--config", three, "--window", "2s", "--samples", "2", "-o", "json")
	if code != exitPartial || !strings.Contains(stderr, "gamma/prod") {
		t.Fatalf("3 tenants, one broken: exit %d, want %d naming gamma/prod: %s", code, exitPartial, stderr)
	}
	var p struct {
		VMs     []struct{ Tenant string }         `json:"vms"`
		Skipped []struct{ Tenant, Reason string } `json:"skipped_accounts"`
	}
	if err := json.Unmarshal([]byte(stdout), &p); err != nil {
		t.Fatal(err)
	}
	byTenant := map[string]int{}
	for _, v := range p.VMs {
		byTenant[v.Tenant]++
	}
	if byTenant[first] == 0 || byTenant["beta"] != byTenant[first] || len(p.Skipped) != 1 || p.Skipped[0].Tenant != "gamma" {
		t.Errorf("VMs per tenant %v, skipped %+v: want %s and beta planned alike, gamma skipped", byTenant, p.Skipped, first)
	}
	if code, _, stderr := runCLI(t, "plan", "--config", three, "--window", "2s", "--samples", "2", "--strict"); code != exitProvider {
		t.Errorf("--strict: exit %d, want %d: %s", code, exitProvider, stderr)
	}
}

// TestDrillThroughFleetYAML: `sim serve --face F --drill-dir D` serves a
// world as cloud F's API and writes a drill; an ordinary `plan --config
// D/fleet.yaml` then assesses and plans it through the real cloud client,
// on the world's clock (--drill-clock: the default 10-minute window passes
// at the world's pace, and the plan is dated in the world's time).
func TestDrillThroughFleetYAML(t *testing.T) {
	for _, face := range []string{"sakura", "aws", "azure"} {
		t.Run(face, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "drill")
			ctx, stop := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- runSimServe(ctx, simServeOpts{drillDir: dir, listen: "127.0.0.1:0",
					world:  simulation.Options{Face: face, World: simulation.WorldOptions{VMs: 12, Seed: 6, Mix: "healthy=40,safe-mode=30,boot-loop=30"}, TimeScale: 600},
					faults: simulation.DefaultFaults()}, pw)
				pw.Close()
			}()
			t.Cleanup(func() { stop(); <-done })
			lines := bufio.NewScanner(pr)
			var url string
			for lines.Scan() && !strings.HasPrefix(lines.Text(), "drill written") {
				if url == "" {
					url = lines.Text() // the first line
				}
			}
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			env, err := readDrillEnv(filepath.Join(dir, "env"))
			if err != nil {
				t.Fatal(err)
			}
			for _, kv := range env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			start := time.Now()
			code, stdout, stderr := runCLI(t, "plan", "--config", filepath.Join(dir, "fleet.yaml"), "--drill-clock", url, "-o", "json")
			if code != 0 {
				t.Fatalf("plan on the drill: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout, `"delete-file"`) || !strings.Contains(stdout, `"safe-mode"`) {
				t.Errorf("the drill's plan repairs no safe-mode VM:\n%s", stdout)
			}
			var p struct {
				CreatedAt time.Time `json:"created_at"`
			}
			if err := json.Unmarshal([]byte(stdout), &p); err != nil || p.CreatedAt.Year() != 2024 {
				t.Errorf("plan dated %v (%v): want the world's time (July 2024), not the host's", p.CreatedAt, err)
			}
			t.Logf("planned the %s drill in %v", face, time.Since(start).Round(time.Second))
			if face == "sakura" {
				checkPartialPlan(t, filepath.Join(dir, "fleet.yaml"))
				if code, _, stderr := runCLI(t, "plan", "--sim", "--drill-clock", url); code != exitUsage || !strings.Contains(stderr, "--drill-clock") {
					t.Errorf("--drill-clock beside --sim: exit %d, want %d naming the flag: %s", code, exitUsage, stderr)
				}
				if code, _, stderr := runCLI(t, "plan", "--config", filepath.Join(dir, "fleet.yaml"), "--drill-clock", "http://127.0.0.1:1"); code == 0 || !strings.Contains(stderr, "--drill-clock") {
					t.Errorf("--drill-clock at no world: exit %d, want an error naming the flag: %s", code, stderr)
				}
			}
		})
	}
}
