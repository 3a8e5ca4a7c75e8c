package simapi_test

import (
	"testing"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/conformance"
	"github.com/fixfleet/fixfleet/providers/sim/simapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestConformance runs the provider conformance suite against the
// simulator's HTTP face: each scenario's world served on a loopback port
// (dropped connections really dropped), and the simapi client provider
// pointed at it, waiting on the world's own clock.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		Name:  "simapi",
		Lacks: []string{conformance.CapOSDiskSwap}, // an OS disk is detached, not swapped
		New: func(t *testing.T, w *world.World) *providers.Provider {
			srv, err := simapi.Start(w, "", "127.0.0.1:0", simapi.ServerOptions{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			p, err := simapi.NewProvider(srv.URL(), world.DefaultAccount, simapi.ClientOptions{Clock: w.Clock()})
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
	})
}
