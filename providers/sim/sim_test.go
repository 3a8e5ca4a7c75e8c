package sim_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

var (
	ctx     = context.Background()
	t0      = world.DefaultOrigin
	win2019 = inventory.WindowsVersion{Release: "2019"}
	inc     = inventory.BuiltinIncidents()[inventory.CrowdStrike20240719]
)

func vmSpec(n string, power inventory.PowerState) world.VMSpec {
	return world.VMSpec{
		ID: "vm-" + n, Zone: "is1a", Windows: win2019, Power: power, LastBootAt: t0.Add(-time.Hour),
		PrivateIP: "10.0.0." + n,
		OSDisk: &world.DiskSpec{ID: "disk-" + n, ContentSpec: world.ContentSpec{SizeGB: 40,
			Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "0000000" + n},
			Files:    []world.FileSpec{{Name: "C-00000291-00000000-00000032.sys", Size: 1, ModTime: inc.BadFrom, Header: inc.Header}}}},
		Condition: world.ConditionSpec{WinRM: world.WinRMOpen},
		Backups:   []world.BackupSpec{{ID: "bk-" + n, Kind: "archive", TakenAt: t0.Add(-6 * time.Hour), SizeGB: 40}},
	}
}

func newSim(t *testing.T, vms ...world.VMSpec) (*world.World, *providers.Provider) {
	t.Helper()
	sc := world.Scenario{
		Version: world.ScenarioVersion, Seed: 1, Incident: inventory.CrowdStrike20240719, Now: t0,
		Zones:       []string{"is1a", "is1b"},
		Images:      []world.ImageSpec{{Zone: "is1a", Release: "2019", ImageID: "img-1", Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "0A62F411"}}},
		GuestAccess: world.GuestAccessSpec{Username: "Administrator", Password: "pw"}, ConsoleAvailable: true,
		Faults: world.DefaultFaults(),
		VMs:    vms,
	}
	w, err := world.Load(sc, world.NewManualClock(t0))
	if err != nil {
		t.Fatal(err)
	}
	return w, sim.New(w, sim.Options{})
}

func ref(n string) providers.VMRef { return providers.VMRef{ID: "vm-" + n, Zone: "is1a"} }
func ok(t *testing.T, err error)   { t.Helper(); must(t, err) }
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
func is(t *testing.T, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("error %v, want %v", err, class)
	}
}

func TestDropAfterThenRetry(t *testing.T) {
	w, p := newSim(t, vmSpec("1", inventory.PowerRunning))
	must(t, w.SetFaults(world.Faults{Throttle: world.ThrottleOff, DropAfterRate: 1}))
	err := p.Power.Stop(ctx, []providers.VMRef{ref("1")}, true)
	is(t, err, providers.ErrUnavailable)
	must(t, w.SetFaults(world.DefaultFaults()))
	ok(t, p.Power.Stop(ctx, []providers.VMRef{ref("1")}, true)) // the retry finds it stopping
	sigs, err := p.Observer.Observe(ctx, []providers.VMRef{ref("1")})
	must(t, err)
	if sigs["vm-1"].Power != inventory.PowerStopped {
		t.Fatalf("power %s", sigs["vm-1"].Power)
	}
	if w.Stats().Injected != 1 {
		t.Fatalf("stats %+v", w.Stats())
	}
}

func TestSpec(t *testing.T) {
	w, _ := newSim(t, vmSpec("1", inventory.PowerRunning))
	reg := providers.NewRegistry()
	must(t, reg.Register(sim.Name, sim.Spec(w)))
	opts := func(s string) *yaml.Node {
		var n yaml.Node
		must(t, yaml.Unmarshal([]byte(s), &n))
		return &n
	}
	for _, tc := range []struct {
		name string
		a    providers.Account
		want string
	}{
		{"ok", providers.Account{Provider: "sim", Zones: []string{"is1a"}}, ""},
		{"ok with account", providers.Account{Provider: "sim", Options: opts("account: sim")}, ""},
		{"bad zone", providers.Account{Provider: "sim", Zones: []string{"us-east-1a"}}, "is1a, is1b"},
		{"unknown key", providers.Account{Provider: "sim", Options: opts("acount: sim")}, "valid keys are account"},
		{"unknown account", providers.Account{Provider: "sim", Options: opts("account: acme")}, "accounts are sim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := reg.Validate(tc.a)
			if tc.want == "" {
				must(t, err)
				p, err := reg.Open(ctx, tc.a, providers.Env{})
				must(t, err)
				if _, err := p.Enumerator.List(ctx); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestConsoleAvailability(t *testing.T) {
	for _, noConsole := range []bool{false, true} {
		clk := world.NewManualClock(t0)
		w, err := world.Generate(world.GenOptions{VMs: 20, Seed: 2, Clock: clk, NoConsole: noConsole})
		must(t, err)
		p := sim.New(w, sim.Options{})
		vms, err := p.Enumerator.List(ctx)
		must(t, err)
		refs := make([]providers.VMRef, len(vms))
		for i, v := range vms {
			refs[i] = providers.Ref(v)
		}
		sigs, err := p.Observer.Observe(ctx, refs)
		must(t, err)
		any := false
		for _, s := range sigs {
			if s.ConsoleAvailable == noConsole || (noConsole && s.Console != "") {
				t.Fatalf("noConsole=%v: %+v", noConsole, s)
			}
			any = any || s.Console != ""
		}
		if !noConsole && !any {
			t.Fatal("no console text at all")
		}
	}
}

// TestConcurrent runs many callers on a fast scaled clock, for the race
// detector; it asserts no durations.
func TestConcurrent(t *testing.T) {
	clk := clock.NewScaled(t0, 50000)
	f := world.Faults{Throttle: world.ThrottleOff, Latency: 1, ErrorRate: 0.05}
	w, err := world.Generate(world.GenOptions{VMs: 200, Seed: 3, Clock: clk, Faults: &f})
	must(t, err)
	p := sim.New(w, sim.Options{})
	vms, err := p.Enumerator.List(ctx)
	for err != nil {
		vms, err = p.Enumerator.List(ctx)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(vms); i += 8 {
				r := providers.Ref(vms[i])
				_, _ = p.Observer.Observe(ctx, []providers.VMRef{r})
				if vms[i].Power == inventory.PowerStopped {
					_ = p.Power.Start(ctx, []providers.VMRef{r})
				}
				_, _ = p.Backups.List(ctx, r)
			}
		}()
	}
	wg.Wait()
	_ = w.Audit()
	_ = w.Export()
}

// TestEveryWorldCallPaced: the provider paces each control-plane call the
// world counts, so a burst of helper acquisitions (a find, then a create,
// each its own call) is never refused by the world's bucket.
func TestEveryWorldCallPaced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		sc := world.Scenario{
			Version: world.ScenarioVersion, Seed: 1, Incident: inventory.CrowdStrike20240719, Now: t0,
			Zones:       []string{"is1a"},
			Images:      []world.ImageSpec{{Zone: "is1a", Release: "2019", ImageID: "img-1", Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "0A62F411"}}},
			GuestAccess: world.GuestAccessSpec{Username: "Administrator", Password: "pw"},
			Faults:      world.DefaultFaults(),
			VMs:         []world.VMSpec{vmSpec("1", inventory.PowerRunning)},
		}
		w, err := world.Load(sc, clock.NewOffset(t0))
		must(t, err)
		p := sim.New(w, sim.Options{})
		var wg sync.WaitGroup
		for i := range 30 {
			wg.Go(func() {
				tags := providers.Tags{providers.TagRun: "r", providers.TagVM: fmt.Sprintf("vm-%02d", i)}
				if _, err := p.Helpers.Acquire(ctx, "is1a", win2019, tags); err != nil {
					t.Errorf("Acquire %d: %v", i, err)
				}
			})
		}
		wg.Wait()
		if st := w.Stats(); st.Throttled != 0 || st.Calls["CreateHelper"] != 30 {
			t.Errorf("throttled %d, CreateHelper calls %d: want 0 and 30", st.Throttled, st.Calls["CreateHelper"])
		}
	})
}

// TestPowerBatched: concurrent Stops (and Starts) go out as one call; a
// batch refused because of one caller's VM (it no longer exists) leaves
// the other callers to stop their own VMs alone; each caller returns once
// its own VM is stopped (running).
func TestPowerBatched(t *testing.T) {
	tests := []struct {
		name           string
		missing        bool // a third caller asks about a VM that does not exist
		wantStopCalls  int
		wantStartCalls int
	}{
		{"merged", false, 1, 1},
		{"refused batch, then alone", true, 4, 4}, // the batch, then each caller alone
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				sc := world.Scenario{
					Version: world.ScenarioVersion, Seed: 1, Incident: inventory.CrowdStrike20240719, Now: t0,
					Zones:       []string{"is1a"},
					GuestAccess: world.GuestAccessSpec{Username: "Administrator", Password: "pw"},
					Faults:      world.Faults{Throttle: world.ThrottleOff},
					VMs:         []world.VMSpec{vmSpec("1", inventory.PowerRunning), vmSpec("2", inventory.PowerRunning)},
				}
				w, err := world.Load(sc, clock.NewOffset(t0))
				must(t, err)
				p := sim.New(w, sim.Options{})
				callers := []string{"1", "2"}
				if tt.missing {
					callers = append(callers, "9")
				}
				for _, op := range []struct {
					call func([]providers.VMRef) error
					want inventory.PowerState
				}{
					{func(vms []providers.VMRef) error { return p.Power.Stop(ctx, vms, true) }, inventory.PowerStopped},
					{func(vms []providers.VMRef) error { return p.Power.Start(ctx, vms) }, inventory.PowerRunning},
				} {
					var wg sync.WaitGroup
					for _, n := range callers {
						wg.Go(func() {
							err := op.call([]providers.VMRef{ref(n)})
							if (err != nil) != (n == "9") {
								t.Errorf("vm-%s: %v", n, err)
							}
							if err != nil {
								return
							}
							sigs, err := p.Observer.Observe(ctx, []providers.VMRef{ref(n)})
							if err != nil {
								t.Error(err)
								return
							}
							if got := sigs["vm-"+n].Power; got != op.want {
								t.Errorf("vm-%s is %s when its call returns, want %s", n, got, op.want)
							}
						})
					}
					wg.Wait()
				}
				if st := w.Stats(); st.Calls["StopVMs"] != tt.wantStopCalls || st.Calls["StartVMs"] != tt.wantStartCalls {
					t.Errorf("StopVMs %d, StartVMs %d calls; want %d, %d", st.Calls["StopVMs"], st.Calls["StartVMs"], tt.wantStopCalls, tt.wantStartCalls)
				}
			})
		})
	}
}
