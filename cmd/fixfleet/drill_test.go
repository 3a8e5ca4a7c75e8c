package main

import (
	"bufio"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/simulation"
)

// TestDrillThroughFleetYAML: `sim serve --face F --drill-dir D` serves a
// world as cloud F's API and writes a drill; an ordinary `plan --config
// D/fleet.yaml` then assesses and plans it through the real cloud client.
func TestDrillThroughFleetYAML(t *testing.T) {
	for _, face := range []string{"sakura", "aws", "azure"} {
		t.Run(face, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "drill")
			ctx, stop := context.WithCancel(context.Background())
			pr, pw := io.Pipe()
			done := make(chan error, 1)
			go func() {
				done <- runSimServe(ctx, simServeOpts{face: face, drillDir: dir, listen: "127.0.0.1:0",
					world:  worldOpts{WorldOptions: simulation.WorldOptions{VMs: 12, Seed: 6, Mix: "healthy=40,safe-mode=30,boot-loop=30"}, timeScale: 600},
					faults: simulation.DefaultFaults()}, pw)
				pw.Close()
			}()
			t.Cleanup(func() { stop(); <-done })
			lines := bufio.NewScanner(pr)
			for lines.Scan() && !strings.HasPrefix(lines.Text(), "drill written") {
			}
			go func() { _, _ = io.Copy(io.Discard, pr) }()
			env, err := os.ReadFile(filepath.Join(dir, "env"))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(string(env), "\n") {
				if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && !strings.HasPrefix(line, "#") {
					t.Setenv(k, v)
				}
			}
			start := time.Now()
			code, stdout, stderr := runCLI(t, "plan", "--config", filepath.Join(dir, "fleet.yaml"), "--window", "2s", "--samples", "2", "--format", "csv")
			if code != 0 {
				t.Fatalf("plan on the drill: exit %d: %s", code, stderr)
			}
			if !strings.Contains(stdout, "delete-file") || !strings.Contains(stdout, "safe-mode") {
				t.Errorf("the drill's plan repairs no safe-mode VM:\n%s", stdout)
			}
			t.Logf("planned the %s drill in %v", face, time.Since(start).Round(time.Second))
		})
	}
}
