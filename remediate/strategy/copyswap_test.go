package strategy

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// swapDisks makes the in-process sim provider's disks behave as Azure's:
// a boot disk is never detached or attached, it is swapped
// (world.SwapBootDisk), and a copy is deleted (world.DeleteDisk). The
// Azure provider itself runs this strategy in simulation's TestDemoAzure.
type swapDisks struct {
	providers.Disks
	w *world.World
}

func (s swapDisks) Detach(ctx context.Context, vm providers.VMRef, d providers.DiskRef) error {
	if ds, err := s.Describe(ctx, d); err == nil && ds.AttachedTo == vm.ID && ds.Boot {
		return providers.Errorf(providers.ErrUnsupported, "Detach", d.ID, "an OS disk cannot be detached; swap it")
	}
	return s.Disks.Detach(ctx, vm, d)
}

func (s swapDisks) Attach(ctx context.Context, vm providers.VMRef, d providers.DiskRef, boot bool) error {
	if boot {
		return providers.Errorf(providers.ErrUnsupported, "Attach", d.ID, "an OS disk cannot be attached; swap it")
	}
	return s.Disks.Attach(ctx, vm, d, false)
}

func (s swapDisks) SwapOSDisk(ctx context.Context, vm providers.VMRef, d providers.DiskRef) error {
	var p world.Pending
	err := providers.RetryWhileBusy(ctx, s.w.Clock(), func() (err error) {
		p, err = s.w.SwapBootDisk(ctx, world.DefaultAccount, vm.ID, d.ID)
		return err
	})
	if err != nil {
		return err
	}
	return clock.SleepUntil(ctx, s.w.Clock(), p.Until)
}

func (s swapDisks) DeleteCopy(ctx context.Context, d providers.DiskRef, tags providers.Tags) error {
	ds, err := s.Describe(ctx, d)
	switch {
	case errors.Is(err, providers.ErrNotFound):
		return nil
	case err != nil:
		return err
	}
	for k, v := range tags {
		if ds.Tags[k] != v {
			return providers.Errorf(providers.ErrConflict, "DeleteCopy", d.ID, "not the run's copy")
		}
	}
	return s.w.DeleteDisk(ctx, world.DefaultAccount, d.ID)
}

// swapFixture is a fixture whose provider swaps OS disks instead of
// detaching them.
func swapFixture(t *testing.T, specs ...spec) *fixture {
	f := newFixture(t, specs...)
	f.prov.Disks = swapDisks{Disks: f.prov.Disks, w: f.w}
	if caps := strings.Join(f.prov.Capabilities(), ","); !strings.Contains(caps, "os-disk-swap") || strings.Contains(caps, "os-disk-detach") {
		t.Fatalf("capabilities %s: want os-disk-swap and not os-disk-detach", caps)
	}
	return f
}

// TestCopyAndSwap repairs a copy on a helper and swaps it in: the VM boots
// healthy from the copy, the original disk is kept (detached, unchanged),
// the identity collision is handled as helper-mount handles it, and the
// referee counts nothing.
func TestCopyAndSwap(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		spec spec
	}{
		{"own identity", spec{n: 170}},
		{"identity collision", spec{n: 171, identity: img2019}},
		{"BitLocker", spec{n: 172, identity: img2019, bitlocker: true, escrowed: true}},
		// The copy's safe-boot flag is cleared in its own BCD, as
		// helper-mount clears the disk's: otherwise the VM boots Safe
		// Mode again from the copy, where its WinRM does not run.
		{"Safe Mode, WinRM not under SafeBoot\\Network", spec{n: 173, kind: safeMode, silentSafe: true, identity: img2019}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := swapFixture(t, c.spec)
			vm := f.target(c.spec.n)
			facts, err := f.run(CopyAndSwap{}, vm, nil, runOpts{stopAfter: -1, twice: true})
			if err != nil {
				t.Fatalf("copy-and-swap: %v (facts %v)", err, facts)
			}
			noSecrets(t, facts, err)
			cp := facts[FactCopyDiskID]
			if facts[FactOriginalDiskID] != vm.OSDisk.ID || cp == "" || cp == vm.OSDisk.ID || facts[FactSwapped] != "true" {
				t.Errorf("facts = %v", facts)
			}
			if facts[FactIdentityVerified] != facts[FactIdentityOriginal] {
				t.Errorf("identity verified %q, original %q", facts[FactIdentityVerified], facts[FactIdentityOriginal])
			}
			if ds := f.disk(cp); ds.AttachedTo != vm.ID || !ds.Boot {
				t.Errorf("copy is %+v, want the OS disk of %s", ds, vm.ID)
			}
			if ds := f.disk(vm.OSDisk.ID); ds.AttachedTo != "" {
				t.Errorf("original is %+v, want kept, detached", ds)
			}
			if tr := f.waitTruth(c.spec.n, world.TruthHealthy, BootWait); tr != world.TruthHealthy {
				t.Errorf("truth = %s", tr)
			}
			f.clean()
		})
	}
}

// TestCopyAndSwapAbort stops the strategy after each step and aborts: before
// the swap the VM keeps its own OS disk, runs, and the copy is gone; after
// it the copy, which boots healthy, stays. The referee counts nothing.
func TestCopyAndSwapAbort(t *testing.T) {
	t.Parallel()
	afters := []string{"stop", "snapshot", "copy-disk", "lease-helper", "attach-to-helper", "find-disk", "online-disk", "delete-files",
		"restore-identity", "offline-disk", "detach-from-helper", "return-helper", "swap-os-disk"}
	for i, after := range afters {
		n := 180 + i
		t.Run("after-"+after, func(t *testing.T) {
			t.Parallel()
			f := swapFixture(t, spec{n: n, identity: img2019})
			s := CopyAndSwap{}
			vm := f.target(n)
			facts, err := f.run(s, vm, nil, runOpts{stopAfter: stepIndex(t, s, vm, after)})
			if !errors.Is(err, errStopped) {
				t.Fatalf("run: %v", err)
			}
			if after == "swap-os-disk" {
				f.abortAndCheck(t, s, n, vm, facts, facts[FactCopyDiskID])
			} else {
				f.abortAndCheck(t, s, n, vm, facts, vm.OSDisk.ID, FactCopyDiskID)
			}
		})
	}
}

// TestCopyAndSwapResume stops after a step, then runs the strategy again
// from its facts in a new helper pool: the VM ends healthy on one copy.
func TestCopyAndSwapResume(t *testing.T) {
	t.Parallel()
	for i, after := range []string{"copy-disk", "attach-to-helper", "online-disk", "detach-from-helper", "swap-os-disk", "start"} {
		n := 200 - i
		t.Run("after-"+after, func(t *testing.T) {
			t.Parallel()
			f := swapFixture(t, spec{n: n, identity: img2019})
			s := CopyAndSwap{}
			vm := f.target(n)
			f.resumeAfter(t, s, n, vm, after)
			f.clean()
		})
	}
}

// withoutStep is a strategy with one of its steps left out: a repair that
// silently did not happen.
type withoutStep struct {
	CopyAndSwap
	skip string
}

func (s withoutStep) Steps(vm *step.Target, pol policy.Policy) []step.Step {
	var out []step.Step
	for _, st := range s.CopyAndSwap.Steps(vm, pol) {
		if st.Name != s.skip {
			out = append(out, st)
		}
	}
	return out
}

// TestCopyAndSwapSwapsBack: a copy swapped in that does not boot healthy
// (its bad file was never deleted) fails verify; Abort swaps the original
// back, starts the VM on it, and deletes the copy. The VM is as it was
// (boot-looping on its own, unchanged disk), and the referee counts
// nothing.
func TestCopyAndSwapSwapsBack(t *testing.T) {
	t.Parallel()
	f := swapFixture(t, spec{n: 199, identity: img2019})
	vm := f.target(199)
	facts, err := f.run(withoutStep{skip: "delete-files"}, vm, nil, runOpts{stopAfter: -1})
	if !errors.Is(err, step.ErrStrategyFailed) {
		t.Fatalf("err = %v, want a failed verify (facts %v)", err, facts)
	}
	if facts[FactSwapped] != "true" || facts[FactCopyGone] != "true" {
		t.Errorf("facts = %v, want swapped, then the copy deleted", facts)
	}
	if ds := f.disk(vm.OSDisk.ID); ds.AttachedTo != vm.ID || !ds.Boot {
		t.Errorf("original is %+v, want the OS disk of %s again", ds, vm.ID)
	}
	if _, err := f.prov.Disks.Describe(context.Background(), providers.DiskRef{ID: facts[FactCopyDiskID]}); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("the copy %s is still there: %v", facts[FactCopyDiskID], err)
	}
	if tr := f.truth(199); tr != world.TruthBootLoop {
		t.Errorf("truth = %s, want boot-loop (the original, untouched)", tr)
	}
	f.clean()
}

// TestCopyAndSwapCopiesAfterItsStop: a VM whose disk another strategy
// already snapshotted (delete-file's snapshot, taken while the VM still ran
// in Safe Mode) is copied from a snapshot copy-and-swap takes itself after
// its stop, never from the older one: a copy of the older one would lose
// in the swap what the VM wrote since.
func TestCopyAndSwapCopiesAfterItsStop(t *testing.T) {
	t.Parallel()
	f := swapFixture(t, spec{n: 174, kind: safeMode, silentSafe: true, identity: img2019})
	vm := f.target(174)
	early, err := f.runStep(context.Background(), snapshotStep(), vm, step.Facts{})
	if err != nil || early[FactSnapshotID] == "" {
		t.Fatalf("delete-file's snapshot: %v (facts %v)", err, early)
	}
	started := f.clk.Now()
	facts, err := f.run(CopyAndSwap{}, vm, early, runOpts{stopAfter: -1})
	if err != nil {
		t.Fatalf("copy-and-swap: %v (facts %v)", err, facts)
	}
	src := facts[FactCopySourceID]
	if src == "" || src == early[FactSnapshotID] {
		t.Fatalf("the copy was made from %q; delete-file's earlier snapshot is %q", src, early[FactSnapshotID])
	}
	ss, err := f.w.FindSnapshots(context.Background(), world.DefaultAccount, nil)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, s := range ss {
		if s.Ref.ID == src {
			found = true
			if s.TakenAt.Before(started) {
				t.Errorf("copy source %s taken at %s, before copy-and-swap started at %s", src, s.TakenAt, started)
			}
		}
	}
	if !found {
		t.Errorf("copy source %s is not in the world", src)
	}
	f.clean()
}
