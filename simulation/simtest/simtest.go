// Package simtest runs simulated incidents on virtual time, for tests and
// the incident benchmark: inside a testing/synctest bubble, over an
// in-memory network (internal/memnet), with the world on clock.NewOffset.
// Time then advances only when every goroutine of the incident is durably
// blocked, so simulated waits cost no wall time and the orchestrator's CPU
// costs no simulated time: the same seed gives the same incident.
//
// simulation itself knows nothing of bubbles; this package only chooses
// its clock and network and opens the bubble (synctest.Test needs a
// *testing.T).
package simtest

import (
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/simulation"
)

// Virtual returns o set to run on virtual time: an offset clock and a
// fresh in-memory network. Open the backend inside a bubble.
func Virtual(o simulation.Options) simulation.Options { return simulation.Virtual(o) }

// InBubble opens the backend o describes on virtual time inside a
// synctest bubble, calls fn with it, and closes it. Every goroutine the
// incident started must have ended by then (synctest.Test fails the test
// otherwise). A backend that cannot be opened fails the test.
func InBubble(t *testing.T, o simulation.Options, fn func(t *testing.T, b *simulation.Backend)) {
	t.Helper()
	synctest.Test(t, func(t *testing.T) {
		b, err := simulation.Open(Virtual(o))
		if err != nil {
			t.Fatalf("opening the simulated world: %v", err)
		}
		defer b.Close()
		fn(t, b)
	})
}

// Run runs the incident o describes on virtual time and returns its
// summary, with WallSec the wall time it took. An incident that could not
// be run fails the test.
func Run(t *testing.T, o simulation.RunOptions) simulation.Summary {
	t.Helper()
	var s simulation.Summary
	start := time.Now()
	InBubble(t, o.Options, func(t *testing.T, b *simulation.Backend) {
		var err error
		if s, err = b.Run(context.Background(), o); err != nil {
			t.Fatalf("incident: %v", err)
		}
	})
	s.WallSec = time.Since(start).Seconds()
	return s
}
