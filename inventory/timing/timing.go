// Package timing is fixfleet's one table of how long cloud operations take
// and how fast cloud APIs let you call them. The simulated world draws its
// latencies from it, and the planner estimates durations from it, so that a
// drill on the simulator and a plan's estimate mean the same thing.
//
// Figures are orders of magnitude from public documentation and incident
// reports (sources beside each); a Range is drawn uniformly.
package timing

import (
	"fmt"
	"time"
)

// Range is a span of durations.
type Range struct{ Min, Max time.Duration }

// Mid is the middle of the range, used for estimates.
func (r Range) Mid() time.Duration { return (r.Min + r.Max) / 2 }

// Op names an operation whose duration the table knows.
type Op string

// Operations.
const (
	// Stopping a Windows VM (guest shutdown or forced): 0.5–2 min.
	// Source: AWS/Azure docs on instance stop; Sakura shutdown timeouts.
	OpStop Op = "stop"
	// Power-on until the cloud reports running: tens of seconds.
	OpStart Op = "start"
	// Start until WinRM answers on a healthy Windows Server: 2–5 min.
	// Source: EC2 Windows launch times; Azure VM agent ready times.
	OpBootToWinRM Op = "boot-to-winrm"
	// One crash cycle of a boot-looping VM (boot, driver load, bugcheck,
	// dump, reset): about 1.5–3 min. Source: 2024-07-19 operator reports.
	OpCrashCycle Op = "crash-cycle"
	// Hard reset until the cloud reports running again.
	OpRestart Op = "restart"
	// Attaching or detaching a disk: 5–30 s. Source: EBS/Azure managed disk
	// attach latencies; Sakura disk connect.
	OpAttach Op = "attach"
	OpDetach Op = "detach"
	// First snapshot of a 30–100 GB OS disk: minutes to tens of minutes.
	// Source: EBS first-snapshot behaviour; Sakura archive creation.
	OpSnapshot Op = "snapshot"
	// A later snapshot of a disk already snapshotted: only the blocks
	// changed since are copied (EBS and Azure managed-disk incremental
	// snapshots), about a fifth of a first one. Sakura's archives are full
	// copies: there it is OpSnapshot.
	OpSnapshotIncremental Op = "snapshot-incremental"
	// A new disk from a snapshot or archive in the same cloud: 1–10 min.
	OpDiskFromSnapshot Op = "disk-from-snapshot"
	// A VM's backup restored to a new disk, from the request to a usable
	// disk: a restore job is queued, then the whole volume is copied from
	// the vault (AWS Backup restore jobs, Azure Backup "restore disks",
	// Sakura archive-to-disk copies). Assumption: 10–45 min for 40–100 GB
	// OS disks, from operators' reports; longer than OpDiskFromSnapshot.
	OpBackupRestore Op = "backup-restore"
	// Creating a helper VM until WinRM answers: boot plus provisioning.
	OpHelperCreate Op = "helper-create"
	// One guest script over WinRM: seconds.
	OpGuestScript Op = "guest-script"
	// One control-plane API call: 50–500 ms (slower under incident load).
	OpAPICall Op = "api-call"
)

// Durations is the table. Ranges are for a 30–100 GB OS disk.
var durations = map[Op]Range{
	OpStop:                {30 * time.Second, 2 * time.Minute},
	OpStart:               {10 * time.Second, 40 * time.Second},
	OpBootToWinRM:         {2 * time.Minute, 5 * time.Minute},
	OpCrashCycle:          {90 * time.Second, 3 * time.Minute},
	OpRestart:             {10 * time.Second, 30 * time.Second},
	OpAttach:              {5 * time.Second, 30 * time.Second},
	OpDetach:              {5 * time.Second, 30 * time.Second},
	OpSnapshot:            {3 * time.Minute, 20 * time.Minute},
	OpSnapshotIncremental: {36 * time.Second, 4 * time.Minute},
	OpDiskFromSnapshot:    {1 * time.Minute, 10 * time.Minute},
	OpBackupRestore:       {10 * time.Minute, 45 * time.Minute},
	OpHelperCreate:        {4 * time.Minute, 8 * time.Minute},
	OpGuestScript:         {2 * time.Second, 15 * time.Second},
	OpAPICall:             {50 * time.Millisecond, 500 * time.Millisecond},
}

// Of returns the range for op (zero Range for an unknown op).
func Of(op Op) Range { return durations[op] }

// Bucket is a token bucket: Size tokens at most, Refill tokens per second.
type Bucket struct {
	Size   int
	Refill float64
}

// EC2 API throttling buckets per account and region, as AWS publishes them
// (EC2 API reference, "Request throttling"). Request-rate buckets.
var (
	EC2Mutating         = Bucket{Size: 50, Refill: 5}
	EC2NonMutating      = Bucket{Size: 100, Refill: 20}
	EC2UnfilteredDescr  = Bucket{Size: 50, Refill: 10}
	EC2SnapshotVolume   = Bucket{Size: 100, Refill: 5} // CreateSnapshot, CreateVolume
	EC2StartRunInstance = Bucket{Size: 5, Refill: 2}   // StartInstances, RunInstances
)

// NaturalRecoveryPerBoot is the chance that one boot of an affected VM fetches
// the fixed channel file before the crash and comes up healthy. Azure
// reported up to 15 restarts helping; a Sakura Cloud operator saw 3 of 10
// servers recover unaided. A few percent per boot fits both.
const NaturalRecoveryPerBoot = 0.05

// Format writes d, rounded to the second, the way plans and reports show
// durations: "45s", "12m05s", "2h03m", "3d04h".
func Format(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d/time.Minute), int(d%time.Minute/time.Second))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d/time.Hour), int(d%time.Hour/time.Minute))
	}
	return fmt.Sprintf("%dd%02dh", int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour))
}
