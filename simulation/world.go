package simulation

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// WorldOptions choose a simulated world: generated from a size, a seed and
// a mix, or loaded from a scenario file (the format `sim export` prints).
type WorldOptions struct {
	VMs  int
	Seed int64
	// Mix is the share of each kind of VM in a generated world (""
	// means world.DefaultMixSpec).
	Mix string
	// Scenario, when set, is a scenario file to load instead of generating.
	Scenario  string
	NoConsole bool
	// Zones of a generated world (nil: the world's default, Sakura Cloud's
	// names; the aws face sets its own).
	Zones []string
}

// InputError is a bad option: Option names it as the demo's flag does
// (without dashes; "" when the error names what is wrong itself), Err says
// what is wrong.
type InputError struct {
	Option string
	Err    error
}

func (e *InputError) Error() string {
	if e.Option == "" {
		return e.Err.Error()
	}
	return e.Option + ": " + e.Err.Error()
}
func (e *InputError) Unwrap() error { return e.Err }

func badOption(option string, err error) error { return &InputError{Option: option, Err: err} }

// scenario returns the world's scenario: the file's, or a generated one.
func (o WorldOptions) scenario() (world.Scenario, error) {
	if o.Scenario != "" {
		f, err := os.Open(o.Scenario)
		if err != nil {
			return world.Scenario{}, badOption("scenario", err)
		}
		defer f.Close()
		sc, err := world.ParseScenario(f)
		if err != nil {
			return world.Scenario{}, badOption("scenario", fmt.Errorf("%s: %w", o.Scenario, err))
		}
		return sc, nil
	}
	spec := o.Mix
	if spec == "" {
		spec = world.DefaultMixSpec
	}
	mix, err := world.ParseMix(spec)
	if err != nil {
		return world.Scenario{}, badOption("mix", err)
	}
	sc, err := world.GenerateScenario(world.GenOptions{VMs: o.VMs, Seed: o.Seed, Mix: mix, NoConsole: o.NoConsole, Zones: o.Zones})
	if err != nil {
		return world.Scenario{}, badOption("", err)
	}
	return sc, nil
}

// Clock makes the clock a world runs on, from the scenario's own start.
type Clock func(origin time.Time) clock.Clock

// Scaled is the default Clock: the wall clock, factor times faster.
func Scaled(factor float64) Clock {
	return func(origin time.Time) clock.Clock { return clock.NewScaled(origin, factor) }
}

// Frozen is a Clock that stays at the scenario's start (to export the world
// as it is).
func Frozen(origin time.Time) clock.Clock { return world.NewManualClock(origin) }

// NewWorld builds the world o describes on the clock clk makes.
func NewWorld(o WorldOptions, clk Clock) (*world.World, error) {
	if clk == nil {
		return nil, errors.New("simulation: NewWorld needs a Clock")
	}
	sc, err := o.scenario()
	if err != nil {
		return nil, err
	}
	w, err := world.Load(sc, clk(sc.Now))
	if err != nil {
		return nil, badOption("", err)
	}
	return w, nil
}
