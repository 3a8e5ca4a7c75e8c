package strategy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

func TestRegistry(t *testing.T) {
	reg := Default()
	if got := reg.Names(); !slices.Equal(got, policy.Strategies) {
		t.Fatalf("Default().Names() = %v, want the policy's default order %v", got, policy.Strategies)
	}
	for _, name := range policy.Strategies {
		s, ok := byName(name)
		if !ok || s.Name() != name {
			t.Errorf("Get(%s) = %v, %v", name, s, ok)
			continue
		}
		seen := map[string]bool{}
		for _, st := range s.Steps(&planFixture, policy.Default()) {
			if seen[st.Name] {
				t.Errorf("%s: step %s twice", name, st.Name)
			}
			seen[st.Name] = true
		}
		if len(s.Applies()) == 0 {
			t.Errorf("%s applies to no state", name)
		}
	}
	if _, ok := byName("format-disk"); ok {
		t.Error("Get accepted an unknown strategy")
	}
	if _, err := NewRegistry(RebootRetry{}, RebootRetry{}); err == nil {
		t.Error("NewRegistry accepted a strategy registered twice")
	}
	ex := reg.Executable()
	ex[policy.RebootRetry] = nil
	if reg.Executable()[policy.RebootRetry] == nil {
		t.Error("Executable returned a shared map")
	}
}

// TestStepMarks: the steps that only read are marked read-only, and every
// step that changes the VM is not.
func TestStepMarks(t *testing.T) {
	readOnly := map[string]bool{"recheck": true, "snapshot": true, "copy-source": true, "snapshot-copy": true, "verify": true, "verify-identity": true, "prepare": true, "conclude-stopped": true}
	stopped := planFixture
	stopped.State, stopped.Power = inventory.StateStopped, inventory.PowerStopped
	start := policy.Default()
	start.StoppedVMs = policy.StoppedStart
	for _, u := range Default().All() {
		for _, tg := range []struct {
			vm  *step.Target
			pol policy.Policy
		}{{&planFixture, policy.Default()}, {&stopped, policy.Default()}, {&stopped, start}} {
			for _, st := range u.Steps(tg.vm, tg.pol) {
				want := readOnly[st.Name] || strings.HasPrefix(st.Name, "wait-")
				if st.ReadOnly != want {
					t.Errorf("%s/%s: ReadOnly = %v, want %v", u.Name(), st.Name, st.ReadOnly, want)
				}
			}
		}
	}
}

// TestRepairs runs each strategy on its kind of VM, end to end.
// repairCase is one case of TestRepairs.
type repairCase struct {
	name      string
	spec      spec
	strat     policy.Strategy
	maxRst    int
	want      error // nil: the strategy succeeds
	errHas    string
	wantTruth string
	// blind: the cloud shows power and boot history only (no
	// reachability check, console text or screenshot); uncounted: nor
	// boot history, as Sakura does without its screen.
	blind, uncounted bool
	check            func(t *testing.T, f *fixture, facts step.Facts)
}

// blindObserver is an Observer showing power and boot history only, or
// power only when uncounted.
type blindObserver struct {
	providers.Observer
	uncounted bool
}

func (o blindObserver) Observe(ctx context.Context, refs []providers.VMRef) (map[string]inventory.Signals, error) {
	m, err := o.Observer.Observe(ctx, refs)
	for id, s := range m {
		s.InstanceReachable, s.Console, s.ConsoleAvailable = nil, "", false
		if o.uncounted {
			s.BootCount, s.LastBootAt = nil, time.Time{}
		}
		m[id] = s
	}
	return m, err
}

func TestRepairs(t *testing.T) {
	t.Parallel()
	cases := []repairCase{
		{name: "reboot-retry recovers", spec: spec{n: 1, recoverAt: 11}, strat: policy.RebootRetry, want: step.ErrHealthy, wantTruth: world.TruthHealthy},
		{name: "reboot-retry gives up", spec: spec{n: 2}, strat: policy.RebootRetry, maxRst: 2, want: step.ErrStrategyFailed, wantTruth: world.TruthBootLoop,
			errHas: "its screen shows the boot after the last restart crashing", // not BootWait run out
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				// A crash loop resets by itself: no restart call.
				if facts[FactSelfResets] != "2" || f.mutationCount()["RestartVM"] != 0 {
					t.Errorf("self_resets %q, RestartVM calls %d: want 2 and 0", facts[FactSelfResets], f.mutationCount()["RestartVM"])
				}
			}},
		{name: "reboot-retry at a recovery screen restarts it", spec: spec{n: 20, stuck: 1}, strat: policy.RebootRetry, maxRst: 2, want: step.ErrStrategyFailed,
			wantTruth: world.TruthBootLoop,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactSelfResets] != "" || f.mutationCount()["RestartVM"] != 2 {
					t.Errorf("self_resets %q, RestartVM calls %d: want none and 2", facts[FactSelfResets], f.mutationCount()["RestartVM"])
				}
			}},
		{name: "reboot-retry on a cloud that shows neither console text nor boots restarts it", spec: spec{n: 21}, strat: policy.RebootRetry, maxRst: 2,
			blind: true, uncounted: true, want: step.ErrStrategyFailed, wantTruth: world.TruthBootLoop,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactSelfResets] != "" || f.mutationCount()["RestartVM"] != 2 {
					t.Errorf("self_resets %q, RestartVM calls %d: want none and 2", facts[FactSelfResets], f.mutationCount()["RestartVM"])
				}
			}},
		{name: "reboot-retry on a cloud without console text that counts boots: the boots after the first restart are the VM's own",
			spec: spec{n: 23}, strat: policy.RebootRetry, maxRst: 3, blind: true, want: step.ErrStrategyFailed, wantTruth: world.TruthBootLoop,
			errHas: "the cloud counted a boot after the one the last restart began",
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				// The first wait ends when the counter shows a boot after
				// the watched one (not after BootWait); the next restarts
				// count the VM's own boots.
				if facts[FactSelfResets] != "2" || f.mutationCount()["RestartVM"] != 1 || facts[FactBootOverAt] == "" {
					t.Errorf("self_resets %q, RestartVM calls %d, boot_over_at %q: want 2, 1 and a time", facts[FactSelfResets], f.mutationCount()["RestartVM"], facts[FactBootOverAt])
				}
			}},
		{name: "delete-file", spec: spec{n: 3, kind: safeMode}, strat: policy.DeleteFile, wantTruth: world.TruthHealthy,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactDeleted] != "1" || facts[FactSnapshotID] == "" || facts[FactSafeBootWasSet] != "true" {
					t.Errorf("facts = %v", facts)
				}
			}},
		{name: "delete-file on a boot-looping VM", spec: spec{n: 4}, strat: policy.DeleteFile, want: step.ErrStrategyFailed, wantTruth: world.TruthBootLoop},
		{name: "helper-mount", spec: spec{n: 5}, strat: policy.HelperMount, wantTruth: world.TruthHealthy,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactIdentityChanged] != "false" || facts[FactIdentityOriginal] != "mbr:12345678" {
					t.Errorf("facts = %v", facts)
				}
			}},
		{name: "helper-mount, identity collision", spec: spec{n: 6, identity: img2019}, strat: policy.HelperMount, wantTruth: world.TruthHealthy,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactIdentityChanged] != "true" || facts[FactIdentityVerified] != "mbr:0A62F411" || facts[FactIdentityAfterOnline] == facts[FactIdentityOriginal] {
					t.Errorf("facts = %v", facts)
				}
			}},
		{name: "helper-mount, safe-mode VM", spec: spec{n: 7, kind: safeMode, identity: img2019}, strat: policy.HelperMount, wantTruth: world.TruthHealthy,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactSafeBootCleared] != "true" {
					t.Errorf("the safe-boot flag was not cleared offline: facts = %v", facts)
				}
			}},
		{name: "helper-mount, safe-mode VM whose WinRM does not run in Safe Mode", spec: spec{n: 17, kind: safeMode, silentSafe: true, identity: img2019},
			strat: policy.HelperMount, wantTruth: world.TruthHealthy,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactSafeBootCleared] != "true" {
					t.Errorf("the safe-boot flag was not cleared offline: facts = %v", facts)
				}
			}},
		{name: "helper-mount, silent safe-mode VM with other credentials: repaired, verified by the console",
			spec:  spec{n: 18, kind: safeMode, silentSafe: true, badCreds: true, identity: img2019},
			strat: policy.HelperMount, wantTruth: world.TruthHealthy,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if v := facts[FactVerifiedBy]; !strings.HasPrefix(v, "console: serving") || !strings.Contains(v, "rejected the credentials") {
					t.Errorf("verified_by = %q, want the console's serving verdict", v)
				}
			}},
		{name: "helper-mount, silent safe-mode VM with other credentials on a blind cloud: repaired, left to a person, not undone",
			spec: spec{n: 19, kind: safeMode, silentSafe: true, badCreds: true, identity: img2019}, blind: true,
			strat: policy.HelperMount, want: step.ErrNeedsPerson, errHas: "its console does not show it serving", wantTruth: world.TruthHealthy},
		{name: "helper-mount, BitLocker with key", spec: spec{n: 8, identity: img2019, bitlocker: true, escrowed: true}, strat: policy.HelperMount, wantTruth: world.TruthHealthy,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactUnlocked] != "true" {
					t.Errorf("facts = %v", facts)
				}
			}},
		{name: "helper-mount, BitLocker without key", spec: spec{n: 9, identity: img2019, bitlocker: true}, strat: policy.HelperMount, want: step.ErrStrategyFailed, wantTruth: world.TruthBootLoop,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if ds := f.disk("disk-9"); ds.AttachedTo != "vm-9" || !ds.Boot {
					t.Errorf("after abort disk-9 is %+v, want the boot disk of vm-9", ds)
				}
			}},
		{name: "helper-mount, damaged hive", spec: spec{n: 10, identity: img2019, hive: true}, strat: policy.HelperMount, want: step.ErrStrategyFailed, wantTruth: world.TruthBootLoop,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if ds := f.disk("disk-10"); ds.AttachedTo != "vm-10" || !ds.Boot {
					t.Errorf("after abort disk-10 is %+v", ds)
				}
				if facts[FactDeleted] != "1" {
					t.Errorf("facts = %v", facts)
				}
				// It cannot boot: left off for restore-backup, not started.
				f.checkPower(t, 10, inventory.PowerStopped)
				if !strings.Contains(facts[FactAbort], "left powered off: its registry hives are damaged") {
					t.Errorf("abort fact %q does not say why the VM is off", facts[FactAbort])
				}
			}},
		{name: "safe-mode-boot, BitLocker without key, WinRM in Safe Mode", spec: spec{n: 15, identity: img2019, bitlocker: true, safeWinRM: true},
			strat: policy.SafeModeBoot, wantTruth: world.TruthHealthy,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactSafeBootSet] != "true" || facts[FactInSafeMode] == "" || facts[FactDeleted] != "1" || facts[FactSafeBootWasSet] != "true" ||
					facts[FactIdentityChanged] != "true" || facts[FactUnlocked] != "" {
					t.Errorf("facts = %v", facts)
				}
			}},
		{name: "safe-mode-boot, WinRM silent in Safe Mode: left in Safe Mode for a person", spec: spec{n: 16, identity: img2019, bitlocker: true},
			strat: policy.SafeModeBoot, want: step.ErrStrategyFailed, errHas: `3m0s after its screen showed the Safe Mode desktop (it is not listed under HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot\Network)`,
			wantTruth: world.TruthSafeMode,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if ds := f.disk("disk-16"); ds.AttachedTo != "vm-16" || !ds.Boot {
					t.Errorf("after abort disk-16 is %+v, want the boot disk of vm-16", ds)
				}
				if !strings.Contains(facts[FactAbort], "set to start Safe Mode with Networking; the VM was powered on") {
					t.Errorf("abort fact %q does not say the VM starts Safe Mode", facts[FactAbort])
				}
			}},
		{name: "safe-mode-boot, WinRM silent in Safe Mode, a cloud that shows no screen: BootWait", spec: spec{n: 22, identity: img2019, bitlocker: true}, blind: true,
			strat: policy.SafeModeBoot, want: step.ErrStrategyFailed, errHas: "does not answer there within " + BootWait.String(), wantTruth: world.TruthSafeMode},
		{name: "race-the-boot without a window", spec: spec{n: 13}, strat: policy.RaceBoot, want: step.ErrStrategyFailed, wantTruth: world.TruthBootLoop,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactRaceBoots] != "3" || facts[FactDeleted] != "" {
					t.Errorf("facts = %v", facts)
				}
			}},
		{name: "race-the-boot, damaged hive: the recovery screen ends the verify", spec: spec{n: 14, hive: true, window: 300}, strat: policy.RaceBoot,
			want: step.ErrStrategyFailed, errHas: "its screen shows the boot crashing or at a recovery screen", wantTruth: world.TruthBootLoop,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if facts[FactDeleted] != "1" {
					t.Errorf("facts = %v", facts)
				}
			}},
		{name: "restore-backup", spec: spec{n: 11, identity: img2019, hive: true}, strat: policy.RestoreBackup, wantTruth: world.TruthHealthy,
			check: func(t *testing.T, f *fixture, facts step.Facts) {
				if ds := f.disk("disk-11"); ds.AttachedTo != "" {
					t.Errorf("original disk-11 is %+v, want kept detached", ds)
				}
				if ds := f.disk(facts[FactRestoredDiskID]); ds.AttachedTo != "vm-11" || !ds.Boot {
					t.Errorf("restored disk is %+v", ds)
				}
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { testRepair(t, c) })
		})
	}
}

// testRepair runs one case of TestRepairs on virtual time: on the scaled
// clock a stall of a loaded machine let a VM that recovers after 11 boots
// recover between reboot-retry's re-check and its restart.
func testRepair(t *testing.T, c repairCase) {
	f := newVirtualFixture(t, c.spec)
	if c.maxRst > 0 {
		f.env.Policy.RebootRetry.MaxRestarts = c.maxRst
	}
	if c.blind {
		f.env.Provider.Observer = blindObserver{f.prov.Observer, c.uncounted}
	}
	s, _ := byName(c.strat)
	vm := f.target(c.spec.n)
	facts, err := f.run(s, vm, nil, runOpts{stopAfter: -1})
	if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
		t.Fatalf("err = %v, want %v (facts %v)", err, c.want, facts)
	}
	if err != nil && !strings.Contains(err.Error(), c.errHas) {
		t.Errorf("err = %v, want it to say %q", err, c.errHas)
	}
	if tr := f.waitTruth(c.spec.n, c.wantTruth, BootWait); tr != c.wantTruth {
		t.Errorf("truth = %s, want %s", tr, c.wantTruth)
	}
	f.clean()
	noSecrets(t, facts, err)
	if c.check != nil {
		c.check(t, f, facts)
	}
}

var planFixture = step.Target{Key: "sim/sim/vm-x", ID: "vm-x", Location: inventory.Location{Zone: "is1a"}, Windows: win2019,
	OSDisk: inventory.Disk{ID: "disk-x", Encryption: inventory.Encryption{BitLocker: true, KeyID: testKeyI}}}

// TestRecoveredBeforeRecheck: a VM planned as broken that is healthy by
// the time a strategy starts is never touched.
func TestRecoveredBeforeRecheck(t *testing.T) {
	t.Parallel()
	for _, name := range policy.Strategies {
		t.Run(string(name), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, spec{n: 20, kind: healthyVM})
			s, _ := byName(name)
			before := f.mutationCount()
			facts, err := f.run(s, encrypted(f.target(20)), nil, runOpts{stopAfter: -1})
			if !errors.Is(err, step.ErrHealthy) {
				t.Fatalf("err = %v, want ErrHealthy", err)
			}
			if len(facts) != 0 {
				t.Errorf("facts = %v, want none", facts)
			}
			if after := f.mutationCount(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the cloud was changed: %v -> %v", before, after)
			}
			f.clean()
		})
	}
}

// encrypted is vm as a plan that sees its OS disk BitLocker-encrypted
// plans it, so that every strategy runs unconditionally on it
// (safe-mode-boot's Conditional).
func encrypted(vm *step.Target) *step.Target {
	vm.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: testKeyI}
	return vm
}

// TestSeedStory: a helper whose own disk has the target's identity. A naive
// repair leaves the VM unbootable; helper-mount does not.
func TestSeedStory(t *testing.T) {
	t.Parallel()
	t.Run("naive", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, spec{n: 30, identity: img2019})
		naive(t, f, 30)
		a := f.w.Audit()
		if a.IdentityChanged == 0 || a.UnverifiedReturns == 0 {
			t.Errorf("identity_changed=%d unverified_returns=%d, want both > 0", a.IdentityChanged, a.UnverifiedReturns)
		}
		if tr := f.waitTruth(30, world.TruthHealthy, BootWait); tr == world.TruthHealthy {
			t.Errorf("the naive repair booted healthy; the world should make it unbootable")
		}
	})
	t.Run("helper-mount", func(t *testing.T) {
		t.Parallel()
		f := newFixture(t, spec{n: 31, identity: img2019})
		facts, err := f.run(HelperMount{}, f.target(31), nil, runOpts{stopAfter: -1})
		if err != nil {
			t.Fatalf("err = %v (facts %v)", err, facts)
		}
		if facts[FactIdentityChanged] != "true" {
			t.Errorf("the helper did not collide: facts %v", facts)
		}
		if tr := f.truth(31); tr != world.TruthHealthy {
			t.Errorf("truth = %s", tr)
		}
		f.clean()
	})
}

// naive is the seed incident's repair: attach, online, delete, detach,
// reattach, start, with no identity handling (a snapshot first, so that
// only the identity counters speak).
func naive(t *testing.T, f *fixture, n int) {
	t.Helper()
	ctx := context.Background()
	p := f.prov
	vm := providers.VMRef{ID: fmt.Sprintf("vm-%d", n), Zone: "is1a"}
	d := providers.DiskRef{ID: fmt.Sprintf("disk-%d", n), Zone: "is1a"}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := p.Disks.Snapshot(ctx, d, providers.Tags{"purpose": "naive"})
	must(err)
	must(p.Power.Stop(ctx, []providers.VMRef{vm}, true))
	must(p.Disks.Detach(ctx, vm, d))
	h, err := p.Helpers.Acquire(ctx, "is1a", win2019, providers.Tags{"purpose": "naive"})
	must(err)
	must(p.Disks.Attach(ctx, h, d, false))
	ep, err := p.Guests.GuestEndpoint(ctx, h)
	must(err)
	g, cr := f.env.Guest, f.env.Creds
	ok, err := poll(ctx, f.env, PollEvery, HelperWait, func() (bool, error) {
		_, err := g.ListDisks(ctx, ep, cr)
		return err == nil, nil
	})
	if !ok || err != nil {
		t.Fatalf("helper never answered: %v", err)
	}
	r, err := g.OnlineDisk(ctx, ep, cr, guest.DiskParams{Number: 1, Serial: d.ID})
	must(err)
	_, err = g.DeleteFiles(ctx, ep, cr, guest.DeleteParams{Root: r.Disk.Volumes[0].DriveLetter, Criteria: criteria(inc)})
	must(err)
	must(p.Disks.Detach(ctx, h, d))
	must(p.Disks.Attach(ctx, vm, d, true))
	must(p.Power.Start(ctx, []providers.VMRef{vm}))
}

// TestStepsTwice runs every step twice in a row: the second run changes
// nothing in the cloud and the end state is the same.
func TestStepsTwice(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		spec  spec
		strat policy.Strategy
	}{
		{"delete-file", spec{n: 40, kind: safeMode}, policy.DeleteFile},
		{"helper-mount", spec{n: 41, identity: img2019}, policy.HelperMount},
		{"helper-mount BitLocker", spec{n: 42, identity: img2019, bitlocker: true, escrowed: true}, policy.HelperMount},
		{"restore-backup", spec{n: 43}, policy.RestoreBackup},
		{"safe-mode-boot", spec{n: 44, identity: img2019, bitlocker: true, safeWinRM: true}, policy.SafeModeBoot},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, c.spec)
			s, _ := byName(c.strat)
			facts, err := f.run(s, f.target(c.spec.n), nil, runOpts{stopAfter: -1, twice: true})
			if err != nil {
				t.Fatalf("err = %v (facts %v)", err, facts)
			}
			if tr := f.truth(c.spec.n); tr != world.TruthHealthy {
				t.Errorf("truth = %s", tr)
			}
			f.clean()
		})
	}
}

// TestSnapshotLooksWhereOneMayBe: the snapshot step asks the cloud for an
// earlier snapshot (FindSnapshots) only where one may exist, a recorded one
// or an attempt that may have taken one unrecorded, and never takes a
// second one there.
func TestSnapshotLooksWhereOneMayBe(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name  string
		taken bool // the step took one before
		facts func(before step.Facts) step.Facts
		// wantFinds and wantTaken count the FindSnapshots and Snapshot
		// calls of the attempt under test.
		wantFinds, wantTaken int
	}{
		{"first attempt", false, func(step.Facts) step.Facts { return step.Facts{} }, 0, 1},
		{"recorded", true, func(before step.Facts) step.Facts { return before }, 1, 0},
		{"taken unrecorded", true, func(step.Facts) step.Facts { return step.Facts{step.FactRerun: "true"} }, 1, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			f := newFixture(t, spec{n: 45, kind: safeMode})
			vm := f.target(45)
			var before step.Facts
			if c.taken {
				var err error
				if before, err = f.runStep(ctx, snapshotStep(), vm, step.Facts{}); err != nil {
					t.Fatal(err)
				}
			}
			calls := f.w.Stats().Calls
			got, err := f.runStep(ctx, snapshotStep(), vm, c.facts(before))
			if err != nil {
				t.Fatal(err)
			}
			after := f.w.Stats().Calls
			if finds, taken := after["FindSnapshots"]-calls["FindSnapshots"], after["Snapshot"]-calls["Snapshot"]; finds != c.wantFinds || taken != c.wantTaken {
				t.Errorf("FindSnapshots %d, Snapshot %d calls; want %d, %d", finds, taken, c.wantFinds, c.wantTaken)
			}
			if c.taken && got[FactSnapshotID] != before[FactSnapshotID] {
				t.Errorf("snapshot %s, want the one taken before, %s", got[FactSnapshotID], before[FactSnapshotID])
			}
			f.clean()
		})
	}
}

// TestResume stops after step k (as if the process died), then runs the
// whole strategy again from the facts so far, in a new helper pool (a new
// process): same end state, audit clean.
func TestResume(t *testing.T) {
	t.Parallel()
	cases := []struct {
		strat policy.Strategy
		spec  spec
		after []string
	}{
		{policy.DeleteFile, spec{kind: safeMode}, []string{"snapshot", "delete-files", "clear-safeboot", "restart"}},
		{policy.HelperMount, spec{identity: img2019, bitlocker: true, escrowed: true}, []string{"stop", "lease-helper", "attach-to-helper", "find-disk",
			"online-disk", "unlock", "delete-files", "restore-identity", "verify-identity", "offline-disk", "detach-from-helper", "return-helper", "attach-boot", "start"}},
		{policy.RestoreBackup, spec{}, []string{"restore-disk", "stop", "detach-original", "attach-restored", "start"}},
		{policy.SafeModeBoot, spec{identity: img2019, bitlocker: true, safeWinRM: true}, []string{"online-disk", "set-safeboot", "attach-boot", "start",
			"wait-safe-mode", "delete-files", "clear-safeboot", "restart"}},
	}
	n := 50
	for _, c := range cases {
		for _, after := range c.after {
			n++
			sp := c.spec
			sp.n = n
			t.Run(string(c.strat)+"/after-"+after, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, sp)
				s, _ := byName(c.strat)
				vm := f.target(sp.n)
				f.resumeAfter(t, s, sp.n, vm, after)
				f.clean()
			})
		}
	}
}

// TestAbort stops helper-mount after step k and aborts: the VM has its
// original disk back, identity verified, and runs.
func TestAbort(t *testing.T) {
	t.Parallel()
	afters := []string{"recheck", "stop", "lease-helper", "detach-os-disk", "attach-to-helper", "find-disk", "online-disk", "delete-files",
		"restore-identity", "verify-identity", "offline-disk", "detach-from-helper", "attach-boot"}
	for i, after := range afters {
		n := 100 + i
		t.Run("helper-mount/after-"+after, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, spec{n: n, identity: img2019})
			s := HelperMount{}
			vm := f.target(n)
			facts, err := f.run(s, vm, nil, runOpts{stopAfter: stepIndex(t, s, vm, after)})
			if !errors.Is(err, errStopped) {
				t.Fatalf("run: %v", err)
			}
			af, err := s.Abort(context.Background(), f.env, vm, facts)
			if err != nil {
				t.Fatalf("abort: %v (facts %v)", err, af)
			}
			if ds := f.disk(vm.OSDisk.ID); ds.AttachedTo != vm.ID || !ds.Boot {
				t.Errorf("disk is %+v, want the boot disk of %s", ds, vm.ID)
			}
			checkAbortLeftSafe(t, f, s, vm, n, facts.Merge(af))
		})
	}
	// A restore from a backup that holds the bad file fails its verify;
	// the abort puts the original disk back and deletes the restored one
	// where the provider deletes copies, or keeps it, leaked, where not.
	for _, c := range []struct {
		name        string
		keepsCopies bool
	}{
		{"restore-backup/bad backup", false},
		{"restore-backup/bad backup, provider without copy delete", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			n := 150
			f := newFixture(t, spec{n: n})
			if c.keepsCopies {
				f.env.Provider.Disks = struct{ providers.Disks }{f.prov.Disks}
			}
			vm := f.target(n)
			vm.Backup.ID, vm.Backup.TakenAt = backup(badBk, n).ID, badBk.TakenAt // a backup holding the bad file
			facts, err := f.run(RestoreBackup{}, vm, nil, runOpts{stopAfter: -1})
			if !errors.Is(err, step.ErrStrategyFailed) {
				t.Fatalf("err = %v, want a failed verify", err)
			}
			if ds := f.disk(vm.OSDisk.ID); ds.AttachedTo != vm.ID || !ds.Boot {
				t.Errorf("original disk is %+v, want back as the boot disk", ds)
			}
			restored := facts[FactRestoredDiskID]
			a := f.w.Audit()
			var want world.Invariants
			if c.keepsCopies {
				want.LeakedResources = 1
			}
			if a.Invariants() != want || (c.keepsCopies && a.LeakedList[0].ID != restored) {
				t.Errorf("audit %+v, want %+v (restored disk %s)\n%s", a.Invariants(), want, restored, strings.Join(a.Violations(), "\n"))
			}
			if _, err := f.prov.Disks.Describe(context.Background(), providers.DiskRef{ID: restored, Zone: "is1a"}); errors.Is(err, providers.ErrNotFound) == c.keepsCopies {
				t.Errorf("Describe restored disk %s: %v; want it kept: %v", restored, err, c.keepsCopies)
			}
			if got := facts[FactAbort]; !strings.Contains(got, restored) {
				t.Errorf("abort fact %q does not name the restored disk %s", got, restored)
			}
		})
	}
}

// TestHelperShared: two VMs in one zone share one helper.
func TestHelperShared(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newVirtualFixture(t, spec{n: 160, identity: img2019}, spec{n: 161, identity: img2019})
		errs := make(chan error, 2)
		for _, n := range []int{160, 161} {
			go func() {
				vm := f.target(n)
				facts, err := f.run(HelperMount{}, vm, nil, runOpts{stopAfter: -1})
				if err != nil {
					err = fmt.Errorf("vm-%d: %w (facts %v)", n, err, facts)
				}
				errs <- err
			}()
		}
		for range 2 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if c := f.w.Stats().Calls["CreateHelper"]; c != 1 {
			t.Errorf("CreateHelper called %d times, want 1", c)
		}
		rep, err := f.pool.ReleaseAll(context.Background(), false)
		if err != nil || len(rep.Released) != 1 || len(rep.Kept) != 0 {
			t.Errorf("ReleaseAll = %+v, %v", rep, err)
		}
		for _, n := range []int{160, 161} {
			if tr := f.truth(n); tr != world.TruthHealthy {
				t.Errorf("vm-%d truth = %s", n, tr)
			}
		}
		f.clean()
	})
}

// TestFlakyControlPlane: injected 5xx and dropped connections (before and
// after the change) are retried and never repeat an unsafe step.
func TestFlakyControlPlane(t *testing.T) {
	t.Parallel()
	for i, strat := range []policy.Strategy{policy.DeleteFile, policy.HelperMount, policy.RestoreBackup} {
		t.Run(string(strat), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) { testFlakyControlPlane(t, strat, 170+i) })
		})
	}
}

// testFlakyControlPlane repairs vm-n with strat through 5% errors and 5%
// lost requests and replies, on virtual time.
func testFlakyControlPlane(t *testing.T, strat policy.Strategy, n int) {
	sp := spec{n: n, identity: img2019}
	if strat == policy.DeleteFile {
		sp.kind = safeMode
	}
	f := newVirtualFixture(t, sp)
	if err := f.w.SetFaults(world.Faults{Throttle: world.ThrottleOff, ErrorRate: 0.05, DropBeforeRate: 0.05, DropAfterRate: 0.05}); err != nil {
		t.Fatal(err)
	}
	s, _ := byName(strat)
	facts, err := f.run(s, f.target(n), nil, runOpts{stopAfter: -1})
	if err != nil {
		t.Fatalf("err = %v (facts %v)", err, facts)
	}
	if tr := f.truth(n); tr != world.TruthHealthy {
		t.Errorf("truth = %s", tr)
	}
	f.clean()
	if c := f.w.Stats().Calls; c["RestoreBackup"] > 1 || c["AcquireHelper"] > 3 {
		t.Logf("calls: %v", c)
	}
}

// blindProber is a prober that never reaches the guest, as under a WinRM
// outage or a broken network path.
type blindProber struct{}

func (blindProber) Probe(_ context.Context, _ inventory.VM) inventory.Probe {
	return inventory.Probe{Reachable: false, Error: "nothing answers at 10.0.0.21:5985"}
}

// TestHealthyButUnprobeable: a healthy VM whose WinRM probe keeps failing
// (the cloud says its OS is up) must never be stopped or restarted: every
// strategy flags it for a person instead, and the world counts no touch.
func TestHealthyButUnprobeable(t *testing.T) {
	t.Parallel()
	for _, name := range policy.Strategies {
		t.Run(string(name), func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, spec{n: 21, kind: healthyVM})
			f.env.Prober = blindProber{}
			s, _ := byName(name)
			before := f.mutationCount()
			_, err := f.run(s, encrypted(f.target(21)), nil, runOpts{stopAfter: -1, noAbort: true})
			if !errors.Is(err, step.ErrNeedsPerson) {
				t.Fatalf("err = %v, want ErrNeedsPerson", err)
			}
			if after := f.mutationCount(); fmt.Sprint(after) != fmt.Sprint(before) {
				t.Errorf("the cloud was changed: %v -> %v", before, after)
			}
			f.clean()
		})
	}
}

// TestBitLockerUnknownToThePlan: a cloud that cannot see BitLocker (EC2)
// plans the disk as unencrypted; helper-mount still unlocks it, with the
// key protector ID the helper reads, and repairs the VM.
func TestBitLockerUnknownToThePlan(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newVirtualFixture(t, spec{n: 31, identity: img2019, bitlocker: true, escrowed: true})
		vm := f.target(31)
		vm.OSDisk.Encryption = inventory.Encryption{}
		s, _ := byName(policy.HelperMount)
		facts, err := f.run(s, vm, nil, runOpts{stopAfter: -1})
		if err != nil {
			t.Fatalf("helper-mount: %v", err)
		}
		if facts[FactUnlocked] != "true" {
			t.Errorf("facts = %v, want the volume unlocked", facts)
		}
		if got := f.waitTruth(31, world.TruthHealthy, 20*time.Minute); got != world.TruthHealthy {
			t.Errorf("truth %s, want healthy", got)
		}
		f.clean()
	})
}

// TestSafeModeBootAfterHelperMount: where the plan cannot see BitLocker
// (EC2), safe-mode-boot runs only once helper-mount found the volume
// locked with no key: without that fact it fails before any call; with
// it, it repairs the VM.
func TestSafeModeBootAfterHelperMount(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newVirtualFixture(t, spec{n: 32, identity: img2019, bitlocker: true, safeWinRM: true})
		vm := f.target(32)
		vm.OSDisk.Encryption = inventory.Encryption{}
		if c := (SafeModeBoot{}).Conditional(vm); c == "" {
			t.Fatal("safe-mode-boot is unconditional on a disk the plan does not see encrypted")
		}
		before := f.mutationCount()
		if _, err := f.run(SafeModeBoot{}, vm, nil, runOpts{stopAfter: -1, noAbort: true}); !errors.Is(err, step.ErrStrategyFailed) {
			t.Fatalf("safe-mode-boot without helper-mount's finding: err = %v, want a failure", err)
		}
		if after := f.mutationCount(); fmt.Sprint(after) != fmt.Sprint(before) {
			t.Errorf("the cloud was changed: %v -> %v", before, after)
		}
		facts, err := f.run(HelperMount{}, vm, nil, runOpts{stopAfter: -1})
		if !errors.Is(err, step.ErrStrategyFailed) || facts[FactKeyMissing] != "true" {
			t.Fatalf("helper-mount: err = %v, facts %v; want a failure that records the missing key", err, facts)
		}
		facts, err = f.run(SafeModeBoot{}, vm, facts, runOpts{stopAfter: -1})
		if err != nil {
			t.Fatalf("safe-mode-boot after helper-mount: %v (facts %v)", err, facts)
		}
		if got := f.waitTruth(32, world.TruthHealthy, 20*time.Minute); got != world.TruthHealthy {
			t.Errorf("truth %s, want healthy", got)
		}
		f.clean()
	})
}

// TestLateRestartsBeforeSafeModeBoot: where the plan cannot see BitLocker,
// reboot-retry restarts only max_restarts times (helper-mount looked sure);
// once helper-mount finds the key missing, safe-mode-boot with nothing
// sure after it (late_restarts) first restarts the VM up to the last-resort
// budget, and a VM that recovers on one of those boots is not left in Safe
// Mode (its WinRM does not start there).
func TestLateRestartsBeforeSafeModeBoot(t *testing.T) {
	t.Parallel()
	for _, late := range []bool{false, true} {
		t.Run(fmt.Sprint("late restarts ", late), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				const recoverAt = 20
				f := newVirtualFixture(t, spec{n: 33, identity: img2019, bitlocker: true, recoverAt: recoverAt})
				vm := f.target(33)
				vm.OSDisk.Encryption, vm.LateRestarts = inventory.Encryption{}, late
				facts, err := f.run(HelperMount{}, vm, nil, runOpts{stopAfter: -1})
				if !errors.Is(err, step.ErrStrategyFailed) || facts[FactKeyMissing] != "true" {
					t.Fatalf("helper-mount: err = %v, facts %v; want a failure that records the missing key", err, facts)
				}
				s, err := f.prov.Observer.Observe(context.Background(), []providers.VMRef{vmRef(vm)})
				if err != nil || s["vm-33"].BootCount == nil || *s["vm-33"].BootCount >= recoverAt {
					t.Fatalf("after helper-mount: %v, %v: want fewer boots than %d, or the case proves nothing", s, err, recoverAt)
				}
				facts, err = f.run(SafeModeBoot{}, vm, facts, runOpts{stopAfter: -1})
				want, truth := error(step.ErrStrategyFailed), world.TruthSafeMode
				if late {
					want, truth = step.ErrHealthy, world.TruthHealthy
				}
				if !errors.Is(err, want) {
					t.Fatalf("safe-mode-boot: err = %v, want %v (facts %v)", err, want, facts)
				}
				if got := f.waitTruth(33, truth, 20*time.Minute); got != truth {
					t.Errorf("truth %s, want %s", got, truth)
				}
				f.clean()
			})
		})
	}
}

// TestDeleteFileRestartsGracefully: after writing to the disk through the
// guest, delete-file restarts with a guest shutdown and a start, never a
// hard reset that could lose the writes.
func TestDeleteFileRestartsGracefully(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newVirtualFixture(t, spec{n: 32, kind: safeMode})
		before := f.mutationCount()
		s, _ := byName(policy.DeleteFile)
		if _, err := f.run(s, f.target(32), nil, runOpts{stopAfter: -1}); err != nil {
			t.Fatalf("delete-file: %v", err)
		}
		after := f.mutationCount()
		if after["RestartVM"] != before["RestartVM"] {
			t.Errorf("delete-file hard-reset the VM (%d RestartVM calls)", after["RestartVM"]-before["RestartVM"])
		}
		if after["StopVMs"] == before["StopVMs"] || after["StartVMs"] == before["StartVMs"] {
			t.Errorf("delete-file did not stop and start the VM: %v -> %v", before, after)
		}
		f.clean()
	})
}

// blindControlPlane is a prober whose every probe the control plane kept
// from being attempted (GuestEndpoint failing during an outage).
type blindControlPlane struct{}

func (blindControlPlane) Probe(_ context.Context, _ inventory.VM) inventory.Probe {
	return inventory.Probe{Error: "no guest address: GuestEndpoint vm vm-33: unavailable: 503", Retryable: true}
}

// TestOutageIsNotAVerdict: when the control plane cannot even say where
// the guest is, neither the re-check nor the final verification concludes
// anything about the guest: they return a retryable error for the
// executor to wait out, never a strategy failure.
func TestOutageIsNotAVerdict(t *testing.T) {
	t.Parallel()
	f := newFixture(t, spec{n: 33, kind: safeMode})
	f.env.Prober = blindControlPlane{}
	vm := f.target(33)
	s, _ := byName(policy.DeleteFile)
	for _, st := range []step.Step{s.Steps(vm, policy.Default())[0], finalVerify("verify")} {
		_, err := st.Run(context.Background(), f.env, vm, step.Facts{})
		if !providers.Retryable(err) || errors.Is(err, step.ErrStrategyFailed) || errors.Is(err, step.ErrNeedsPerson) {
			t.Errorf("%s: err = %v, want a retryable error and no verdict", st.Name, err)
		}
	}
	f.clean()
}

// byName looks a strategy up in the default registry.
func byName(name policy.Strategy) (Unit, bool) { return Default().Get(name) }

// TestRaceBootCheck: race-the-boot is eligible only where the assessment
// saw WinRM answer in a normal boot while the guest carried the bad file.
func TestRaceBootCheck(t *testing.T) {
	bad := inventory.FileFact{Path: `C:\Windows\System32\drivers\CrowdStrike\C-00000291-00000000-00000032.sys`}
	cases := []struct {
		name  string
		class inventory.Classification
		ok    bool
	}{
		{"answered with the bad file", inventory.Classification{BadFiles: []inventory.FileFact{bad},
			Evidence: inventory.Evidence{Probe: &inventory.Probe{Reachable: true, BootMode: inventory.BootNormal, Files: []inventory.FileFact{bad}}}}, true},
		{"never answered", inventory.Classification{Evidence: inventory.Evidence{Probe: &inventory.Probe{Error: "timeout"}}}, false},
		{"not probed", inventory.Classification{}, false},
		{"answered in safe mode", inventory.Classification{BadFiles: []inventory.FileFact{bad},
			Evidence: inventory.Evidence{Probe: &inventory.Probe{Reachable: true, BootMode: inventory.BootSafeMode}}}, false},
		{"answered without a bad file", inventory.Classification{
			Evidence: inventory.Evidence{Probe: &inventory.Probe{Reachable: true, BootMode: inventory.BootNormal}}}, false},
	}
	for _, c := range cases {
		got := RaceBoot{}.Check(&Candidate{State: inventory.StateBootLoop, Classification: c.class})
		if (len(got) == 0) != c.ok {
			t.Errorf("%s: Check = %q, want eligible %v", c.name, got, c.ok)
		}
		// After reboot-retry it is eligible anyway, on condition.
		after := RaceBoot{}.Check(&Candidate{State: inventory.StateBootLoop, Classification: c.class, Before: []policy.Strategy{policy.RebootRetry}})
		if len(after) != 0 {
			t.Errorf("%s, after reboot-retry: Check = %q, want eligible", c.name, after)
		}
	}
}

// windowFixture is a virtual-time fixture whose vm-n boot-loops with a
// 300 s WinRM window after each boot, that VM's target, and race-the-boot.
// Call it inside the test's synctest bubble.
func windowFixture(t *testing.T, n int) (*fixture, *step.Target, step.Strategy) {
	t.Helper()
	f := newVirtualFixture(t, spec{n: n, window: 300})
	rb, _ := byName(policy.RaceBoot)
	return f, f.target(n), rb
}

// TestRaceBootConditional: planned as reboot-retry's fallback without the
// assessment's sighting of a window, race-the-boot fails at once, changing
// nothing, unless reboot-retry's waits saw WinRM answer during a crashing
// boot; then it races and repairs the VM.
func TestRaceBootConditional(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f, vm, rb := windowFixture(t, 170)
		vm.WindowSeen = false
		before := fmt.Sprint(f.mutationCount())
		if _, err := f.run(rb, vm, nil, runOpts{stopAfter: -1, noAbort: true}); !errors.Is(err, step.ErrStrategyFailed) {
			t.Fatalf("no window seen: err = %v, want the strategy failed", err)
		}
		if after := fmt.Sprint(f.mutationCount()); after != before {
			t.Errorf("no window seen: the cloud changed: %s -> %s", before, after)
		}
		rr, _ := byName(policy.RebootRetry)
		facts, err := f.run(rr, vm, nil, runOpts{stopAfter: -1, noAbort: true})
		if !errors.Is(err, step.ErrStrategyFailed) || facts[FactWinRMWindowSeen] != "true" {
			t.Fatalf("reboot-retry: err = %v, facts %v: want it failed, having seen the window", err, facts)
		}
		facts, err = f.run(rb, vm, facts, runOpts{stopAfter: -1})
		if err != nil || facts[FactDeleted] != "1" || facts[FactVerifiedAt] == "" {
			t.Fatalf("race-the-boot after reboot-retry saw the window: err = %v, facts %v", err, facts)
		}
		f.clean()
	})
}

// TestRaceBoot races the boots of a VM whose WinRM answers for a while
// after each boot, on virtual time: the race is won inside the window
// (the file deleted, the flag cleared, the VM restarted and verified),
// nothing healthy is touched, and no script runs on lost parameters. (On
// the scaled clock a busy machine's milliseconds became simulated seconds
// and the race was sometimes decided by a reply lost as the guest
// crashed.)
func TestRaceBoot(t *testing.T) {
	t.Parallel()
	for i, window := range []int{300, 60} {
		n := 160 + i
		t.Run(fmt.Sprintf("window %ds", window), func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				f := newVirtualFixture(t, spec{n: n, window: window})
				s, _ := byName(policy.RaceBoot)
				facts, err := f.run(s, f.target(n), nil, runOpts{stopAfter: -1})
				if err != nil {
					t.Fatalf("err = %v (facts %v)", err, facts)
				}
				if facts[FactDeleted] != "1" || facts[FactSnapshotID] == "" || facts[FactRaceBoots] == "" ||
					facts[FactRaceEndpoint] == "" || facts[FactRestarted] != "true" || facts[FactVerifiedAt] == "" {
					t.Errorf("facts = %v", facts)
				}
				if tr := f.waitTruth(n, world.TruthHealthy, BootWait); tr != world.TruthHealthy {
					t.Errorf("truth = %s", tr)
				}
				f.clean()
				noSecrets(t, facts, err)
			})
		})
	}
}

// TestCrashWatch: a restarted boot has failed only when a crash screen
// follows one of the new boot's, or the VM stopped; a crash screen right
// after the restart may be the last boot's.
func TestCrashWatch(t *testing.T) {
	t.Parallel()
	const (
		crash   = "Your device ran into a problem and needs to restart.\r\nStop code: PAGE_FAULT_IN_NONPAGED_AREA\r\nWhat failed: csagent.sys"
		booting = "Starting Windows"
	)
	yes := true
	run := inventory.PowerRunning
	cases := []struct {
		name    string
		samples []inventory.Signals
		want    []bool
	}{
		{name: "stale crash screen, then the new boot crashes",
			samples: []inventory.Signals{{Power: run, ConsoleAvailable: true, Console: crash}, {Power: run, ConsoleAvailable: true, Console: booting}, {Power: run, ConsoleAvailable: true, Console: crash}},
			want:    []bool{false, false, true}},
		{name: "the reachability check passing is a boot too",
			samples: []inventory.Signals{{Power: run, ConsoleAvailable: true, InstanceReachable: &yes}, {Power: run, ConsoleAvailable: true, Console: crash}},
			want:    []bool{false, true}},
		{name: "an empty screen proves no boot",
			samples: []inventory.Signals{{Power: run, ConsoleAvailable: true}, {Power: run, ConsoleAvailable: true, Console: crash}},
			want:    []bool{false, false}},
		{name: "no screen: only a stop ends the watch",
			samples: []inventory.Signals{{Power: run, Console: booting}, {Power: run, Console: crash}, {Power: inventory.PowerStopped}},
			want:    []bool{false, false, true}},
		{name: "a starting VM's screen counts for nothing",
			samples: []inventory.Signals{{Power: inventory.PowerStarting, ConsoleAvailable: true, Console: booting}, {Power: run, ConsoleAvailable: true, Console: crash}},
			want:    []bool{false, false}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var w crashWatch
			for i, s := range c.samples {
				if got := w.crashed(s); got != c.want[i] {
					t.Errorf("sample %d: crashed = %v, want %v", i, got, c.want[i])
				}
			}
		})
	}
}

// checkAbortLeftSafe asserts what an abort of helper-mount on VM n must
// leave, facts being every fact so far: the VM powered on, its helper slot
// given back, a disk that boots (healthy when the files were deleted,
// boot-looping otherwise, never unbootable), and a second abort that
// succeeds (Abort is idempotent).
func checkAbortLeftSafe(t *testing.T, f *fixture, s HelperMount, vm *step.Target, n int, facts step.Facts) {
	t.Helper()
	if p := f.power(n); p != inventory.PowerRunning && p != inventory.PowerStarting {
		t.Errorf("power = %s", p)
	}
	if l := f.pool.Leases(); len(l) > 0 && len(l[0].VMs) > 0 {
		t.Errorf("lease not returned: %v", l)
	}
	_ = f.clk.Sleep(context.Background(), BootWait)
	if a := f.clean(); len(a.Unbootable) > 0 {
		t.Errorf("unbootable: %v", a.Unbootable)
	}
	if _, err := s.Abort(context.Background(), f.env, vm, facts); err != nil {
		t.Errorf("second abort: %v", err)
	}
	f.clean()
}

// TestRaceBootResumedInRacedBoot: a process that died after race-1 deleted
// the file, before its end was journaled, leaves the raced boot up and
// answering healthy until the driver it loaded crashes it. race-1 run again
// must not take that boot for healthy: it ends healthy only on a boot that
// stays so (the next one).
func TestRaceBootResumedInRacedBoot(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		const n = 171
		f, vm, rb := windowFixture(t, n)
		steps := rb.Steps(vm, f.env.Policy)
		ctx := context.Background()
		facts := raceOne(t, f, vm, steps)
		// The process died before race-1's end was journaled: its facts
		// are lost, and the check before its reset is stale.
		for _, k := range []step.Fact{FactDeleted, FactRaceBoots, FactRaceBootCount, FactRaceAttempts, FactCheckedAt} {
			delete(facts, k)
		}
		_, err := f.runStep(ctx, steps[3], vm, facts)
		if !errors.Is(err, step.ErrHealthy) {
			t.Fatalf("race-1 again: %v, want healthy (the file is gone)", err)
		}
		if tr := f.truth(n); tr != world.TruthHealthy {
			t.Errorf("race-1 again ended healthy while the VM's truth is %s: it took the raced boot, which still crashes, for healthy", tr)
		}
		f.clean()
	})
}

// raceOne runs race-the-boot's steps up to race-1 (recheck, snapshot,
// prepare, race-1) and fails t unless race-1 deleted the file. It returns
// the facts.
func raceOne(t *testing.T, f *fixture, vm *step.Target, steps []step.Step) step.Facts {
	t.Helper()
	facts := step.Facts{}
	for _, st := range steps[:4] {
		got, err := f.runStep(context.Background(), st, vm, facts)
		if err != nil {
			t.Fatalf("step %s: %v", st.Name, err)
		}
		facts = facts.Merge(got)
	}
	if facts[FactDeleted] != "1" {
		t.Fatalf("race-1 did not delete the file: %v", facts)
	}
	return facts
}

// countlessObserver is an Observer of a cloud that counts no boots and
// reports no boot time (Azure's instance view, as the provider reads it).
type countlessObserver struct{ providers.Observer }

func (o countlessObserver) Observe(ctx context.Context, refs []providers.VMRef) (map[string]inventory.Signals, error) {
	m, err := o.Observer.Observe(ctx, refs)
	for id, s := range m {
		s.BootCount, s.LastBootAt = nil, time.Time{}
		m[id] = s
	}
	return m, err
}

// TestRaceBootRestartWithoutBootCount: on a cloud that counts no boots,
// the restart after the race resets the VM only while its boot must still
// be the raced one. Run late (a resumed process), after the raced boot
// crashed and a repaired one came up, it does not reset: verify finds the
// repaired boot, and no healthy VM is touched.
func TestRaceBootRestartWithoutBootCount(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name  string
		pause time.Duration // between the race's end and the restart step
		reset bool
	}{
		{"at once: the raced boot is reset", 0, true},
		{"resumed late: no reset", 15 * time.Minute, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			synctest.Test(t, func(t *testing.T) {
				const n = 172
				f, vm, rb := windowFixture(t, n)
				f.env.Provider.Observer = countlessObserver{f.prov.Observer}
				steps := rb.Steps(vm, f.env.Policy)
				ctx := context.Background()
				facts := raceOne(t, f, vm, steps)
				if facts[FactRaceBootCount] != "" {
					t.Fatalf("race-1: facts %v, want no boot count", facts)
				}
				time.Sleep(c.pause)
				before := f.w.Stats().Calls["RestartVM"]
				for _, st := range steps {
					if st.Name != "restart" && st.Name != "verify" {
						continue
					}
					got, err := f.runStep(ctx, st, vm, facts)
					if err != nil {
						t.Fatalf("step %s: %v", st.Name, err)
					}
					facts = facts.Merge(got)
				}
				if reset := f.w.Stats().Calls["RestartVM"] > before; reset != c.reset {
					t.Errorf("the restart step reset the VM: %v, want %v", reset, c.reset)
				}
				if a := f.clean(); a.Invariants() != (world.Invariants{}) {
					t.Errorf("invariants %+v\n%s", a.Invariants(), strings.Join(a.Violations(), "\n"))
				}
				if tr := f.truth(n); tr != world.TruthHealthy {
					t.Errorf("truth %s, want healthy", tr)
				}
			})
		})
	}
}
