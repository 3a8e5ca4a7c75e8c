// Package inventory is fixfleet's model of a fleet: what is out there (VMs,
// disks, backups), in what state, and the evidence behind each verdict.
//
// It imports no provider: the provider contract (package providers) speaks in
// these types, classification (inventory/classify) turns provider signals
// into verdicts, and remediation (package remediate) plans and acts on them.
package inventory

import (
	"fmt"
	"time"
)

// State is fixfleet's verdict on a VM.
type State string

// The four verdicts. A VM is only ever StateHealthy when the evidence shows it
// booted normally and carries no bad file; doubt means StateUnknown.
const (
	StateHealthy  State = "healthy"
	StateSafeMode State = "safe-mode"
	StateBootLoop State = "boot-loop"
	StateUnknown  State = "unknown"
)

// StateStopped is a planning state, not a verdict: the VM is powered off,
// so nothing shows whether its disk carries the bad file until the disk
// is read offline. Classification never gives it (a powered-off VM is
// StateUnknown: doubt); the planner plans an unknown VM whose latest
// sample says it is stopped as StateStopped, for the strategies that
// check and repair a disk without starting its VM.
const StateStopped State = "stopped"

// States lists the verdicts in display order.
var States = []State{StateHealthy, StateSafeMode, StateBootLoop, StateUnknown}

// PlanStates lists the states a plan gives, in display order: the
// verdicts and StateStopped.
var PlanStates = []State{StateHealthy, StateSafeMode, StateBootLoop, StateStopped, StateUnknown}

// Valid reports whether s is one of the four verdicts.
func (s State) Valid() bool {
	switch s {
	case StateHealthy, StateSafeMode, StateBootLoop, StateUnknown:
		return true
	}
	return false
}

// ValidInPlan reports whether s is a state a plan may give: a verdict or
// StateStopped.
func (s State) ValidInPlan() bool { return s.Valid() || s == StateStopped }

// PowerState is the power state a cloud reports for a VM.
type PowerState string

// Power states common to the three clouds.
const (
	PowerRunning  PowerState = "running"
	PowerStopped  PowerState = "stopped"
	PowerStarting PowerState = "starting"
	PowerStopping PowerState = "stopping"
	PowerUnknown  PowerState = "unknown"
)

// WindowsVersion names a Windows release. Two VMs with equal Release can use
// each other's disks with full NTFS, BitLocker and registry-hive
// compatibility; Build is informative.
type WindowsVersion struct {
	Release string `json:"release" yaml:"release"`                 // e.g. "2019", "2022"
	Build   string `json:"build,omitempty" yaml:"build,omitempty"` // e.g. "17763.5936"
}

func (v WindowsVersion) String() string {
	if v.Release == "" {
		return "unknown"
	}
	if v.Build == "" {
		return "Windows Server " + v.Release
	}
	return fmt.Sprintf("Windows Server %s (build %s)", v.Release, v.Build)
}

// PartitionStyle is the partitioning scheme of a disk.
type PartitionStyle string

// Partition styles.
const (
	PartitionMBR PartitionStyle = "mbr"
	PartitionGPT PartitionStyle = "gpt"
)

// DiskIdentity is what Windows uses to tell disks apart: the MBR disk
// signature (8 hex digits) or the GPT disk GUID. A disk's boot configuration
// names its identity; change it and the disk no longer boots.
type DiskIdentity struct {
	Style PartitionStyle `json:"style" yaml:"style"`
	ID    string         `json:"id" yaml:"id"` // "1A2B3C4D" (MBR) or a GUID (GPT), upper case
}

// IsZero reports whether the identity is unknown.
func (d DiskIdentity) IsZero() bool { return d.ID == "" }

func (d DiskIdentity) String() string {
	if d.IsZero() {
		return "unknown"
	}
	return string(d.Style) + ":" + d.ID
}

// Encryption describes a disk's volume encryption as far as fixfleet needs.
type Encryption struct {
	BitLocker bool `json:"bitlocker" yaml:"bitlocker"`
	// KeyID is the BitLocker recovery-key protector ID, used to look the
	// recovery key up in the configured key source. Not a secret.
	KeyID string `json:"key_id,omitempty" yaml:"key_id,omitempty"`
}

// Disk is a VM's OS disk as the cloud and fixfleet know it.
type Disk struct {
	ID         string       `json:"id" yaml:"id"`
	SizeGB     int          `json:"size_gb" yaml:"size_gb"`
	Identity   DiskIdentity `json:"identity" yaml:"identity"`
	Encryption Encryption   `json:"encryption" yaml:"encryption"`
	// Device is where the disk is attached on its VM (e.g. "/dev/sda1" on
	// AWS, position 0 on Sakura). Empty when the cloud has no such notion.
	Device string `json:"device,omitempty" yaml:"device,omitempty"`
}

// NIC is a network interface of a VM.
type NIC struct {
	Name      string `json:"name,omitempty" yaml:"name,omitempty"`
	PrivateIP string `json:"private_ip,omitempty" yaml:"private_ip,omitempty"`
	PublicIP  string `json:"public_ip,omitempty" yaml:"public_ip,omitempty"`
}

// Backup is a restore point for a VM's OS disk (a snapshot, an archive, an
// image), with the time its data was taken.
type Backup struct {
	ID      string    `json:"id" yaml:"id"`
	VMID    string    `json:"vm_id" yaml:"vm_id"`
	Kind    string    `json:"kind" yaml:"kind"` // "snapshot", "archive", "image", ...
	TakenAt time.Time `json:"taken_at" yaml:"taken_at"`
	SizeGB  int       `json:"size_gb,omitempty" yaml:"size_gb,omitempty"`
}

// Location places a VM: who owns it and where it runs.
type Location struct {
	Tenant   string `json:"tenant" yaml:"tenant"`
	Account  string `json:"account" yaml:"account"`
	Provider string `json:"provider" yaml:"provider"`
	Region   string `json:"region,omitempty" yaml:"region,omitempty"`
	Zone     string `json:"zone" yaml:"zone"`
}

// VM is one Windows virtual machine of the fleet.
type VM struct {
	Location
	ID      string            `json:"id" yaml:"id"`
	Name    string            `json:"name" yaml:"name"`
	Tags    map[string]string `json:"tags,omitempty" yaml:"tags,omitempty"`
	Windows WindowsVersion    `json:"windows" yaml:"windows"`
	Power   PowerState        `json:"power" yaml:"power"`
	OSDisk  Disk              `json:"os_disk" yaml:"os_disk"`
	NICs    []NIC             `json:"nics,omitempty" yaml:"nics,omitempty"`
	Backups []Backup          `json:"backups,omitempty" yaml:"backups,omitempty"`
}

// Key identifies a VM uniquely across a whole config: tenant, account and ID.
func (v VM) Key() string { return v.Tenant + "/" + v.Account + "/" + v.ID }

// BootMode is how a running Windows guest says it booted.
type BootMode string

// Boot modes reported by the guest probe.
const (
	BootNormal   BootMode = "normal"
	BootSafeMode BootMode = "safe" // Safe Mode (with networking, or WinRM would not answer)
)

// Signals is what a provider's control plane says about a VM at one instant.
// Pointers are nil where the provider cannot tell.
type Signals struct {
	At    time.Time  `json:"at"`
	Power PowerState `json:"power"`
	// LastBootAt is when the guest last started booting, as the cloud saw it
	// (instance status history, launch/boot time). Zero if unknown.
	LastBootAt time.Time `json:"last_boot_at,omitzero"`
	// BootCount counts the boots the cloud has seen since it started
	// counting; two samples' difference is the restarts in between. Nil if
	// the cloud does not count.
	BootCount *int `json:"boot_count,omitempty"`
	// InstanceReachable is the cloud's own reachability check of the guest
	// OS (EC2 instance status check, Azure boot diagnostics). Nil if none.
	InstanceReachable *bool `json:"instance_reachable,omitempty"`
	// Console is the tail of the serial console / boot screen text, where
	// the cloud offers one ("" otherwise). Untrusted text.
	Console string `json:"console,omitempty"`
	// ConsoleAvailable tells whether the cloud can show a console at all.
	ConsoleAvailable bool `json:"console_available"`
}

// FileFact is one file the guest probe found, as the guest reported it.
type FileFact struct {
	Path    string    `json:"path"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	Header  string    `json:"header,omitempty"` // first bytes, upper-case hex
}

// Probe is the result of running the guest probe over WinRM.
type Probe struct {
	At        time.Time `json:"at"`
	Reachable bool      `json:"reachable"`
	// Error says why the guest could not be probed (refused, timed out,
	// credentials rejected). Never contains a secret.
	Error string `json:"error,omitempty"`
	// Retryable is set when the probe could not even be attempted for a
	// transient reason (the cloud could not say where the guest is: a
	// throttled or unavailable control plane). It says nothing about the
	// guest: look again later.
	Retryable    bool       `json:"retryable,omitempty"`
	BootMode     BootMode   `json:"boot_mode,omitempty"`
	SafeBootFlag bool       `json:"safe_boot_flag,omitempty"`
	Hostname     string     `json:"hostname,omitempty"`
	Files        []FileFact `json:"files,omitempty"`
}

// Attestation is a person's word about a VM that the cloud's API cannot
// give: an operator saw it crash or sit at the recovery screen on its
// console (VNC, serial, screenshot). It counts as evidence of a boot loop
// only where nothing contradicts it.
type Attestation struct {
	// Source says where the attestation came from, e.g. the file name.
	Source string `json:"source"`
	// Note is the operator's words (untrusted text, shown as is).
	Note string `json:"note,omitempty"`
}

// Screen is what a VM's console screen shows, as a screenshot classifier
// (package inventory/screen) reads it.
type Screen string

// Screens a classifier tells apart. ScreenUnknown is any image it cannot
// place with confidence; ScreenBlack is a screen with nothing on it (off,
// or early in a boot).
const (
	ScreenStop     Screen = "stop"      // the stop screen: "Your device ran into a problem"
	ScreenRecovery Screen = "recovery"  // Automatic Repair / Recovery / boot manager error
	ScreenSafeMode Screen = "safe-mode" // a Safe Mode desktop
	ScreenLogin    Screen = "login"     // the normal sign-in (lock) screen
	ScreenBlack    Screen = "black"
	ScreenUnknown  Screen = "unknown"
)

// Crash reports whether s is a crash or recovery screen.
func (s Screen) Crash() bool { return s == ScreenStop || s == ScreenRecovery }

// ScreenSample is one screenshot of a VM's console, classified. The image
// itself is not kept.
type ScreenSample struct {
	At     time.Time `json:"at"`
	Screen Screen    `json:"screen"`
}

// Evidence is everything a verdict rests on.
type Evidence struct {
	Samples []Signals `json:"samples"`
	// Screens are the console screenshots taken over the sampling window,
	// oldest first (none where the cloud shows no screen or was not asked).
	Screens []ScreenSample `json:"screens,omitempty"`
	Probe   *Probe         `json:"probe,omitempty"`
	// Attested, when set, is an operator's report of a crash or recovery
	// screen on the VM's console.
	Attested *Attestation `json:"attested,omitempty"`
}

// Classification is a verdict on one VM, the reasons for it and the evidence.
type Classification struct {
	State State `json:"state"`
	// Reasons are short human sentences; for StateUnknown they say what
	// evidence is missing or conflicting and what a person could do.
	Reasons  []string `json:"reasons"`
	Evidence Evidence `json:"evidence"`
	// BadFiles are the probe's files that the incident profile marks bad.
	BadFiles []FileFact `json:"bad_files,omitempty"`
}

// Assessed is a VM with its verdict.
type Assessed struct {
	VM             VM             `json:"vm"`
	Classification Classification `json:"classification"`
}
