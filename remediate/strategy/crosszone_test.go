package strategy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
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
