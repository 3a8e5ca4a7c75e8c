package strategy

import (
	"fmt"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// Unit is one remediation strategy, declared whole in its own file: its
// name, when it applies and what it needs, its pre-flight check, its risks,
// and its steps (each marked read-only or mutating, each with its cost).
// The planner, the estimate, plan validation and the executor all read
// strategies through a Registry of Units, never by name.
type Unit interface {
	step.Strategy
	// Applies lists the VM states the strategy can repair.
	Applies() []inventory.State
	// NotApplicable says, in words, why the strategy does not apply to a
	// VM in state st (a state not in Applies).
	NotApplicable(st inventory.State) string
	// Needs is what the strategy needs from the account and the plan.
	Needs() Needs
	// Check is the strategy's own pre-flight check on a VM it applies to,
	// beyond Applies, policy enablement and Needs.Capabilities (which the
	// planner checks for every strategy). It returns why the strategy cannot
	// run, one clause each; none means eligible.
	Check(c *Candidate) []string
	// Risks lists what could go wrong on this VM. planned says whether the
	// strategy is the VM's strategy or a fallback; otherwise it is merely
	// enabled and applicable (or the VM's state is unknown).
	Risks(c *Candidate, planned bool) []string
	// FailureChance is the expected chance, under pol, that the strategy
	// ends without repairing a VM it is eligible for; the estimate weighs
	// the first fallback's cost by it.
	FailureChance(pol policy.Policy) float64
}

// Needs is what a strategy needs besides a VM in a state it applies to.
type Needs struct {
	// Capabilities the account's provider must have, as
	// providers.Provider.Capabilities names them: "power", "disks",
	// "os-disk-detach", "os-disk-swap", "guest", "helpers", "backups".
	Capabilities []string
	// Backup: it restores the newest backup taken before the incident
	// (plan.VMPlan.Backup, step.Target.Backup), losing the data written
	// since, so only where policy.allow_data_loss permits.
	Backup bool
	// Helper: it uses a helper image in the VM's zone
	// (plan.VMPlan.Helper, step.Target.HelperWindows).
	Helper bool
	// RecoveryKey: it reads the OS volume offline, so a BitLocker volume
	// needs its recovery key in a configured key source
	// (Candidate.KeyProblem).
	RecoveryKey bool
}

// Lacking lists, in order, the capabilities of n that has says the
// account's provider does not have (nil when it has them all).
func (n Needs) Lacking(has func(capability string) bool) []string {
	var out []string
	for _, c := range n.Capabilities {
		if !has(c) {
			out = append(out, c)
		}
	}
	return out
}

// Candidate is what the planner knows of one VM when it checks a strategy.
type Candidate struct {
	VM     inventory.VM
	State  inventory.State
	Policy policy.Policy
	// Classification is the VM's verdict with its evidence and the bad
	// files the probe found.
	Classification inventory.Classification
	// Cutoff: a usable backup was taken before it (the incident's start,
	// or its bad window's start when earlier).
	Cutoff time.Time
	// Backup is the newest backup taken before Cutoff, nil when none;
	// Ignored counts those taken at or after it.
	Backup  *inventory.Backup
	Ignored int
	// DataLoss is what restoring Backup loses: the incident start minus
	// its time.
	DataLoss time.Duration
	// Helper is the helper image to use, nil when none fits the VM and the
	// policy; SameHelper says it is of the VM's own release; ZoneReleases
	// lists the releases of the helper images in the VM's zone.
	Helper       *providers.HelperImage
	SameHelper   bool
	ZoneReleases []string
	// KeyProblem says why a BitLocker disk cannot be unlocked offline, ""
	// when it can (or is not encrypted).
	KeyProblem string
	// GuestAnswers: the assessment's probe reached the guest's WinRM
	// with the configured credentials.
	GuestAnswers bool
	// Before are the strategies already eligible ahead of this one in
	// the VM's chain, in order.
	Before []policy.Strategy
}

// Registry is the set of strategies a planner and an executor know, in
// registration order. It is immutable once built.
type Registry struct {
	units  []Unit
	byName map[policy.Strategy]Unit
}

// NewRegistry returns a registry of units, in this order. Two units of one
// name are an error.
func NewRegistry(units ...Unit) (*Registry, error) {
	r := &Registry{byName: map[policy.Strategy]Unit{}}
	for _, u := range units {
		if _, dup := r.byName[u.Name()]; dup {
			return nil, fmt.Errorf("strategy %q is registered twice", u.Name())
		}
		r.units = append(r.units, u)
		r.byName[u.Name()] = u
	}
	return r, nil
}

// Default returns a new registry of fixfleet's strategies. Adding a
// strategy is one file plus one line here.
func Default() *Registry {
	r, err := NewRegistry(
		RebootRetry{},
		RaceBoot{},
		DeleteFile{},
		HelperMount{},
		CopyAndSwap{},
		CrossZone{},
		SafeModeBoot{},
		RestoreBackup{},
	)
	if err != nil {
		panic(err) // the list above has no duplicate
	}
	return r
}

// Get returns the strategy called name.
func (r *Registry) Get(name policy.Strategy) (Unit, bool) {
	u, ok := r.byName[name]
	return u, ok
}

// All returns the strategies in registration order (a new slice).
func (r *Registry) All() []Unit { return append([]Unit(nil), r.units...) }

// Names returns the strategies' names in registration order.
func (r *Registry) Names() []policy.Strategy {
	out := make([]policy.Strategy, len(r.units))
	for i, u := range r.units {
		out[i] = u.Name()
	}
	return out
}

// Executable returns the strategies by name, as the executor takes them
// (apply.Options.Strategies). The map is new on every call.
func (r *Registry) Executable() map[policy.Strategy]step.Strategy {
	out := make(map[policy.Strategy]step.Strategy, len(r.units))
	for _, u := range r.units {
		out[u.Name()] = u
	}
	return out
}
