package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/simulation"
)

// worldOpts choose a simulated world (see simulation.WorldOptions) and the
// speed of its clock.
type worldOpts struct {
	simulation.WorldOptions
	timeScale float64
}

// addFlags adds the world flags; scale is the default --time-scale.
func (o *worldOpts) addFlags(fs *pflag.FlagSet, scale float64) {
	fs.IntVar(&o.VMs, "vms", 100, "number of VMs in a generated world")
	fs.Int64Var(&o.Seed, "seed", 1, "seed of a generated world (same seed, same world)")
	fs.StringVar(&o.Mix, "mix", world.DefaultMixSpec, "share of each kind of VM in a generated world")
	fs.StringVar(&o.Scenario, "scenario", "", "load the world from this scenario file instead of generating one")
	fs.BoolVar(&o.NoConsole, "no-console", false, "simulate a cloud that shows no console text")
	fs.Float64Var(&o.timeScale, "time-scale", scale, "simulated seconds per wall-clock second")
}

// options are the simulation options of the world flags, on the
// simulator's own face with the world's own faults.
func (o *worldOpts) options() simulation.Options {
	return simulation.Options{World: o.WorldOptions, TimeScale: o.timeScale}
}

// simInput turns a simulation option error into a usage error naming the
// flag (faceFlag for the face: --provider or --face).
func simInput(err error, faceFlag string) error {
	var ie *simulation.InputError
	switch {
	case !errors.As(err, &ie):
		return err
	case ie.Option == "":
		return clihelp.BadInput(err)
	case ie.Option == "face":
		return clihelp.BadInput(fmt.Errorf("%s %w", faceFlag, ie.Err))
	}
	return clihelp.BadInput(fmt.Errorf("--%s: %w", ie.Option, ie.Err))
}
