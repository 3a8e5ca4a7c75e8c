package strategy

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// TestStoppedVMs: helper-mount on a powered-off VM (plan state stopped)
// reads its disk on a helper without starting it, deletes only the bad
// files, clears a safe-boot flag, and ends as policy.stopped_vms says:
// left off (repaired for its next start, or found clean and put back
// unchanged) or started and verified. The world's truth judges the disk
// itself: a stopped VM counts as repaired only when the bad file is gone.
func TestStoppedVMs(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name        string
		spec        spec
		start       bool // policy.stopped_vms: start
		want        error
		wantEnding  step.Ending
		wantDeleted string
		wantPower   inventory.PowerState
		wantTruth   string
	}{
		{name: "bad file, left stopped", spec: spec{n: 60, kind: stoppedBad, identity: img2019},
			wantEnding: step.EndRepairedStopped, wantDeleted: "1", wantPower: inventory.PowerStopped, wantTruth: world.TruthHealthy},
		{name: "bad file, started", spec: spec{n: 61, kind: stoppedBad, identity: img2019}, start: true,
			wantDeleted: "1", wantPower: inventory.PowerRunning, wantTruth: world.TruthHealthy},
		{name: "clean disk, left stopped", spec: spec{n: 62, kind: stoppedClean},
			wantEnding: step.EndFoundClean, wantDeleted: "0", wantPower: inventory.PowerStopped, wantTruth: world.TruthHealthy},
		{name: "clean disk, started", spec: spec{n: 63, kind: stoppedClean, identity: img2019}, start: true,
			wantEnding: step.EndFoundClean, wantDeleted: "0", wantPower: inventory.PowerRunning, wantTruth: world.TruthHealthy},
		{name: "bad file and safe-boot flag, left stopped", spec: spec{n: 64, kind: stoppedSafe, identity: img2019},
			wantEnding: step.EndRepairedStopped, wantDeleted: "1", wantPower: inventory.PowerStopped, wantTruth: world.TruthHealthy},
		{name: "BitLocker without key: disk back, still off", spec: spec{n: 65, kind: stoppedBad, identity: img2019, bitlocker: true},
			want: step.ErrStrategyFailed, wantPower: inventory.PowerStopped, wantTruth: world.TruthBootLoop},
		{name: "damaged hive: disk back, still off", spec: spec{n: 66, kind: stoppedBad, identity: img2019, hive: true},
			want: step.ErrStrategyFailed, wantDeleted: "1", wantPower: inventory.PowerStopped, wantTruth: world.TruthBootLoop},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, c.spec)
			if c.start {
				f.env.Policy.StoppedVMs = policy.StoppedStart
			}
			if tr := f.truth(c.spec.n); tr == world.TruthHealthy && c.spec.kind != stoppedClean {
				t.Fatalf("setup: a stopped VM carrying the bad file is %s by the world's truth", tr)
			}
			vm := f.target(c.spec.n)
			facts, err := f.run(HelperMount{}, vm, nil, runOpts{stopAfter: -1})
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v (facts %v)", err, c.want, facts)
			}
			if got := step.Ending(facts[step.FactEnding]); got != c.wantEnding {
				t.Errorf("ending %q, want %q (facts %v)", got, c.wantEnding, facts)
			}
			if facts[FactDeleted] != c.wantDeleted {
				t.Errorf("deleted %q, want %q", facts[FactDeleted], c.wantDeleted)
			}
			if c.spec.kind == stoppedSafe && facts[FactSafeBootCleared] != "true" {
				t.Errorf("safe-boot flag not cleared offline: facts %v", facts)
			}
			if ds := f.disk(vm.OSDisk.ID); ds.AttachedTo != vm.ID || !ds.Boot {
				t.Errorf("disk is %+v, want the boot disk of %s", ds, vm.ID)
			}
			if c.wantPower == inventory.PowerStopped && facts[FactSnapshotID] == "" {
				t.Errorf("no snapshot before the disk was read: facts %v", facts)
			}
			if tr := f.waitTruth(c.spec.n, c.wantTruth, BootWait); tr != c.wantTruth {
				t.Errorf("truth = %s, want %s", tr, c.wantTruth)
			}
			f.checkPower(t, c.spec.n, c.wantPower)
			f.clean()
			noSecrets(t, facts, err)
		})
	}
}

// TestStoppedRestoredAfterDamagedHives: restore-backup restores a
// powered-off VM only once the offline check before it (helper-mount)
// found its hives damaged; it then leaves it off with the restored disk
// as its boot disk (or starts and verifies it, as policy.stopped_vms
// says). Without that finding it fails at its re-check and changes
// nothing: a disk nobody saw broken may be clean.
func TestStoppedRestoredAfterDamagedHives(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		n          int
		start      bool
		hive       bool // the disk's hives are damaged
		want       error
		wantEnding step.Ending
		wantPower  inventory.PowerState
		wantTruth  string
	}{
		{name: "damaged hives, left stopped", n: 68, hive: true, wantEnding: step.EndRepairedStopped, wantPower: inventory.PowerStopped, wantTruth: world.TruthHealthy},
		{name: "damaged hives, started", n: 69, hive: true, start: true, wantPower: inventory.PowerRunning, wantTruth: world.TruthHealthy},
		{name: "no offline finding: not restored", n: 70, want: step.ErrStrategyFailed, wantPower: inventory.PowerStopped, wantTruth: world.TruthBootLoop},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, spec{n: c.n, kind: stoppedBad, identity: img2019, hive: c.hive})
			if c.start {
				f.env.Policy.StoppedVMs = policy.StoppedStart
			}
			vm := f.target(c.n)
			facts := step.Facts{}
			if c.hive {
				var err error
				if facts, err = f.run(HelperMount{}, vm, nil, runOpts{stopAfter: -1}); !errors.Is(err, step.ErrStrategyFailed) || facts[FactHivesOK] != "false" {
					t.Fatalf("helper-mount: err = %v, hives_ok %q; want it failed on the damaged hives", err, facts[FactHivesOK])
				}
			}
			before := f.mutationCount()
			facts, err := f.run(RestoreBackup{}, vm, facts, runOpts{stopAfter: -1})
			if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
				t.Fatalf("restore-backup: err = %v, want %v (facts %v)", err, c.want, facts)
			}
			if got := step.Ending(facts[step.FactEnding]); got != c.wantEnding {
				t.Errorf("ending %q, want %q (facts %v)", got, c.wantEnding, facts)
			}
			if c.want != nil {
				if after := f.mutationCount(); fmt.Sprint(after) != fmt.Sprint(before) {
					t.Errorf("it acted: %v -> %v", before, after)
				}
			} else if ds := f.disk(facts[FactRestoredDiskID]); ds.AttachedTo != vm.ID || !ds.Boot {
				t.Errorf("restored disk is %+v, want the boot disk of %s", ds, vm.ID)
			}
			if tr := f.waitTruth(c.n, c.wantTruth, BootWait); tr != c.wantTruth {
				t.Errorf("truth = %s, want %s", tr, c.wantTruth)
			}
			f.checkPower(t, c.n, c.wantPower)
			f.clean()
		})
	}
}

// TestStoppedVMStartedMeanwhile: a VM planned as powered off that someone
// started since is not the plan's VM any more: the strategy fails at its
// re-check and changes nothing.
func TestStoppedVMStartedMeanwhile(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		f := newVirtualFixture(t, spec{n: 67, kind: stoppedBad, identity: img2019})
		vm := f.target(67)
		if err := f.prov.Power.Start(context.Background(), []providers.VMRef{vmRef(vm)}); err != nil {
			t.Fatal(err)
		}
		before := f.mutationCount()
		_, err := f.run(HelperMount{}, vm, nil, runOpts{stopAfter: -1, noAbort: true})
		if !errors.Is(err, step.ErrStrategyFailed) {
			t.Fatalf("err = %v, want the strategy failed at its re-check", err)
		}
		if after := f.mutationCount(); after["DetachDisk"] != before["DetachDisk"] || after["StopVMs"] != before["StopVMs"] {
			t.Errorf("it acted: %v -> %v", before, after)
		}
	})
}

// TestStoppedAbortAndResume: helper-mount on a powered-off VM stopped
// after each step, then either aborted (the disk back on its VM with its
// identity verified, the VM still off, the helper given back) or resumed
// by a new process (the same ending as a run straight through).
func TestStoppedAbortAndResume(t *testing.T) {
	t.Parallel()
	afters := []string{"recheck", "snapshot", "lease-helper", "detach-os-disk", "attach-to-helper", "online-disk", "delete-files",
		"clear-safeboot", "verify-identity", "offline-disk", "detach-from-helper", "return-helper", "attach-boot"}
	for i, after := range afters {
		for _, resume := range []bool{false, true} {
			n := 70 + 2*i
			name := "abort"
			if resume {
				n, name = n+1, "resume"
			}
			t.Run(name+"/after-"+after, func(t *testing.T) {
				t.Parallel()
				f := newFixture(t, spec{n: n, kind: stoppedSafe, identity: img2019})
				s := HelperMount{}
				vm := f.target(n)
				facts, err := f.run(s, vm, nil, runOpts{stopAfter: stepIndex(t, s, vm, after)})
				if !errors.Is(err, errStopped) {
					t.Fatalf("run: %v", err)
				}
				f.pool = newPool(t, f) // a new process
				f.env.Helpers = f.pool
				if resume {
					facts, err = f.run(s, vm, facts, runOpts{stopAfter: -1})
					if err != nil || step.Ending(facts[step.FactEnding]) != step.EndRepairedStopped {
						t.Fatalf("resumed run: %v, facts %v", err, facts)
					}
				} else {
					af, err := s.Abort(context.Background(), f.env, vm, facts)
					if err != nil {
						t.Fatalf("abort: %v (facts %v)", err, af)
					}
					if _, err := s.Abort(context.Background(), f.env, vm, facts.Merge(af)); err != nil {
						t.Errorf("second abort: %v", err)
					}
				}
				if ds := f.disk(vm.OSDisk.ID); ds.AttachedTo != vm.ID || !ds.Boot {
					t.Errorf("disk is %+v, want the boot disk of %s", ds, vm.ID)
				}
				if p := f.power(n); p != inventory.PowerStopped {
					t.Errorf("power = %s, want it left off", p)
				}
				if l := f.pool.Leases(); len(l) > 0 && len(l[0].VMs) > 0 {
					t.Errorf("lease not returned: %v", l)
				}
				if a := f.clean(); len(a.Unbootable) > 0 {
					t.Errorf("unbootable: %v", a.Unbootable)
				}
			})
		}
	}
}
