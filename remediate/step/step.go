// Package step is the contract between remediation strategies and the
// executor that runs them.
//
// A strategy is a sequence of steps. A step is a small function with explicit
// inputs (its Target: what it needs to know about its VM, and the facts
// recorded so far) and outputs (the
// facts it produced: a snapshot ID, an attachment, a disk identity). Every
// step is idempotent: it first reads the real state, does nothing if its
// effect is already there, acts, then returns its facts. The executor — not
// the step — records intent and facts in the journal, retries, brakes and
// decides what comes next. Keeping that boundary is what lets the same steps
// run later as activities of a durable-execution engine.
package step

import (
	"time"

	"context"
	"errors"
	"fmt"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// Fact is the key of one fact. Each strategy declares the keys it
// produces; keys several strategies share are declared once (in package
// strategy). A key is journaled as its string, so a released key is never
// renamed: an older journal resumes on it.
type Fact string

// Facts are key/value facts a step produced. Values are never secrets.
type Facts map[Fact]string

// FactsOf returns the journal's facts (string keys) as Facts.
func FactsOf(m map[string]string) Facts {
	out := make(Facts, len(m))
	for k, v := range m {
		out[Fact(k)] = v
	}
	return out
}

// Strings returns f with string keys, as the journal records them (nil for
// nil).
func (f Facts) Strings() map[string]string {
	if f == nil {
		return nil
	}
	out := make(map[string]string, len(f))
	for k, v := range f {
		out[string(k)] = v
	}
	return out
}

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
	// ErrUnverifiable (an ErrNeedsPerson): the repair is done but the
	// guest cannot be asked whether it worked (its WinRM rejects the
	// configured credentials); a person must check. Use Unverifiable.
	ErrUnverifiable = fmt.Errorf("%w: repaired but unverifiable", ErrNeedsPerson)
)

// Unverifiable wraps a reason as ErrUnverifiable.
func Unverifiable(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnverifiable, fmt.Sprintf(format, args...))
}

// Fail wraps a reason as ErrStrategyFailed.
func Fail(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrStrategyFailed, fmt.Sprintf(format, args...))
}

// Flag wraps a reason as ErrNeedsPerson.
func Flag(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrNeedsPerson, fmt.Sprintf(format, args...))
}

// Ending says how a strategy that ran all its steps left its VM when that
// is not "repaired and seen booting healthy": its last step records it as
// the fact FactEnding, and the executor reports the VM by it (a typed
// reason, never the message).
type Ending string

// FactEnding is the fact key of a strategy's Ending; absent, the VM was
// repaired and verified running.
const FactEnding Fact = "ending"

// FactRerun is set ("true"), in the facts the executor gives a step, when
// an earlier attempt of that step may have acted without its result being
// recorded (a process killed while it ran, an interrupted or retryable
// error): a step that reports what it changed (files deleted, a flag
// cleared) cannot tell what that attempt already did. Never journaled.
const FactRerun Fact = "rerun"

// Endings.
const (
	// EndRepairedStopped: the disk of a powered-off VM was repaired
	// offline (bad files deleted, safe-boot flag cleared, identity
	// verified) and the VM left powered off, as the policy says; no boot
	// verified it.
	EndRepairedStopped Ending = "repaired-stopped"
	// EndFoundClean: the disk of a powered-off VM, read offline, carried
	// nothing to repair (no bad file, safe-boot flag not set, hives
	// sound); it was put back unchanged and the VM left as the policy
	// says. Nothing was wrong, so nothing was fixed.
	EndFoundClean Ending = "found-clean"
)

// Guest runs the guest catalog's scripts (*guest.Client).
type Guest interface {
	Probe(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.ProbeParams) (guest.ProbeResult, error)
	DeleteFiles(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.DeleteParams) (guest.DeleteResult, error)
	ClearSafeBoot(ctx context.Context, ep providers.Endpoint, cr guest.Credentials) (guest.SafeBootResult, error)
	CheckHives(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.CheckHivesParams) (guest.CheckHivesResult, error)
	ListDisks(ctx context.Context, ep providers.Endpoint, cr guest.Credentials) (guest.ListDisksResult, error)
	OnlineDisk(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.DiskParams) (guest.DiskResult, error)
	UnlockVolume(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.UnlockParams) (guest.UnlockResult, error)
	SetDiskIdentity(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.SetIdentityParams) (guest.DiskResult, error)
	OfflineDisk(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.DiskParams) (guest.DiskResult, error)
	ClearSafeBootOffline(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.BCDParams) (guest.SafeBootResult, error)
	SetSafeBootOffline(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.BCDParams) (guest.SafeBootResult, error)
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
	// Disks, when set, reads disks in place of Provider.Disks.Describe,
	// with its contract (a reader that merges concurrent reads into
	// batched calls: coalesce.Disks). Read disks with Env.Describe.
	Disks DiskReader
	// Backlog, when set, is how long a control-plane call of the account
	// made now would wait for its turn in the provider's own pacing
	// (pace.Limiter.Backlog): the executor starts no new VM while it is
	// long.
	Backlog  func() time.Duration
	Clock    clock.Clock
	Incident inventory.Incident
	Policy   policy.Policy
}

// DiskReader reads a disk's current state (providers.Disks.Describe).
type DiskReader interface {
	Describe(ctx context.Context, d providers.DiskRef) (providers.DiskState, error)
}

// Describe reads disk d through e.Disks when set, else through the
// provider. Read-only. Errors: providers.ErrNotFound.
func (e *Env) Describe(ctx context.Context, d providers.DiskRef) (providers.DiskState, error) {
	if e.Disks != nil {
		return e.Disks.Describe(ctx, d)
	}
	return e.Provider.Disks.Describe(ctx, d)
}

// Target is what a step needs to know about its VM: the plan entry's
// identity, disk and the choices the planner made for it. The executor
// builds it from the plan (plan.VMPlan.Target).
type Target struct {
	// Key is tenant/account/id, unique in the plan.
	Key string
	inventory.Location
	ID      string
	Name    string
	Windows inventory.WindowsVersion
	// OSDisk is the OS disk as assessed (ID, identity, encryption).
	OSDisk inventory.Disk
	Power  inventory.PowerState
	// State is the state the plan gave the VM (inventory.StateStopped
	// for a powered-off VM whose disk is checked offline).
	State inventory.State
	// Backup is the restore point the planner chose, nil when none.
	Backup *inventory.Backup
	// HelperWindows is the release of the helper image the planner chose
	// (zero when none: a helper of the VM's own release).
	HelperWindows inventory.WindowsVersion
	// HelperZone is the zone of that helper image ("" when none was
	// planned): another zone than the VM's only for a strategy that
	// reaches it through a disk copy (cross-zone-mount).
	HelperZone string
	// WindowSeen: the assessment saw WinRM answer in a normal boot while
	// the guest carried a bad file (a boot loop with a WinRM window).
	WindowSeen bool
	// LastResort: reboot-retry is the VM's last resort (plan.VMPlan);
	// it restarts up to policy.RebootRetry.LastResort() times.
	LastResort bool
	// LateRestarts: a conditional fallback that may leave the VM where
	// restarts no longer help (safe-mode-boot) restarts it first, up to
	// policy.RebootRetry.LastResort() restarts in all (plan.VMPlan).
	LateRestarts bool
}

// VM is the target as the prober and the classifier want it.
func (t *Target) VM() inventory.VM {
	return inventory.VM{Location: t.Location, ID: t.ID, Name: t.Name, Windows: t.Windows, Power: t.Power, OSDisk: t.OSDisk}
}

// Cost is what one run of a step costs, for the plan's estimate. Durations
// are the middle of each timing.Range.
type Cost struct {
	// Ops are cloud operations the step starts and waits for: one call to
	// start each, then one poll per polling interval while it runs.
	Ops []timing.Op
	// Waits are waits on the VM itself (a boot, a crash cycle) that make no
	// control-plane call of their own.
	Waits []timing.Op
	// Calls are control-plane calls that answer at once (Observe,
	// Describe), each timing.OpAPICall long.
	Calls int
	// Scripts are guest scripts run over WinRM (no control-plane call).
	Scripts int
	// Chance is the probability that the step runs at all once its
	// strategy started (e.g. the third restart of reboot-retry); 0 means 1.
	Chance float64
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
	// provider or guest error (providers.Retryable, guest.Transient where
	// the step says so) is retried by the executor; ErrHealthy,
	// ErrStrategyFailed and ErrNeedsPerson end the strategy; any other
	// error fails the strategy after the strategy's Abort has run.
	Run func(ctx context.Context, env *Env, vm *Target, facts Facts) (Facts, error)
	// ReadOnly marks a step that never changes the VM (a re-check reads; a
	// snapshot copies): a VM found healthy after only read-only steps is
	// reported as left untouched rather than fixed. Unmarked steps are
	// mutating.
	ReadOnly bool
	// Early marks a step the executor may run ahead of its strategy, as
	// soon as the run starts, while the canary holds the fleet and the
	// VM's earlier strategies try (a snapshot taken during reboot-retry).
	// Such a step is ReadOnly, needs no fact of an earlier step, reads the
	// real state first and finds an earlier run's effect again (so that
	// the strategy, reaching it, finds it done), and is safe to run while
	// the VM keeps running and changing. Never on a step whose effect must
	// follow the steps before it (copy-and-swap's snapshot, which its copy
	// is made from, is taken after the VM is stopped).
	Early bool
	// Cost is what one run of the step costs; the plan's estimate is the
	// sum over a strategy's steps.
	Cost Cost
}

// Conditional is a Strategy that, as planned for a VM, may find at its
// first step that what it needs did not show (a condition the strategies
// before it in the chain observe) and then fail at once, before any call.
// The estimate then counts the fallback after it, and the executor runs
// nothing of it ahead (Step.Early).
type Conditional interface {
	// Conditional says on what condition the strategy runs on t, "" when
	// it runs unconditionally.
	Conditional(t *Target) string
}

// ConditionOf is what s (a Strategy, or nil) says of its condition on t:
// "" when it is not Conditional or runs on t unconditionally.
func ConditionOf(s any, t *Target) string {
	if c, ok := s.(Conditional); ok {
		return c.Conditional(t)
	}
	return ""
}

// Strategy is a named sequence of steps, and how to leave a VM safe when the
// sequence stops part-way.
type Strategy interface {
	Name() policy.Strategy
	// Steps returns the steps for vm, in order. It may depend on the
	// target (e.g. an unlock step's cost only for BitLocker disks) but not
	// on facts, so that the list is the same on every resume.
	Steps(vm *Target, pol policy.Policy) []Step
	// Abort brings vm back to a safe state after the strategy stopped
	// part-way (a failed step or ErrStrategyFailed), so that the next
	// strategy can start: e.g. the OS disk back on its VM with its
	// identity verified. Idempotent, re-reads real state. If it cannot, it
	// returns ErrNeedsPerson saying where everything is.
	Abort(ctx context.Context, env *Env, vm *Target, facts Facts) (Facts, error)
}
