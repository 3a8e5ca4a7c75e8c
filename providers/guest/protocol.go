// Package guest is the protocol between fixfleet and a Windows guest: a fixed
// set of PowerShell scripts embedded in the binary, each with typed
// parameters and a typed result, and a client that runs them over WinRM.
//
// Parameters never become code. A script's text is fixed; its parameters
// travel as one JSON document on the command's standard input, which the
// script reads with ConvertFrom-Json; its result is one JSON document on
// standard output. A VM name, tag or path can therefore never change what a
// script does, and a guest (the simulated world's WinRM server) can recognise
// the scripts byte for byte and refuse anything else.
//
// Both sides import this package: the orchestrator (remediate, classify) to
// run the scripts, and the simulated guest to recognise and execute them.
package guest

import (
	"time"

	"github.com/fixfleet/fixfleet/inventory"
)

// Name names one script of the catalog.
type Name string

// The catalog. Scripts marked "live" run on a VM's own running OS; scripts
// marked "helper" run on a helper VM to which other VMs' disks are attached.
const (
	// Probe (live): boot mode, safe-boot flag, and the incident's files.
	// ProbeParams → ProbeResult. Read-only.
	Probe Name = "probe"
	// DeleteFiles (live or helper): delete, under Root, the files of the
	// incident directory whose name, time window and header the criteria
	// mark bad; keep every other file. DeleteParams → DeleteResult.
	// Idempotent.
	DeleteFiles Name = "delete-files"
	// ClearSafeBoot (live): remove the safeboot value from the default boot
	// entry so the next boot is normal. ClearSafeBootParams →
	// SafeBootResult. Idempotent.
	ClearSafeBoot Name = "clear-safeboot"
	// CheckHives (helper): load the SYSTEM and SOFTWARE hives of the
	// Windows installation under Root, check them, unload them.
	// CheckHivesParams → CheckHivesResult. Read-only.
	CheckHives Name = "check-hives"
	// ListDisks (helper): every disk the helper sees, with identity,
	// offline state and volumes. ListDisksParams → ListDisksResult.
	// Read-only: this is how an identity is verified.
	ListDisks Name = "list-disks"
	// OnlineDisk (helper): bring one disk online (Windows assigns a new
	// identity if it collides with another disk's) and give its data volume
	// a drive letter. DiskParams → DiskResult. Idempotent.
	OnlineDisk Name = "online-disk"
	// UnlockVolume (helper): unlock a BitLocker volume with its recovery
	// key. UnlockParams → UnlockResult. Idempotent.
	UnlockVolume Name = "unlock-volume"
	// SetDiskIdentity (helper): set a disk's MBR signature or GPT GUID.
	// SetIdentityParams → DiskResult. Idempotent.
	SetDiskIdentity Name = "set-disk-identity"
	// OfflineDisk (helper): take one disk offline. DiskParams → DiskResult.
	// Idempotent.
	OfflineDisk Name = "offline-disk"
	// ClearSafeBootOffline (helper): remove the safeboot value of the
	// default boot entry in the BCD store on an attached disk's system
	// partition (bcdedit /store), so that the disk boots normally on its
	// VM. BCDParams → SafeBootResult. Idempotent.
	ClearSafeBootOffline Name = "clear-safeboot-offline"
	// SetSafeBootOffline (helper): set the safeboot value of the default
	// boot entry to network in the BCD store on an attached disk's system
	// partition, so that the disk boots into Safe Mode with Networking on
	// its VM. The system partition is not encrypted: no BitLocker key is
	// needed. BCDParams → SafeBootResult. Idempotent.
	SetSafeBootOffline Name = "set-safeboot-offline"
	// ReadinessFacts (live): whether WinRM may start in Safe Mode with
	// networking (its service is listed under HKLM\SYSTEM\
	// CurrentControlSet\Control\SafeBoot\Network), and whether the
	// system volume is BitLocker-protected, with its recovery-password
	// protector ID (never the key). ReadinessFactsParams →
	// ReadinessFactsResult. Read-only.
	ReadinessFacts Name = "readiness-facts"
)

// BCD store paths on a system partition (BCDParams.Store).
const (
	BCDStoreBIOS = `\Boot\BCD`
	BCDStoreUEFI = `\EFI\Microsoft\Boot\BCD`
)

// BCDStore is the BCD store's path on the system partition of a disk of
// partition style st: UEFI/GPT keeps it on the EFI system partition,
// BIOS/MBR on the active partition.
func BCDStore(st inventory.PartitionStyle) string {
	if st == inventory.PartitionGPT {
		return BCDStoreUEFI
	}
	return BCDStoreBIOS
}

// BCDParams name the disk (as DiskParams) and the path of
// its BCD store on its system partition (BCDStore).
type BCDParams struct {
	Number int    `json:"number"`
	Serial string `json:"serial"`
	Store  string `json:"store"`
}

// Names lists the catalog in a stable order.
var Names = []Name{Probe, DeleteFiles, ClearSafeBoot, CheckHives, ListDisks, OnlineDisk, UnlockVolume, SetDiskIdentity, OfflineDisk, ClearSafeBootOffline, SetSafeBootOffline, ReadinessFacts}

// FileCriteria selects the incident's bad files. It is data from the
// incident profile, never script text.
type FileCriteria struct {
	// Dir is the directory relative to the volume root, e.g.
	// `Windows\System32\drivers\CrowdStrike`.
	Dir      string    `json:"dir"`
	Pattern  string    `json:"pattern"` // file-name glob, * and ? only
	BadFrom  time.Time `json:"bad_from"`
	BadUntil time.Time `json:"bad_until"`
	Header   string    `json:"header,omitempty"` // hex prefix; "" = no header check
}

// ProbeParams are the Probe script's parameters.
type ProbeParams struct {
	Dir     string `json:"dir"` // relative to the system drive
	Pattern string `json:"pattern"`
}

// ProbeResult is what Probe reports.
type ProbeResult struct {
	Hostname     string               `json:"hostname"`
	BootMode     inventory.BootMode   `json:"boot_mode"` // "normal" or "safe"
	SafeBootFlag bool                 `json:"safe_boot_flag"`
	OSRelease    string               `json:"os_release"`
	OSBuild      string               `json:"os_build"`
	Files        []inventory.FileFact `json:"files"`
}

// DeleteParams are the DeleteFiles script's parameters.
type DeleteParams struct {
	// Root is the volume holding the Windows installation: "C:" on the
	// live VM, the assigned drive letter on a helper.
	Root     string       `json:"root"`
	Criteria FileCriteria `json:"criteria"`
}

// DeleteResult lists what DeleteFiles did.
type DeleteResult struct {
	Deleted []inventory.FileFact `json:"deleted"`
	Kept    []inventory.FileFact `json:"kept"`
}

// ClearSafeBootParams are the ClearSafeBoot script's parameters (none).
type ClearSafeBootParams struct{}

// SafeBootResult says whether the flag was set before.
type SafeBootResult struct {
	WasSet bool `json:"was_set"`
}

// ReadinessFactsParams are the ReadinessFacts script's parameters (none).
type ReadinessFactsParams struct{}

// ReadinessFactsResult is what readiness learns from a running guest.
type ReadinessFactsResult struct {
	// SafeModeWinRM: WinRM may start in Safe Mode with networking.
	SafeModeWinRM bool `json:"safe_mode_winrm"`
	// BitLocker: the system volume is encrypted; KeyID is its
	// recovery-password protector ID ("" when it has none).
	BitLocker bool   `json:"bitlocker"`
	KeyID     string `json:"key_id"`
}

// CheckHivesParams are the CheckHives script's parameters.
type CheckHivesParams struct {
	Root string `json:"root"`
}

// HiveStatus is one registry hive's check result.
type HiveStatus struct {
	Name   string `json:"name"` // "SYSTEM", "SOFTWARE"
	OK     bool   `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// CheckHivesResult lists the hives checked.
type CheckHivesResult struct {
	Hives []HiveStatus `json:"hives"`
}

// ListDisksParams are the ListDisks script's parameters (none).
type ListDisksParams struct{}

// Volume is a volume on a disk, as the helper sees it.
type Volume struct {
	DriveLetter string `json:"drive_letter,omitempty"` // "E:", "" if none
	FileSystem  string `json:"file_system,omitempty"`
	// BitLocker is "none", "locked" or "unlocked".
	BitLocker string `json:"bitlocker"`
	KeyID     string `json:"key_id,omitempty"` // recovery-key protector ID
	// HasWindows tells whether the volume holds a Windows directory.
	HasWindows bool `json:"has_windows"`
}

// Disk is one disk as the helper sees it.
type Disk struct {
	Number int `json:"number"`
	// Serial identifies the cloud disk (its cloud ID as the guest sees it),
	// so the orchestrator can tell which disk is which.
	Serial string `json:"serial"`
	// LUN is the SCSI logical unit the disk sits at, from Windows' disk
	// location ("… : LUN 2"); nil when the location names none. Clouds
	// whose disks show no cloud ID as their serial (Azure data disks) are
	// matched by it: the cloud reports the LUN it attached a disk at.
	LUN           *int                   `json:"lun,omitempty"`
	SizeGB        int                    `json:"size_gb"`
	Identity      inventory.DiskIdentity `json:"identity"`
	Offline       bool                   `json:"offline"`
	OfflineReason string                 `json:"offline_reason,omitempty"` // e.g. "signature-collision"
	IsBoot        bool                   `json:"is_boot"`                  // the helper's own OS disk
	Volumes       []Volume               `json:"volumes"`
}

// ListDisksResult lists the helper's disks.
type ListDisksResult struct {
	Disks []Disk `json:"disks"`
}

// DiskParams name one disk by number and, as a guard, its serial: a script
// refuses when the disk at Number does not carry Serial.
type DiskParams struct {
	Number int    `json:"number"`
	Serial string `json:"serial"`
}

// DiskResult is the disk after the operation.
type DiskResult struct {
	Disk Disk `json:"disk"`
}

// SetIdentityParams set a disk's identity.
type SetIdentityParams struct {
	Number   int                    `json:"number"`
	Serial   string                 `json:"serial"`
	Identity inventory.DiskIdentity `json:"identity"`
}

// UnlockParams unlock a BitLocker volume. RecoveryKey is a secret: it is
// sent only on the command's standard input and must never be logged.
type UnlockParams struct {
	DriveLetter string `json:"drive_letter"`
	RecoveryKey string `json:"recovery_key"`
}

// UnlockResult says whether the volume is now unlocked.
type UnlockResult struct {
	Unlocked bool `json:"unlocked"`
}

// ExitRefused is the exit code a guest returns for a script it does not
// recognise or parameters it cannot accept.
const ExitRefused = 87
