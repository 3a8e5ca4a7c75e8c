package simulation

import (
	"fmt"
	"time"

	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Faults are a simulated world's faults, as the demo's flags set them.
type Faults struct {
	// ErrorRate is the share of API calls answered with a 5xx; DropBefore
	// and DropAfter the shares whose connection drops before, or after,
	// the change was applied.
	ErrorRate  float64
	DropBefore float64
	DropAfter  float64
	// Throttle is the API throttling model: off, simple or ec2.
	Throttle string
	// Latency scales API latency (0 none, 1 calibrated).
	Latency float64
	// GuestError, GuestDropBefore, GuestDropAfter and GuestSlow are the
	// shares of guest scripts that fail in the guest before their effect,
	// whose connection drops before they run, whose reply is lost after
	// their effect, and that run several times slower.
	GuestError, GuestDropBefore, GuestDropAfter, GuestSlow float64
	// AsyncFail is the share of accepted attaches and detaches that fail
	// when they complete.
	AsyncFail float64
	// OutageFor, when > 0, is a control-plane outage that starts OutageAt
	// (simulated) after ScheduleOutage is called.
	OutageAt  time.Duration
	OutageFor time.Duration
}

// DefaultFaults are the demo's defaults: no errors, simple throttling,
// calibrated latency.
func DefaultFaults() Faults { return Faults{Throttle: "simple", Latency: 1} }

// apply sets the fault rates on w (not the outage: see scheduleOutage).
func (o Faults) apply(w *world.World) error {
	f := w.Faults()
	f.ErrorRate, f.DropBeforeRate, f.DropAfterRate, f.Throttle, f.Latency = o.ErrorRate, o.DropBefore, o.DropAfter, o.Throttle, o.Latency
	f.GuestErrorRate, f.GuestDropBeforeRate, f.GuestDropAfterRate, f.GuestSlowRate = o.GuestError, o.GuestDropBefore, o.GuestDropAfter, o.GuestSlow
	f.AsyncFailRate = o.AsyncFail
	return o.set(w, f)
}

// scheduleOutage adds the outage, if any, starting OutageAt from now.
func (o Faults) scheduleOutage(w *world.World) error {
	if o.OutageFor <= 0 {
		return nil
	}
	f := w.Faults()
	start := w.Clock().Now().Add(o.OutageAt)
	f.Outages = append(f.Outages, world.Outage{From: start, Until: start.Add(o.OutageFor)})
	return o.set(w, f)
}

func (o Faults) set(w *world.World, f world.Faults) error {
	if err := w.SetFaults(f); err != nil {
		return badOption("", fmt.Errorf("fault options: %w", err))
	}
	return nil
}
