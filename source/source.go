// Package source opens the fleet a command acts on: fleet.yaml's accounts
// through the cloud providers this build knows, or a simulated world
// (generated or loaded here, or served by another process). It is the
// CLI's provider wiring: besides the providers themselves and simulation,
// the one package that links the cloud SDKs.
package source

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/config"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/azure"
	"github.com/fixfleet/fixfleet/providers/sakura"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/target"
	"github.com/fixfleet/fixfleet/simulation"
)

// Options name where a fleet comes from: a simulated world when Sim,
// SimEndpoint or World's scenario says so, fleet.yaml otherwise.
type Options struct {
	// Config is the fleet.yaml file.
	Config string
	// Sim opens a simulated world built here from World; SimEndpoint (a
	// URL printed by `fixfleet sim serve`) one served by another process.
	Sim         bool
	SimEndpoint string
	World       simulation.Options
	// DrillClock, for fleet.yaml only, is the URL of a world served by
	// `fixfleet sim serve --face F --drill-dir D` whose fleet.yaml Config
	// is: the fleet then runs on that world's clock instead of the real
	// one, so that a drill's waits pass at the world's pace.
	DrillClock string
	// Strict fails on the first account that cannot be opened instead of
	// skipping it (fleet.Config.Strict).
	Strict bool
	// Target selects the accounts opened and the VMs assessed.
	Target target.Selector
	// Getenv reads the environment fleet.yaml refers to; Logger receives
	// the providers' logs. Both are needed for fleet.yaml only.
	Getenv func(string) string
	Logger *slog.Logger
}

// Simulated reports whether o names a simulated world.
func (o Options) Simulated() bool {
	return o.Sim || o.SimEndpoint != "" || o.World.World.Scenario != ""
}

// Opened is an opened fleet and what its source said beside it.
type Opened struct {
	*fleet.Fleet
	// Notify are fleet.yaml's chat webhooks (none for a simulated world).
	Notify []config.Webhook
	close  func()
}

// Close closes the fleet and, for a simulated world, the world. Call it
// once, when done with the fleet.
func (o *Opened) Close() { o.close() }

// ConfigError is fleet.yaml (or its policy) that cannot be read or is
// wrong: the operator fixes the file. Err names the file.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Registry lists the cloud provider kinds this build knows, for
// fleet.yaml. (The simulator is not a fleet.yaml provider: its clock runs
// faster than a real account's.)
func Registry() *providers.Registry {
	reg := providers.NewRegistry()
	// Names are constant and distinct: Register cannot fail here.
	_ = reg.Register("sakura", sakura.Spec())
	_ = reg.Register(aws.Name, aws.Spec())
	_ = reg.Register(azure.Name, azure.Spec())
	return reg
}

// Open opens the fleet o names. Errors: a *ConfigError for fleet.yaml or
// its policy (or a DrillClock beside a simulated world), a
// *simulation.DialError for an unreachable SimEndpoint or DrillClock, a
// *simulation.InputError for a world's bad options, a *target.Error for
// a selection that names no account; fleet.Open's otherwise.
func Open(ctx context.Context, o Options) (*Opened, error) {
	if o.Simulated() {
		if o.DrillClock != "" {
			return nil, &ConfigError{errors.New("--drill-clock is for a fleet.yaml drill (--config): a simulated world opened with --sim, --sim-endpoint or --scenario runs on its own clock")}
		}
		return openSim(ctx, o)
	}
	reg := Registry()
	cfg, err := config.Load(o.Config, reg, o.Getenv)
	if err != nil {
		return nil, &ConfigError{err}
	}
	pol, err := policy.Parse(cfg.PolicyNode)
	if err != nil {
		return nil, &ConfigError{fmt.Errorf("%s: %w", cfg.File, err)}
	}
	var clk clock.Clock = clock.Real{}
	closeClock := func() {}
	if o.DrillClock != "" {
		b, err := simulation.Dial(ctx, o.DrillClock)
		if err != nil {
			return nil, err
		}
		clk, closeClock = b.Clock(), b.Close
	}
	f, err := fleet.Open(ctx, fleet.Config{
		Incident: cfg.Incident, Policy: pol, Registry: reg, Accounts: cfg.Accounts(),
		Env:  providers.Env{Getenv: o.Getenv, Clock: clk, Logger: o.Logger},
		Keys: cfg.Keys, Guest: fleet.GuestFromConfig(cfg.Guest), Strict: o.Strict, Target: o.Target,
	})
	if err != nil {
		closeClock()
		return nil, err
	}
	return &Opened{Fleet: f, Notify: cfg.Notify, close: func() { f.Close(); closeClock() }}, nil
}

// openSim opens the fleet of a simulated world: served elsewhere
// (SimEndpoint), or built here from World; then selects o.Target.
func openSim(ctx context.Context, o Options) (*Opened, error) {
	var b *simulation.Backend
	var err error
	if o.SimEndpoint != "" {
		if b, err = simulation.Dial(ctx, o.SimEndpoint); err != nil {
			return nil, err
		}
	} else if b, err = simulation.Open(o.World); err != nil {
		return nil, err
	}
	f, err := b.OpenFleet(ctx)
	if err == nil {
		err = f.Select(o.Target)
	}
	if err != nil {
		if f != nil {
			f.Close()
		}
		b.Close()
		return nil, err
	}
	return &Opened{Fleet: f, close: func() { f.Close(); b.Close() }}, nil
}
