package strategy

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/keys"
	"github.com/fixfleet/fixfleet/internal/memnet"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/probe"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/helperpool"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// The simulated clock runs this many times faster than the wall clock: a
// 30-minute repair takes about 0.2 s.
const speed = 10000

var (
	t0       = world.DefaultOrigin
	inc      = inventory.BuiltinIncidents()[inventory.CrowdStrike20240719]
	win2019  = inventory.WindowsVersion{Release: "2019", Build: "17763.6054"}
	img2019  = inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "0A62F411"}
	own      = inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "12345678"}
	testKey  = "000011-000022-000033-000044-000055-000066-000077-000088"
	testKeyI = "6F1C2A3B-0000-4000-8000-00000000AB01"
	password = "pw-sim-Secret!"
	badFile  = world.FileSpec{Name: "C-00000291-00000000-00000032.sys", Size: 41002, ModTime: inc.BadFrom, Header: inc.Header}
	goodFile = world.FileSpec{Name: "C-00000291-00000000-00000032.sys", Size: 41002, ModTime: inc.BadUntil.Add(10 * time.Minute), Header: "AAAAAAAA01002401"}
	preBk    = world.BackupSpec{ID: "bk-pre", Kind: "archive", TakenAt: time.Date(2024, 7, 19, 0, 0, 0, 0, time.UTC), SizeGB: 40}
	badBk    = world.BackupSpec{ID: "bk-bad", Kind: "archive", TakenAt: time.Date(2024, 7, 19, 4, 30, 0, 0, time.UTC), SizeGB: 40}
)

// vmKind is how a test VM starts.
type vmKind int

const (
	bootLoop     vmKind = iota // cycling, never recovers by itself
	safeMode                   // safe mode with networking, bad file present
	healthyVM                  // running normally, fixed file
	stoppedBad                 // powered off, bad file on its disk
	stoppedClean               // powered off, fixed file on its disk
	stoppedSafe                // powered off, bad file and the safe-boot flag on its disk
)

// spec describes one test VM.
type spec struct {
	n         int // 1..200: ID vm-n, disk disk-n, IP 10.0.0.n
	kind      vmKind
	identity  inventory.DiskIdentity
	bitlocker bool
	escrowed  bool
	hive      bool // hive damaged
	recoverAt int  // RecoverAfterBoots
	// silentSafe: WinRM is not listed under SafeBoot\Network (it does
	// not run in Safe Mode); badCreds: the guest's administrator password
	// is not guest_access's.
	silentSafe, badCreds bool
	// safeWinRM: a VM not in Safe Mode whose WinRM is listed under
	// SafeBoot\Network (it would answer there).
	safeWinRM bool
	window    int    // WinRMWindowSeconds: a crashing boot's WinRM answers this long
	stuck     int    // StuckAfterCrashes: it stops at the recovery screen after this many crashes
	zone      string // "" is is1a, the zone of the world's helper image
}

func (s spec) vmSpec() world.VMSpec {
	id := s.identity
	if id.IsZero() {
		id = own
	}
	c := world.ContentSpec{SizeGB: 40, Identity: id, HiveDamaged: s.hive}
	cond := world.ConditionSpec{WinRM: world.WinRMOpen, RecoverAfterBoots: s.recoverAt, WinRMWindowSeconds: s.window, SafeModeWinRM: s.safeWinRM, StuckAfterCrashes: s.stuck}
	power := inventory.PowerRunning
	switch s.kind {
	case healthyVM:
		c.Files = []world.FileSpec{goodFile}
	case stoppedClean:
		c.Files, power = []world.FileSpec{goodFile}, inventory.PowerStopped
	case stoppedBad:
		c.Files, power = []world.FileSpec{badFile}, inventory.PowerStopped
	case stoppedSafe:
		c.Files, c.SafeBootFlag, power = []world.FileSpec{badFile}, true, inventory.PowerStopped
	case safeMode:
		c.Files = []world.FileSpec{badFile}
		c.SafeBootFlag = true
		cond.SafeModeWinRM = !s.silentSafe // WinRM listed under SafeBoot\Network
	default:
		c.Files = []world.FileSpec{badFile}
	}
	if s.badCreds {
		cond.WinRM = world.WinRMBadCredentials
	}
	lastBoot := t0.Add(-time.Hour) // up and answering
	if s.kind == bootLoop {
		lastBoot = t0.Add(-20 * time.Second)
	}
	if s.bitlocker {
		c.BitLocker = &world.BitLockerSpec{KeyID: testKeyI, RecoveryKey: testKey, Escrowed: s.escrowed}
	}
	zone := s.zone
	if zone == "" {
		zone = "is1a"
	}
	return world.VMSpec{
		ID: fmt.Sprintf("vm-%d", s.n), Zone: zone, Windows: win2019, Power: power,
		BootCount: 10, LastBootAt: lastBoot, PrivateIP: fmt.Sprintf("10.0.0.%d", s.n),
		OSDisk:    &world.DiskSpec{ID: fmt.Sprintf("disk-%d", s.n), ContentSpec: c},
		Condition: cond,
		Backups:   []world.BackupSpec{backup(preBk, s.n), backup(badBk, s.n)},
	}
}

// fixture is a simulated world wired as cmd/fixfleet wires it.
type fixture struct {
	t    *testing.T
	w    *world.World
	clk  clock.Clock
	prov *providers.Provider
	pool *helperpool.Pool
	env  *step.Env
}

// newFixture is a fixture on the scaled clock, its guests' WinRM on
// loopback.
func newFixture(t *testing.T, specs ...spec) *fixture {
	t.Helper()
	return openFixture(t, false, specs...)
}

// newVirtualFixture is a fixture on virtual time, its guests' WinRM on an
// in-memory network: call it inside a synctest bubble (synctest.Test),
// where time moves only when every goroutine waits, so that a loaded
// machine cannot stretch a wait until a VM recovers or a deadline passes.
func newVirtualFixture(t *testing.T, specs ...spec) *fixture {
	t.Helper()
	return openFixture(t, true, specs...)
}

func openFixture(t *testing.T, virtual bool, specs ...spec) *fixture {
	t.Helper()
	sc := world.Scenario{
		Version: world.ScenarioVersion, Seed: 7, Incident: inventory.CrowdStrike20240719, Now: t0,
		Zones:       []string{"is1a", "is1b"},
		Images:      []world.ImageSpec{{Zone: "is1a", Release: "2019", Build: "17763.6054", ImageID: "img-2019", Identity: img2019}},
		GuestAccess: world.GuestAccessSpec{Username: "Administrator", Password: password},
		Faults:      world.Faults{Throttle: world.ThrottleOff}, ConsoleAvailable: true,
	}
	for _, s := range specs {
		sc.VMs = append(sc.VMs, s.vmSpec())
	}
	var clk clock.Clock = clock.NewScaled(t0, speed)
	if virtual {
		clk = clock.NewOffset(t0)
	}
	w, err := world.Load(sc, clk)
	if err != nil {
		t.Fatal(err)
	}
	var srv *winrmd.Server
	var copts guest.ClientOptions
	if virtual {
		mem := memnet.New()
		wl, err := mem.Listen("winrm.sim:5985")
		if err != nil {
			t.Fatal(err)
		}
		gl, err := mem.Listen("gateway.sim:3128")
		if err != nil {
			t.Fatal(err)
		}
		srv = winrmd.Serve(w, wl, gl, winrmd.Options{})
		copts.DialContext = (&guest.ConnectDialer{Proxy: srv.GatewayAddr(), DialProxy: mem.Dial}).DialContext
	} else {
		srv, err = winrmd.Start(w, winrmd.Options{})
		if err != nil {
			t.Fatal(err)
		}
		copts.Dial = guest.NewConnectDialer(srv.GatewayAddr())
	}
	t.Cleanup(func() { srv.Close() })
	client := guest.NewClient(copts)
	t.Cleanup(client.CloseIdleConnections)
	prov := sim.New(w, sim.Options{})
	creds := guest.Credentials{User: w.GuestUser(), Password: w.GuestPassword().Reveal()}
	ks, err := keys.FromSecrets(w.EscrowedKeys())
	if err != nil {
		t.Fatal(err)
	}
	pool, err := helperpool.New(prov.Helpers, helperpool.Options{RunID: "run-1", Observer: prov.Observer})
	if err != nil {
		t.Fatal(err)
	}
	prober := &probe.Prober{Incident: w.Incident(), Runner: client, Creds: creds, Clock: clk,
		EndpointsFor: func(inventory.VM) (probe.Endpoints, bool) { return prov.Guests, true }}
	env := &step.Env{
		RunID: "run-1", Account: providers.Account{Tenant: "sim", Name: "sim", Provider: "sim", Zones: w.Zones()},
		Provider: prov, Guest: client, Creds: creds, Keys: ks, Prober: prober, Helpers: pool, Clock: clk,
		Incident: w.Incident(), Policy: policy.Default(),
	}
	return &fixture{t: t, w: w, clk: clk, prov: prov, pool: pool, env: env}
}

// target builds vm-n's step target the way the planner would, from the
// provider's listing.
func (f *fixture) target(n int) *step.Target {
	f.t.Helper()
	vms, err := f.prov.Enumerator.List(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	id := fmt.Sprintf("vm-%d", n)
	for _, v := range vms {
		if v.ID != id {
			continue
		}
		v.Tenant, v.Account, v.Provider = "sim", "sim", "sim"
		// WindowSeen: as planned after the assessment saw a WinRM window
		// (race-the-boot then races unconditionally; see
		// TestRaceBootConditional for the other case).
		p := &step.Target{Key: v.Key(), Location: v.Location, ID: v.ID, Name: v.Name, Windows: v.Windows,
			OSDisk: v.OSDisk, Power: v.Power, HelperWindows: v.Windows, WindowSeen: true}
		if v.Power == inventory.PowerStopped {
			p.State = inventory.StateStopped // as the planner plans it
		}
		for _, b := range v.Backups {
			if b.TakenAt.Before(inc.StartedAt) {
				p.Backup = &b
			}
		}
		return p
	}
	f.t.Fatalf("no VM %s", id)
	return nil
}

// mutations are the control-plane calls that change something.
var mutations = []string{"StopVMs", "StartVMs", "RestartVM", "AttachDisk", "DetachDisk", "Snapshot", "DiskFromSnapshot", "RestoreBackup", "AcquireHelper", "ReleaseHelper", "SwapBootDisk", "DeleteDisk"}

func (f *fixture) mutationCount() map[string]int {
	c := f.w.Stats().Calls
	out := map[string]int{}
	for _, m := range mutations {
		out[m] = c[m]
	}
	return out
}

// runOpts say how the test runner runs a strategy.
type runOpts struct {
	twice     bool // run every step twice in a row
	stopAfter int  // stop (as if the process died) after this step index; -1: never
	noAbort   bool // do not call Abort on failure
}

// observational facts may differ between two runs of a step.
var observational = map[step.Fact]bool{FactCheckedAt: true, FactVerifiedAt: true, FactBootCount: true, FactPower: true, FactBootBefore: true, FactRestartedAt: true}

var errStopped = errors.New("runner stopped on purpose")

// runStep runs one step, retrying what the executor would retry, and
// telling a retry, as the executor does, that the attempt before may have
// acted (step.FactRerun).
func (f *fixture) runStep(ctx context.Context, st step.Step, vm *step.Target, facts step.Facts) (step.Facts, error) {
	var err error
	for i := 0; i < 20; i++ {
		var got step.Facts
		got, err = st.Run(ctx, f.env, vm, facts)
		if err == nil || !retryable(err) {
			return got, err
		}
		facts = facts.Merge(step.Facts{step.FactRerun: "true"})
		if serr := f.clk.Sleep(ctx, 20*time.Second); serr != nil {
			return nil, serr
		}
	}
	return nil, err
}

// run is a tiny sequential executor: steps in order, retryable errors
// retried, Abort on failure (not on ErrHealthy).
func (f *fixture) run(s step.Strategy, vm *step.Target, facts step.Facts, o runOpts) (step.Facts, error) {
	f.t.Helper()
	ctx := context.Background()
	if facts == nil {
		facts = step.Facts{}
	}
	for i, st := range s.Steps(vm, f.env.Policy) {
		if o.stopAfter >= 0 && i > o.stopAfter {
			return facts, errStopped
		}
		got, err := f.runStep(ctx, st, vm, facts)
		facts = facts.Merge(got)
		if err == nil && o.twice {
			before := f.mutationCount()
			var again step.Facts
			again, err = f.runStep(ctx, st, vm, facts)
			if after := f.mutationCount(); err == nil && fmt.Sprint(after) != fmt.Sprint(before) {
				f.t.Errorf("step %s run twice: second run changed the cloud: %v -> %v", st.Name, before, after)
			}
			for k, v := range again {
				if old, ok := got[k]; ok && old != v && !observational[k] {
					f.t.Errorf("step %s run twice: fact %s %q then %q", st.Name, k, old, v)
				}
			}
			facts = facts.Merge(again)
		}
		if err != nil {
			err = fmt.Errorf("step %s: %w", st.Name, err)
			if errors.Is(err, step.ErrHealthy) || o.noAbort {
				return facts, err
			}
			af, aerr := s.Abort(ctx, f.env, vm, facts)
			facts = facts.Merge(af)
			if aerr != nil {
				return facts, fmt.Errorf("%w; abort: %w", err, aerr)
			}
			return facts, err
		}
	}
	return facts, nil
}

// clean fails the test unless the referee's invariant counters are 0,
// once the pool has released its idle helpers, as a run does at its end.
func (f *fixture) clean() world.Audit {
	f.t.Helper()
	release := func() error { _, err := f.pool.ReleaseAll(context.Background(), false); return err }
	if err := retry(context.Background(), f.env, release); err != nil {
		f.t.Errorf("releasing the helpers: %v", err)
	}
	a := f.w.Audit()
	if !a.Clean() {
		f.t.Errorf("audit not clean: %+v\n%s", a.Invariants(), strings.Join(a.Violations(), "\n"))
	}
	return a
}

func (f *fixture) truth(n int) string {
	tr, _ := f.w.Truth(fmt.Sprintf("vm-%d", n))
	return tr
}

// waitTruth polls the referee until vm-n's truth is want or the limit
// passes (a VM that was just started needs minutes of simulated time).
func (f *fixture) waitTruth(n int, want string, limit time.Duration) string {
	deadline := f.clk.Now().Add(limit)
	for {
		tr := f.truth(n)
		if tr == want || f.clk.Now().After(deadline) {
			return tr
		}
		_ = f.clk.Sleep(context.Background(), 10*time.Second)
	}
}

// disk reads a disk's attachment.
func (f *fixture) disk(id string) providers.DiskState {
	f.t.Helper()
	ds, err := f.prov.Disks.Describe(context.Background(), providers.DiskRef{ID: id, Zone: "is1a"})
	if err != nil {
		f.t.Fatal(err)
	}
	return ds
}

func (f *fixture) power(n int) inventory.PowerState {
	f.t.Helper()
	m, err := f.prov.Observer.Observe(context.Background(), []providers.VMRef{{ID: fmt.Sprintf("vm-%d", n), Zone: "is1a"}})
	if err != nil {
		f.t.Fatal(err)
	}
	return m[fmt.Sprintf("vm-%d", n)].Power
}

// checkPower fails the test unless VM n's power is want; a VM started a
// moment ago may still be starting where running is wanted.
func (f *fixture) checkPower(t *testing.T, n int, want inventory.PowerState) {
	t.Helper()
	if p := f.power(n); p != want && !(want == inventory.PowerRunning && p == inventory.PowerStarting) {
		t.Errorf("power = %s, want %s", p, want)
	}
}

// noSecrets fails if a fact or error text holds a secret.
func noSecrets(t *testing.T, facts step.Facts, err error) {
	t.Helper()
	for _, sec := range []string{testKey, password} {
		for k, v := range facts {
			if strings.Contains(v, sec) {
				t.Errorf("fact %s holds a secret", k)
			}
		}
		if err != nil && strings.Contains(err.Error(), sec) {
			t.Errorf("error holds a secret: %v", err)
		}
	}
}

func stepIndex(t *testing.T, s step.Strategy, vm *step.Target, name string) int {
	t.Helper()
	for i, st := range s.Steps(vm, policy.Default()) {
		if st.Name == name {
			return i
		}
	}
	t.Fatalf("%s has no step %s", s.Name(), name)
	return -1
}

// newPool is a fresh helper pool over f's provider, as a new process makes.
func newPool(t *testing.T, f *fixture) *helperpool.Pool {
	t.Helper()
	pool, err := helperpool.New(f.prov.Helpers, helperpool.Options{RunID: "run-1", Observer: f.prov.Observer})
	if err != nil {
		t.Fatal(err)
	}
	return pool
}

func backup(b world.BackupSpec, n int) world.BackupSpec {
	b.ID = fmt.Sprintf("%s-%d", b.ID, n)
	return b
}

// abortAndCheck aborts s after a run of VM n (vm) that stopped early with
// facts: the disks the facts in gone name are deleted, disk boot is vm's
// OS disk, the VM runs and nothing is unbootable once it had time to boot, and a
// second abort succeeds.
func (f *fixture) abortAndCheck(t *testing.T, s step.Strategy, n int, vm *step.Target, facts step.Facts, boot string, gone ...step.Fact) {
	t.Helper()
	ctx := context.Background()
	af, err := s.Abort(ctx, f.env, vm, facts)
	if err != nil {
		t.Fatalf("abort: %v (facts %v)", err, af)
	}
	for _, k := range gone {
		if id := facts[k]; id != "" {
			if _, err := f.prov.Disks.Describe(ctx, providers.DiskRef{ID: id}); !errors.Is(err, providers.ErrNotFound) {
				t.Errorf("disk %s (%s) is still there after the abort: %v", id, k, err)
			}
		}
	}
	if ds := f.disk(boot); ds.AttachedTo != vm.ID || !ds.Boot {
		t.Errorf("disk %s is %+v, want the OS disk of %s", boot, ds, vm.ID)
	}
	if p := f.power(n); p != inventory.PowerRunning && p != inventory.PowerStarting {
		t.Errorf("power = %s", p)
	}
	f.clk.Sleep(ctx, BootWait)
	if a := f.clean(); len(a.Unbootable) > 0 {
		t.Errorf("unbootable: %v", a.Unbootable)
	}
	if _, err := s.Abort(ctx, f.env, vm, facts.Merge(af)); err != nil {
		t.Errorf("second abort: %v", err)
	}
}

// resumeAfter runs s on VM n (vm) until step after has ended, then, as a
// new process would (a new helper pool that knows nothing), from the facts
// to the end: the VM ends healthy.
func (f *fixture) resumeAfter(t *testing.T, s step.Strategy, n int, vm *step.Target, after string) {
	t.Helper()
	facts, err := f.run(s, vm, nil, runOpts{stopAfter: stepIndex(t, s, vm, after)})
	if !errors.Is(err, errStopped) {
		t.Fatalf("first run: %v", err)
	}
	f.pool = newPool(t, f)
	f.env.Helpers = f.pool
	facts, err = f.run(s, vm, facts, runOpts{stopAfter: -1})
	if err != nil && !errors.Is(err, step.ErrHealthy) {
		t.Fatalf("resumed run: %v (facts %v)", err, facts)
	}
	if tr := f.waitTruth(n, world.TruthHealthy, BootWait); tr != world.TruthHealthy {
		t.Errorf("truth = %s", tr)
	}
}
