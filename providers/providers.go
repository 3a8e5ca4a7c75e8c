// Package providers is the contract between fixfleet and a cloud: small
// interfaces, one capability each, plus the error classes every provider
// returns and the registry that opens providers by name.
//
// Conventions for every method below:
//   - ctx comes first; cancelling it abandons the wait, not the cloud
//     operation, which may still complete: callers re-read state afterwards.
//   - A method that starts an asynchronous cloud operation waits for it to
//     finish (the provider knows how its cloud reports progress); how long to
//     wait is the caller's, through ctx.
//   - Errors are classified (ErrNotFound, ErrConflict, ErrThrottled,
//     ErrUnavailable, ErrPermanent, ErrUnsupported; see errors.go) and name
//     the resource; they never contain a secret.
//   - "Idempotent" means calling again after success, or after an error whose
//     effect is unknown (a dropped connection), leaves the same end state and
//     does not fail because the effect is already there.
package providers

import (
	"context"
	"sort"

	"github.com/fixfleet/fixfleet/inventory"
)

// VMRef points at one VM within a provider's scope.
type VMRef struct {
	ID     string `json:"id"`
	Region string `json:"region,omitempty"`
	Zone   string `json:"zone"`
	Name   string `json:"name,omitempty"` // for messages only
}

// Ref returns the reference of an inventoried VM.
func Ref(vm inventory.VM) VMRef {
	return VMRef{ID: vm.ID, Region: vm.Region, Zone: vm.Zone, Name: vm.Name}
}

func (r VMRef) String() string {
	if r.Name != "" && r.Name != r.ID {
		return r.ID + " (" + r.Name + ")"
	}
	return r.ID
}

// DiskRef points at one disk (volume).
type DiskRef struct {
	ID     string `json:"id"`
	Region string `json:"region,omitempty"`
	Zone   string `json:"zone"`
}

// SnapshotRef points at a snapshot (or archive, or image) of a disk.
type SnapshotRef struct {
	ID     string `json:"id"`
	Region string `json:"region,omitempty"`
	Zone   string `json:"zone,omitempty"`
}

// Tags label what fixfleet creates in a cloud. Use the Tag* keys so that a
// run's resources can be found, reused after a crash, and cleaned up.
type Tags map[string]string

// Tag keys fixfleet puts on everything it creates.
const (
	TagRun  = "fixfleet-run"  // run ID
	TagVM   = "fixfleet-vm"   // ID of the VM the resource serves
	TagRole = "fixfleet-role" // "snapshot", "helper", "restore-disk", ...
)

// Has reports whether t carries every one of want, with the same values.
func (t Tags) Has(want Tags) bool {
	for k, v := range want {
		if hv, ok := t[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// Sorted returns the tag keys in order, for stable output.
func (t Tags) Sorted() []string {
	keys := make([]string, 0, len(t))
	for k := range t {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Enumerator lists the Windows VMs in the provider's scope (the account,
// regions and zones it was opened with). Read-only and idempotent.
// Non-Windows VMs are left out. Errors: ErrThrottled, ErrUnavailable,
// ErrPermanent (bad credentials, no such zone).
type Enumerator interface {
	List(ctx context.Context) ([]inventory.VM, error)
}

// Observer reads the control plane's signals about VMs (power state, boot
// history, reachability check, console text). Read-only and idempotent.
// It takes many VMs per call so that clouds whose API batches can; the result
// is keyed by VM ID and has an entry for every VM that exists (a missing one
// was not found). Errors: ErrThrottled, ErrUnavailable, ErrPermanent.
type Observer interface {
	Observe(ctx context.Context, vms []VMRef) (map[string]inventory.Signals, error)
}

// Endpoint is where a guest's WinRM service should answer.
type Endpoint struct {
	Host  string `json:"host"`
	Port  int    `json:"port"`
	HTTPS bool   `json:"https"`
}

// Guests tells where to reach a VM's guest OS. Read-only and idempotent.
// Errors: ErrNotFound, ErrUnsupported (no address fixfleet can reach).
type Guests interface {
	GuestEndpoint(ctx context.Context, vm VMRef) (Endpoint, error)
}

// WinRMPort is WinRM's HTTP port, where the providers' GuestEndpoint
// points.
const WinRMPort = 5985

// ListedPrivateEndpoint is WinRM over HTTP at the first private address
// among vm's NICs as its listing gave them; ok is false when there is none.
// It is the ListedEndpoint (package endpointcache) of a provider whose
// GuestEndpoint answers the VM's private address.
func ListedPrivateEndpoint(vm inventory.VM) (ep Endpoint, ok bool) {
	for _, n := range vm.NICs {
		if n.PrivateIP != "" {
			return Endpoint{Host: n.PrivateIP, Port: WinRMPort}, true
		}
	}
	return Endpoint{}, false
}

// Power changes power state and waits until the cloud reports the new state.
type Power interface {
	// Stop stops the VMs (force: without a guest shutdown) and waits until
	// all are stopped. Idempotent: already-stopped VMs are fine. Providers
	// whose API batches do it in one call. Errors: ErrNotFound,
	// ErrThrottled, ErrUnavailable; a partial failure names the VMs.
	Stop(ctx context.Context, vms []VMRef, force bool) error
	// Start starts the VMs and waits until the cloud reports them running
	// (not that the guest booted: probe the guest for that). Idempotent.
	// Errors as Stop, and ErrConflict when a VM has no boot disk.
	Start(ctx context.Context, vms []VMRef) error
	// Restart hard-resets one running VM and waits until the cloud reports
	// it running again. Not idempotent: each call is one more restart.
	// Errors: ErrConflict if the VM is not running.
	Restart(ctx context.Context, vm VMRef) error
}

// DiskState is where a disk is, as the cloud reports it.
type DiskState struct {
	Ref        DiskRef `json:"ref"`
	AttachedTo string  `json:"attached_to,omitempty"` // VM ID, "" when detached
	Boot       bool    `json:"boot"`                  // attached as the VM's boot disk
	SizeGB     int     `json:"size_gb"`
	Tags       Tags    `json:"tags,omitempty"`
	// LUN is the logical unit a data disk is attached at, where the cloud
	// reports one and the guest names disks by it rather than by the
	// cloud's ID (Azure); nil otherwise. A guest listing's disk at this LUN
	// is this disk.
	LUN *int `json:"lun,omitempty"`
}

// SnapshotState is a snapshot as the cloud reports it.
type SnapshotState struct {
	Ref    SnapshotRef `json:"ref"`
	DiskID string      `json:"disk_id"` // the disk it was taken of
	Ready  bool        `json:"ready"`
	Tags   Tags        `json:"tags,omitempty"`
}

// Disks manages disks and their snapshots. Nothing here deletes a disk
// (the optional CopyDeleter deletes only the copies a run made).
type Disks interface {
	// Describe reads a disk's current attachment. Read-only.
	// Errors: ErrNotFound.
	Describe(ctx context.Context, d DiskRef) (DiskState, error)
	// Snapshot takes a point-in-time copy of d, tagged, and waits until it
	// is usable. Not idempotent by itself: before calling again after an
	// unknown outcome, look for it with FindSnapshots (same tags).
	Snapshot(ctx context.Context, d DiskRef, tags Tags) (SnapshotRef, error)
	// FindSnapshots returns snapshots carrying all the given tags.
	// Read-only.
	FindSnapshots(ctx context.Context, tags Tags) ([]SnapshotState, error)
	// FindDisks returns disks carrying all the given tags (how an earlier
	// FromSnapshot or Restore whose outcome was unknown is found again).
	// Read-only.
	FindDisks(ctx context.Context, tags Tags) ([]DiskState, error)
	// Detach detaches d from VM vm (which must be stopped if d is its boot
	// disk) and waits. Idempotent: a disk already detached from vm is fine.
	// Errors: ErrConflict (VM running), ErrNotFound.
	Detach(ctx context.Context, vm VMRef, d DiskRef) error
	// Attach attaches d to vm, as its boot disk when boot is set (on a
	// stopped VM, at the VM's own root device / first position), and waits.
	// Idempotent: already attached there is fine. Errors: ErrConflict
	// (attached elsewhere, VM in the wrong state, different zone).
	Attach(ctx context.Context, vm VMRef, d DiskRef, boot bool) error
	// FromSnapshot creates a new disk from s in zone, tagged, and waits.
	// Not idempotent: look for an earlier result with FindDisks (same
	// tags) before calling again after an unknown outcome.
	FromSnapshot(ctx context.Context, s SnapshotRef, zone string, tags Tags) (DiskRef, error)
}

// Backups lists a VM's restore points and turns one into a new disk.
type Backups interface {
	// List returns the VM's backups, any order. Read-only.
	List(ctx context.Context, vm VMRef) ([]inventory.Backup, error)
	// Restore creates a new disk from backup b in zone, tagged, and waits.
	// The VM and its disks are not touched. Not idempotent: look for an
	// earlier result with Disks.FindDisks (same tags) first.
	Restore(ctx context.Context, b inventory.Backup, zone string, tags Tags) (DiskRef, error)
}

// HelperImage says that helpers of a Windows release can be created in a zone.
type HelperImage struct {
	// Region is the region of Zone where the cloud has regions ("" where
	// it has none: the simulator). A disk copy reaches a helper in another
	// zone only within one region (capability "cross-zone-copy").
	Region  string                   `json:"region,omitempty"`
	Zone    string                   `json:"zone"`
	Windows inventory.WindowsVersion `json:"windows"`
	ImageID string                   `json:"image_id"`
}

// Helpers provides helper VMs: running Windows machines, reachable over
// WinRM, to which other VMs' disks can be attached.
type Helpers interface {
	// Images lists where helpers can be created. Read-only.
	Images(ctx context.Context) ([]HelperImage, error)
	// Acquire returns a running helper of release win in zone carrying all
	// tags, creating one if none exists, and waits until the cloud reports
	// it running. Idempotent by tags. Errors: ErrNotFound (no image of that
	// release in the zone), ErrThrottled, ErrUnavailable.
	Acquire(ctx context.Context, zone string, win inventory.WindowsVersion, tags Tags) (VMRef, error)
	// Release deletes helper h and its own boot disk. It refuses
	// (ErrConflict) while any disk other than the helper's own is attached.
	// Idempotent: a helper already gone is fine.
	Release(ctx context.Context, h VMRef) error
}

// Provider bundles one account scope's capabilities. A nil field means the
// provider lacks that capability; the planner routes around it.
type Provider struct {
	Name       string
	Enumerator Enumerator
	Observer   Observer
	Guests     Guests
	Power      Power
	Disks      Disks
	Backups    Backups
	Helpers    Helpers
	// Preflight checks permissions and quotas without effect (readiness);
	// nil where the provider cannot. Not a capability strategies need.
	Preflight Preflight
}

// Capabilities lists the capabilities the provider has, by name. Besides
// one per field, two say how a VM's OS disk is changed, for the strategies
// that take it off its VM: "os-disk-detach" (Disks detaches and attaches a
// stopped VM's boot disk) and "os-disk-swap" (Disks implements
// OSDiskSwapper, whose clouds cannot detach an OS disk: Azure);
// "copy-delete" says that Disks deletes the copies a run made
// (CopyDeleter); "cross-zone-copy" that a snapshot makes a disk in any zone
// of its region (every Disks but a ZoneBoundSnapshots).
func (p *Provider) Capabilities() []string {
	_, swaps := p.Disks.(OSDiskSwapper)
	_, deletes := p.Disks.(CopyDeleter)
	_, zoneBound := p.Disks.(ZoneBoundSnapshots)
	var out []string
	for _, c := range []struct {
		name string
		has  bool
	}{
		{"enumerate", p.Enumerator != nil},
		{"observe", p.Observer != nil},
		{"guest", p.Guests != nil},
		{"power", p.Power != nil},
		{"disks", p.Disks != nil},
		{"os-disk-detach", p.Disks != nil && !swaps},
		{"os-disk-swap", swaps},
		{"copy-delete", deletes},
		{"cross-zone-copy", p.Disks != nil && !zoneBound},
		{"backups", p.Backups != nil},
		{"helpers", p.Helpers != nil},
	} {
		if c.has {
			out = append(out, c.name)
		}
	}
	return out
}
