package source

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/fixfleet/fixfleet/simulation"
)

// TestRegistry: fleet.yaml knows the three clouds, and not the simulator.
func TestRegistry(t *testing.T) {
	got := Registry().Names()
	for _, n := range []string{"sakura", "aws", "azure"} {
		if !slices.Contains(got, n) {
			t.Errorf("Registry lacks %s: %v", n, got)
		}
	}
	if slices.Contains(got, "sim") {
		t.Errorf("the simulator is a fleet.yaml provider: %v", got)
	}
}

// TestOpen: a missing fleet.yaml is a *ConfigError that still says the
// file does not exist; a generated world opens, and its close is safe.
func TestOpen(t *testing.T) {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	_, err := Open(ctx, Options{Config: filepath.Join(t.TempDir(), "fleet.yaml"), Getenv: os.Getenv, Logger: logger})
	var ce *ConfigError
	if !errors.As(err, &ce) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing fleet.yaml: %v", err)
	}
	o := Options{Sim: true, World: simulation.Options{World: simulation.WorldOptions{VMs: 3, Seed: 1}, TimeScale: 600}}
	if !o.Simulated() {
		t.Fatal("Sim does not name a simulated world")
	}
	src, err := Open(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	if len(src.OpenedAccounts()) == 0 || src.Notify != nil {
		t.Errorf("simulated fleet: %d accounts, notify %v", len(src.OpenedAccounts()), src.Notify)
	}
	var ie *simulation.InputError
	if _, err := Open(ctx, Options{Sim: true, World: simulation.Options{World: simulation.WorldOptions{VMs: 3, Mix: "nonsense"}}}); !errors.As(err, &ie) {
		t.Errorf("bad mix: %v", err)
	}
}
