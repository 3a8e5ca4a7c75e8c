package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/target"
	"github.com/fixfleet/fixfleet/simulation"
	"github.com/fixfleet/fixfleet/source"
)

// sourceOpts say where the fleet comes from: a fleet.yaml, or (--sim) the
// embedded simulated cloud.
type sourceOpts struct {
	src source.Options // Config, Sim, SimEndpoint, World and Strict from flags
	// consoleConfirmed is a file of VMs an operator saw crash-looping on
	// their consoles (see classify.ConsoleReports).
	consoleConfirmed string
	window           classify.AssessOptions // only Window and Samples are set from flags
	target           target.Flags
}

func (o *sourceOpts) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.src.Config, "config", "fleet.yaml", "fleet configuration file")
	fs.BoolVar(&o.src.Sim, "sim", false, "use the embedded simulated cloud instead of --config")
	fs.StringVar(&o.src.SimEndpoint, "sim-endpoint", "", "use the simulated world served at this URL (fixfleet sim serve)")
	fs.StringVar(&o.src.DrillClock, "drill-clock", "", "with --config: run on the clock of the world served at this URL (a drill against fixfleet sim serve --face)")
	addWorldFlags(fs, &o.src.World, 600)
	fs.DurationVar(&o.window.Window, "window", classify.DefaultWindow, "sampling window for boot loops (cloud time)")
	fs.StringVar(&o.consoleConfirmed, "console-confirmed", "", "file of VMs (ID or name, one per line, optional note) you saw crash-looping on their consoles: evidence the cloud's API may not give")
	fs.IntVar(&o.window.Samples, "samples", classify.DefaultSamples, "control-plane samples taken over the window")
	o.target.Add(fs)
	for _, n := range []string{"sim", "sim-endpoint", "drill-clock", "vms", "seed", "mix", "scenario", "no-console", "time-scale"} {
		_ = fs.MarkHidden(n) // simulator flags: listed by `fixfleet sim --help`
	}
	fs.BoolVar(&o.src.Strict, "strict", false, "fail (exit 3) when an account cannot be opened or listed, instead of skipping it (exit 7)")
}

// assessOptions are the assessment's options from the flags: the window,
// and the --console-confirmed file read.
func (o *sourceOpts) assessOptions() (fleet.AssessOptions, error) {
	a := fleet.AssessOptions{AssessOptions: o.window, Strict: o.src.Strict}
	if o.consoleConfirmed == "" {
		return a, nil
	}
	var err error
	if a.Reports, err = classify.LoadConsoleReports(o.consoleConfirmed); err != nil {
		return a, clihelp.BadInput(fmt.Errorf("--console-confirmed: %w", err))
	}
	return a, nil
}

// openFleet opens the fleet the options name (source.Open), its errors
// named by the flags that caused them. Close it when done with it.
func openFleet(ctx context.Context, o *sourceOpts) (*source.Opened, error) {
	sel, err := o.target.Selector()
	if err != nil {
		return nil, err
	}
	so := o.src
	so.Target, so.Getenv, so.Logger = sel, os.Getenv, slog.New(slog.NewTextHandler(os.Stderr, nil))
	src, err := source.Open(ctx, so)
	var ce *source.ConfigError
	switch {
	case errors.As(err, &ce) && errors.Is(err, os.ErrNotExist) && o.src.Config == "fleet.yaml":
		return nil, clihelp.BadInput(fmt.Errorf("%w\n(no fleet.yaml here: give one with --config FILE, or try the simulator with --sim)", ce.Err))
	case errors.As(err, &ce):
		return nil, clihelp.BadInput(ce.Err)
	case errors.As(err, new(*simulation.DialError)) && so.DrillClock != "": // beside a simulated world it is a ConfigError
		return nil, fmt.Errorf("--drill-clock %w", err)
	case errors.As(err, new(*simulation.DialError)):
		return nil, fmt.Errorf("--sim-endpoint %w", err)
	case err != nil:
		return nil, simInput(err, "--face")
	}
	return src, nil
}

// openAssessed reads the assessment's options from the flags, then opens
// the fleet they name (see assessOptions and openFleet).
func openAssessed(ctx context.Context, o *sourceOpts) (*source.Opened, fleet.AssessOptions, error) {
	ao, err := o.assessOptions()
	if err != nil {
		return nil, ao, err
	}
	f, err := openFleet(ctx, o)
	return f, ao, err
}
