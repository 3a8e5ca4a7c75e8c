package sim_test

import (
	"testing"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/conformance"
	"github.com/fixfleet/fixfleet/providers/sim"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestConformance runs the provider conformance suite against the
// in-process simulator provider, directly over each scenario's world.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		Name:  "sim",
		Lacks: []string{conformance.CapOSDiskSwap}, // an OS disk is detached, not swapped
		New: func(t *testing.T, w *world.World) *providers.Provider {
			return sim.New(w, sim.Options{})
		},
	})
}
