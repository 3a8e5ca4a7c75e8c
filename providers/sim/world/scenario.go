package world

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// ScenarioVersion is the version string of the scenario document.
const ScenarioVersion = "fixfleet.sim/v1"

// Scenario is a whole world as a JSON document: what Generate makes, what
// Export writes, what Load reads. It round-trips exactly (Export, marshal,
// ParseScenario, Load, Export gives the same JSON) and is meant to be edited
// by hand: ParseScenario rejects unknown fields and Load rejects bad values,
// naming the VM (or disk, snapshot, helper) and the field.
//
// It holds sim secrets (the guest password, recovery keys) in clear: a
// scenario file is test data, never a real fleet's.
type Scenario struct {
	Version  string `json:"version"`
	Seed     int64  `json:"seed"`
	Incident string `json:"incident"`
	// Now is the simulated time the scenario describes; a clock for Load
	// should start there.
	Now              time.Time       `json:"now"`
	Zones            []string        `json:"zones"`
	Images           []ImageSpec     `json:"images"`
	GuestAccess      GuestAccessSpec `json:"guest_access"`
	ConsoleAvailable bool            `json:"console_available"`
	// FullCopySnapshots: every snapshot is a full copy (Sakura archives),
	// so a later snapshot of a disk takes as long as the first. Default:
	// incremental (EBS, Azure managed-disk incremental snapshots).
	FullCopySnapshots bool `json:"full_copy_snapshots,omitempty"`
	// PerDiskSnapshots: a disk made from a snapshot starts a snapshot
	// family of its own, so its first snapshot is a full one (Azure
	// managed disks: "the first incremental snapshot is a full copy of the
	// disk"). Default: it continues its source snapshot's lineage, so even
	// its first snapshot is incremental (EBS user guide, "How incremental
	// snapshots work": a snapshot of a volume created from a snapshot is
	// incremental to that snapshot).
	PerDiskSnapshots bool `json:"per_disk_snapshots,omitempty"`
	// ZoneBoundSnapshots: a snapshot makes disks only in its own zone
	// (Sakura's archives are zone resources); the lower bound then counts
	// no copy of a disk to another zone. Default: any zone of the region.
	ZoneBoundSnapshots bool     `json:"zone_bound_snapshots,omitempty"`
	Faults             Faults   `json:"faults"`
	Limits             Limits   `json:"limits,omitzero"`
	VMs                []VMSpec `json:"vms"`
	// Disks holds every disk that is not some VM's or helper's boot disk:
	// detached disks, data disks, copies and restores.
	Disks     []DiskSpec     `json:"disks,omitempty"`
	Snapshots []SnapshotSpec `json:"snapshots,omitempty"`
	Helpers   []VMSpec       `json:"helpers,omitempty"`
}

// ImageSpec is a helper image: Windows release in a zone, and the disk
// identity every disk made from it carries.
type ImageSpec struct {
	Zone     string                 `json:"zone"`
	Release  string                 `json:"release"`
	Build    string                 `json:"build,omitempty"`
	ImageID  string                 `json:"image_id"`
	Identity inventory.DiskIdentity `json:"identity"`
}

// GuestAccessSpec is the local administrator the world's guests accept.
type GuestAccessSpec struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// VMSpec is one VM (or helper) of a scenario.
type VMSpec struct {
	ID      string                   `json:"id"`
	Name    string                   `json:"name,omitempty"`
	Tenant  string                   `json:"tenant,omitempty"`  // default "sim"
	Account string                   `json:"account,omitempty"` // default "sim"
	Zone    string                   `json:"zone"`
	Tags    map[string]string        `json:"tags,omitempty"`
	Windows inventory.WindowsVersion `json:"windows"`
	// Truth is the referee's verdict ("healthy", "safe-mode",
	// "boot-loop"). Written by Export; on Load it may be left out, and if
	// given it must agree with the rest of the VM.
	Truth string `json:"truth,omitempty"`
	// Power is "running", "stopped", "starting" or "stopping"; the last
	// two complete at PowerUntil.
	Power      inventory.PowerState `json:"power"`
	PowerUntil time.Time            `json:"power_until,omitzero"`
	// BootCount counts boots since the world began; the current boot (if
	// running) is number BootCount and started at LastBootAt.
	BootCount  int       `json:"boot_count"`
	LastBootAt time.Time `json:"last_boot_at,omitzero"`
	// BootMode is "safe" only for a VM running in safe mode whose safe-boot
	// flag was cleared since it booted; otherwise empty (derived).
	BootMode  string `json:"boot_mode,omitempty"`
	PrivateIP string `json:"private_ip"`
	// OriginalDisk is the ID of the VM's original OS disk when that is not
	// its current boot disk (OSDisk). Empty otherwise.
	OriginalDisk string `json:"original_disk,omitempty"`
	// OSDisk is the disk attached as the VM's boot disk; nil if none.
	OSDisk    *DiskSpec     `json:"os_disk,omitempty"`
	Condition ConditionSpec `json:"condition"`
	Backups   []BackupSpec  `json:"backups,omitempty"`
	// ImageID is set on helpers: the image they were created from.
	ImageID string `json:"image_id,omitempty"`
	// ClientToken is set on helpers created with one: a create carrying
	// the same token returns this helper.
	ClientToken string `json:"client_token,omitempty"`
}

// Limits are the clouds' resource limits on helpers. Zero means no limit.
type Limits struct {
	// HelpersPerAccount is each account's quota of helper VMs (EC2's
	// vCPU-based On-Demand limit, Sakura's per-zone server quota).
	HelpersPerAccount int `json:"helpers_per_account,omitempty"`
	// HelpersPerZone is each zone's capacity for helpers, all accounts
	// together (EC2's InsufficientInstanceCapacity).
	HelpersPerZone map[string]int `json:"helpers_per_zone,omitempty"`
	// Denied lists, by account, the actions (providers.Actions) its
	// credentials are not allowed: the call fails as access denied
	// (ErrPermanent), and a dry run says so without effect.
	Denied map[string][]providers.Action `json:"denied,omitempty"`
}

// ConditionSpec is how a VM's guest behaves.
type ConditionSpec struct {
	// Loop is "cycling" (crash, reset, crash...) or "stuck" (at the
	// recovery screen), "" when not looping. Written by Export; on Load it
	// may be left out, and if given it must agree with the VM.
	Loop string `json:"loop,omitempty"`
	// RecoverAfterBoots: on the boot with this number (counting all boots
	// since the world began) the VM fetches the fixed file before it
	// crashes. 0 = never.
	RecoverAfterBoots int `json:"recover_after_boots"`
	// StuckAfterCrashes: after this many consecutive crashes the VM stops
	// at the recovery screen. 0 = never, it cycles.
	StuckAfterCrashes int `json:"stuck_after_crashes"`
	// Crashes counts consecutive crashes since the last good boot.
	Crashes int `json:"crashes"`
	// WinRM is "open", "blocked" (firewall) or "bad-credentials" (the
	// administrator password differs from guest_access).
	WinRM string `json:"winrm"`
	// SafeModeWinRM: WinRM also starts in safe mode with networking (its
	// service is listed under HKLM\SYSTEM\CurrentControlSet\Control\
	// SafeBoot\Network). Windows' default is not: false.
	SafeModeWinRM bool `json:"safe_mode_winrm,omitempty"`
	// WinRMWindowSeconds: on a crashing boot, the guest comes up and WinRM
	// answers for this many seconds before the bad file crashes it (the
	// sensor reads its channel files late). 0: a crashing boot never
	// answers.
	WinRMWindowSeconds int `json:"winrm_window_seconds,omitempty"`
	// DeleteDenied: inside this running guest, deleting the bad file
	// fails (access denied: a tamper-protection ACL, or the file held
	// open), so an online deletion fails; offline, from a helper, it
	// succeeds.
	DeleteDenied bool `json:"delete_denied,omitempty"`
}

// DiskSpec is a disk and its content.
type DiskSpec struct {
	ID      string `json:"id"`
	Zone    string `json:"zone,omitempty"`    // omitted inside a VM: the VM's zone
	Account string `json:"account,omitempty"` // omitted inside a VM: the VM's account
	ContentSpec
	Tags map[string]string `json:"tags,omitempty"`
	// Source is where the disk came from: "" (a VM's original disk),
	// "image:<id>", "snapshot:<id>", "backup:<id>".
	Source  string    `json:"source,omitempty"`
	ReadyAt time.Time `json:"ready_at,omitzero"` // still being created until then
	// AttachedTo is set on top-level disks attached as data disks.
	AttachedTo string    `json:"attached_to,omitempty"`
	BusyUntil  time.Time `json:"busy_until,omitzero"` // attach/detach completes
	Busy       string    `json:"busy,omitempty"`      // "attaching" or "detaching"
	// BusyFails: the attach or detach under way ends in failure; a failed
	// detach puts the disk back on DetachingFrom (as its boot disk if
	// DetachingBoot).
	BusyFails     bool   `json:"busy_fails,omitempty"`
	DetachingFrom string `json:"detaching_from,omitempty"`
	DetachingBoot bool   `json:"detaching_boot,omitempty"`
	// Guest is the attached disk's state inside its host's OS.
	Guest *GuestDiskSpec `json:"guest,omitempty"`
}

// ContentSpec is what is on a disk.
type ContentSpec struct {
	SizeGB   int                    `json:"size_gb"`
	Identity inventory.DiskIdentity `json:"identity"`
	// BootIdentity is the identity the disk's boot configuration (BCD)
	// names; omitted when equal to Identity. A disk whose identity differs
	// does not boot.
	BootIdentity *inventory.DiskIdentity `json:"boot_identity,omitempty"`
	BitLocker    *BitLockerSpec          `json:"bitlocker,omitempty"`
	Files        []FileSpec              `json:"files,omitempty"`
	SafeBootFlag bool                    `json:"safe_boot_flag,omitempty"`
	HiveDamaged  bool                    `json:"hive_damaged,omitempty"`
	// Hostname is the computer name of the Windows on the disk (what a
	// probe reports). On Load it defaults to the owning VM's name.
	Hostname string `json:"hostname,omitempty"`
	// Origin is the fleet VM whose original disk or backup the content
	// descends from ("" for a helper image's). On Load it defaults, for an
	// original disk, to its VM, and for a copy, to its source's origin.
	Origin string `json:"origin,omitempty"`
	// IdentityUnverified: the identity changed and no guest listing has
	// shown it back at BootIdentity since (the referee's flag).
	IdentityUnverified bool `json:"identity_unverified,omitempty"`
}

// BitLockerSpec is a BitLocker-protected OS volume.
type BitLockerSpec struct {
	KeyID       string `json:"key_id"`
	RecoveryKey string `json:"recovery_key"`
	// Escrowed tells whether the key is in the operator's key store
	// (World.EscrowedKeys).
	Escrowed bool `json:"escrowed"`
}

// FileSpec is a file in the incident's directory.
type FileSpec struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	Header  string    `json:"header"`
}

// GuestDiskSpec is a data disk as its host's Windows sees it.
type GuestDiskSpec struct {
	Number      int    `json:"number"`
	Online      bool   `json:"online,omitempty"`
	DriveLetter string `json:"drive_letter,omitempty"`
	Unlocked    bool   `json:"unlocked,omitempty"`
}

// BackupSpec is a restore point of a VM's OS disk; its content is the
// original disk as of TakenAt (a backup taken inside the incident's bad
// window holds the bad file).
type BackupSpec struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	TakenAt time.Time `json:"taken_at"`
	SizeGB  int       `json:"size_gb"`
	// Damaged: the backup holds corrupt registry hives (a backup never
	// test-restored): a disk restored from it stops at the recovery
	// screen. The cloud does not say so.
	Damaged bool `json:"damaged,omitempty"`
}

// SnapshotSpec is a snapshot and the content it froze.
type SnapshotSpec struct {
	ID      string            `json:"id"`
	DiskID  string            `json:"disk_id"`
	Zone    string            `json:"zone"`
	Account string            `json:"account"`
	Tags    map[string]string `json:"tags,omitempty"`
	TakenAt time.Time         `json:"taken_at"`
	ReadyAt time.Time         `json:"ready_at"`
	Content ContentSpec       `json:"content"`
}

// Faults configures the control plane's misbehaviour. Every decision is a
// hash of the seed and the call (operation, resource, instant), so a run is
// repeatable given the same calls at the same instants, in any order.
type Faults struct {
	// ErrorRate is the share of calls answered with a 5xx before anything
	// is applied.
	ErrorRate float64 `json:"error_rate"`
	// DropBeforeRate is the share of calls whose connection drops before
	// the server applied them; DropAfterRate after it applied them. The
	// caller sees providers.ErrUnavailable either way.
	DropBeforeRate float64 `json:"drop_before_rate"`
	DropAfterRate  float64 `json:"drop_after_rate"`
	// Throttle is the token-bucket model per account: "off", "simple" (one
	// bucket per account) or "ec2" (EC2's published buckets by action).
	Throttle string `json:"throttle"`
	// Latency scales API latency (drawn from timing.OpAPICall and growing
	// with calls in flight): 0 means none, 1 the calibrated figures.
	Latency float64 `json:"latency"`
	// Outages are windows of simulated time during which every
	// control-plane call fails with providers.ErrUnavailable.
	Outages []Outage `json:"outages,omitempty"`
	// Guest-path faults, each a share of guest script runs over WinRM:
	// GuestDropBeforeRate drops the connection before the script runs,
	// GuestErrorRate fails the script in the guest before its effect,
	// GuestDropAfterRate loses the reply after the script's effect (the
	// orchestrator sees a dropped connection either way); GuestSlowRate
	// makes a script take calib.SlowScript times its usual time.
	GuestDropBeforeRate float64 `json:"guest_drop_before_rate,omitempty"`
	GuestErrorRate      float64 `json:"guest_error_rate,omitempty"`
	GuestDropAfterRate  float64 `json:"guest_drop_after_rate,omitempty"`
	GuestSlowRate       float64 `json:"guest_slow_rate,omitempty"`
	// AsyncFailRate is the share of accepted attaches and detaches that
	// end in failure when they complete: the disk is left as it was.
	AsyncFailRate float64 `json:"async_fail_rate,omitempty"`
	// DropReplies loses the reply of chosen calls after the world applied
	// them, one by one (an after-commit fault on a given call, where
	// DropAfterRate is a share of all calls).
	DropReplies []DropReply `json:"drop_replies,omitempty"`
}

// DropReply loses the reply of the Nth call (from 1) of operation Op (a
// control-plane operation: "Snapshot", "CreateHelper"...) whose change the
// world applied; calls it refused do not count. The caller sees
// providers.ErrUnavailable, the change stays.
type DropReply struct {
	Op  string `json:"op"`
	Nth int    `json:"nth"`
}

// Outage is a window [From, Until) of control-plane outage.
type Outage struct {
	From  time.Time `json:"from"`
	Until time.Time `json:"until"`
}

// ParseScenario decodes one scenario document strictly: unknown fields and
// trailing data are errors. It does not validate values; Load does.
func ParseScenario(r io.Reader) (Scenario, error) {
	var sc Scenario
	dec := json.NewDecoder(r)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&sc); err != nil {
		var ute *json.UnmarshalTypeError
		var se *json.SyntaxError
		switch {
		case errors.Is(err, io.EOF):
			return Scenario{}, errors.New("scenario: empty document")
		case errors.As(err, &ute):
			// Say the field by its JSON path and the kind of value it
			// wants, not by Go's type names.
			return Scenario{}, fmt.Errorf("scenario: %s: a JSON %s where a %s is expected (at byte %d)", ute.Field, ute.Value, jsonKind(ute.Type), ute.Offset)
		case errors.As(err, &se):
			return Scenario{}, fmt.Errorf("scenario: not valid JSON at byte %d: %v", se.Offset, se)
		}
		return Scenario{}, fmt.Errorf("scenario: %s", strings.TrimPrefix(err.Error(), "json: "))
	}
	if dec.More() {
		return Scenario{}, errors.New("scenario: trailing data after the document")
	}
	return sc, nil
}

// jsonKind names the JSON value a Go type decodes from.
func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "true or false"
	case reflect.Slice, reflect.Array:
		return "list"
	case reflect.Map, reflect.Struct:
		return "object"
	case reflect.Pointer:
		return jsonKind(t.Elem())
	}
	return "number"
}

// MarshalScenario encodes sc as indented JSON with a final newline.
func MarshalScenario(sc Scenario) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(sc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

var (
	mbrRE    = regexp.MustCompile(`^[0-9A-F]{8}$`)
	guidRE   = regexp.MustCompile(`^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$`)
	rkeyRE   = regexp.MustCompile(`^[0-9]{6}(-[0-9]{6}){7}$`)
	idRE     = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$`)
	letterRE = regexp.MustCompile(`^[D-Z]:$`)
)

func checkIdentity(field string, id inventory.DiskIdentity) error {
	switch id.Style {
	case inventory.PartitionMBR:
		if !mbrRE.MatchString(id.ID) {
			return fmt.Errorf("%s.id: %q is not an MBR signature (8 upper-case hex digits)", field, id.ID)
		}
	case inventory.PartitionGPT:
		if !guidRE.MatchString(id.ID) {
			return fmt.Errorf("%s.id: %q is not an upper-case GPT GUID", field, id.ID)
		}
	default:
		return fmt.Errorf("%s.style: %q must be mbr or gpt", field, id.Style)
	}
	return nil
}

func checkID(field, id string) error {
	if !idRE.MatchString(id) {
		return fmt.Errorf("%s: %q must be 1-128 letters, digits, '.', '_', ':' or '-'", field, id)
	}
	return nil
}

func checkContent(field string, c ContentSpec) []error {
	var errs []error
	if c.SizeGB <= 0 || c.SizeGB > 65536 {
		errs = append(errs, fmt.Errorf("%s.size_gb: %d must be 1-65536", field, c.SizeGB))
	}
	if err := checkIdentity(field+".identity", c.Identity); err != nil {
		errs = append(errs, err)
	}
	if c.BootIdentity != nil {
		if err := checkIdentity(field+".boot_identity", *c.BootIdentity); err != nil {
			errs = append(errs, err)
		}
	}
	if b := c.BitLocker; b != nil {
		if err := checkID(field+".bitlocker.key_id", b.KeyID); err != nil {
			errs = append(errs, err)
		}
		if !rkeyRE.MatchString(b.RecoveryKey) {
			// Never echo the key itself.
			errs = append(errs, fmt.Errorf("%s.bitlocker.recovery_key: must be 8 groups of 6 digits separated by '-'", field))
		}
	}
	seen := map[string]bool{}
	for i, f := range c.Files {
		ff := fmt.Sprintf("%s.files[%d]", field, i)
		if f.Name == "" || strings.ContainsAny(f.Name, `\/:*?"<>|`) {
			errs = append(errs, fmt.Errorf("%s.name: %q must be a plain file name", ff, f.Name))
		}
		if seen[strings.ToUpper(f.Name)] {
			errs = append(errs, fmt.Errorf("%s.name: %q appears twice", ff, f.Name))
		}
		seen[strings.ToUpper(f.Name)] = true
		if f.Size < 0 {
			errs = append(errs, fmt.Errorf("%s.size: must not be negative", ff))
		}
		if f.ModTime.IsZero() {
			errs = append(errs, fmt.Errorf("%s.mod_time: required", ff))
		}
		if _, err := hex.DecodeString(f.Header); err != nil || f.Header == "" || strings.ToUpper(f.Header) != f.Header {
			errs = append(errs, fmt.Errorf("%s.header: %q must be upper-case hex", ff, f.Header))
		}
	}
	return errs
}

func checkRate(field string, r float64) error {
	if !(r >= 0 && r <= 1) {
		return fmt.Errorf("faults.%s: %v must be between 0 and 1", field, r)
	}
	return nil
}

func (f Faults) validate() []error {
	var errs []error
	for _, c := range []struct {
		n string
		v float64
	}{{"error_rate", f.ErrorRate}, {"drop_before_rate", f.DropBeforeRate}, {"drop_after_rate", f.DropAfterRate}} {
		if err := checkRate(c.n, c.v); err != nil {
			errs = append(errs, err)
		}
	}
	if f.ErrorRate+f.DropBeforeRate+f.DropAfterRate > 1 {
		errs = append(errs, errors.New("faults: error_rate + drop_before_rate + drop_after_rate must not exceed 1"))
	}
	for _, c := range []struct {
		n string
		v float64
	}{{"guest_drop_before_rate", f.GuestDropBeforeRate}, {"guest_error_rate", f.GuestErrorRate},
		{"guest_drop_after_rate", f.GuestDropAfterRate}, {"guest_slow_rate", f.GuestSlowRate}, {"async_fail_rate", f.AsyncFailRate}} {
		if err := checkRate(c.n, c.v); err != nil {
			errs = append(errs, err)
		}
	}
	if f.GuestDropBeforeRate+f.GuestErrorRate+f.GuestDropAfterRate > 1 {
		errs = append(errs, errors.New("faults: guest_drop_before_rate + guest_error_rate + guest_drop_after_rate must not exceed 1"))
	}
	switch f.Throttle {
	case ThrottleOff, ThrottleSimple, ThrottleEC2:
	default:
		errs = append(errs, fmt.Errorf("faults.throttle: %q must be one of off, simple, ec2", f.Throttle))
	}
	if !(f.Latency >= 0 && f.Latency <= 1000) {
		errs = append(errs, fmt.Errorf("faults.latency: %v must be between 0 and 1000", f.Latency))
	}
	for i, d := range f.DropReplies {
		if d.Op == "" || d.Nth < 1 {
			errs = append(errs, fmt.Errorf("faults.drop_replies[%d]: op required and nth at least 1", i))
		}
	}
	for i, o := range f.Outages {
		if o.From.IsZero() || !o.From.Before(o.Until) {
			errs = append(errs, fmt.Errorf("faults.outages[%d]: from and until required, from before until", i))
		}
	}
	return errs
}

func checkIP(field, ip string) (netip.Addr, error) {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is4() || a.As4()[0] != 10 {
		return netip.Addr{}, fmt.Errorf("%s: %q must be an IPv4 address in 10.0.0.0/8", field, ip)
	}
	return a, nil
}
