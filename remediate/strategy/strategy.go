// Package strategy holds fixfleet's remediation strategies as step.Strategy
// values (see DESIGN.md §3 and Default for the list), each a Unit in its
// own file, and the Registry that the planner and the executor read them
// through.
//
// Every step is idempotent: it reads the real state first (Disks.Describe,
// Disks.FindSnapshots, the helper's disk listing, Observer.Observe, the
// guest probe), does nothing when its effect is already there, acts, and
// returns its facts. Retryable provider errors (providers.Retryable) and
// transient guest errors (guest.Transient: unreachable, busy, shell lost) are returned
// as they are, for the executor to retry.
// Definite outcomes are step.ErrHealthy (a re-check found the VM healthy:
// nothing more may touch it; after a restart or repair it means the VM is
// fixed), step.Fail (the strategy cannot succeed; Abort leaves the VM safe
// for the next strategy) and step.Flag (a person must act; the message says
// where everything is). Waiting is done on env.Clock, polling the guest
// every PollEvery, bounded by BootWait.
//
// Every strategy starts with a "recheck" step (Observe and probe right
// before the first change; a VM healthy now ends with step.ErrHealthy), and
// re-checks again right before every stop or restart when more than
// RecheckMaxAge passed since the last check.
//
// # Facts
//
// Stable snake_case keys, never a secret:
//
//	checked_at            RFC 3339 time of the last health re-check
//	power                 power state the recheck saw
//	boot_count            the cloud's boot counter when last read (reboot-retry,
//	                      delete-file: tells whether a restart already happened)
//	restarts              reboot-retry: restarts done so far
//	snapshot_id           the snapshot taken before the disk is changed
//	deleted, kept         files the incident profile marks bad that were
//	                      deleted; matching files kept (not bad)
//	safeboot_was_set      delete-file: whether the safe-boot flag was set
//	restarted             "true" once the VM was restarted into normal mode
//	stopped               "true" once the VM was stopped
//	helper_id, helper_zone  helper-mount: the leased helper
//	os_disk_detached      "true" once the OS disk left its VM
//	attached_to           helper the OS disk is attached to (helper-mount)
//	disk_number           the OS disk's number on the helper
//	identity_original     the OS disk's identity before it was onlined
//	                      ("mbr:1A2B3C4D" or "gpt:<GUID>")
//	identity_after_online its identity after onlining (differs on collision)
//	identity_changed      "true" when onlining changed it
//	drive_letter          the OS volume's letter on the helper
//	unlocked              "true" once the BitLocker volume was unlocked
//	key_missing           "true": the helper saw the volume locked and no key
//	                      source holds its key (safe-mode-boot's condition)
//	hives_ok              "true" when SYSTEM and SOFTWARE checked fine
//	identity_verified     the identity a listing showed after the restore
//	offlined              "true" once the disk was taken offline again
//	detached_from_helper  "true" once the disk left the helper
//	helper_returned       "true" once the helper slot was given back
//	disk_returned         "true" once the OS disk is the VM's boot disk again
//	started               "true" once the VM was started
//	verified_at           RFC 3339 time the VM was seen healthy at the end
//	restored_disk_id      restore-backup: the disk restored from the backup
//	original_disk_id      restore-backup: the VM's original OS disk (kept)
//	restored_attached     "true" once the restored disk is the boot disk
//	copy_source_snapshot_id  copy-and-swap: the snapshot the copy is made
//	                      from, taken after its stop (role copy-source)
//	copy_disk_id, swapped, copy_deleted  copy-and-swap: the copy, whether it
//	                      is the OS disk, whether an abort deleted it
//	safeboot_set          safe-mode-boot: "true" once the safe-boot flag is
//	                      set in the OS disk's BCD store on the helper
//	in_safe_mode          safe-mode-boot: when the guest answered in Safe Mode
//	return_snapshot_id, returned_disk_id  cross-zone-mount: the snapshot of
//	                      the repaired copy, and the disk made from it in
//	                      the VM's zone (its boot disk once attached)
//	abort                 what Abort did, in words
//	abort_disk_location   where Abort left the OS disk
package strategy

import (
	"time"

	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// Fact keys several strategies produce. Each strategy declares its own
// beside it; the package documentation lists them all.
const (
	FactCheckedAt  step.Fact = "checked_at"
	FactPower      step.Fact = "power"
	FactBootCount  step.Fact = "boot_count"
	FactSnapshotID step.Fact = "snapshot_id"
	FactDeleted    step.Fact = "deleted"
	FactKept       step.Fact = "kept"
	FactStopped    step.Fact = "stopped"
	FactStarted    step.Fact = "started"
	FactVerifiedAt step.Fact = "verified_at"
	// FactVerifiedBy says how a VM whose guest could not be probed was
	// verified ("console: " and the verdict's reasons); absent when the
	// guest itself answered.
	FactVerifiedBy        step.Fact = "verified_by"
	FactAbort             step.Fact = "abort"
	FactAbortDiskLocation step.Fact = "abort_disk_location"
	// FactOriginalDiskID is the VM's original OS disk, kept (detached)
	// once another disk replaced it (restore-backup, copy-and-swap,
	// cross-zone-mount).
	FactOriginalDiskID step.Fact = "original_disk_id"
)

// Tag roles of what the strategies create.
const (
	RoleSnapshot    = "snapshot"
	RoleRestoreDisk = "restore-disk"
)

// Timing of waits, in the clock's time.
var (
	// PollEvery is how often a boot is polled.
	PollEvery = 25 * time.Second
	// BootWait bounds the wait for a guest to come up after a start or
	// restart: twice the slowest boot to WinRM, plus slack.
	BootWait = 2*timing.Of(timing.OpBootToWinRM).Max + 2*time.Minute
	// HelperWait bounds the wait for a helper's WinRM (a new helper boots)
	// and for an attached disk to show in its listing.
	HelperWait = 2*timing.Of(timing.OpHelperCreate).Max + 2*time.Minute
	// SnapshotWait bounds the wait for a snapshot found not ready yet.
	SnapshotWait = 2*timing.Of(timing.OpSnapshot).Max + 2*time.Minute
	// ResetGrace: how long reboot-retry lets a VM at the stop screen
	// reset by itself before it restarts it (resetsItself): a whole crash
	// cycle.
	ResetGrace = timing.Of(timing.OpCrashCycle).Max
	// SafeModeWinRMGrace: how long after the Safe Mode desktop shows a
	// WinRM listed under SafeBoot\Network has started (services start
	// with the sign-in screen; slack for a slow one).
	SafeModeWinRMGrace = 3 * time.Minute
	// RecheckMaxAge: a stop or restart re-checks the VM's health first when
	// the last check is older than this.
	RecheckMaxAge = time.Minute
)
