package policy

import "github.com/spf13/pflag"

// Overrides are the policy settings a planner most often tries another
// value of, as command-line flags, without editing fleet.yaml.
type Overrides struct {
	allowDataLoss bool
	concurrency   int
	perAccount    int
}

// AddFlags registers --allow-data-loss (default allowDataLoss),
// --concurrency and --per-account on fs.
func (o *Overrides) AddFlags(fs *pflag.FlagSet, allowDataLoss bool) {
	fs.BoolVar(&o.allowDataLoss, "allow-data-loss", allowDataLoss, "allow restore-backup (overrides the policy's allow_data_loss)")
	fs.IntVar(&o.concurrency, "concurrency", 0, "VMs in flight at most (overrides the policy's concurrency.total)")
	fs.IntVar(&o.perAccount, "per-account", 0, "VMs in flight per account at most (overrides the policy's concurrency.per_account)")
}

// FlagError is a policy made invalid by an override.
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }
func (e *FlagError) Unwrap() error { return e.Err }

// Apply returns pol with the overrides set, validated (a *FlagError).
func (o Overrides) Apply(pol Policy) (Policy, error) {
	if o.allowDataLoss {
		pol.AllowDataLoss = true
	}
	if o.concurrency != 0 {
		pol.Concurrency.Total = o.concurrency
	}
	if o.perAccount != 0 {
		pol.Concurrency.PerAccount = o.perAccount
	}
	if err := pol.Validate(); err != nil {
		return pol, &FlagError{err}
	}
	return pol, nil
}
