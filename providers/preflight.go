package providers

import (
	"context"

	"github.com/fixfleet/fixfleet/inventory"
)

// Action is one kind of change fixfleet makes through a cloud's control
// plane, named the same on every cloud. Readiness checks whether an
// account's credentials allow each action a strategy's capabilities need,
// without effect where the cloud allows it.
type Action string

// The actions, grouped by the capability that performs them.
const (
	ActStop          Action = "stop-vm"        // power
	ActStart         Action = "start-vm"       // power
	ActRestart       Action = "restart-vm"     // power
	ActSnapshot      Action = "snapshot"       // disks
	ActDetach        Action = "detach-disk"    // disks
	ActAttach        Action = "attach-disk"    // disks
	ActCreateDisk    Action = "create-disk"    // disks
	ActRestoreBackup Action = "restore-backup" // backups
	ActCreateHelper  Action = "create-helper"  // helpers
	ActDeleteHelper  Action = "delete-helper"  // helpers
)

// Actions lists every action in a stable order.
var Actions = []Action{ActStop, ActStart, ActRestart, ActSnapshot, ActDetach, ActAttach, ActCreateDisk,
	ActRestoreBackup, ActCreateHelper, ActDeleteHelper}

// ActionsFor lists the actions capability c (a name as Capabilities gives
// it) performs; nil for a read-only capability.
func ActionsFor(c string) []Action {
	switch c {
	case "power":
		return []Action{ActStop, ActStart, ActRestart}
	case "disks":
		return []Action{ActSnapshot, ActDetach, ActAttach, ActCreateDisk}
	case "backups":
		return []Action{ActRestoreBackup}
	case "helpers":
		return []Action{ActCreateHelper, ActDeleteHelper}
	}
	return nil
}

// Allowed is a permission check's answer.
type Allowed string

// Answers of a permission check.
const (
	AllowedYes     Allowed = "allowed"
	AllowedNo      Allowed = "denied"
	AllowedUnknown Allowed = "not-checkable" // the cloud offers no way to tell without acting
)

// Permission is whether an account's credentials allow one action, and
// how that was found out ("EC2 DryRun StopInstances", "Sakura auth-status
// permission \"power\"").
type Permission struct {
	Action  Action  `json:"action"`
	Allowed Allowed `json:"allowed"`
	How     string  `json:"how"`
}

// Quota is how many more helper VMs an account can create.
type Quota struct {
	// Known is false when the cloud offers no way to read the quota; the
	// other fields are then zero and How says why.
	Known bool `json:"known"`
	// Unlimited: the account has no such quota (Limit and Room are 0).
	Unlimited bool `json:"unlimited,omitempty"`
	// Limit is the account's quota of helpers (or instances); InUse how
	// much of it is used now; Room = Limit - InUse, never negative.
	Limit int    `json:"limit"`
	InUse int    `json:"in_use"`
	Room  int    `json:"room"`
	How   string `json:"how"`
}

// Preflight checks, without any effect, what an account's credentials and
// limits allow. It is optional (Provider.Preflight nil: nothing is
// checkable). Both methods are read-only: a dry run, a permission listing
// or a read, never a change. Errors: ErrThrottled, ErrUnavailable,
// ErrPermanent (the check itself was refused).
type Preflight interface {
	// Permissions answers for each action in acts, in that order. vm is a
	// VM of the account the dry runs may name (its instance, OS disk and
	// backups: clouds that check per resource need real ones); its zone
	// says where helpers would be created. A zero vm: the account has none.
	Permissions(ctx context.Context, vm inventory.VM, acts []Action) ([]Permission, error)
	// HelperQuota reads how many more helpers the account can create.
	HelperQuota(ctx context.Context) (Quota, error)
}
