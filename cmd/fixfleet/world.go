package main

import (
	"errors"
	"fmt"

	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/simulation"
)

// addWorldFlags binds a simulated world's choice (see
// simulation.WorldOptions) and the speed of its clock to flags; scale is
// the default --time-scale.
func addWorldFlags(fs *pflag.FlagSet, o *simulation.Options, scale float64) {
	fs.IntVar(&o.World.VMs, "vms", 100, "number of VMs in a generated world")
	fs.Int64Var(&o.World.Seed, "seed", 1, "seed of a generated world (same seed, same world)")
	fs.StringVar(&o.World.Mix, "mix", world.DefaultMixSpec, "share of each kind of VM in a generated world")
	fs.StringVar(&o.World.Scenario, "scenario", "", "load the world from this scenario file instead of generating one")
	fs.BoolVar(&o.World.NoConsole, "no-console", false, "simulate a cloud that shows no console text")
	fs.Float64Var(&o.TimeScale, "time-scale", scale, "simulated seconds per wall-clock second")
}

// simInput turns a simulation option error into a usage error naming the
// flag (faceFlag for the face: --provider or --face; the face's and the
// listen address's messages start with their value).
func simInput(err error, faceFlag string) error {
	var ie *simulation.InputError
	switch {
	case !errors.As(err, &ie):
		return err
	case ie.Option == "":
		return clihelp.BadInput(err)
	case ie.Option == "face":
		return clihelp.BadInput(fmt.Errorf("%s %w", faceFlag, ie.Err))
	case ie.Option == "listen":
		return clihelp.BadInput(fmt.Errorf("--listen %w", ie.Err))
	}
	return clihelp.BadInput(fmt.Errorf("--%s: %w", ie.Option, ie.Err))
}
