package strategy

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// Fact keys only HelperMount produces.
const (
	FactHelperID       step.Fact = "helper_id"
	FactHelperZone     step.Fact = "helper_zone"
	FactOSDiskDetached step.Fact = "os_disk_detached"
	FactAttachedTo     step.Fact = "attached_to"
	FactDiskNumber     step.Fact = "disk_number"
	// FactDiskBySerial: the helper's guest lists the disk under its
	// cloud ID as serial (find-disk saw it so), which alone proves that
	// the disk it lists is this one, on this helper.
	FactDiskBySerial        step.Fact = "disk_by_serial"
	FactIdentityOriginal    step.Fact = "identity_original"
	FactIdentityAfterOnline step.Fact = "identity_after_online"
	FactIdentityChanged     step.Fact = "identity_changed"
	FactDriveLetter         step.Fact = "drive_letter"
	FactUnlocked            step.Fact = "unlocked"
	// FactKeyMissing: "true" when the helper saw the OS volume
	// BitLocker-locked and no key source holds its recovery key (the
	// condition of safe-mode-boot after it where the plan could not see
	// the encryption).
	FactKeyMissing      step.Fact = "key_missing"
	FactHivesOK         step.Fact = "hives_ok"
	FactSafeBootCleared step.Fact = "safeboot_cleared"
	// FactEffectsUnknown: a repeated delete-files or clear-safeboot found
	// nothing to change, but an earlier attempt may have changed it
	// unrecorded (step.FactRerun): the disk is not known to have been clean.
	FactEffectsUnknown     step.Fact = "effects_unknown"
	FactIdentityVerified   step.Fact = "identity_verified"
	FactOfflined           step.Fact = "offlined"
	FactDetachedFromHelper step.Fact = "detached_from_helper"
	FactHelperReturned     step.Fact = "helper_returned"
	FactDiskReturned       step.Fact = "disk_returned"
)

// HelperMount repairs a VM's OS disk offline on a pooled helper VM of the
// same Windows release in the same zone, handling the disk-identity
// collision explicitly (DESIGN.md §2): the disk's identity is recorded
// before it is onlined, restored and verified before it leaves the helper,
// and a disk whose identity is not verified is never returned to its VM.
//
// Steps:
//
//	recheck            healthy now → step.ErrHealthy
//	stop               re-check, then stop the VM (forced when its guest
//	                   does not answer: it cannot shut down by itself)
//	snapshot           a snapshot before the disk changes (reused if found);
//	                   of a stopped disk, so consistent
//	lease-helper       a slot on a helper (env.Helpers); fact helper_id
//	detach-os-disk     the OS disk leaves the stopped VM
//	attach-to-helper   attached to the helper as a data disk
//	find-disk          the helper's listing, disk by serial = disk ID; fact
//	                   identity_original recorded BEFORE onlining; it must
//	                   equal the plan's identity when the plan knows it
//	                   (else step.Flag)
//	online-disk        Windows may assign a new identity on collision:
//	                   facts identity_after_online, identity_changed
//	unlock             only when the helper sees the volume BitLocker-locked
//	                   (whatever the plan knew): key from env.Keys by the key
//	                   protector ID the helper reads (missing → step.Fail);
//	                   the key is never in facts or errors
//	delete-files       on the volume's drive letter; facts deleted, kept
//	check-hives        a damaged hive → step.Fail (for restore-backup)
//	clear-safeboot     the safe-boot flag cleared in the disk's own BCD
//	                   store, offline (bcdedit /store on its system
//	                   partition: \Boot\BCD for MBR, \EFI\Microsoft\Boot\BCD
//	                   for GPT), so a Safe Mode VM boots normally; fact
//	                   safeboot_cleared says whether it was set
//	restore-identity   set the identity back to identity_original
//	verify-identity    a fresh listing must show identity_original
//	offline-disk       take the disk offline again
//	detach-from-helper re-verifies in a fresh listing, then detaches
//	return-helper      gives the helper slot back
//	attach-boot        refuses unless identity_verified = identity_original
//	start              starts the VM
//	verify             normal boot, no bad file; else step.Fail
//
// A powered-off VM (plan state inventory.StateStopped) runs the same steps
// with three differences:
//
//	recheck            also fails the strategy unless the VM is still
//	                   powered off (until a helper is leased: a resume
//	                   part-way finds it off by the strategy's own doing)
//	start, verify      only with policy.stopped_vms: start; otherwise the
//	                   VM stays off, its disk back as its boot disk with
//	                   the identity verified
//	conclude-stopped   read-only: the disk must be the VM's boot disk
//	                   again; fact ending = found-clean when the disk
//	                   carried nothing to repair (nothing deleted, no
//	                   safe-boot flag), else, when the VM stays off,
//	                   repaired-stopped (step.Ending); started and
//	                   verified, a repaired VM has no ending (fixed)
//
// Abort leaves it powered off unless policy.stopped_vms says start.
//
// Once the disk is back on its VM (fact disk_returned and the cloud agrees),
// the steps before attach-boot do nothing, so running the strategy again
// from its facts never takes a repaired disk away again.
//
// Abort brings the OS disk back to its VM with its identity verified
// wherever the strategy stopped (restoring, verifying and offlining it on
// the helper first when it was onlined there), gives the helper slot back
// and powers the VM on, except a powered-off VM (a strategy after this
// one, restore-backup, expects it off) and one whose hives check-hives
// found damaged (it cannot boot: starting it would only show a recovery
// screen, and restore-backup, next, would stop it again before its
// restore). A disk it finds detached after it was onlined,
// with no verified identity in the facts (what an Abort killed after
// detaching it leaves: Abort's facts are journaled only when it returns),
// is attached to a helper again and verified there first (the identity
// set back when it differs); one whose identity before onlining is unknown
// is never returned. When it cannot, it returns step.Flag naming where the
// disk is.
type HelperMount struct{}

// Name implements step.Strategy.
func (HelperMount) Name() policy.Strategy { return policy.HelperMount }

// Applies implements Unit: a crashing VM, one in Safe Mode (whose WinRM
// may not run there: the safe-boot flag is cleared offline, in the disk's
// own BCD store, with the files), or a powered-off one (its disk is read
// offline without starting it; see StoppedSteps).
func (HelperMount) Applies() []inventory.State {
	return []inventory.State{inventory.StateBootLoop, inventory.StateSafeMode, inventory.StateStopped}
}

// NotApplicable implements Unit.
func (HelperMount) NotApplicable(st inventory.State) string { return notApplicable(st) }

// Needs implements Unit: the OS disk leaves its VM, so a cloud that can
// detach it (copy-and-swap serves the others).
func (HelperMount) Needs() Needs {
	return Needs{Capabilities: []string{"power", "disks", "os-disk-detach", "helpers"}, Helper: true, RecoveryKey: true}
}

// Check implements Unit: a helper image the policy allows, and for a
// BitLocker disk its recovery key.
func (HelperMount) Check(c *Candidate) []string {
	var why []string
	if w := helperProblem(c); w != "" {
		why = append(why, w)
	}
	if c.KeyProblem != "" {
		why = append(why, c.KeyProblem+": the disk cannot be unlocked on a helper")
	}
	return why
}

// helperProblem says why no helper can be used, or "".
func helperProblem(c *Candidate) string {
	switch {
	case c.Helper != nil && c.Helper.Zone != c.VM.Zone:
		return fmt.Sprintf("no helper image in zone %s for Windows %s; zone %s has one, which %s reaches through a disk copy",
			c.VM.Zone, c.VM.Windows.Release, c.Helper.Zone, policy.CrossZone)
	case c.Helper != nil:
		return ""
	}
	if c.VM.Windows.Release == "" {
		return "the VM's Windows release is unknown, so no helper can be matched to it"
	}
	w := fmt.Sprintf("no same-version helper image in zone %s for Windows %s", c.VM.Zone, c.VM.Windows.Release)
	if len(c.ZoneReleases) == 0 {
		return w + " (no helper images in that zone)"
	}
	return w + fmt.Sprintf(" (zone has Windows %s; set policy.helper_version: any to allow a different release)",
		strings.Join(c.ZoneReleases, ", "))
}

// Risks implements Unit: a helper of another Windows release.
func (HelperMount) Risks(c *Candidate, planned bool) []string {
	if c.SameHelper {
		return nil
	}
	var r []string
	if c.VM.Windows.Release != "" {
		r = append(r, fmt.Sprintf("no same-version helper image in zone %s for Windows %s", c.VM.Zone, c.VM.Windows.Release))
	}
	if planned && c.Helper != nil {
		r = append(r, fmt.Sprintf("helper of a different Windows release (%s for a %s VM): NTFS, BitLocker and hive tools may differ",
			c.Helper.Windows.Release, c.VM.Windows.Release))
	}
	return r
}

// FailureChance implements Unit: not modelled (0).
func (HelperMount) FailureChance(policy.Policy) float64 { return 0 }

// onHelperCost is the cost of a step on the helper: it reads where the
// disk is (one call), lists the helper's disks (one script), then runs
// scripts of its own.
func onHelperCost(scripts int) step.Cost { return step.Cost{Calls: 1, Scripts: 1 + scripts} }

// Steps implements step.Strategy. A new helper's creation is not a step
// of any one VM: the estimate adds it once per helper.
func (HelperMount) Steps(vm *step.Target, pol policy.Policy) []step.Step {
	unlock := 0
	if vm.OSDisk.Encryption.BitLocker {
		unlock = 1
	}
	steps := onHelperSteps(vm,
		// Always present: it unlocks only a volume the helper sees locked.
		step.Step{Name: "unlock", Run: unlessReturned(hmUnlock), Cost: onHelperCost(unlock)},
		step.Step{Name: "delete-files", Run: unlessReturned(hmDelete), Cost: onHelperCost(1)},
		step.Step{Name: "check-hives", Run: unlessReturned(hmCheckHives), Cost: onHelperCost(1)},
		step.Step{Name: "clear-safeboot", Run: unlessReturned(hmClearSafeBoot), Cost: onHelperCost(1)},
	)
	return endSteps(steps, vm, pol, func(vm *step.Target, _ step.Facts) string { return vm.OSDisk.ID })
}

// onHelperSteps are the steps that take vm's OS disk to a helper, online
// and with its identity recorded, run work there (steps that must skip
// once the disk is back: unlessReturned), and bring the disk back as the
// VM's boot disk with its identity restored and verified; the VM is left
// off. See HelperMount for each step.
func onHelperSteps(vm *step.Target, work ...step.Step) []step.Step {
	ops := func(o ...timing.Op) step.Cost { return step.Cost{Ops: o} }
	recheck := recheckStep("", nil)
	if vm.State == inventory.StateStopped {
		recheck = recheckStep(FactHelperID, stillStopped)
	}
	steps := []step.Step{
		recheck,
		// Stop first: the VM is down anyway, and the VMs a wave starts
		// together reach their stop together, which a batching cloud
		// (EC2) turns into one call. The snapshot is Early: the executor
		// usually took it already, while the VM still boot-looped and
		// cheaper strategies tried (a crash-consistent copy of a disk
		// that is not serving); it is the rollback point, not the
		// repair's source.
		{Name: "stop", Run: unlessReturned(hmStop), Cost: ops(timing.OpStop)},
		snapshotStep(),
		{Name: "lease-helper", Run: unlessReturned(hmLease)},
		{Name: "detach-os-disk", Run: unlessReturned(hmDetachOS), Cost: ops(timing.OpDetach)},
		{Name: "attach-to-helper", Run: unlessReturned(hmAttachHelper), Cost: ops(timing.OpAttach)},
		{Name: "find-disk", Run: unlessReturned(hmFindDisk), Cost: onHelperCost(0)},
		{Name: "online-disk", Run: unlessReturned(hmOnline), Cost: onHelperCost(1)},
	}
	steps = append(steps, work...)
	return append(steps,
		step.Step{Name: "restore-identity", Run: unlessReturned(hmRestoreIdentity), Cost: onHelperCost(1)},
		step.Step{Name: "verify-identity", Run: unlessReturned(hmVerifyIdentity), Cost: onHelperCost(0), ReadOnly: true},
		step.Step{Name: "offline-disk", Run: unlessReturned(hmOffline), Cost: onHelperCost(1)},
		step.Step{Name: "detach-from-helper", Run: unlessReturned(hmDetachHelper),
			Cost: step.Cost{Ops: []timing.Op{timing.OpDetach}, Calls: 1, Scripts: 1}},
		step.Step{Name: "return-helper", Run: hmReturnHelper},
		step.Step{Name: "attach-boot", Run: hmAttachBoot, Cost: step.Cost{Ops: []timing.Op{timing.OpAttach}, Calls: 1}},
	)
}

// endSteps appends a repair's last steps: start and verify, except for a
// powered-off VM the policy leaves off; a powered-off VM's then end with
// conclude-stopped, on the boot disk bootOf names.
func endSteps(steps []step.Step, vm *step.Target, pol policy.Policy, bootOf func(vm *step.Target, facts step.Facts) string) []step.Step {
	stopped := vm.State == inventory.StateStopped
	if !stopped || pol.StartsStopped() {
		steps = append(steps,
			step.Step{Name: "start", Run: hmStart, Cost: step.Cost{Ops: []timing.Op{timing.OpStart}}},
			finalVerify("verify"))
	}
	if stopped {
		steps = append(steps, step.Step{Name: "conclude-stopped", Run: concludeStopped(bootOf), ReadOnly: true, Cost: step.Cost{Calls: 1}})
	}
	return steps
}

// stillStopped is the stopped plan's precondition on the re-check: the VM
// must still be powered off, or the plan no longer fits it.
func stillStopped(_ inventory.Probe, s inventory.Signals) error {
	if s.Power != inventory.PowerStopped {
		return step.Fail("the plan found it powered off, but it is %s now: assess and plan again", powerWord(s.Power))
	}
	return nil
}

func powerWord(p inventory.PowerState) string {
	if p == "" {
		return string(inventory.PowerUnknown)
	}
	return string(p)
}

// concludeStopped returns the last step of a powered-off VM's offline
// check: the disk bootOf names must be the VM's boot disk, and the fact
// ending records how the check ended (step.Ending): found-clean, or
// repaired-stopped when the VM stays off (started and verified: fixed).
func concludeStopped(bootOf func(vm *step.Target, facts step.Facts) string) runFunc {
	return func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if err := need(env, "disks", env.Provider != nil && env.Provider.Disks != nil); err != nil {
			return nil, err
		}
		boot := bootOf(vm, facts)
		ds, err := env.Describe(ctx, diskRef(vm, boot))
		if err != nil {
			return nil, err
		}
		if ds.AttachedTo != vm.ID || !ds.Boot {
			return nil, step.Fail("disk %s is not the boot disk of %s after the offline check", boot, vm.ID)
		}
		switch {
		case foundClean(vm, facts):
			return step.Facts{step.FactEnding: string(step.EndFoundClean)}, nil
		case facts[FactStarted] == "true":
			return step.Facts{}, nil // started and verified: fixed
		}
		return step.Facts{step.FactEnding: string(step.EndRepairedStopped)}, nil
	}
}

// foundClean reports whether the offline check of a powered-off VM's disk
// found nothing to repair: nothing deleted, no safe-boot flag cleared, and
// no earlier attempt that may have done either (FactEffectsUnknown).
func foundClean(vm *step.Target, facts step.Facts) bool {
	return vm.State == inventory.StateStopped && facts[FactDeleted] == "0" && facts[FactSafeBootCleared] == "false" &&
		facts[FactEffectsUnknown] != "true"
}

type runFunc = func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error)

// unlessReturned skips a step once the repaired disk is back on its VM.
func unlessReturned(f runFunc) runFunc {
	return func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
		if err := need(env, "disks", env.Provider != nil && env.Provider.Disks != nil); err != nil {
			return nil, err
		}
		if facts[FactDiskReturned] == "true" {
			ds, err := env.Describe(ctx, diskRef(vm, vm.OSDisk.ID))
			if err != nil {
				return nil, err
			}
			if ds.AttachedTo == vm.ID && ds.Boot {
				return nil, nil
			}
		}
		return f(ctx, env, vm, facts)
	}
}

// helperWindows is the release of the helper to lease.
func helperWindows(vm *step.Target) inventory.WindowsVersion {
	if vm.HelperWindows.Release != "" {
		return vm.HelperWindows
	}
	return vm.Windows
}

func helperOf(vm *step.Target, facts step.Facts) (providers.VMRef, error) {
	id := facts[FactHelperID]
	if id == "" {
		return providers.VMRef{}, step.Fail("no helper was leased for %s", vm.ID)
	}
	zone := facts[FactHelperZone]
	if zone == "" {
		zone = vm.Zone
	}
	return providers.VMRef{ID: id, Region: vm.Region, Zone: zone}, nil
}

func originalIdentity(vm *step.Target, facts step.Facts) (inventory.DiskIdentity, error) {
	id, ok := parseIdentity(facts[FactIdentityOriginal])
	if !ok {
		return inventory.DiskIdentity{}, step.Fail("the identity of disk %s before it was onlined was not recorded", vm.OSDisk.ID)
	}
	return id, nil
}

// listed finds disk ds (as the cloud describes it, attached to helper h)
// in h's disk listing: at the LUN the cloud reports when it reports one,
// else by serial = the disk's ID. With wait > 0 it polls while the helper
// does not answer yet or the disk is not listed yet. A disk not listed is
// step.Fail; a helper that never answered or stayed busy is its
// guest.Transient error (retryable).
func listed(ctx context.Context, env *step.Env, h providers.VMRef, ds providers.DiskState, wait time.Duration) (guest.Disk, providers.Endpoint, error) {
	serial := ds.Ref.ID
	is := func(d guest.Disk) bool {
		if ds.LUN != nil {
			return d.LUN != nil && *d.LUN == *ds.LUN
		}
		return strings.EqualFold(d.Serial, serial)
	}
	ep, err := endpoint(ctx, env, h)
	if err != nil {
		return guest.Disk{}, ep, err
	}
	var found guest.Disk
	var lastErr error
	fn := func() (bool, error) {
		r, err := env.Guest.ListDisks(ctx, ep, env.Creds)
		if err != nil {
			if wait > 0 && guest.Transient(err) {
				lastErr = err
				return false, nil
			}
			return false, err
		}
		lastErr = nil
		for _, d := range r.Disks {
			if !d.IsBoot && is(d) {
				found = d
				return true, nil
			}
		}
		return false, nil
	}
	var ok bool
	if wait > 0 {
		ok, err = poll(ctx, env, PollEvery, wait, fn)
	} else {
		ok, err = fn()
	}
	switch {
	case err != nil:
		return guest.Disk{}, ep, err
	case ok:
		return found, ep, nil
	case lastErr != nil:
		return guest.Disk{}, ep, lastErr
	}
	return guest.Disk{}, ep, step.Fail("disk %s is not listed on helper %s", serial, h.ID)
}

// onHelper reads where the OS disk is and fails unless it is on helper h.
func onHelper(ctx context.Context, env *step.Env, vm *step.Target, h providers.VMRef) (providers.DiskState, error) {
	ds, err := env.Describe(ctx, diskRef(vm, vm.OSDisk.ID))
	if err != nil {
		return ds, err
	}
	if ds.AttachedTo != h.ID {
		where := "detached"
		if ds.AttachedTo != "" {
			where = "attached to " + ds.AttachedTo
		}
		return ds, step.Fail("disk %s should be on helper %s but is %s", vm.OSDisk.ID, h.ID, where)
	}
	return ds, nil
}

// onHelperListed is onHelper followed by the helper's listing of the disk.
// Once find-disk has seen the helper list the disk under its cloud ID as
// serial (FactDiskBySerial), the listing alone finds it, with no call to
// the cloud: a disk listed on h with that serial is this disk, attached to
// h, and one that is not listed fails the step as onHelper would. Where
// the guest names disks only by LUN (Azure), a LUN says nothing of which
// disk holds it: the cloud is asked every time.
func onHelperListed(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts, wait time.Duration) (providers.VMRef, guest.Disk, providers.Endpoint, error) {
	h, err := helperOf(vm, facts)
	if err != nil {
		return h, guest.Disk{}, providers.Endpoint{}, err
	}
	ds := providers.DiskState{Ref: diskRef(vm, vm.OSDisk.ID), AttachedTo: h.ID}
	if facts[FactDiskBySerial] != "true" {
		if ds, err = onHelper(ctx, env, vm, h); err != nil {
			return h, guest.Disk{}, providers.Endpoint{}, err
		}
	}
	d, ep, err := listed(ctx, env, h, ds, wait)
	return h, d, ep, err
}

func dataVolume(d guest.Disk) guest.Volume {
	for _, v := range d.Volumes {
		if v.DriveLetter != "" {
			return v
		}
	}
	if len(d.Volumes) > 0 {
		return d.Volumes[0]
	}
	return guest.Volume{}
}

func hmStop(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	return stopVM(ctx, env, vm, facts)
}

func hmLease(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if env.Helpers == nil {
		return nil, step.Fail("no helper pool: the account has no helpers capability")
	}
	h, err := env.Helpers.Lease(ctx, vm.Zone, helperWindows(vm), vm.Key, facts[FactHelperID])
	if err != nil {
		if errors.Is(err, providers.ErrNotFound) {
			return nil, step.Fail("no helper of %s in zone %s: %v", helperWindows(vm), vm.Zone, err)
		}
		return nil, err
	}
	zone := h.Zone
	if zone == "" {
		zone = vm.Zone
	}
	return step.Facts{FactHelperID: h.ID, FactHelperZone: zone}, nil
}

func hmDetachOS(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	ds, err := env.Describe(ctx, diskRef(vm, vm.OSDisk.ID))
	if err != nil {
		return nil, err
	}
	switch ds.AttachedTo {
	case "", facts[FactHelperID]:
	case vm.ID:
		if !ds.Boot {
			return nil, step.Flag("disk %s is attached to %s as a data disk, not as its boot disk; look at the VM", vm.OSDisk.ID, vm.ID)
		}
		if err := env.Provider.Disks.Detach(ctx, vmRef(vm), diskRef(vm, vm.OSDisk.ID)); err != nil {
			return nil, err
		}
	default:
		return nil, step.Flag("disk %s is attached to %s, neither its VM %s nor its helper; find out who uses it", vm.OSDisk.ID, ds.AttachedTo, vm.ID)
	}
	return step.Facts{FactOSDiskDetached: "true"}, nil
}

func hmAttachHelper(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	h, err := helperOf(vm, facts)
	if err != nil {
		return nil, err
	}
	ds, err := env.Describe(ctx, diskRef(vm, vm.OSDisk.ID))
	if err != nil {
		return nil, err
	}
	switch ds.AttachedTo {
	case h.ID:
	case "":
		if err := env.Provider.Disks.Attach(ctx, h, diskRef(vm, vm.OSDisk.ID), false); err != nil {
			return nil, err
		}
	case vm.ID:
		return nil, step.Fail("disk %s is still attached to its VM %s", vm.OSDisk.ID, vm.ID)
	default:
		return nil, step.Flag("disk %s is attached to %s, neither its VM %s nor its helper %s; find out who uses it", vm.OSDisk.ID, ds.AttachedTo, vm.ID, h.ID)
	}
	return step.Facts{FactAttachedTo: h.ID}, nil
}

func hmFindDisk(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	h, d, _, err := onHelperListed(ctx, env, vm, facts, HelperWait)
	if err != nil {
		return nil, err
	}
	out := step.Facts{FactDiskNumber: strconv.Itoa(d.Number)}
	if strings.EqualFold(d.Serial, vm.OSDisk.ID) {
		out[FactDiskBySerial] = "true"
	}
	if facts[FactIdentityOriginal] != "" {
		return out, nil // recorded before the disk was onlined: keep it
	}
	planned := vm.OSDisk.Identity
	switch {
	case d.Offline && !planned.IsZero() && d.Identity != planned:
		return nil, step.Flag("disk %s shows identity %s on helper %s, but the plan recorded %s: its boot configuration may name either; check the disk by hand (it is still attached to helper %s, offline)",
			vm.OSDisk.ID, d.Identity, h.ID, planned, h.ID)
	case d.Offline:
		out[FactIdentityOriginal] = fmtIdentity(d.Identity)
	case !planned.IsZero():
		out[FactIdentityOriginal] = fmtIdentity(planned)
	default:
		return nil, step.Flag("disk %s is already online on helper %s with identity %s, and its identity before it was onlined is unknown; compare it with the disk's boot configuration by hand before returning it to %s",
			vm.OSDisk.ID, h.ID, d.Identity, vm.ID)
	}
	if out[FactIdentityOriginal] == "" {
		return nil, step.Flag("the helper %s reports no identity for disk %s", h.ID, vm.OSDisk.ID)
	}
	return out, nil
}

func hmOnline(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	orig, err := originalIdentity(vm, facts)
	if err != nil {
		return nil, err
	}
	if facts[FactSnapshotID] == "" {
		return nil, step.Fail("refusing to online disk %s: no snapshot of it was recorded", vm.OSDisk.ID)
	}
	_, d, ep, err := onHelperListed(ctx, env, vm, facts, 0)
	if err != nil {
		return nil, err
	}
	if d.Offline {
		r, err := env.Guest.OnlineDisk(ctx, ep, env.Creds, guest.DiskParams{Number: d.Number, Serial: d.Serial})
		if err != nil {
			return nil, err
		}
		d = r.Disk
	}
	out := step.Facts{FactDriveLetter: dataVolume(d).DriveLetter}
	if facts[FactIdentityAfterOnline] == "" {
		out[FactIdentityAfterOnline] = fmtIdentity(d.Identity)
		out[FactIdentityChanged] = strconv.FormatBool(d.Identity != orig)
	}
	return out, nil
}

func hmUnlock(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	h, d, ep, err := onHelperListed(ctx, env, vm, facts, 0)
	if err != nil {
		return nil, err
	}
	// What the helper sees decides, not the plan: some clouds (EC2) cannot
	// tell that a disk is BitLocker-encrypted.
	vol := dataVolume(d)
	if vol.BitLocker != "locked" {
		return step.Facts{FactUnlocked: "true"}, nil
	}
	keyID := vol.KeyID
	switch {
	case keyID == "":
		keyID = vm.OSDisk.Encryption.KeyID
	case vm.OSDisk.Encryption.KeyID != "" && !strings.EqualFold(keyID, vm.OSDisk.Encryption.KeyID):
		return nil, step.Fail("the volume of disk %s is protected by key %s, but the plan expected %s", vm.OSDisk.ID, keyID, vm.OSDisk.Encryption.KeyID)
	}
	missing := step.Facts{FactKeyMissing: "true"}
	switch {
	case keyID == "":
		return missing, step.Fail("disk %s is BitLocker-locked on helper %s and its key protector ID is unknown", vm.OSDisk.ID, h.ID)
	case vol.DriveLetter == "":
		return nil, step.Fail("the BitLocker volume of disk %s has no drive letter on helper %s", vm.OSDisk.ID, h.ID)
	case env.Keys == nil:
		return missing, step.Fail("no recovery-key source: cannot unlock disk %s (key protector %s)", vm.OSDisk.ID, keyID)
	}
	key, ok := env.Keys.Key(keyID)
	if !ok {
		return missing, step.Fail("the key source has no recovery key for key protector %s of disk %s", keyID, vm.OSDisk.ID)
	}
	r, err := env.Guest.UnlockVolume(ctx, ep, env.Creds, guest.UnlockParams{DriveLetter: vol.DriveLetter, RecoveryKey: key.Reveal()})
	if err != nil {
		if retryable(err) {
			return nil, err
		}
		// The client's errors are scrubbed of the key; add only the ID.
		return nil, step.Fail("unlocking the volume of disk %s with key protector %s failed: %v", vm.OSDisk.ID, keyID, err)
	}
	if !r.Unlocked {
		return nil, step.Fail("the volume of disk %s is still locked after unlocking with key protector %s", vm.OSDisk.ID, keyID)
	}
	return step.Facts{FactUnlocked: "true"}, nil
}

// letterOf returns the disk's unlocked volume letter, or a step.Fail.
func letterOf(vm *step.Target, h providers.VMRef, d guest.Disk) (string, error) {
	vol := dataVolume(d)
	switch {
	case d.Offline || vol.DriveLetter == "":
		return "", step.Fail("disk %s is not online with a drive letter on helper %s", vm.OSDisk.ID, h.ID)
	case vol.BitLocker == "locked":
		return "", step.Fail("the volume of disk %s is locked by BitLocker on helper %s (the plan did not expect BitLocker)", vm.OSDisk.ID, h.ID)
	}
	return vol.DriveLetter, nil
}

func hmDelete(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if facts[FactSnapshotID] == "" {
		return nil, step.Fail("refusing to delete files on disk %s: no snapshot of it was recorded", vm.OSDisk.ID)
	}
	h, d, ep, err := onHelperListed(ctx, env, vm, facts, 0)
	if err != nil {
		return nil, err
	}
	root, err := letterOf(vm, h, d)
	if err != nil {
		return nil, err
	}
	r, err := env.Guest.DeleteFiles(ctx, ep, env.Creds, guest.DeleteParams{Root: root, Criteria: criteria(env.Incident)})
	if err != nil {
		return nil, err
	}
	out := deleteFacts(facts, r)
	if len(r.Deleted) == 0 && facts[step.FactRerun] == "true" {
		out[FactEffectsUnknown] = "true"
	}
	return out, nil
}

func hmCheckHives(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	h, d, ep, err := onHelperListed(ctx, env, vm, facts, 0)
	if err != nil {
		return nil, err
	}
	root, err := letterOf(vm, h, d)
	if err != nil {
		return nil, err
	}
	r, err := env.Guest.CheckHives(ctx, ep, env.Creds, guest.CheckHivesParams{Root: root})
	if err != nil {
		return nil, err
	}
	if len(r.Hives) == 0 {
		return nil, step.Fail("the hive check of disk %s reported no hive", vm.OSDisk.ID)
	}
	var bad []string
	for _, hv := range r.Hives {
		if !hv.OK {
			bad = append(bad, hv.Name)
		}
	}
	if len(bad) > 0 {
		// The fact tells restore-backup, next in the chain, that the disk
		// was seen broken (a powered-off VM is restored only then).
		return step.Facts{FactHivesOK: "false"}, step.Fail("registry hive(s) %s of disk %s are damaged: the disk needs restore-backup", strings.Join(bad, ", "), vm.OSDisk.ID)
	}
	return step.Facts{FactHivesOK: "true"}, nil
}

// hmClearSafeBoot clears the safe-boot flag in the disk's own BCD store,
// on the helper: the store sits on the disk's system partition, where its
// partition style (from the identity recorded before onlining) keeps it.
func hmClearSafeBoot(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if facts[FactSafeBootCleared] != "" {
		return nil, nil
	}
	wasSet, err := offlineSafeBoot(ctx, env, vm, facts, false)
	if err != nil {
		return nil, err
	}
	out := step.Facts{FactSafeBootCleared: strconv.FormatBool(wasSet)}
	if !wasSet && facts[step.FactRerun] == "true" {
		out[FactEffectsUnknown] = "true"
	}
	return out, nil
}

// offlineSafeBoot sets (set) or clears the safe-boot flag in the BCD store
// of the VM's OS disk, online on its helper, and reports whether the flag
// was set before. A script's final failure is step.Fail.
func offlineSafeBoot(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts, set bool) (bool, error) {
	orig, err := originalIdentity(vm, facts)
	if err != nil {
		return false, err
	}
	h, d, ep, err := onHelperListed(ctx, env, vm, facts, 0)
	if err != nil {
		return false, err
	}
	if d.Offline {
		return false, step.Fail("disk %s is offline on helper %s: its BCD store cannot be reached", vm.OSDisk.ID, h.ID)
	}
	run, verb := env.Guest.ClearSafeBootOffline, "clearing"
	if set {
		run, verb = env.Guest.SetSafeBootOffline, "setting"
	}
	r, err := run(ctx, ep, env.Creds, guest.BCDParams{Number: d.Number, Serial: d.Serial, Store: guest.BCDStore(orig.Style)})
	if err != nil {
		if retryable(err) {
			return false, err
		}
		return false, step.Fail("%s the safe-boot flag in the BCD store of disk %s on helper %s failed: %v", verb, vm.OSDisk.ID, h.ID, err)
	}
	return r.WasSet, nil
}

func hmRestoreIdentity(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	orig, err := originalIdentity(vm, facts)
	if err != nil {
		return nil, err
	}
	_, d, ep, err := onHelperListed(ctx, env, vm, facts, 0)
	if err != nil {
		return nil, err
	}
	if d.Identity != orig {
		if _, err := env.Guest.SetDiskIdentity(ctx, ep, env.Creds, guest.SetIdentityParams{Number: d.Number, Serial: d.Serial, Identity: orig}); err != nil {
			return nil, err
		}
	}
	return step.Facts{}, nil
}

func hmVerifyIdentity(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	orig, err := originalIdentity(vm, facts)
	if err != nil {
		return nil, err
	}
	h, d, _, err := onHelperListed(ctx, env, vm, facts, 0)
	if err != nil {
		return nil, err
	}
	if d.Identity != orig {
		return nil, step.Fail("disk %s shows identity %s on helper %s after the restore, want %s", vm.OSDisk.ID, d.Identity, h.ID, orig)
	}
	return step.Facts{FactIdentityVerified: fmtIdentity(d.Identity)}, nil
}

func hmOffline(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	_, d, ep, err := onHelperListed(ctx, env, vm, facts, 0)
	if err != nil {
		return nil, err
	}
	if !d.Offline {
		if _, err := env.Guest.OfflineDisk(ctx, ep, env.Creds, guest.DiskParams{Number: d.Number, Serial: d.Serial}); err != nil {
			return nil, err
		}
	}
	return step.Facts{FactOfflined: "true"}, nil
}

func hmDetachHelper(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	orig, err := originalIdentity(vm, facts)
	if err != nil {
		return nil, err
	}
	h, err := helperOf(vm, facts)
	if err != nil {
		return nil, err
	}
	ds, err := env.Describe(ctx, diskRef(vm, vm.OSDisk.ID))
	if err != nil {
		return nil, err
	}
	switch ds.AttachedTo {
	case "", vm.ID:
		return step.Facts{FactDetachedFromHelper: "true"}, nil
	case h.ID:
	default:
		return nil, step.Flag("disk %s is attached to %s, neither its VM %s nor its helper %s; find out who uses it", vm.OSDisk.ID, ds.AttachedTo, vm.ID, h.ID)
	}
	// Verify once more, right before the disk leaves the helper.
	d, _, err := listed(ctx, env, h, ds, 0)
	if err != nil {
		return nil, err
	}
	switch {
	case d.Identity != orig:
		return nil, step.Fail("refusing to detach disk %s from helper %s: it shows identity %s, want %s", vm.OSDisk.ID, h.ID, d.Identity, orig)
	case !d.Offline:
		return nil, step.Fail("refusing to detach disk %s from helper %s: it is still online", vm.OSDisk.ID, h.ID)
	}
	if err := env.Provider.Disks.Detach(ctx, h, diskRef(vm, vm.OSDisk.ID)); err != nil {
		return nil, err
	}
	return step.Facts{FactDetachedFromHelper: "true", FactIdentityVerified: fmtIdentity(d.Identity)}, nil
}

func hmReturnHelper(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if facts[FactHelperID] == "" || env.Helpers == nil {
		return step.Facts{FactHelperReturned: "true"}, nil
	}
	h, _ := helperOf(vm, facts)
	if err := env.Helpers.Return(ctx, h, vm.Key); err != nil {
		return nil, err
	}
	return step.Facts{FactHelperReturned: "true"}, nil
}

func hmAttachBoot(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	ds, err := env.Describe(ctx, diskRef(vm, vm.OSDisk.ID))
	if err != nil {
		return nil, err
	}
	switch {
	case ds.AttachedTo == vm.ID && ds.Boot:
		return step.Facts{FactDiskReturned: "true"}, nil
	case ds.AttachedTo != "":
		return nil, step.Fail("refusing to return disk %s: it is still attached to %s", vm.OSDisk.ID, ds.AttachedTo)
	}
	if v, o := facts[FactIdentityVerified], facts[FactIdentityOriginal]; o == "" || v != o {
		return nil, step.Fail("refusing to return disk %s to %s: its identity is not verified (original %q, verified %q)", vm.OSDisk.ID, vm.ID, o, v)
	}
	if err := env.Provider.Disks.Attach(ctx, vmRef(vm), diskRef(vm, vm.OSDisk.ID), true); err != nil {
		return nil, err
	}
	return step.Facts{FactDiskReturned: "true"}, nil
}

func hmStart(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if err := startVM(ctx, env, vmRef(vm)); err != nil {
		return nil, err
	}
	return step.Facts{FactStarted: "true"}, nil
}

// abortTries bounds Abort's own retries of retryable errors.
const abortTries = 6

// retry runs f again after retryable errors, a few times, waiting on the
// clock in between.
func retry(ctx context.Context, env *step.Env, f func() error) error {
	wait := 5 * time.Second
	var err error
	for i := 0; i < abortTries; i++ {
		if err = f(); err == nil || !retryable(err) {
			return err
		}
		if serr := env.Clock.Sleep(ctx, wait); serr != nil {
			return err
		}
		wait *= 2
	}
	return err
}

// Abort implements step.Strategy. See HelperMount.
func (HelperMount) Abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	if err := need(env, "disks", env.Provider != nil && env.Provider.Disks != nil); err != nil {
		return nil, step.Flag("cannot abort helper-mount on %s: %v", vm.ID, err)
	}
	disk := diskRef(vm, vm.OSDisk.ID)
	out := step.Facts{}
	var ds providers.DiskState
	if err := retry(ctx, env, func() (err error) { ds, err = env.Describe(ctx, disk); return err }); err != nil {
		return out, step.Flag("cannot read where disk %s of %s is (%v); helper %q may hold it", vm.OSDisk.ID, vm.ID, err, facts[FactHelperID])
	}
	verified := false
	switch {
	case ds.AttachedTo == vm.ID && !ds.Boot:
		return out, step.Flag("disk %s is attached to its VM %s as a data disk; attach it as the boot disk by hand", vm.OSDisk.ID, vm.ID)
	case ds.AttachedTo == vm.ID:
		out[FactAbortDiskLocation] = "boot disk of " + vm.ID
	case ds.AttachedTo != "":
		h := providers.VMRef{ID: ds.AttachedTo, Region: vm.Region, Zone: vm.Zone}
		if err := abortOnHelper(ctx, env, vm, facts, h, ds); err != nil {
			out[FactAbortDiskLocation] = "attached to helper " + h.ID
			return out, step.Flag("disk %s of %s is still attached to helper %s and could not be brought back with its identity verified: %v; "+
				"on the helper, set its identity back to %q, take it offline, detach it and attach it to %s as its boot disk",
				vm.OSDisk.ID, vm.ID, h.ID, errText(err), facts[FactIdentityOriginal], vm.ID)
		}
		verified = true
		fallthrough
	default: // detached
		onlined := facts[FactIdentityAfterOnline] != "" || facts[FactDriveLetter] != ""
		if !verified && onlined && (facts[FactIdentityOriginal] == "" || facts[FactIdentityVerified] != facts[FactIdentityOriginal]) {
			// The disk left the helper after it was onlined there, and no
			// journaled fact says its identity was verified since: an
			// Abort killed after it detached the disk (its facts are
			// journaled only when it returns) leaves exactly this. Verify
			// it again on a helper before it goes back.
			id, where, err := reverifyDetached(ctx, env, vm, facts)
			if err != nil {
				out[FactAbortDiskLocation] = where
				return out, step.Flag("disk %s of %s was onlined on a helper and then detached, and its identity could not be verified again (it is %s): %v; "+
					"attach it to a helper, check that it shows identity %q (set it back if not), take it offline, detach it, then attach it to %s as its boot disk",
					vm.OSDisk.ID, vm.ID, where, errText(err), facts[FactIdentityOriginal], vm.ID)
			}
			out[FactIdentityVerified] = fmtIdentity(id)
		}
		if err := retry(ctx, env, func() error { return env.Provider.Disks.Attach(ctx, vmRef(vm), disk, true) }); err != nil {
			out[FactAbortDiskLocation] = "detached"
			return out, step.Flag("disk %s of %s is detached (identity verified) but could not be attached back as its boot disk: %v", vm.OSDisk.ID, vm.ID, err)
		}
		out[FactAbortDiskLocation] = "boot disk of " + vm.ID
		out[FactDiskReturned] = "true"
	}
	if h, err := helperOf(vm, facts); err == nil && env.Helpers != nil {
		if err := env.Helpers.Return(ctx, h, vm.Key); err == nil {
			out[FactHelperReturned] = "true"
		}
	}
	if vm.State == inventory.StateStopped {
		// stopped_vms: start is for a repaired VM; this one is not, and
		// a strategy after this one (restore-backup) expects it off.
		out[FactAbort] = "the OS disk is back on its VM with its identity verified; the VM was left powered off, as it was found"
		return out, nil
	}
	if facts[FactHivesOK] == "false" {
		out[FactAbort] = "the OS disk is back on its VM with its identity verified; the VM was left powered off: its registry hives are damaged, so it cannot boot (restore-backup restores it from a backup where the policy allows)"
		return out, nil
	}
	if env.Provider.Power != nil {
		if err := retry(ctx, env, func() error { return startVM(ctx, env, vmRef(vm)) }); err != nil {
			return out, step.Flag("disk %s is back on %s as its boot disk, but the VM could not be started: %v", vm.OSDisk.ID, vm.ID, err)
		}
	}
	out[FactAbort] = "the OS disk is back on its VM with its identity verified; the VM was powered on"
	return out, nil
}

// reverifyDetached verifies again the identity of vm's OS disk, detached
// after it was onlined on a helper, before Abort returns it: it leases a
// helper of the VM's release in its zone (the one facts name when it still
// exists), attaches the disk to it as a data disk, and runs abortOnHelper
// there (a fresh listing; the identity set back to the one recorded before
// onlining when it differs; offline; listed again; detached). On success
// the disk is detached again, the helper slot is given back, and id is the
// identity verified. It attaches the disk nowhere when the identity before
// onlining is unknown (neither in facts nor in the plan). On an error,
// where says where the disk is ("detached", or "attached to helper <id>",
// whose slot then stays leased so that the pool does not release the
// helper under it).
func reverifyDetached(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (id inventory.DiskIdentity, where string, err error) {
	where = "detached"
	orig, ok := parseIdentity(facts[FactIdentityOriginal])
	if !ok {
		orig = vm.OSDisk.Identity
	}
	switch {
	case orig.IsZero():
		return id, where, fmt.Errorf("the identity of disk %s before it was onlined is unknown", vm.OSDisk.ID)
	case env.Helpers == nil:
		return id, where, errors.New("no helper pool: the account has no helpers capability")
	}
	var h providers.VMRef
	if err := retry(ctx, env, func() (err error) {
		h, err = env.Helpers.Lease(ctx, vm.Zone, helperWindows(vm), vm.Key, facts[FactHelperID])
		return err
	}); err != nil {
		return id, where, fmt.Errorf("leasing a helper: %w", err)
	}
	if h.Zone == "" {
		h.Zone = vm.Zone
	}
	if h.Region == "" {
		h.Region = vm.Region
	}
	disk := diskRef(vm, vm.OSDisk.ID)
	var ds providers.DiskState
	err = retry(ctx, env, func() error { return env.Provider.Disks.Attach(ctx, h, disk, false) })
	if err == nil {
		err = retry(ctx, env, func() (err error) { ds, err = env.Describe(ctx, disk); return err })
	}
	if err == nil && ds.AttachedTo != h.ID {
		err = fmt.Errorf("disk %s is not on helper %s after attaching it there", vm.OSDisk.ID, h.ID)
	}
	if err == nil {
		err = abortOnHelper(ctx, env, vm, step.Facts{FactIdentityOriginal: fmtIdentity(orig)}, h, ds)
	}
	if err != nil {
		ds, derr := env.Describe(ctx, disk)
		switch {
		case derr != nil:
			return id, "detached or attached to helper " + h.ID + " (where could not be read)", err
		case ds.AttachedTo == h.ID:
			return id, "attached to helper " + h.ID, err
		case ds.AttachedTo != "":
			where = "attached to " + ds.AttachedTo
		}
		_ = env.Helpers.Return(ctx, h, vm.Key)
		return id, where, err
	}
	_ = env.Helpers.Return(ctx, h, vm.Key)
	return orig, where, nil
}

// abortOnHelper restores, verifies and offlines the OS disk ds on helper h,
// then detaches it.
func abortOnHelper(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts, h providers.VMRef, ds providers.DiskState) error {
	var d guest.Disk
	var ep providers.Endpoint
	if err := retry(ctx, env, func() (err error) { d, ep, err = listed(ctx, env, h, ds, HelperWait); return err }); err != nil {
		return err
	}
	orig, ok := parseIdentity(facts[FactIdentityOriginal])
	switch {
	case ok:
	case !vm.OSDisk.Identity.IsZero():
		orig = vm.OSDisk.Identity
	case d.Offline && facts[FactIdentityAfterOnline] == "" && facts[FactDriveLetter] == "":
		// Never onlined by this strategy: Windows has not changed it.
		orig = d.Identity
	default:
		return fmt.Errorf("the identity of disk %s before it was onlined is unknown (it shows %s now)", vm.OSDisk.ID, d.Identity)
	}
	if d.Identity != orig {
		if err := retry(ctx, env, func() error {
			_, err := env.Guest.SetDiskIdentity(ctx, ep, env.Creds, guest.SetIdentityParams{Number: d.Number, Serial: d.Serial, Identity: orig})
			return err
		}); err != nil {
			return err
		}
	}
	if !d.Offline {
		if err := retry(ctx, env, func() error {
			_, err := env.Guest.OfflineDisk(ctx, ep, env.Creds, guest.DiskParams{Number: d.Number, Serial: d.Serial})
			return err
		}); err != nil {
			return err
		}
	}
	if err := retry(ctx, env, func() (err error) { d, _, err = listed(ctx, env, h, ds, 0); return err }); err != nil {
		return err
	}
	if d.Identity != orig {
		return fmt.Errorf("disk %s still shows identity %s, want %s", vm.OSDisk.ID, d.Identity, orig)
	}
	if !d.Offline {
		return fmt.Errorf("disk %s is still online", vm.OSDisk.ID)
	}
	return retry(ctx, env, func() error { return env.Provider.Disks.Detach(ctx, h, diskRef(vm, vm.OSDisk.ID)) })
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
