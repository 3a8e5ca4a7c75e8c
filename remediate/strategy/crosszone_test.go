package strategy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// zoneTarget is vm-n (in is1b, where the fixture's world has no helper
// image) planned with the helper image of is1a, as the planner plans
// cross-zone-mount.
func (f *fixture) zoneTarget(n int) *step.Target {
	vm := f.target(n)
	if vm.Zone != "is1b" {
		f.t.Fatalf("vm-%d is in %s, want is1b", n, vm.Zone)
	}
	vm.HelperZone = "is1a"
	return vm
}

// TestCrossZone repairs a copy of the OS disk on a helper in another zone
// and brings it back: the VM boots healthy from the returned disk in its
// own zone, the original is kept (detached, unchanged), the copy in the
// helper's zone is gone, the identity collision is handled as helper-mount
// handles it, and the referee counts nothing, leftovers included.
func TestCrossZone(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		spec spec
	}{
		{"own identity", spec{n: 150, zone: "is1b"}},
		{"identity collision", spec{n: 151, identity: img2019, zone: "is1b"}},
		{"BitLocker", spec{n: 152, identity: img2019, bitlocker: true, escrowed: true, zone: "is1b"}},
		{"Safe Mode, WinRM not under SafeBoot\\Network", spec{n: 153, kind: safeMode, silentSafe: true, identity: img2019, zone: "is1b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, c.spec)
			vm := f.zoneTarget(c.spec.n)
			facts, err := f.run(CrossZone{}, vm, nil, runOpts{stopAfter: -1, twice: true})
			if err != nil {
				t.Fatalf("cross-zone-mount: %v (facts %v)", err, facts)
			}
			noSecrets(t, facts, err)
			cp, back := facts[FactCopyDiskID], facts[FactReturnedDiskID]
			if facts[FactOriginalDiskID] != vm.OSDisk.ID || cp == "" || back == "" || cp == back || facts[FactCopyGone] != "true" {
				t.Errorf("facts = %v", facts)
			}
			if facts[FactIdentityVerified] != facts[FactIdentityOriginal] {
				t.Errorf("identity verified %q, original %q", facts[FactIdentityVerified], facts[FactIdentityOriginal])
			}
			if ds := f.disk(back); ds.AttachedTo != vm.ID || !ds.Boot || ds.Ref.Zone != "is1b" {
				t.Errorf("returned disk is %+v, want the OS disk of %s, in is1b", ds, vm.ID)
			}
			if ds := f.disk(vm.OSDisk.ID); ds.AttachedTo != "" {
				t.Errorf("original is %+v, want kept, detached", ds)
			}
			if _, err := f.prov.Disks.Describe(context.Background(), providers.DiskRef{ID: cp}); !errors.Is(err, providers.ErrNotFound) {
				t.Errorf("the copy %s in the helper's zone is still there: %v", cp, err)
			}
			if tr := f.waitTruth(c.spec.n, world.TruthHealthy, BootWait); tr != world.TruthHealthy {
				t.Errorf("truth = %s", tr)
			}
			if a := f.clean(); a.Leftovers != 0 {
				t.Errorf("leftovers: %v", a.LeftoverList)
			}
		})
	}
}

// TestCrossZoneRefusesUnverified: the repaired copy comes back only with its
// identity verified.
func TestCrossZoneRefusesUnverified(t *testing.T) {
	t.Parallel()
	f := newFixture(t, spec{n: 160, zone: "is1b"})
	vm := f.zoneTarget(160)
	c, err := zoneCopyTarget(vm, step.Facts{FactCopyDiskID: "disk-x"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = czSnapshotCopy(context.Background(), f.env, c, step.Facts{FactIdentityOriginal: "mbr:1", FactIdentityVerified: "mbr:2"})
	if !errors.Is(err, step.ErrStrategyFailed) || !strings.Contains(err.Error(), "not verified") {
		t.Errorf("err = %v, want a strategy failure: identity not verified", err)
	}
	if _, err := zoneCopyTarget(f.target(160), step.Facts{FactCopyDiskID: "disk-x"}); !errors.Is(err, step.ErrStrategyFailed) {
		t.Errorf("no helper zone planned: err = %v, want a strategy failure", err)
	}
}

// TestCrossZoneAbort stops the strategy after each step and aborts: the VM
// runs on its own OS disk again (a returned disk that has not booted
// healthy yet is taken off, as restore-backup's abort does), no copy is
// left in either zone and the referee counts nothing.
func TestCrossZoneAbort(t *testing.T) {
	t.Parallel()
	afters := []string{"stop", "snapshot", "copy-disk", "lease-helper", "attach-to-helper", "online-disk", "delete-files",
		"restore-identity", "detach-from-helper", "return-helper", "snapshot-copy", "return-disk", "delete-copy", "detach-original", "attach-returned"}
	for i, after := range afters {
		n := 100 + i
		t.Run("after-"+after, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, spec{n: n, identity: img2019, zone: "is1b"})
			s := CrossZone{}
			vm := f.zoneTarget(n)
			facts, err := f.run(s, vm, nil, runOpts{stopAfter: stepIndex(t, s, vm, after)})
			if !errors.Is(err, errStopped) {
				t.Fatalf("run: %v", err)
			}
			f.abortAndCheck(t, s, n, vm, facts, vm.OSDisk.ID, FactReturnedDiskID, FactCopyDiskID)
		})
	}
}

// TestCrossZoneResume stops after a step, then runs the strategy again from
// its facts in a new helper pool: the VM ends healthy on one returned disk,
// with no copy left.
func TestCrossZoneResume(t *testing.T) {
	t.Parallel()
	for i, after := range []string{"copy-disk", "attach-to-helper", "detach-from-helper", "snapshot-copy", "return-disk", "delete-copy", "attach-returned"} {
		n := 130 + i
		t.Run("after-"+after, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, spec{n: n, identity: img2019, zone: "is1b"})
			s := CrossZone{}
			vm := f.zoneTarget(n)
			f.resumeAfter(t, s, n, vm, after)
			if a := f.clean(); a.Leftovers != 0 {
				t.Errorf("leftovers: %v", a.LeftoverList)
			}
		})
	}
}

// TestCrossZoneStopped: cross-zone-mount on a powered-off VM checks its disk
// through the copy without starting it: a clean disk stays in place (the
// copy deleted, found clean); a repaired copy comes back as the boot disk
// and the VM stays off (repaired-stopped) or, with policy.stopped_vms:
// start, is started and verified. Aborted after the returned disk was
// attached, the VM gets its own disk back and stays off.
func TestCrossZoneStopped(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		spec       spec
		start      bool
		abortAfter string
		wantEnding step.Ending
		wantPower  inventory.PowerState
		wantOwn    bool // the VM's own disk is its boot disk at the end
	}{
		{name: "bad file, left stopped", spec: spec{n: 170, kind: stoppedBad, identity: img2019, zone: "is1b"},
			wantEnding: step.EndRepairedStopped, wantPower: inventory.PowerStopped},
		{name: "bad file, started", spec: spec{n: 171, kind: stoppedBad, identity: img2019, zone: "is1b"}, start: true,
			wantPower: inventory.PowerRunning},
		{name: "clean disk, left stopped", spec: spec{n: 172, kind: stoppedClean, identity: img2019, zone: "is1b"},
			wantEnding: step.EndFoundClean, wantPower: inventory.PowerStopped, wantOwn: true},
		{name: "aborted after attach-returned, left stopped", spec: spec{n: 173, kind: stoppedBad, identity: img2019, zone: "is1b"},
			abortAfter: "attach-returned", wantPower: inventory.PowerStopped, wantOwn: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, c.spec)
			if c.start {
				f.env.Policy.StoppedVMs = policy.StoppedStart
			}
			s := CrossZone{}
			vm := f.zoneTarget(c.spec.n)
			if vm.State != inventory.StateStopped {
				t.Fatalf("setup: vm state %s", vm.State)
			}
			var facts step.Facts
			var err error
			if c.abortAfter != "" {
				facts, err = f.run(s, vm, nil, runOpts{stopAfter: stepIndex(t, s, vm, c.abortAfter)})
				if !errors.Is(err, errStopped) {
					t.Fatalf("run: %v", err)
				}
				if _, err := s.Abort(context.Background(), f.env, vm, facts); err != nil {
					t.Fatalf("abort: %v", err)
				}
			} else if facts, err = f.run(s, vm, nil, runOpts{stopAfter: -1, twice: true}); err != nil {
				t.Fatalf("cross-zone-mount: %v (facts %v)", err, facts)
			}
			if c.abortAfter == "" {
				if got := step.Ending(facts[step.FactEnding]); got != c.wantEnding {
					t.Errorf("ending %q, want %q (facts %v)", got, c.wantEnding, facts)
				}
			}
			boot := facts[FactReturnedDiskID]
			if c.wantOwn {
				boot = vm.OSDisk.ID
			}
			if ds := f.disk(boot); boot == "" || ds.AttachedTo != vm.ID || !ds.Boot {
				t.Errorf("disk %q is %+v, want the boot disk of %s (facts %v)", boot, ds, vm.ID, facts)
			}
			if cp := facts[FactCopyDiskID]; cp != "" {
				if _, err := f.prov.Disks.Describe(context.Background(), providers.DiskRef{ID: cp}); !errors.Is(err, providers.ErrNotFound) {
					t.Errorf("the copy %s in the helper's zone is still there: %v", cp, err)
				}
			}
			f.checkPower(t, c.spec.n, c.wantPower)
			want := world.TruthHealthy
			if c.abortAfter != "" {
				want = world.TruthBootLoop // its own disk, still carrying the bad file
			}
			if tr := f.waitTruth(c.spec.n, want, BootWait); tr != want {
				t.Errorf("truth = %s, want %s", tr, want)
			}
			if a := f.clean(); a.Leftovers != 0 {
				t.Errorf("leftovers: %v", a.LeftoverList)
			}
		})
	}
}

// TestFoundClean: a powered-off VM's disk is found clean only when nothing
// was deleted, no safe-boot flag cleared, and no earlier attempt may have
// done either unrecorded.
func TestFoundClean(t *testing.T) {
	stopped, running := &step.Target{State: inventory.StateStopped}, &step.Target{State: inventory.StateBootLoop}
	clean := step.Facts{FactDeleted: "0", FactSafeBootCleared: "false"}
	cases := []struct {
		name  string
		vm    *step.Target
		facts step.Facts
		want  bool
	}{
		{"nothing changed", stopped, clean, true},
		{"a file deleted", stopped, clean.Merge(step.Facts{FactDeleted: "1"}), false},
		{"the flag cleared", stopped, clean.Merge(step.Facts{FactSafeBootCleared: "true"}), false},
		{"an earlier attempt may have changed it", stopped, clean.Merge(step.Facts{FactEffectsUnknown: "true"}), false},
		{"not checked yet", stopped, step.Facts{}, false},
		{"a running VM", running, clean, false},
	}
	for _, c := range cases {
		if got := foundClean(c.vm, c.facts); got != c.want {
			t.Errorf("%s: foundClean = %v, want %v", c.name, got, c.want)
		}
	}
}
