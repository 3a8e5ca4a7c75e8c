package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/config"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/notify"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/azure"
	"github.com/fixfleet/fixfleet/providers/sakura"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/target"
	"github.com/fixfleet/fixfleet/simulation"
)

// sourceOpts say where the fleet comes from: a fleet.yaml, or (--sim) the
// embedded simulated cloud.
type sourceOpts struct {
	config      string
	sim         bool
	simEndpoint string
	// consoleConfirmed is a file of VMs an operator saw crash-looping on
	// their consoles (see classify.ConsoleReports).
	consoleConfirmed string
	world            worldOpts
	window           classify.AssessOptions // only Window and Samples are set from flags
	strict           bool
	// notify gets fleet.yaml's notify targets (apply's --notify adds to them).
	notify *notifyOpts
	target target.Flags
}

func (o *sourceOpts) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.config, "config", "fleet.yaml", "fleet configuration file")
	fs.BoolVar(&o.sim, "sim", false, "use the embedded simulated cloud instead of --config")
	fs.StringVar(&o.simEndpoint, "sim-endpoint", "", "use the simulated world served at this URL (fixfleet sim serve)")
	o.world.addFlags(fs, 600)
	fs.DurationVar(&o.window.Window, "window", classify.DefaultWindow, "sampling window for boot loops (cloud time)")
	fs.StringVar(&o.consoleConfirmed, "console-confirmed", "", "file of VMs (ID or name, one per line, optional note) you saw crash-looping on their consoles: evidence the cloud's API may not give")
	fs.IntVar(&o.window.Samples, "samples", classify.DefaultSamples, "control-plane samples taken over the window")
	o.target.Add(fs)
	for _, n := range []string{"sim", "sim-endpoint", "vms", "seed", "mix", "scenario", "no-console", "time-scale"} {
		_ = fs.MarkHidden(n) // simulator flags: listed by `fixfleet sim --help`
	}
	fs.BoolVar(&o.strict, "strict", false, "fail (exit 3) when an account cannot be opened or listed, instead of skipping it (exit 7)")
}

// assessOptions are the assessment's options from the flags: the window,
// and the --console-confirmed file read.
func (o *sourceOpts) assessOptions() (fleet.AssessOptions, error) {
	a := fleet.AssessOptions{AssessOptions: o.window, Strict: o.strict}
	if o.consoleConfirmed == "" {
		return a, nil
	}
	var err error
	if a.Reports, err = classify.LoadConsoleReports(o.consoleConfirmed); err != nil {
		return a, badInput(fmt.Errorf("--console-confirmed: %w", err))
	}
	return a, nil
}

// openFleet opens the fleet the options name. Call the returned close when
// done with it.
func openFleet(ctx context.Context, o *sourceOpts) (*fleet.Fleet, func(), error) {
	sel, err := o.target.Selector()
	if err != nil {
		return nil, nil, err
	}
	if !(o.sim || o.simEndpoint != "" || o.world.Scenario != "") {
		f, err := openConfigFleet(ctx, o, sel)
		if err != nil {
			return nil, nil, err
		}
		return f, f.Close, nil
	}
	f, closeFleet, err := openSimFleet(ctx, o)
	if err == nil {
		if err = f.Select(sel); err != nil {
			closeFleet()
		}
	}
	return f, closeFleet, err
}

// openAssessed reads the assessment's options from the flags, then opens
// the fleet they name (see assessOptions and openFleet).
func openAssessed(ctx context.Context, o *sourceOpts) (*fleet.Fleet, fleet.AssessOptions, func(), error) {
	ao, err := o.assessOptions()
	if err != nil {
		return nil, ao, nil, err
	}
	f, closeFleet, err := openFleet(ctx, o)
	return f, ao, closeFleet, err
}

// newRegistry lists the cloud provider kinds this build knows, for
// fleet.yaml. (The simulator is not a fleet.yaml provider: its clock runs
// faster than a real account's.)
func newRegistry() *providers.Registry {
	reg := providers.NewRegistry()
	// Names are constant and distinct: Register cannot fail here.
	_ = reg.Register("sakura", sakura.Spec())
	_ = reg.Register(aws.Name, aws.Spec())
	_ = reg.Register(azure.Name, azure.Spec())
	return reg
}

func openConfigFleet(ctx context.Context, o *sourceOpts, sel target.Selector) (*fleet.Fleet, error) {
	reg := newRegistry()
	cfg, err := config.Load(o.config, reg, os.Getenv)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && o.config == "fleet.yaml" {
			err = fmt.Errorf("%w\n(no fleet.yaml here: give one with --config FILE, or try the simulator with --sim)", err)
		}
		return nil, badInput(err)
	}
	pol, err := policy.Parse(cfg.PolicyNode)
	if err != nil {
		return nil, badInput(fmt.Errorf("%s: %w", cfg.File, err))
	}
	if o.notify != nil {
		o.notify.config = notify.FromConfig(cfg.Notify)
	}
	fc := fleet.Config{
		Incident: cfg.Incident, Policy: pol, Registry: reg, Accounts: cfg.Accounts(),
		Env: providers.Env{Getenv: os.Getenv, Clock: clock.Real{}, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}, Keys: cfg.Keys, Guest: fleet.GuestFromConfig(cfg.Guest), Strict: o.strict, Target: sel,
	}
	return fleet.Open(ctx, fc)
}

// openSimFleet opens the fleet of a simulated world: served elsewhere
// (--sim-endpoint), or built here from the world flags.
func openSimFleet(ctx context.Context, o *sourceOpts) (*fleet.Fleet, func(), error) {
	var b *simulation.Backend
	var err error
	if o.simEndpoint != "" {
		if b, err = simulation.Dial(ctx, o.simEndpoint); err != nil {
			return nil, nil, fmt.Errorf("--sim-endpoint %w", err)
		}
	} else if b, err = simulation.Open(o.world.options()); err != nil {
		return nil, nil, simInput(err, "--face")
	}
	f, err := b.OpenFleet(ctx)
	if err != nil {
		b.Close()
		return nil, nil, err
	}
	return f, func() { f.Close(); b.Close() }, nil
}
