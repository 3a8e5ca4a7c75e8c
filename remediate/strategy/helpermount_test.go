package strategy

import (
	"context"
	"errors"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// TestAbortResumedWithDiskDetached: helper-mount stopped with the OS disk
// onlined on its helper, and the disk then left the helper without any
// journaled fact saying its identity was verified, in the ways a kill
// leaves it: an Abort killed after it restored, verified, offlined and
// detached the disk (Abort's facts are journaled only when it returns), or
// a disk detached while still onlined with the identity Windows gave it.
// The resumed process's Abort (a new helper pool, the same facts) must
// verify the identity again on a helper, restoring it when it differs,
// and bring the disk back to its VM: the VM is repairable by a fallback,
// not a person's. When the identity before onlining is unknown it must
// never return the disk.
func TestAbortResumedWithDiskDetached(t *testing.T) {
	t.Parallel()
	// killedAbort plays the part of the dead process on a disk onlined on
	// helper h; it may change facts as the journal would hold them.
	type killedAbort func(t *testing.T, f *fixture, vm *step.Target, facts step.Facts, h providers.VMRef)
	detached := func(t *testing.T, f *fixture, vm *step.Target) {
		if ds := f.disk(vm.OSDisk.ID); ds.AttachedTo != "" {
			t.Fatalf("setup: disk is %+v, want detached", ds)
		}
	}
	cases := []struct {
		name   string
		after  string // the step helper-mount stopped after
		killed killedAbort
		// wantFlag: the resumed Abort must flag the VM and leave the
		// disk off it; else it must bring the disk back.
		wantFlag bool
	}{
		{name: "abort killed after detaching the restored disk", after: "delete-files",
			killed: func(t *testing.T, f *fixture, vm *step.Target, facts step.Facts, h providers.VMRef) {
				if err := abortOnHelper(context.Background(), f.env, vm, facts, h, f.disk(vm.OSDisk.ID)); err != nil {
					t.Fatalf("setup: the first abort's work on the helper: %v", err)
				}
				detached(t, f, vm)
			}},
		{name: "abort killed after detaching, before restore-identity ran", after: "clear-safeboot",
			killed: func(t *testing.T, f *fixture, vm *step.Target, facts step.Facts, h providers.VMRef) {
				if err := abortOnHelper(context.Background(), f.env, vm, facts, h, f.disk(vm.OSDisk.ID)); err != nil {
					t.Fatalf("setup: the first abort's work on the helper: %v", err)
				}
				detached(t, f, vm)
			}},
		{name: "detached while onlined with a new identity", after: "online-disk",
			killed: func(t *testing.T, f *fixture, vm *step.Target, facts step.Facts, h providers.VMRef) {
				if facts[FactIdentityChanged] != "true" {
					t.Fatalf("setup: onlining did not change the identity (facts %v)", facts)
				}
				if err := f.prov.Disks.Detach(context.Background(), h, diskRef(vm, vm.OSDisk.ID)); err != nil {
					t.Fatalf("setup: detach: %v", err)
				}
				detached(t, f, vm)
			}},
		{name: "identity before onlining unknown", after: "online-disk", wantFlag: true,
			killed: func(t *testing.T, f *fixture, vm *step.Target, facts step.Facts, h providers.VMRef) {
				if err := f.prov.Disks.Detach(context.Background(), h, diskRef(vm, vm.OSDisk.ID)); err != nil {
					t.Fatalf("setup: detach: %v", err)
				}
				detached(t, f, vm)
				delete(facts, FactIdentityOriginal)
				vm.OSDisk.Identity = inventory.DiskIdentity{}
			}},
	}
	for i, c := range cases {
		n := 180 + i
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, spec{n: n, identity: img2019})
			s := HelperMount{}
			vm := f.target(n)
			facts, err := f.run(s, vm, nil, runOpts{stopAfter: stepIndex(t, s, vm, c.after), noAbort: true})
			if !errors.Is(err, errStopped) {
				t.Fatalf("run: %v", err)
			}
			h, err := helperOf(vm, facts)
			if err != nil {
				t.Fatal(err)
			}
			c.killed(t, f, vm, facts, h)

			// A new process: a new pool that knows nothing, the same facts.
			f.pool = newPool(t, f)
			f.env.Helpers = f.pool
			af, err := s.Abort(context.Background(), f.env, vm, facts)
			ds := f.disk(vm.OSDisk.ID)
			if c.wantFlag {
				if !errors.Is(err, step.ErrNeedsPerson) {
					t.Fatalf("abort: %v, want needs a person", err)
				}
				if ds.AttachedTo == vm.ID {
					t.Errorf("a disk of unknown identity went back to %s: %+v", vm.ID, ds)
				}
				// The setup's detach left the new identity on the disk
				// (identity_changed): the abort must not return it.
				if a := f.w.Audit(); a.UnverifiedReturns != 0 || a.ForeignBootDisks != 0 {
					t.Errorf("audit %+v", a.Invariants())
				}
				return
			}
			if err != nil {
				t.Fatalf("resumed abort: %v (facts %v)", err, af)
			}
			if ds.AttachedTo != vm.ID || !ds.Boot {
				t.Errorf("disk is %+v, want the boot disk of %s", ds, vm.ID)
			}
			if af[FactIdentityVerified] != facts[FactIdentityOriginal] {
				t.Errorf("abort facts %v: identity verified %q, want the original %q", af, af[FactIdentityVerified], facts[FactIdentityOriginal])
			}
			checkAbortLeftSafe(t, f, s, vm, n, facts.Merge(af))
		})
	}
}
