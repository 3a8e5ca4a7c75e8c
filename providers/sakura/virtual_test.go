package sakura_test

import (
	"context"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/memnet"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sakura"
	"github.com/fixfleet/fixfleet/providers/sim/sakuraapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// virtualRun is what one run of TestVirtualTime observes.
type virtualRun struct {
	listed          int
	stopped, booted time.Duration // simulated time of Stop, then of Start
	calls           map[string]int
}

// TestVirtualTime drives the real provider (iaas-api-go and its HTTP
// stack) against the Sakura emulator over an in-memory network inside a
// synctest bubble, on a generated world with calibrated API latency and
// throttling: list the fleet, stop three broken VMs, start them again. The
// simulated durations are exact (two runs agree to the nanosecond) and
// within the world's table; the wall time is the CPU's.
func TestVirtualTime(t *testing.T) {
	run := func(t *testing.T) virtualRun {
		var out virtualRun
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			w, err := world.Generate(world.GenOptions{VMs: 12, Seed: 5, Clock: clock.NewOffset(world.DefaultOrigin)})
			if err != nil {
				t.Fatal(err)
			}
			mn := memnet.New()
			ln, err := mn.Listen("secure.sakura.sim:80")
			if err != nil {
				t.Fatal(err)
			}
			srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: sakuraapi.New(w, sakuraapi.Options{})}}
			srv.Start()
			srv.Client().Transport.(*http.Transport).Dial = func(network, addr string) (net.Conn, error) {
				return mn.Dial(ctx, network, addr)
			}
			defer srv.Close()

			p := openVia(t, w, srv)
			clk := w.Clock()
			vms, err := p.Enumerator.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out.listed = len(vms)
			var refs []providers.VMRef
			for _, v := range w.Export().VMs {
				if tr, _ := w.Truth(v.ID); tr != world.TruthHealthy && len(refs) < 3 {
					refs = append(refs, providers.VMRef{ID: sakuraapi.ID(v.ID), Zone: v.Zone})
				}
			}
			if len(refs) != 3 {
				t.Fatalf("want 3 broken VMs, have %d", len(refs))
			}
			t0 := clk.Now()
			if err := p.Power.Stop(ctx, refs, true); err != nil {
				t.Fatal(err)
			}
			t1 := clk.Now()
			if err := p.Power.Start(ctx, refs); err != nil {
				t.Fatal(err)
			}
			out.stopped, out.booted = t1.Sub(t0), clk.Now().Sub(t1)
			out.calls = w.Stats().Calls
		})
		return out
	}
	a, b := run(t), run(t)
	if a.listed != 12 {
		t.Errorf("listed %d VMs, want 12", a.listed)
	}
	stop, start := timing.Of(timing.OpStop), timing.Of(timing.OpStart)
	if a.stopped < stop.Min || a.stopped > stop.Max+time.Minute || a.booted < start.Min || a.booted > start.Max+time.Minute {
		t.Errorf("stop took %v (table %v–%v), start %v (table %v–%v), plus at most a minute of polls and calls",
			a.stopped, stop.Min, stop.Max, a.booted, start.Min, start.Max)
	}
	if a.stopped != b.stopped || a.booted != b.booted || !maps.Equal(a.calls, b.calls) {
		t.Errorf("two runs differ:\n%+v\n%+v", a, b)
	}
	t.Logf("stop %v, start %v simulated; calls %v", a.stopped, a.booted, fmt.Sprint(slices.Sorted(maps.Keys(a.calls))))
}

// openVia opens the provider on the emulator served by srv.
func openVia(t *testing.T, w *world.World, srv *httptest.Server) *providers.Provider {
	t.Helper()
	env := providers.Env{Clock: w.Clock(), Getenv: func(k string) string {
		switch k {
		case sakura.EnvAccessToken:
			return world.DefaultAccount
		case sakura.EnvAccessTokenSecret:
			return "emulator-secret"
		}
		return ""
	}}
	a := providers.Account{Tenant: world.DefaultAccount, Name: world.DefaultAccount, Provider: sakura.Name, Zones: w.Zones(),
		Options: emulatorOptions(t, srv.URL+sakuraapi.Root)}
	p, err := sakura.OpenVia(context.Background(), a, env, srv)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
