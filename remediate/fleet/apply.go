package fleet

import (
	"time"

	"context"
	"errors"
	"fmt"

	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers/coalesce"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/helperpool"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/step"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// OpenJournal opens (or creates) the journal at path with the fleet's
// secret guard: the WinRM password and every BitLocker recovery key the
// fleet holds, which the journal then refuses to store.
func (f *Fleet) OpenJournal(ctx context.Context, path string) (*journal.Journal, error) {
	var ss []secret.Secret
	if f.guest != nil && f.guest.Creds.Password != "" {
		ss = append(ss, secret.New(f.guest.Creds.Password))
	}
	if f.keys != nil {
		for _, id := range f.keys.IDs() {
			if k, ok := f.keys.Key(id); ok {
				ss = append(ss, k)
			}
		}
	}
	return journal.Open(ctx, path, journal.WithSecrets(ss...))
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	// PlanJSON is the plan document as read (nil: as plan.Write encodes it).
	PlanJSON []byte
	// Continue resumes a run a brake paused; KeepHelpers keeps the helper
	// VMs at the end (see apply.Options).
	Continue    bool
	KeepHelpers bool
	// Events receives progress events (see apply.Options.Events).
	Events func(apply.Event)
	// Helpers shapes each account's helper pool (zero: the default, shared
	// helpers); NoCoalesce sends each VM's re-check as its own Observe
	// call and each disk read as its own Describe. Both exist for the
	// incident benchmark's baselines (per-VM repair tools), not to repair
	// a fleet.
	Helpers    HelperShape
	NoCoalesce bool
}

// HelperShape is how VMs share helpers: PerHelper disks on one helper at
// once (0: helperpool's default), and Fresh to give each VM a helper no VM
// used before (helperpool.Options).
type HelperShape struct {
	PerHelper int
	Fresh     bool
}

// Apply carries out plan p on the fleet, recording into j (opened with
// OpenJournal), with every registered strategy (see apply.Run for resume,
// brakes and the result). Each account gets its own helper pool, released
// at the end unless o.KeepHelpers.
func (f *Fleet) Apply(ctx context.Context, p *plan.Plan, j *journal.Journal, o ApplyOptions) (*apply.Result, error) {
	envs, ps, err := f.envs(p.ID, p, o)
	if err != nil {
		return nil, err
	}
	return apply.Run(ctx, p, apply.Options{
		Journal: j, Envs: envs, Strategies: strategy.Default().Executable(), Clock: f.Clock,
		Events: o.Events, PlanJSON: o.PlanJSON, Continue: o.Continue, KeepHelpers: o.KeepHelpers, Helpers: ps,
	})
}

// pools releases the helper pools of every account at the end of a run.
type pools []*helperpool.Pool

// ReleaseAll implements apply.HelperReleaser. Unless keep, a helper a pool
// had to keep (still leased, or the cloud refused because a disk is still
// attached) is an error that names it and why, so that the run's events
// say which helpers still run.
func (ps pools) ReleaseAll(ctx context.Context, keep bool) error {
	var errs []error
	for _, p := range ps {
		rep, err := p.ReleaseAll(ctx, keep)
		if err != nil {
			errs = append(errs, err)
		}
		if !keep {
			for _, k := range rep.Kept {
				errs = append(errs, fmt.Errorf("helper %s kept: %s", k.Helper, k.Reason))
			}
		}
	}
	return errors.Join(errs...)
}

// backlogger is a provider that paces its calls on the client side and
// tells how long a call made now would wait for its turn.
type backlogger interface{ Backlog() time.Duration }

// envs builds one step.Env per account for run runID, each with its own
// helper pool (helpers are per account: one account's helper cannot mount
// another account's disk).
func (f *Fleet) envs(runID string, p *plan.Plan, o ApplyOptions) (map[string]*step.Env, pools, error) {
	out := map[string]*step.Env{}
	var ps pools
	for _, a := range f.Accounts {
		// Every VM in flight re-checks itself: merge those reads into
		// batched Observe calls, or they throttle the account.
		prov := *a.Provider
		if prov.Observer != nil && !o.NoCoalesce {
			prov.Observer = coalesce.Wrap(prov.Observer, f.Clock, 0)
		}
		env := &step.Env{
			RunID: runID, Account: a.Account, Provider: &prov,
			Clock: f.Clock, Incident: p.Incident, Policy: p.Policy,
		}
		if b, ok := a.Provider.Observer.(backlogger); ok {
			env.Backlog = b.Backlog
		}
		if md, ok := prov.Disks.(coalesce.ManyDescriber); ok && !o.NoCoalesce {
			// Every step reads its disks first: merge those reads too.
			env.Disks = coalesce.NewDisks(md, f.Clock, 0)
		}
		if f.guest != nil {
			env.Guest, env.Prober, env.Creds = f.guest.Client, f.prober, f.guest.Creds
			env.GuestPort = f.guest.Port
		}
		if f.keys != nil {
			env.Keys = f.keys
		}
		if a.Provider.Helpers != nil {
			pool, err := helperpool.New(prov.Helpers, helperpool.Options{RunID: runID, Observer: prov.Observer, PerHelper: o.Helpers.PerHelper, Fresh: o.Helpers.Fresh, Clock: f.Clock})
			if err != nil {
				return nil, nil, fmt.Errorf("account %s: %w", a.Account, err)
			}
			env.Helpers = pool
			ps = append(ps, pool)
		}
		out[plan.AccountKey(a.Account.Tenant, a.Account.Name)] = env
	}
	return out, ps, nil
}

// CheckFresh refuses a plan apply should not start as it stands (a
// *plan.StaleError: too old for its policy, or drifted from by the live
// fleet, which it lists). A plan whose run j already holds is a resume
// and is not checked: the run's own changes are no drift.
func (f *Fleet) CheckFresh(ctx context.Context, j *journal.Journal, p *plan.Plan) error {
	if _, err := apply.Status(ctx, j, p.ID); !errors.Is(err, journal.ErrNotFound) {
		return err
	}
	live, err := f.List(ctx)
	if err != nil {
		return err
	}
	return plan.CheckFresh(p, f.Clock.Now(), live)
}
