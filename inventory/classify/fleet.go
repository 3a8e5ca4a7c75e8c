package classify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fixfleet/fixfleet/internal/clock"
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
	// Strict fails the assessment on the first account that cannot be
	// assessed, instead of skipping it.
	Strict bool
	// Select, if set, keeps only the listed VMs it returns true for (the
	// operator's targeting); the others are not assessed at all.
	Select func(inventory.VM) bool
	// OnProgress, if set, is told where each account stands. It is called
	// from the accounts' goroutines at once: it must be safe for
	// concurrent use and return quickly.
	OnProgress func(AccountProgress)
	// AllBackups lists the backups of every VM, healthy and unknown ones
	// too (readiness); otherwise only of those the planner may restore.
	AllBackups bool
}

// Phase is where an account's assessment stands.
type Phase int

// The phases, in order; Retrying may come at any point before Done.
const (
	Listing  Phase = iota // listing the account's VMs
	Sampling              // sampling the listed VMs over the window
	Retrying              // a read-only call failed and will be retried
	Done                  // assessed
	Skipped               // could not be assessed (Err says why)
)

// AccountProgress is one account's progress in AssessFleet.
type AccountProgress struct {
	Account providers.Account
	Phase   Phase
	// VMs listed (Sampling, Done).
	VMs int
	// Attempt of Attempts failed with Err; the next comes after Wait
	// (Retrying). Err is also set for Skipped.
	Attempt, Attempts int
	Err               error
	Wait              time.Duration
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
			vms[i], out.Accounts[i], errs[i] = assessAccount(gctx, a, opts)
			if opts.OnProgress != nil {
				p := AccountProgress{Account: a.Account, Phase: Done, VMs: len(vms[i]), Err: errs[i]}
				if errs[i] != nil {
					p.Phase = Skipped
				}
				opts.OnProgress(p)
			}
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

// PartialError is a command that skipped accounts (and did the others):
// its message names each one and why.
type PartialError struct{ Skipped []SkippedAccount }

func (e *PartialError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "partial: %d account(s) skipped, the others done (pass --strict to fail instead):", len(e.Skipped))
	for _, a := range e.Skipped {
		fmt.Fprintf(&b, "\n  %s/%s (%s): %s", a.Tenant, a.Account, a.Provider, a.Reason)
	}
	return b.String()
}

// Partial is a *PartialError when s is not empty, else nil.
func Partial(s []SkippedAccount) error {
	if len(s) == 0 {
		return nil
	}
	return &PartialError{s}
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

// ListConcurrency is the most backup listings of one account at once:
// enough to keep a 10-call-per-second bucket busy through the calls'
// latency, few enough not to overdraw it.
const ListConcurrency = 8

// ListBatch is the most VMs of one batched backup listing (manyLister).
const ListBatch = 100

// manyLister is an account's Backups that also lists many VMs' backups in
// one call; a VM that does not exist is absent from its result.
type manyLister interface {
	ListMany(ctx context.Context, vms []providers.VMRef) (map[string][]inventory.Backup, error)
}

// oneByOne is a manyLister over a Backups that lists one VM per call; a VM
// it does not find fails the call (ErrNotFound).
type oneByOne struct{ providers.Backups }

func (o oneByOne) ListMany(ctx context.Context, vms []providers.VMRef) (map[string][]inventory.Backup, error) {
	out := make(map[string][]inventory.Backup, len(vms))
	for _, vm := range vms {
		bs, err := o.List(ctx, vm)
		if err != nil {
			return nil, err
		}
		out[vm.ID] = bs
	}
	return out, nil
}

// listBackups lists the backups of each of assessed the planner may restore
// (neither healthy nor unknown; every VM with all): ListBatch VMs per call
// where b lists many at once, else one VM per call, ListConcurrency calls
// at a time, retrying retryable errors under rp. The first error that
// outlasts its retries fails the call, naming the VMs. A VM a batched
// listing does not find is left without backups (the cloud no longer has
// it; nothing will be restored for it).
func listBackups(ctx context.Context, b providers.Backups, assessed []inventory.Assessed, all bool, clk clock.Clock, rp retry.Policy) error {
	var want []*inventory.VM
	for i := range assessed {
		if s := assessed[i].Classification.State; all || (s != inventory.StateHealthy && s != inventory.StateUnknown) {
			want = append(want, &assessed[i].VM) // the planner never restores the others
		}
	}
	many, size := manyLister(oneByOne{b}), 1
	if m, ok := b.(manyLister); ok {
		many, size = m, ListBatch
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(ListConcurrency)
	for chunk := range slices.Chunk(want, size) {
		g.Go(func() error {
			refs := make([]providers.VMRef, len(chunk))
			for i, vm := range chunk {
				refs[i] = providers.Ref(*vm)
			}
			err := retry.Do(gctx, clk, rp.Keyed("backups/"+refs[0].ID), func() error {
				got, err := many.ListMany(gctx, refs)
				for _, vm := range chunk {
					vm.Backups = got[vm.ID]
				}
				return err
			})
			if err != nil {
				return fmt.Errorf("listing backups of %s: %w", vmList(refs), err)
			}
			return nil
		})
	}
	return g.Wait()
}

func assessAccount(ctx context.Context, a providers.Opened, fo FleetOptions) ([]inventory.Assessed, AccountFacts, error) {
	opts, sel := fo.AssessOptions.withDefaults(), fo.Select
	report := func(p AccountProgress) {
		if fo.OnProgress != nil {
			p.Account = a.Account
			fo.OnProgress(p)
		}
	}
	rp := retry.Policy{OnRetry: func(attempt, attempts int, err error, wait time.Duration) {
		report(AccountProgress{Phase: Retrying, Attempt: attempt, Attempts: attempts, Err: err, Wait: wait})
	}}
	report(AccountProgress{Phase: Listing})
	facts := AccountFacts{Account: a.Account, Capabilities: a.Provider.Capabilities()}
	if a.Provider.Enumerator == nil || a.Provider.Observer == nil {
		return nil, facts, fmt.Errorf("account %s: provider %s cannot enumerate and observe VMs: %w", a.Account, a.Provider.Name, providers.ErrUnsupported)
	}
	var vms []inventory.VM
	err := retry.Do(ctx, opts.Clock, rp.Keyed("list/"+a.Account.Name), func() (err error) {
		vms, err = a.Provider.Enumerator.List(ctx)
		return err
	})
	if err != nil {
		return nil, facts, fmt.Errorf("account %s: listing VMs: %w", a.Account, err)
	}
	for i := range vms {
		vms[i].Tenant, vms[i].Account, vms[i].Provider = a.Account.Tenant, a.Account.Name, a.Account.Provider
	}
	if sel != nil {
		vms = slices.DeleteFunc(vms, func(v inventory.VM) bool { return !sel(v) })
	}
	opts.Observer = a.Provider.Observer
	report(AccountProgress{Phase: Sampling, VMs: len(vms)})
	assessed, err := Assess(ctx, vms, opts)
	if err != nil {
		return nil, facts, fmt.Errorf("account %s: %w", a.Account, err)
	}
	if h := a.Provider.Helpers; h != nil {
		err := retry.Do(ctx, opts.Clock, rp.Keyed("images/"+a.Account.Name), func() (err error) {
			facts.Helpers, err = h.Images(ctx)
			return err
		})
		if err != nil {
			return nil, facts, fmt.Errorf("account %s: listing helper images: %w", a.Account, err)
		}
	}
	if b := a.Provider.Backups; b != nil {
		if err := listBackups(ctx, b, assessed, fo.AllBackups, opts.Clock, rp); err != nil {
			return nil, facts, fmt.Errorf("account %s: %w", a.Account, err)
		}
	}
	return assessed, facts, nil
}
