package apply

import (
	"context"
	"errors"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/brake"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// HelperReleaser releases the helper VMs a run leased (the helper pool
// belongs to the caller). ReleaseAll is called once at the end of a run
// that finished or was stopped by a brake (not when it was interrupted:
// the resume will want them); keep is Options.KeepHelpers.
type HelperReleaser interface {
	ReleaseAll(ctx context.Context, keep bool) error
}

// Options configure Run. Journal, Envs and Strategies are required; every
// other field has a default.
type Options struct {
	// Journal records the run. Open it with the caller's secret guard
	// (journal.WithSecrets / WithSecretCheck holding the WinRM passwords,
	// BitLocker keys and API secrets): the executor has no secret of its
	// own to register, and relies on the journal to refuse a write that
	// would leak one (it then records a "withheld" text instead).
	Journal *journal.Journal
	// Envs holds one step.Env per account, keyed by plan.AccountKey(tenant,
	// account). A VM of an account without an Env is flagged "account not
	// configured" (and retried by the next apply, which may have it). The
	// executor uses a copy of each Env with RunID, Clock, Policy and
	// Incident filled from the run when they are empty; an Env whose RunID
	// is set and differs from the run ID is an error.
	Envs map[string]*step.Env
	// Strategies by name. A strategy of the plan missing here fails on the
	// VM at once ("not available") and its fallback is tried.
	Strategies map[policy.Strategy]step.Strategy
	// Clock is the time source for every wait and record (default
	// clock.Real).
	Clock clock.Clock
	// Owner identifies this process in the journal's apply lock (default
	// journal.CurrentOwner()).
	Owner journal.Owner
	// Events, if set, receives progress events. It is called
	// synchronously from many goroutines at once (one per VM in flight,
	// plus the run's own): it must be safe for concurrent use and return
	// quickly. Messages are the texts the journal accepted (no secret
	// under the journal's guard).
	Events func(Event)
	// PlanJSON, if set, is the plan document as read (bytes); it is stored
	// verbatim in the run record. It must decode to the given plan. When
	// nil, the plan is stored as plan.Write encodes it.
	PlanJSON []byte
	// Continue lets Run resume a run that a brake (canary or failure
	// rate) paused. Without it, such a resume is refused, so that an
	// operator looks at what went wrong before more VMs are touched. A run
	// paused by an interruption resumes without it.
	Continue bool
	// KeepHelpers is passed to Helpers.ReleaseAll, and keeps a helper
	// group's idle helpers once no VM left may lease there (otherwise
	// released then, where the account's pool can: see helperDone).
	KeepHelpers bool
	// Helpers, if set, releases helper VMs at the end (see HelperReleaser).
	Helpers HelperReleaser
	// Retry bounds the retries of one step.
	Retry Retry
	// Breaker tunes the control-plane circuit breaker. Threshold defaults
	// to the plan's policy.api_error_threshold; Clock and OnChange are set
	// by Run.
	Breaker brake.BreakerConfig
	// MinSample is the number of finished acted-on VMs (after the canary)
	// before the failure brake may trip (default 5).
	MinSample int
}

// Retry bounds the retries of one step. Zero fields take the defaults.
type Retry struct {
	// MaxAttempts per step run (default 8). Attempts that failed with an
	// API error while the control-plane breaker was open (or that opened
	// it), or that the cloud throttled, are not counted: an outage or a
	// rate limit never uses up a step's budget.
	MaxAttempts int
	// MaxTime is the clock time one step may spend retrying, breaker waits
	// excluded (default 30m).
	MaxTime time.Duration
	// Backoff between attempts (default base 2s, max 2m, full jitter), at
	// least the cloud's Retry-After hint.
	Backoff brake.Backoff
}

func (o *Options) withDefaults(p *plan.Plan) (Options, error) {
	c := *o
	var errs []error
	if c.Journal == nil {
		errs = append(errs, errors.New("apply: Options.Journal is required"))
	}
	if c.Strategies == nil {
		errs = append(errs, errors.New("apply: Options.Strategies is required"))
	}
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Owner == (journal.Owner{}) {
		c.Owner = journal.CurrentOwner()
	}
	if c.Retry.MaxAttempts <= 0 {
		c.Retry.MaxAttempts = 8
	}
	if c.Retry.MaxTime <= 0 {
		c.Retry.MaxTime = 30 * time.Minute
	}
	if c.Retry.Backoff.Base <= 0 {
		c.Retry.Backoff.Base = 2 * time.Second
	}
	if c.Retry.Backoff.Max <= 0 {
		c.Retry.Backoff.Max = 2 * time.Minute
	}
	if c.Breaker.Threshold <= 0 {
		c.Breaker.Threshold = p.Policy.APIErrorThreshold
	}
	c.Breaker.Clock = c.Clock
	if c.MinSample <= 0 {
		c.MinSample = 5
	}
	return c, nil
}
