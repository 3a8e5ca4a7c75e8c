package main

import (
	"fmt"
	"os"

	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// worldOpts choose a simulated world: generated from a size, a seed and a
// mix, or loaded from a scenario file (the format `sim export` prints).
type worldOpts struct {
	// zones of a generated world (nil: the world's default, Sakura Cloud's
	// names); set by a cloud face that needs its own names.
	zones     []string
	vms       int
	seed      int64
	mix       string
	scenario  string
	noConsole bool
	timeScale float64
}

// addFlags adds the world flags; scale is the default --time-scale.
func (o *worldOpts) addFlags(fs *pflag.FlagSet, scale float64) {
	fs.IntVar(&o.vms, "vms", 100, "number of VMs in a generated world")
	fs.Int64Var(&o.seed, "seed", 1, "seed of a generated world (same seed, same world)")
	fs.StringVar(&o.mix, "mix", world.DefaultMixSpec, "share of each kind of VM in a generated world")
	fs.StringVar(&o.scenario, "scenario", "", "load the world from this scenario file instead of generating one")
	fs.BoolVar(&o.noConsole, "no-console", false, "simulate a cloud that shows no console text")
	fs.Float64Var(&o.timeScale, "time-scale", scale, "simulated seconds per wall-clock second")
}

// scenario returns the world's scenario: the file's, or a generated one.
func (o *worldOpts) load() (world.Scenario, error) {
	if o.scenario != "" {
		f, err := os.Open(o.scenario)
		if err != nil {
			return world.Scenario{}, badInput(fmt.Errorf("scenario: %w", err))
		}
		defer f.Close()
		sc, err := world.ParseScenario(f)
		if err != nil {
			return world.Scenario{}, badInput(fmt.Errorf("scenario %s: %w", o.scenario, err))
		}
		return sc, nil
	}
	mix, err := world.ParseMix(o.mix)
	if err != nil {
		return world.Scenario{}, badInput(fmt.Errorf("--mix: %w", err))
	}
	sc, err := world.GenerateScenario(world.GenOptions{VMs: o.vms, Seed: o.seed, Mix: mix, NoConsole: o.noConsole, Zones: o.zones})
	if err != nil {
		return world.Scenario{}, badInput(err)
	}
	return sc, nil
}

// open builds a running world on a scaled clock that starts at the
// scenario's own time. frozen stops its clock at that time instead (for
// exporting the world as it is).
func (o *worldOpts) open(frozen bool) (*world.World, error) {
	if o.timeScale <= 0 {
		return nil, badInput(fmt.Errorf("--time-scale: %v must be > 0", o.timeScale))
	}
	sc, err := o.load()
	if err != nil {
		return nil, err
	}
	var clk clock.Clock = clock.NewScaled(sc.Now, o.timeScale)
	if frozen {
		clk = world.NewManualClock(sc.Now)
	}
	w, err := world.Load(sc, clk)
	if err != nil {
		return nil, badInput(err)
	}
	return w, nil
}
