package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers/coalesce"
	"github.com/fixfleet/fixfleet/remediate/helperpool"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/step"
)

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

// envs builds one step.Env per account for run runID, each with its own
// helper pool (helpers are per account: one account's helper cannot mount
// another account's disk).
func (f *fleet) envs(runID string, p *plan.Plan) (map[string]*step.Env, pools, error) {
	out := map[string]*step.Env{}
	var ps pools
	for _, a := range f.accounts {
		// Every VM in flight re-checks itself: merge those reads into
		// batched Observe calls, or they throttle the account.
		prov := *a.prov
		if prov.Observer != nil {
			prov.Observer = coalesce.NewObserver(prov.Observer, f.clock, 0)
		}
		env := &step.Env{
			RunID: runID, Account: a.acct, Provider: &prov, Creds: f.creds,
			Clock: f.clock, Incident: p.Incident, Policy: p.Policy,
		}
		if f.guest != nil {
			env.Guest, env.Prober = f.guest, f.prober
			env.GuestPort = f.prober.Port
		}
		if f.keySource != nil {
			env.Keys = f.keySource
		}
		if a.prov.Helpers != nil {
			pool, err := helperpool.New(prov.Helpers, helperpool.Options{RunID: runID, Observer: prov.Observer})
			if err != nil {
				return nil, nil, fmt.Errorf("account %s: %w", a.acct, err)
			}
			env.Helpers = pool
			ps = append(ps, pool)
		}
		out[plan.AccountKey(a.acct.Tenant, a.acct.Name)] = env
	}
	return out, ps, nil
}

// journalSecrets are the secrets the journal must refuse to store: the
// WinRM password and every BitLocker recovery key fixfleet holds.
func (f *fleet) journalSecrets() journal.Option {
	var ss []secret.Secret
	if f.creds.Password != "" {
		ss = append(ss, secret.New(f.creds.Password))
	}
	if f.keySource != nil {
		for _, id := range f.keySource.IDs() {
			if k, ok := f.keySource.Key(id); ok {
				ss = append(ss, k)
			}
		}
	}
	return journal.WithSecrets(ss...)
}
