package world

import (
	"time"

	"github.com/fixfleet/fixfleet/inventory/timing"
)

// calib is the world's own table of figures that inventory/timing does not
// hold: how a crashing guest behaves, how a fleet is made up, how an API
// degrades. One table, with the source or the assumption behind each figure.
// Durations of cloud operations themselves come from inventory/timing.
var calib = struct {
	// CrashAfter: how long into a boot the bad channel file crashes the
	// guest (csagent.sys loads early). Source: 2024-07-19 operator reports
	// ("BSOD about a minute or two into boot").
	CrashAfter timing.Range
	// ResetGap: the least time between the bugcheck and the automatic reset
	// (dump writing, reset). The whole cycle is timing.OpCrashCycle.
	ResetGap time.Duration
	// NaturalRecoveryCap: a VM whose draw of boots-until-recovery exceeds
	// this never recovers by itself. Source: Azure's "up to 15 restarts".
	NaturalRecoveryCap int
	// StuckAfter: crashes before Windows stops at the recovery screen
	// (Windows enters Automatic Repair after 2 consecutive failed boots;
	// some hypervisors reset a few more times first). Assumption.
	StuckAfter [2]int
	// IncrementalSnapshotFactor: a later snapshot of the same disk takes
	// this fraction of a first one (only changed blocks). Source: EBS
	// incremental snapshot behaviour (AWS EBS user guide, "How incremental
	// snapshots work"). Not applied where snapshots are full copies
	// (Scenario.FullCopySnapshots; Sakura archives, set by its face).
	IncrementalSnapshotFactor float64
	// HelperProvisioning: helper creation minus its boot (timing's
	// OpHelperCreate covers both): the provisioning part.
	HelperProvisioning timing.Range
	// SimpleBucket: the per-account request bucket of non-EC2 clouds.
	// Assumption: Sakura Cloud documents a per-key request limit of the
	// order of 10 requests/s; Azure ARM limits are per hour and larger.
	SimpleBucket timing.Bucket
	// LoadPerInflight: API latency grows by this fraction per call in
	// flight (the incident's "everyone is calling the control plane").
	// Assumption, orders of magnitude only.
	LoadPerInflight float64
	// ShareBitLocker, ShareEscrowed: fleet share of BitLocker OS volumes and
	// share of those whose recovery key is escrowed. Assumption (brief).
	ShareBitLocker, ShareEscrowed float64
	// ShareImageIdentity: share of VMs whose OS disk still carries its
	// image's disk identity (built from a stock image: the common case and
	// the seed incident's trap). Assumption.
	ShareImageIdentity float64
	// Backups: share of VMs with daily backups before the incident, with
	// only a backup inside the bad window, and with none. Assumption.
	ShareDailyBackup, ShareBadWindowBackup float64
	// ShareHiveDamaged: share of affected VMs whose registry hives the
	// crashes damaged. Source: Azure's second repair script exists for it;
	// the share is an assumption.
	ShareHiveDamaged float64
	// ShareCyclingSticks: share of cycling VMs that will later stop at the
	// recovery screen. Assumption.
	ShareCyclingSticks float64
	// ShareSafeModeWinRM: share of VMs whose WinRM service was enabled for
	// safe mode with networking (listed under SafeBoot\Network). Windows
	// does not do it by default; hardened fleet images sometimes do so
	// that remote management survives safe mode. Assumption.
	ShareSafeModeWinRM float64
	// SlowScript: a slow guest script (Faults.GuestSlowRate) takes this
	// many times its usual time (a guest under load, Defender scanning).
	// Assumption.
	SlowScript float64
	// ExcuseWindow: an observation of a VM as unhealthy excuses acting on
	// it after it came up healthy only for this long; an orchestrator
	// about to act should have looked again. Assumption: longer than any
	// step's read-then-act gap (a stop after a helper became ready).
	ExcuseWindow time.Duration
	// Releases: Windows Server releases in the fleet, their July 2024
	// builds (cumulative update of 2024-07-09), partition style, share.
	Releases []releaseInfo
}{
	CrashAfter:                timing.Range{Min: 60 * time.Second, Max: 120 * time.Second},
	ResetGap:                  20 * time.Second,
	NaturalRecoveryCap:        15,
	StuckAfter:                [2]int{2, 5},
	IncrementalSnapshotFactor: 0.2,
	HelperProvisioning:        timing.Range{Min: 90 * time.Second, Max: 3 * time.Minute},
	SimpleBucket:              timing.Bucket{Size: 20, Refill: 10},
	LoadPerInflight:           0.05,
	ShareBitLocker:            0.30,
	ShareEscrowed:             0.80,
	ShareImageIdentity:        0.75,
	ShareDailyBackup:          0.75,
	ShareBadWindowBackup:      0.10,
	ShareHiveDamaged:          0.03,
	ShareCyclingSticks:        0.30,
	ShareSafeModeWinRM:        0.5,
	SlowScript:                5,
	ExcuseWindow:              30 * time.Minute,
	Releases: []releaseInfo{
		{Release: "2016", Build: "14393.7159", Style: "mbr", Share: 0.20},
		{Release: "2019", Build: "17763.6054", Style: "mbr", Share: 0.45},
		{Release: "2022", Build: "20348.2582", Style: "gpt", Share: 0.35},
	},
}

type releaseInfo struct {
	Release, Build string
	Style          string
	Share          float64
}

// Fixed facts of the simulated incident's files.
const (
	// goodHeader is the first bytes of a fixed (05:27) channel file: it
	// differs from the incident profile's bad header.
	goodHeader = "AAAAAAAA01002401"
	// oldHeader is a channel file from before the incident.
	oldHeader   = "AAAAAAAA01002201"
	badFileName = "C-00000291-00000000-00000032.sys"
	// fixedFileName is the next version of the channel file, as a sensor
	// that fetched the fix (05:27 UTC or later) names it.
	fixedFileName = "C-00000291-00000000-00000033.sys"
	fileSize      = 41002
)

// DefaultOrigin is the default start of simulated time: 2024-07-19 06:30
// UTC, after the fixed channel file (05:27) was published.
var DefaultOrigin = time.Date(2024, 7, 19, 6, 30, 0, 0, time.UTC)

// DefaultZones are the zones of a generated world.
var DefaultZones = []string{"is1a", "is1b", "tk1a"}
