// Package conformance is the one suite every provider passes against its
// emulator: the same scenarios, checked against the simulated world's own
// state and its referee, whatever cloud face the provider speaks through.
//
// A provider's test file describes how to build the provider under test on
// a world (a Harness) and calls Run. The simulator's HTTP face, for one:
//
//	func TestConformance(t *testing.T) {
//		conformance.Run(t, conformance.Harness{
//			Name: "simapi",
//			New: func(t *testing.T, w *world.World) *providers.Provider {
//				srv, err := simapi.Start(w, "", "127.0.0.1:0", simapi.ServerOptions{})
//				if err != nil {
//					t.Fatal(err)
//				}
//				t.Cleanup(func() { _ = srv.Close() })
//				p, err := simapi.NewProvider(srv.URL(), world.DefaultAccount,
//					simapi.ClientOptions{Clock: w.Clock()})
//				if err != nil {
//					t.Fatal(err)
//				}
//				return p
//			},
//		})
//	}
//
// A cloud's emulator adds its own naming: Harness.World sets the zones and
// accounts (AWS availability zones and account numbers), Harness.Account
// the account the provider acts as, and Harness.ID how the emulator shows
// a world ID ("vm-00001" as an instance ID, say).
//
// Run generates a fresh small world per scenario (world.Generate with a
// seed the suite chooses, on a world.ManualClock unless Harness.Scale asks
// for a scaled one), asks the harness for a provider on it, runs the
// scenario as a subtest, and at the end checks the referee: every invariant
// counter of world.Audit stays 0 (no healthy VM touched, no disk lost, no
// identity changed, no unverified return, no foreign script).
//
// RunReal runs the read-only scenarios against a real account, and only
// when the environment variables that configure it are set; otherwise it
// skips, saying which variables would enable it.
package conformance

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Capability names, as providers.Provider.Capabilities reports them.
const (
	CapEnumerate = "enumerate"
	CapObserve   = "observe"
	CapGuest     = "guest"
	CapPower     = "power"
	CapDisks     = "disks"
	// CapOSDiskDetach and CapOSDiskSwap say how a stopped VM's OS disk is
	// changed: detached and attached, or swapped (providers.OSDiskSwapper).
	CapOSDiskDetach = "os-disk-detach"
	CapOSDiskSwap   = "os-disk-swap"
	CapBackups      = "backups"
	CapHelpers      = "helpers"
	// CapCopyDelete: Disks deletes the copies a run made
	// (providers.CopyDeleter).
	CapCopyDelete = "copy-delete"
	// CapCrossZoneCopy: Disks.FromSnapshot makes a disk in another zone of
	// the snapshot's region (not providers.ZoneBoundSnapshots).
	CapCrossZoneCopy = "cross-zone-copy"
)

// AllCapabilities lists every capability of the contract, in the order
// providers.Provider.Capabilities reports them.
func AllCapabilities() []string {
	return []string{CapEnumerate, CapObserve, CapGuest, CapPower, CapDisks, CapOSDiskDetach, CapOSDiskSwap, CapCopyDelete, CapCrossZoneCopy, CapBackups, CapHelpers}
}

// Harness says how to build one provider under test on a simulated world.
type Harness struct {
	// Name names the provider in failure messages.
	Name string
	// New builds the provider under test over w, acting as the world
	// account the suite reports by Account (Harness.Account, or the first
	// of the generated world's accounts). It is called once per scenario,
	// on a fresh world, and must fail t itself if it cannot build one. A
	// server it starts (a loopback emulator of the cloud's wire API) is
	// stopped with t.Cleanup. The provider must wait on w.Clock() (or a
	// clock at the same pace): on the default ManualClock, sleeping on it
	// advances simulated time at once.
	New func(t *testing.T, w *world.World) *providers.Provider
	// World adjusts the generation options after the suite's defaults:
	// typically Zones and Accounts in the cloud's own naming (AWS
	// availability zones, account numbers). The suite's defaults are 48
	// VMs over the zones world.DefaultZones and the accounts
	// world.DefaultAccount and "conformance-other", no throttling and
	// calibrated latency. Keep at least two zones. Leave Clock, Seed and
	// Faults alone: the suite owns them.
	World func(o *world.GenOptions)
	// Account is the world account the provider acts as (default: the
	// first of the generated world's accounts).
	Account string
	// ID translates a world resource ID (VM "vm-00001", disk "disk-00001",
	// backup "bk-00001-1", image "img-…", snapshot "snap-…") into the ID
	// the provider shows for it. nil: the same ID.
	ID func(worldID string) string
	// ImageID is the ID the provider shows for a world helper image, for
	// clouds whose images are not per zone (an EC2 AMI is its region's).
	// nil: ID(im.ImageID).
	ImageID func(im world.ImageSpec) string
	// Lacks lists the capabilities the provider deliberately lacks (see
	// AllCapabilities). Scenarios needing one of them are skipped; a
	// capability missing but not declared here fails the capabilities
	// scenario.
	Lacks []string
	// Scale runs the world on clock.NewScaled(origin, Scale) instead of the
	// default world.ManualClock, for providers that must wait in wall time
	// (SDK waiters). Use a big factor (1000 or more) to keep tests fast.
	Scale float64
	// Timeout bounds each scenario in wall time (default 2 minutes).
	Timeout time.Duration
	// Serial runs the scenarios one after the other instead of in parallel.
	Serial bool
}

// Scenario is one conformance check.
type Scenario struct {
	// Name is the subtest's name.
	Name string
	// Needs lists the capabilities the scenario exercises; it is skipped
	// on a provider that declares one of them in Harness.Lacks.
	Needs []string
	// ReadOnly marks a scenario that changes nothing in the cloud; only
	// those run against a real account (RunReal).
	ReadOnly bool
	run      func(e *env)     // against a simulated world
	runReal  func(e *realEnv) // against a real account (read-only ones)
}

// Scenarios lists the suite's scenarios, in the order Run runs them.
func Scenarios() []Scenario { return scenarios() }

// RealScenarios lists the read-only scenarios RunReal runs.
func RealScenarios() []Scenario { return realScenarios() }

// Run runs every scenario (or only the named ones, for debugging a single
// scenario; a name that matches none fails) as a subtest of t, each on a
// fresh world with the provider h.New builds on it.
func Run(t *testing.T, h Harness, only ...string) {
	t.Helper()
	if h.New == nil {
		t.Fatal("conformance: Harness.New is required")
	}
	if h.Name == "" {
		h.Name = "provider"
	}
	for _, c := range h.Lacks {
		if !slices.Contains(AllCapabilities(), c) {
			t.Fatalf("conformance: Harness.Lacks: unknown capability %q; capabilities are %s", c, strings.Join(AllCapabilities(), ", "))
		}
	}
	sel, err := selectScenarios(scenarios(), only)
	if err != nil {
		t.Fatal(err)
	}
	opts, err := chooseWorld(h)
	if err != nil {
		t.Fatalf("conformance: %v", err)
	}
	for _, sc := range sel {
		t.Run(sc.Name, func(t *testing.T) {
			if !h.Serial {
				t.Parallel()
			}
			for _, c := range sc.Needs {
				if slices.Contains(h.Lacks, c) {
					t.Skipf("%s lacks the %s capability (Harness.Lacks)", h.Name, c)
				}
			}
			e := newEnv(t, h, opts)
			sc.run(e)
			e.checkAudit()
		})
	}
}

func selectScenarios(all []Scenario, only []string) ([]Scenario, error) {
	if len(only) == 0 {
		return all, nil
	}
	var out []Scenario
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
		if slices.Contains(only, s.Name) {
			out = append(out, s)
		}
	}
	for _, o := range only {
		if !slices.Contains(names, o) {
			return nil, fmt.Errorf("conformance: no scenario %q; scenarios are %s", o, strings.Join(names, ", "))
		}
	}
	return out, nil
}

// newClock returns the clock a scenario's world runs on.
func newClock(h Harness, origin time.Time) (clock.Clock, *world.ManualClock) {
	if h.Scale > 0 {
		return clock.NewScaled(origin, h.Scale), nil
	}
	m := world.NewManualClock(origin)
	return m, m
}

// Real describes a real account to run the read-only scenarios against.
type Real struct {
	// Name names the provider in messages.
	Name string
	// Env lists the environment variables that must all be set for the
	// run to happen (credentials, region); when one is missing, RunReal
	// skips and names them.
	Env []string
	// Open connects to the account. getenv reads the environment.
	Open func(ctx context.Context, getenv func(string) string) (*providers.Provider, error)
	// UnknownDisk is a well-formed disk reference that does not exist in
	// the account (e.g. "vol-0000000000000000f" in its region).
	UnknownDisk providers.DiskRef
	// UnknownVM is a well-formed VM reference that does not exist.
	UnknownVM providers.VMRef
	// MaxVMs bounds how many VMs are observed and have their backups
	// listed (default 20): a real fleet may be large.
	MaxVMs int
	// Getenv reads the environment (default os.Getenv; tests override).
	Getenv func(string) string
	// Timeout bounds each scenario (default 5 minutes).
	Timeout time.Duration
}

// RunReal runs the read-only scenarios (enumerate, observe, images,
// backups list, describe not-found; or only the named ones) against a
// real account when every variable of r.Env is set, and otherwise skips t
// with a message naming the variables that would enable it.
func RunReal(t *testing.T, r Real, only ...string) {
	t.Helper()
	getenv := r.Getenv
	if getenv == nil {
		getenv = os.Getenv
	}
	var missing []string
	for _, k := range r.Env {
		if getenv(k) == "" {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		t.Skipf("conformance against a real %s account: set %s to run it (missing: %s)",
			r.Name, strings.Join(r.Env, ", "), strings.Join(missing, ", "))
	}
	if r.Open == nil {
		t.Fatal("conformance: Real.Open is required")
	}
	sel, err := selectScenarios(realScenarios(), only)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range sel {
		t.Run(sc.Name, func(t *testing.T) {
			timeout := r.Timeout
			if timeout <= 0 {
				timeout = 5 * time.Minute
			}
			ctx, cancel := context.WithTimeout(t.Context(), timeout)
			defer cancel()
			p, err := r.Open(ctx, getenv)
			if err != nil {
				t.Fatalf("opening the %s account: %v", r.Name, err)
			}
			for _, c := range sc.Needs {
				if !slices.Contains(p.Capabilities(), c) {
					t.Skipf("%s lacks the %s capability", r.Name, c)
				}
			}
			sc.runReal(&realEnv{t: t, ctx: ctx, p: p, r: r})
		})
	}
}
