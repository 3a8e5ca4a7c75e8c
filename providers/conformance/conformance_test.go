package conformance_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/conformance"
	"github.com/fixfleet/fixfleet/providers/sim"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// brokenEnv names the contract breach TestBroken's provider commits; it is
// set only when TestSuiteCatchesBreaches runs this binary again.
const brokenEnv = "FIXFLEET_CONFORMANCE_BROKEN"

// breaches are deliberate contract violations, each wrapped around the sim
// provider, and the scenario that must catch it.
type breach struct {
	name     string
	scenario string
	wrap     func(p *providers.Provider)
}

func breaches() []breach {
	return []breach{
		{"list-shows-helpers", "list", func(p *providers.Provider) {
			p.Enumerator = listExtra{p.Enumerator}
		}},
		{"stop-does-not-wait", "stop-start-batch", func(p *providers.Provider) {
			p.Power = stopNoWait{p.Power}
		}},
		{"detach-not-idempotent", "detach-attach-roundtrip", func(p *providers.Provider) {
			p.Disks = detachTwiceFails{p.Disks}
		}},
		{"acquire-not-idempotent", "helper-acquire", func(p *providers.Provider) {
			p.Helpers = acquireAlwaysNew{Helpers: p.Helpers, n: new(int)}
		}},
		{"release-detaches-foreign-disks", "helper-release", func(p *providers.Provider) {
			p.Helpers = releaseForce{p.Helpers, p.Disks}
		}},
		{"not-found-unnamed", "not-found", func(p *providers.Provider) {
			p.Disks = describeUnnamed{p.Disks}
		}},
		{"raw-errors", "faults-classified", func(p *providers.Provider) {
			p.Observer = rawErrors{p.Observer}
		}},
	}
}

// TestBroken runs the suite against a sim provider with one breach. It is
// run only as a child of TestSuiteCatchesBreaches.
func TestBroken(t *testing.T) {
	name := os.Getenv(brokenEnv)
	if name == "" {
		t.Skip("run by TestSuiteCatchesBreaches")
	}
	for _, b := range breaches() {
		if b.name != name {
			continue
		}
		conformance.Run(t, conformance.Harness{Name: "broken-sim", New: func(t *testing.T, w *world.World) *providers.Provider {
			p := sim.New(w, sim.Options{})
			b.wrap(p)
			return p
		}}, b.scenario)
		return
	}
	t.Fatalf("no breach %q", name)
}

// TestSuiteCatchesBreaches checks that the suite fails each deliberately
// broken provider, in the scenario meant to catch it.
func TestSuiteCatchesBreaches(t *testing.T) {
	if os.Getenv(brokenEnv) != "" {
		t.Skip("child process")
	}
	for _, b := range breaches() {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^TestBroken$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), brokenEnv+"="+b.name)
			out, err := cmd.CombinedOutput()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("the suite passed a provider that breaks the contract (%v):\n%s", err, out)
			}
			if want := "--- FAIL: TestBroken/" + b.scenario; !strings.Contains(string(out), want) {
				t.Fatalf("output lacks %q:\n%s", want, out)
			}
		})
	}
}

type listExtra struct{ providers.Enumerator }

func (l listExtra) List(ctx context.Context) ([]inventory.VM, error) {
	vms, err := l.Enumerator.List(ctx)
	return append(vms, inventory.VM{Location: inventory.Location{Zone: "is1a"}, ID: "helper-00999"}), err
}

type stopNoWait struct{ providers.Power }

func (s stopNoWait) Stop(ctx context.Context, vms []providers.VMRef, force bool) error {
	short, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Power.Stop(short, vms, force); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return nil
}

type detachTwiceFails struct{ providers.Disks }

func (d detachTwiceFails) Detach(ctx context.Context, vm providers.VMRef, disk providers.DiskRef) error {
	st, err := d.Describe(ctx, disk)
	if err != nil {
		return err
	}
	if st.AttachedTo != vm.ID {
		return providers.Errorf(providers.ErrConflict, "Detach", "disk "+disk.ID, "not attached to %s", vm.ID)
	}
	return d.Disks.Detach(ctx, vm, disk)
}

type acquireAlwaysNew struct {
	providers.Helpers
	n *int
}

func (a acquireAlwaysNew) Acquire(ctx context.Context, zone string, win inventory.WindowsVersion, tags providers.Tags) (providers.VMRef, error) {
	*a.n++
	t := providers.Tags{"nonce": fmt.Sprint(*a.n)} // a new helper every call
	for k, v := range tags {
		t[k] = v
	}
	return a.Helpers.Acquire(ctx, zone, win, t)
}

type releaseForce struct {
	providers.Helpers
	disks providers.Disks
}

func (r releaseForce) Release(ctx context.Context, h providers.VMRef) error {
	err := r.Helpers.Release(ctx, h)
	if !errors.Is(err, providers.ErrConflict) {
		return err
	}
	ds, ferr := r.disks.FindDisks(ctx, providers.Tags{})
	if ferr != nil {
		return ferr
	}
	for _, d := range ds {
		if d.AttachedTo == h.ID && !d.Boot {
			if derr := r.disks.Detach(ctx, h, d.Ref); derr != nil {
				return derr
			}
		}
	}
	return r.Helpers.Release(ctx, h)
}

type describeUnnamed struct{ providers.Disks }

func (d describeUnnamed) Describe(ctx context.Context, ref providers.DiskRef) (providers.DiskState, error) {
	st, err := d.Disks.Describe(ctx, ref)
	if errors.Is(err, providers.ErrNotFound) {
		return st, providers.Errorf(providers.ErrNotFound, "Describe", "", "no such disk")
	}
	return st, err
}

type rawErrors struct{ providers.Observer }

func (r rawErrors) Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	sig, err := r.Observer.Observe(ctx, vms)
	if err != nil {
		return sig, fmt.Errorf("observe failed: %v", err) // the class is lost
	}
	return sig, nil
}

// realWorld is a generated world standing in for a real account.
func realWorld(t *testing.T) *world.World {
	t.Helper()
	w, err := world.Generate(world.GenOptions{VMs: 12, Seed: 3, Clock: world.NewManualClock(world.DefaultOrigin)})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// TestRunRealSkipsWithoutCredentials: with a variable missing, RunReal
// skips (naming the variables) and never opens the account.
func TestRunRealSkipsWithoutCredentials(t *testing.T) {
	opened := false
	var inner *testing.T
	t.Run("real", func(t *testing.T) {
		inner = t
		conformance.RunReal(t, conformance.Real{
			Name:   "sim-as-real",
			Env:    []string{"CONFORMANCE_TOKEN", "CONFORMANCE_SECRET"},
			Getenv: func(k string) string { return map[string]string{"CONFORMANCE_TOKEN": "x"}[k] },
			Open: func(context.Context, func(string) string) (*providers.Provider, error) {
				opened = true
				return nil, errors.New("must not be called")
			},
		})
	})
	if !inner.Skipped() || opened {
		t.Fatalf("skipped %v, opened %v; want a skip without opening", inner.Skipped(), opened)
	}
}

// TestRunReal runs the read-only scenarios against a world posing as a
// real account, with its variables set.
func TestRunReal(t *testing.T) {
	w := realWorld(t)
	conformance.RunReal(t, conformance.Real{
		Name:   "sim-as-real",
		Env:    []string{"CONFORMANCE_TOKEN"},
		Getenv: func(k string) string { return map[string]string{"CONFORMANCE_TOKEN": "x"}[k] },
		Open: func(_ context.Context, getenv func(string) string) (*providers.Provider, error) {
			if getenv("CONFORMANCE_TOKEN") != "x" {
				return nil, errors.New("no token")
			}
			return sim.New(w, sim.Options{}), nil
		},
		UnknownVM:   providers.VMRef{ID: "vm-99999", Zone: "is1a"},
		UnknownDisk: providers.DiskRef{ID: "disk-99999", Zone: "is1a"},
	})
}

// TestScenarioNames: names are unique, real scenarios read-only.
func TestScenarioNames(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range conformance.Scenarios() {
		if s.Name == "" || seen[s.Name] {
			t.Fatalf("scenario name %q empty or repeated", s.Name)
		}
		seen[s.Name] = true
	}
	for _, s := range conformance.RealScenarios() {
		if !s.ReadOnly {
			t.Fatalf("real scenario %s is not read-only", s.Name)
		}
	}
}

// TestScaledClock runs the suite on a scaled clock (the option for
// providers that wait in wall time), over the in-process sim provider.
func TestScaledClock(t *testing.T) {
	if testing.Short() {
		t.Skip("waits a few seconds of wall time in all")
	}
	conformance.Run(t, conformance.Harness{
		Name:  "sim-scaled",
		Lacks: []string{conformance.CapOSDiskSwap}, // an OS disk is detached, not swapped
		Scale: 5000,
		New: func(t *testing.T, w *world.World) *providers.Provider {
			return sim.New(w, sim.Options{})
		},
	})
}
