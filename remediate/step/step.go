// Package step is the contract between remediation strategies and the
// executor that runs them.
//
// A strategy is a sequence of steps. A step is a small function with explicit
// inputs (the VM's plan entry and the facts recorded so far) and outputs (the
// facts it produced: a snapshot ID, an attachment, a disk identity). Every
// step is idempotent: it first reads the real state, does nothing if its
// effect is already there, acts, then returns its facts. The executor — not
// the step — records intent and facts in the journal, retries, brakes and
// decides what comes next. Keeping that boundary is what lets the same steps
// run later as activities of a durable-execution engine.
package step

import (
	"context"
	"errors"
	"fmt"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// Facts are key/value facts a step produced. Values are never secrets.
type Facts map[string]string

// Merge returns a copy of f with g's entries added (g wins).
func (f Facts) Merge(g Facts) Facts {
	out := make(Facts, len(f)+len(g))
	for k, v := range f {
		out[k] = v
	}
	for k, v := range g {
		out[k] = v
	}
	return out
}

// Outcomes a step reports with its error. Test with errors.Is.
var (
	// ErrHealthy: a re-check found the VM healthy. The executor stops
	// acting on it at once; nothing more may touch it.
	ErrHealthy = errors.New("the VM is healthy")
	// ErrStrategyFailed: the strategy cannot succeed on this VM (a
	// precondition no longer holds, or its verification failed). The VM
	// is in a safe state; the executor falls back to the next strategy.
	ErrStrategyFailed = errors.New("strategy failed")
	// ErrNeedsPerson: stop all automation on this VM; a person must act.
	// The message says what to do.
	ErrNeedsPerson = errors.New("needs a person")
)

// Fail wraps a reason as ErrStrategyFailed.
func Fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrStrategyFailed, fmt.Sprintf(format, args...))
}

// Flag wraps a reason as ErrNeedsPerson.
func Flag(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNeedsPerson, fmt.Sprintf(format, args...))
}

// Guest runs the guest catalog's scripts (*guest.Client).
type Guest interface {
	Probe(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.ProbeParams) (guest.ProbeResult, error)
	DeleteFiles(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.DeleteParams) (guest.DeleteResult, error)
	ClearSafeBoot(ctx context.Context, ep providers.Endpoint, cr guest.Credentials) (guest.ClearSafeBootResult, error)
	CheckHives(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.CheckHivesParams) (guest.CheckHivesResult, error)
	ListDisks(ctx context.Context, ep providers.Endpoint, cr guest.Credentials) (guest.ListDisksResult, error)
	OnlineDisk(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.DiskParams) (guest.DiskResult, error)
	UnlockVolume(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.UnlockParams) (guest.UnlockResult, error)
	SetDiskIdentity(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.SetIdentityParams) (guest.DiskResult, error)
	OfflineDisk(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.DiskParams) (guest.DiskResult, error)
}

// Prober re-checks a VM's guest (*probe.Prober).
type Prober interface {
	Probe(ctx context.Context, vm inventory.VM) inventory.Probe
}

// Keys looks up BitLocker recovery keys (*keys.Source).
type Keys interface {
	Key(keyID string) (secret.Secret, bool)
}

// HelperPool leases slots on helper VMs (several disks per helper). The
// executor owns the pool and releases idle helpers at the end of the run.
type HelperPool interface {
	// Lease returns a running helper of release win in zone with a free
	// slot, reserved for vmKey. Idempotent per vmKey: a VM that already
	// holds a lease (also in a previous process: prefer the helper named
	// by hint, a helper ID from the facts) gets the same helper back.
	// Errors: providers.ErrNotFound when no image of that release exists
	// in the zone; retryable provider errors.
	Lease(ctx context.Context, zone string, win inventory.WindowsVersion, vmKey, hint string) (providers.VMRef, error)
	// Return gives vmKey's slot back. Idempotent.
	Return(ctx context.Context, helper providers.VMRef, vmKey string) error
}

// Env is what steps act through. The executor builds one per account; its
// fields are safe for concurrent use by many VMs' steps.
type Env struct {
	RunID    string
	Account  providers.Account
	Provider *providers.Provider
	Guest    Guest
	Creds    guest.Credentials
	// GuestPort, when non-zero, replaces the provider's WinRM port.
	GuestPort int
	Keys      Keys
	Prober    Prober
	Helpers   HelperPool
	Clock     clock.Clock
	Incident  inventory.Incident
	Policy    policy.Policy
}

// Step is one idempotent unit of a strategy.
type Step struct {
	// Name is unique within its strategy, stable across versions (the
	// journal keys on it), e.g. "snapshot", "restart-2".
	Name string
	// Run performs the step. facts holds every fact recorded for this VM in
	// this run so far (earlier steps, earlier strategies, and a previous
	// process's attempt at this very step when it died mid-way: Run must
	// then re-read the real state rather than trust that the effect did or
	// did not happen). It returns the facts it produced. A retryable
	// provider or guest error (providers.Retryable, guest.ErrUnreachable
	// where the step says so) is retried by the executor; ErrHealthy,
	// ErrStrategyFailed and ErrNeedsPerson end the strategy; any other
	// error fails the strategy after the strategy's Abort has run.
	Run func(ctx context.Context, env *Env, vm *plan.VMPlan, facts Facts) (Facts, error)
}

// Strategy is a named sequence of steps, and how to leave a VM safe when the
// sequence stops part-way.
type Strategy interface {
	Name() policy.Strategy
	// Steps returns the steps for vm, in order. It may depend on the plan
	// entry (e.g. an unlock step only for BitLocker disks) but not on
	// facts, so that the list is the same on every resume.
	Steps(vm *plan.VMPlan, pol policy.Policy) []Step
	// Abort brings vm back to a safe state after the strategy stopped
	// part-way (a failed step or ErrStrategyFailed), so that the next
	// strategy can start: e.g. the OS disk back on its VM with its
	// identity verified. Idempotent, re-reads real state. If it cannot, it
	// returns ErrNeedsPerson saying where everything is.
	Abort(ctx context.Context, env *Env, vm *plan.VMPlan, facts Facts) (Facts, error)
}
