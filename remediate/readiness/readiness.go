// Package readiness says, before any incident, what fixfleet could not do
// if the VMs of a healthy fleet all boot-looped now: VM by VM, and per
// tenant and account, from each strategy's declared needs
// (strategy.Unit.Needs). It is read-only: it lists, reads, probes guests
// with read-only scripts and checks cloud permissions without effect (dry
// runs, permission listings, reads); it never stops, restarts or changes
// anything.
//
// Gather does the reading (Fleet.Assess with every VM's backups, one guest
// script per VM, the providers' Preflight, a hypothetical plan in which
// every VM boot-loops); Evaluate turns what was read into a Report, with no
// I/O. A VM has a full repair path when it has no gap; a tenant's score is
// the share of its VMs that have one. Fixes rank the gaps by the VMs they
// affect.
package readiness

import (
	"time"

	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// Version is the readiness report format.
const Version = "fixfleet.readiness/v1"

// Kind is a kind of gap.
type Kind string

// The gaps readiness finds. Each is a reason a VM (or every VM of an
// account, zone or role) has no full repair path.
const (
	// NotHealthy: the VM is not healthy now; repair it first (plan, apply).
	NotHealthy Kind = "not-healthy"
	// NoBackup: the VM has no backup at all (restore-backup needs one).
	NoBackup Kind = "no-backup"
	// StaleBackup: its newest backup is older than the data-loss limit.
	StaleBackup Kind = "stale-backup"
	// RoleBackup: of the VMs of a role group (a tag value), not all have a
	// backup within the limit; the group fails together.
	RoleBackup Kind = "role-backup"
	// KeyNotEscrowed: a BitLocker OS volume whose recovery key is in no
	// configured key source (helper-mount reads the volume offline).
	KeyNotEscrowed Kind = "key-not-escrowed"
	// NoHelperImage: no helper image of the VM's release in its zone.
	NoHelperImage Kind = "no-helper-image"
	// NoGuestAccess: fixfleet has no guest access configured, or the
	// account gives no guest address.
	NoGuestAccess Kind = "no-guest-access"
	// WinRMUnreachable: nothing answers on the VM's WinRM port.
	WinRMUnreachable Kind = "winrm-unreachable"
	// WinRMAuth: the guest rejected the configured credentials.
	WinRMAuth Kind = "winrm-credentials-rejected"
	// GuestCheckFailed: the guest check failed otherwise (the detail says
	// how); nothing is known of the guest.
	GuestCheckFailed Kind = "guest-check-failed"
	// NoSafeModeWinRM: WinRM is not allowed to start in Safe Mode with
	// networking (delete-file repairs a VM in Safe Mode over WinRM).
	NoSafeModeWinRM Kind = "winrm-not-in-safe-mode"
	// NoConsole: the cloud shows no console for the VM (a boot loop is then
	// told only from boot counts and an operator's report).
	NoConsole Kind = "no-console"
	// MissingCapability: the account's provider lacks a capability a
	// strategy needs.
	MissingCapability Kind = "capability-missing"
	// PermissionDenied: the account's credentials are denied an action a
	// strategy needs.
	PermissionDenied Kind = "permission-denied"
	// HelperQuota: the account's helper quota is smaller than the helpers
	// the plan would need if every VM failed at once.
	HelperQuota Kind = "helper-quota"
)

// Options tune the assessment.
type Options struct {
	// MaxBackupAge is the data-loss limit: a backup older than this is
	// stale (default 24h).
	MaxBackupAge time.Duration
	// RoleTag is the tag whose value is a VM's role (default "role").
	RoleTag string
	// RoleGroups are the roles whose VMs must all have a backup within
	// MaxBackupAge, e.g. "dc": both domain controllers, or none (default
	// ["dc"]).
	RoleGroups []string
	// GuestConcurrency bounds the guest checks in flight (default 20).
	GuestConcurrency int
	// PerHelper is how many disks one helper serves at once (default
	// helperpool.DefaultPerHelper).
	PerHelper int
}

func (o Options) withDefaults() Options {
	if o.MaxBackupAge <= 0 {
		o.MaxBackupAge = 24 * time.Hour
	}
	if o.RoleTag == "" {
		o.RoleTag = "role"
	}
	if o.RoleGroups == nil {
		o.RoleGroups = []string{"dc"}
	}
	if o.GuestConcurrency <= 0 {
		o.GuestConcurrency = 20
	}
	if o.PerHelper <= 0 {
		o.PerHelper = defaultPerHelper
	}
	return o
}

// GuestStatus is how the guest check of one VM went.
type GuestStatus string

// Guest check outcomes.
const (
	GuestOK          GuestStatus = "ok"
	GuestNoAccess    GuestStatus = "no-access"
	GuestUnreachable GuestStatus = "unreachable"
	GuestAuth        GuestStatus = "credentials-rejected"
	GuestError       GuestStatus = "error"
)

// GuestCheck is the guest check of one VM.
type GuestCheck struct {
	Status GuestStatus `json:"status"`
	// SafeModeWinRM is what the guest's registry says; BitLocker and KeyID
	// what it says of the system volume (Status ok only).
	SafeModeWinRM bool   `json:"safe_mode_winrm"`
	BitLocker     bool   `json:"bitlocker,omitempty"`
	KeyID         string `json:"key_id,omitempty"`
	// Detail says what failed (never a secret).
	Detail string `json:"detail,omitempty"`
}

// AccountChecks is what the account's Preflight said.
type AccountChecks struct {
	// Checkable is false when the provider has no Preflight.
	Checkable   bool                   `json:"checkable"`
	Permissions []providers.Permission `json:"permissions,omitempty"`
	Quota       providers.Quota        `json:"quota"`
	// Error says why the checks themselves failed ("" when they ran).
	Error string `json:"error,omitempty"`
}

// Input is everything Evaluate reads.
type Input struct {
	Now        time.Time
	Policy     policy.Policy
	Strategies *strategy.Registry // nil: strategy.Default()
	Fleet      *classify.Fleet    // VMs with every backup listed
	Keys       plan.KeyChecker    // nil: no key source
	// Guest by VM key; a VM without an entry was not checked (not
	// healthy).
	Guest map[string]GuestCheck
	// Accounts by plan.AccountKey.
	Accounts map[string]AccountChecks
	// Plan is the hypothetical plan in which every VM boot-loops now.
	Plan    *plan.Plan
	Options Options
}
