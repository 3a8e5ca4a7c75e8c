package classify

import (
	"context"
	"errors"
	"fmt"
	"io"

	"golang.org/x/sync/errgroup"

	"github.com/fixfleet/fixfleet/internal/retry"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// AccountFacts is what the assessment learnt of one account besides its
// VMs: what its provider can do, and where helpers can be created.
type AccountFacts struct {
	Account      providers.Account
	Capabilities []string
	Helpers      []providers.HelperImage
}

// Fleet is an assessed fleet: every account's VMs, classified, with the
// backups of those the planner may restore, and each account's facts.
type Fleet struct {
	VMs []inventory.Assessed
	// Accounts are in the order AssessFleet was given them (skipped ones
	// included, with no facts).
	Accounts []AccountFacts
	// Skipped are the accounts that could not be assessed, and why.
	Skipped []SkippedAccount
}

// SkippedAccount is an account left out of a run because it could not be
// opened or listed (wrong credentials, a provider not built, a DNS failure):
// its VMs are in no inventory and no plan.
type SkippedAccount struct {
	Tenant   string `json:"tenant"`
	Account  string `json:"account"`
	Provider string `json:"provider"`
	Reason   string `json:"reason"`
	// Err is the error itself, for exit codes; not in JSON.
	Err error `json:"-"`
}

// Skip is the SkippedAccount of a and why it failed.
func Skip(a providers.Account, err error) SkippedAccount {
	return SkippedAccount{Tenant: a.Tenant, Account: a.Name, Provider: a.Provider, Reason: err.Error(), Err: err}
}

// FleetOptions configure AssessFleet. Incident, Clock, Prober, Window,
// Samples and the rest apply to every account as Assess takes them; each
// account's Observer is its provider's.
type FleetOptions struct {
	AssessOptions
	// Reports are the operator's console reports (nil: none). Every VM they
	// name must be in the fleet.
	Reports *ConsoleReports
	// Progress receives one line per account assessed or skipped (nil:
	// none).
	Progress io.Writer
	// AllBackups lists the backups of every VM, healthy and unknown ones
	// too (readiness); otherwise only of those the planner may restore.
	AllBackups bool
	// Strict fails the assessment on the first account that cannot be
	// assessed, instead of skipping it.
	Strict bool
}

// AssessFleet assesses every account concurrently: it lists the account's
// Windows VMs and stamps each with its tenant, account and provider;
// classifies them (Assess); lists the account's helper images; and lists
// the backups of each VM the planner may restore (neither healthy nor
// unknown; every VM with opts.AllBackups). Read-only calls that fail with a retryable error are retried
// on opts.Clock. Read-only: nothing in any cloud changes.
//
// An account that cannot be assessed (its provider cannot enumerate and
// observe: providers.ErrUnsupported; listing fails after the retries) is
// skipped, named in Fleet.Skipped with why, and the others go on; with
// opts.Strict, or when every account fails, the call fails instead. Errors
// name the account. Reports naming a VM that no account has fail with an
// *UnmatchedReportsError once every account is assessed.
func AssessFleet(ctx context.Context, accounts []providers.Opened, opts FleetOptions) (*Fleet, error) {
	if opts.Reports != nil {
		opts.Attested = opts.Reports.attested
	}
	vms := make([][]inventory.Assessed, len(accounts))
	errs := make([]error, len(accounts))
	out := &Fleet{Accounts: make([]AccountFacts, len(accounts))}
	g, gctx := errgroup.WithContext(ctx)
	for i, a := range accounts {
		g.Go(func() error {
			vms[i], out.Accounts[i], errs[i] = assessAccount(gctx, a, opts.AssessOptions, opts.AllBackups)
			if errs[i] != nil && (opts.Strict || gctx.Err() != nil) {
				return errs[i]
			}
			if opts.Progress != nil && errs[i] == nil {
				fmt.Fprintf(opts.Progress, "assessed %s: %d Windows VMs\n", a.Account, len(vms[i]))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil {
			out.Skipped = append(out.Skipped, Skip(accounts[i].Account, err))
			out.Accounts[i] = AccountFacts{Account: accounts[i].Account}
		}
	}
	if len(accounts) > 0 && len(out.Skipped) == len(accounts) {
		return nil, SkippedError(out.Skipped)
	}
	if opts.Reports != nil {
		if err := opts.Reports.unmatched(); err != nil {
			return nil, err
		}
	}
	for _, v := range vms {
		out.VMs = append(out.VMs, v...)
	}
	return out, nil
}

// SkippedError is the error of a run that must stop because accounts were
// skipped (every one, or any under --strict): each account's error, joined.
func SkippedError(s []SkippedAccount) error {
	errs := make([]error, 0, len(s))
	for _, x := range s {
		errs = append(errs, x.Err)
	}
	return errors.Join(errs...)
}

func assessAccount(ctx context.Context, a providers.Opened, opts AssessOptions, allBackups bool) ([]inventory.Assessed, AccountFacts, error) {
	opts = opts.withDefaults()
	facts := AccountFacts{Account: a.Account, Capabilities: a.Provider.Capabilities()}
	if a.Provider.Enumerator == nil || a.Provider.Observer == nil {
		return nil, facts, fmt.Errorf("account %s: provider %s cannot enumerate and observe VMs: %w", a.Account, a.Provider.Name, providers.ErrUnsupported)
	}
	var vms []inventory.VM
	err := retry.Do(ctx, opts.Clock, retry.Policy{Key: "list/" + a.Account.Name}, func() (err error) {
		vms, err = a.Provider.Enumerator.List(ctx)
		return err
	})
	if err != nil {
		return nil, facts, fmt.Errorf("account %s: listing VMs: %w", a.Account, err)
	}
	for i := range vms {
		vms[i].Tenant, vms[i].Account, vms[i].Provider = a.Account.Tenant, a.Account.Name, a.Account.Provider
	}
	opts.Observer = a.Provider.Observer
	assessed, err := Assess(ctx, vms, opts)
	if err != nil {
		return nil, facts, fmt.Errorf("account %s: %w", a.Account, err)
	}
	if h := a.Provider.Helpers; h != nil {
		err := retry.Do(ctx, opts.Clock, retry.Policy{Key: "images/" + a.Account.Name}, func() (err error) {
			facts.Helpers, err = h.Images(ctx)
			return err
		})
		if err != nil {
			return nil, facts, fmt.Errorf("account %s: listing helper images: %w", a.Account, err)
		}
	}
	if b := a.Provider.Backups; b != nil {
		for i := range assessed {
			if s := assessed[i].Classification.State; !allBackups && (s == inventory.StateHealthy || s == inventory.StateUnknown) {
				continue // the planner never restores these
			}
			err := retry.Do(ctx, opts.Clock, retry.Policy{Key: "backups/" + assessed[i].VM.ID}, func() (err error) {
				assessed[i].VM.Backups, err = b.List(ctx, providers.Ref(assessed[i].VM))
				return err
			})
			if err != nil {
				return nil, facts, fmt.Errorf("account %s: listing backups of %s: %w", a.Account, assessed[i].VM.ID, err)
			}
		}
	}
	return assessed, facts, nil
}
