package world

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/memnet"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
)

// probeRun is one run of TestProbeOnVirtualTime's incident.
type probeRun struct {
	took, want time.Duration
	tries      int
	result     guest.ProbeResult
}

// TestProbeOnVirtualTime runs the world, the WinRM gateway and service
// (winrmd) and the real guest client (masterzen/winrm over net/http) on an
// in-memory network inside a synctest bubble: a VM that has just started
// is probed every 15 s until its guest answers. Virtual time makes the
// simulated duration exact (the first poll after the world's drawn boot
// time, plus the probe script's drawn time), and two runs identical.
func TestProbeOnVirtualTime(t *testing.T) {
	run := func(t *testing.T) probeRun {
		var out probeRun
		synctest.Test(t, func(t *testing.T) {
			v := vmSpec("1", own2019, goodFile)
			v.LastBootAt, v.BootCount = t0, 1
			w, err := Load(scenario(v), clock.NewOffset(t0))
			if err != nil {
				t.Fatal(err)
			}
			net := memnet.New()
			wl := must[*memnet.Listener](t)(net.Listen("winrm.sim:5985"))
			gl := must[*memnet.Listener](t)(net.Listen("gateway.sim:3128"))
			srv := winrmd.Serve(w, wl, gl, winrmd.Options{})
			dialer := &guest.ConnectDialer{Proxy: "gateway.sim:3128", DialProxy: net.Dial}
			c := guest.NewClient(guest.ClientOptions{DialContext: dialer.DialContext})
			defer func() {
				c.CloseIdleConnections()
				if err := srv.Close(); err != nil {
					t.Error(err)
				}
			}()

			clk := w.Clock()
			ep := must[providers.Endpoint](t)(w.GuestEndpoint(context.Background(), "sim", "vm-1"))
			creds := guest.Credentials{User: w.GuestUser(), Password: w.GuestPassword().Reveal()}
			const every = 15 * time.Second
			for {
				out.tries++
				r, err := c.Probe(context.Background(), ep, creds, guest.ProbeParams{Dir: inc.RelDirectory(), Pattern: inc.Pattern})
				if err == nil {
					out.result = r
					break
				}
				if !errors.Is(err, guest.ErrUnreachable) || out.tries > 100 {
					t.Fatalf("probe %d: %v", out.tries, err)
				}
				if err := clk.Sleep(context.Background(), every); err != nil {
					t.Fatal(err)
				}
			}
			out.took = clk.Now().Sub(t0)
			up := w.hashDur(timing.Of(timing.OpBootToWinRM), "vm-1", "up", 1)
			polls := (up + every - 1) / every
			out.want = polls*every + w.hashDur(timing.Of(timing.OpGuestScript), "vm-1", "guest-script", "probe", t0.Add(polls*every).UnixNano())
		})
		return out
	}
	a, b := run(t), run(t)
	if a.took != a.want {
		t.Errorf("probe took %v of simulated time, want exactly %v (first poll after boot + script)", a.took, a.want)
	}
	if a.took < 2*time.Minute || a.result.BootMode != inventory.BootNormal || a.result.OSRelease != "2019" || a.tries < 2 {
		t.Errorf("run %+v: want a probe of a booting 2019 VM that failed first", a)
	}
	if a.took != b.took || a.tries != b.tries || a.result.Hostname != b.result.Hostname {
		t.Errorf("two runs differ: %+v and %+v", a, b)
	}
	t.Logf("a boot and probe of %v simulated, %d tries", a.took, a.tries)
}

// TestSharedGuestDrawsIgnoreOrder: scripts that reach one machine (a
// helper serving several VMs) at the same instant take the same time
// whichever arrives first: their draws are keyed by what they are and when
// they start, not by a count of the machine's scripts.
func TestSharedGuestDrawsIgnoreOrder(t *testing.T) {
	took := func(t *testing.T, first, second string) map[string]time.Duration {
		out := map[string]time.Duration{}
		synctest.Test(t, func(t *testing.T) {
			t0 := time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)
			v := vmSpec("1", own2019, goodFile)
			v.LastBootAt, v.BootCount = t0.Add(-time.Hour), 1
			w, err := Load(scenario(v), clock.NewOffset(t0))
			if err != nil {
				t.Fatal(err)
			}
			m := &machine{w: w, id: "vm-1"}
			start := w.Clock().Now()
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, what := range []string{first, second} {
				wg.Go(func() {
					if err := m.run(context.Background(), what, func(*vm, time.Time) error { return nil }, nil); err != nil {
						t.Error(err)
					}
					mu.Lock()
					out[what] = w.Clock().Now().Sub(start)
					mu.Unlock()
				})
				synctest.Wait() // the first is asleep in its script before the second starts
			}
			wg.Wait()
		})
		return out
	}
	a, b := took(t, "online-disk 1", "online-disk 2"), took(t, "online-disk 2", "online-disk 1")
	if a["online-disk 1"] != b["online-disk 1"] || a["online-disk 2"] != b["online-disk 2"] {
		t.Errorf("the order of arrival changed the scripts' times: %v, then %v", a, b)
	}
}
