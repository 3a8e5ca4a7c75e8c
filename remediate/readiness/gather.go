package readiness

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// Run reads the fleet (Gather) and evaluates it (Evaluate). Read-only.
func Run(ctx context.Context, f *fleet.Fleet, pol policy.Policy, ao fleet.AssessOptions, o Options) (*Report, error) {
	in, err := Gather(ctx, f, pol, ao, o)
	if err != nil {
		return nil, err
	}
	return Evaluate(in), nil
}

// Gather reads what Evaluate needs, without changing anything: the
// assessment with every VM's backups, a read-only guest script on each
// healthy VM, each account's Preflight, and the plan the planner would
// make if every VM boot-looped now. Errors are the assessment's and the
// planner's; a failed guest check or preflight is a finding, not an error.
func Gather(ctx context.Context, f *fleet.Fleet, pol policy.Policy, ao fleet.AssessOptions, o Options) (Input, error) {
	o = o.withDefaults()
	ao.AllBackups = true
	a, err := f.Assess(ctx, ao)
	if err != nil {
		return Input{}, err
	}
	now := f.Clock.Now()
	in := Input{Now: now, Policy: pol, Fleet: a, Keys: f.Keys(), Options: o,
		Guest: guestChecks(ctx, f, a.VMs, o.GuestConcurrency), Accounts: map[string]AccountChecks{}}
	for _, acct := range f.Accounts {
		in.Accounts[plan.AccountKey(acct.Account.Tenant, acct.Account.Name)] = preflight(ctx, acct, a.VMs)
	}
	in.Plan, err = worstCase(f, pol, a, in.Keys, now)
	if err != nil {
		return Input{}, err
	}
	return in, nil
}

// guestChecks runs the read-only readiness-facts script on every healthy
// VM.
func guestChecks(ctx context.Context, f *fleet.Fleet, vms []inventory.Assessed, limit int) map[string]GuestCheck {
	res := make([]GuestCheck, len(vms))
	var g errgroup.Group
	g.SetLimit(limit)
	for i, a := range vms {
		if a.Classification.State != inventory.StateHealthy {
			continue
		}
		g.Go(func() error {
			r, err := f.ReadinessFacts(ctx, a.VM)
			res[i] = guestCheck(r, err)
			return nil
		})
	}
	_ = g.Wait() // the checks never fail the group
	out := map[string]GuestCheck{}
	for i, a := range vms {
		if a.Classification.State == inventory.StateHealthy {
			out[a.VM.Key()] = res[i]
		}
	}
	return out
}

// guestCheck classifies one guest check by its error class.
func guestCheck(r guest.ReadinessFactsResult, err error) GuestCheck {
	switch {
	case err == nil:
		return GuestCheck{Status: GuestOK, SafeModeWinRM: r.SafeModeWinRM, BitLocker: r.BitLocker, KeyID: r.KeyID}
	case errors.Is(err, fleet.ErrNoGuestAccess):
		return GuestCheck{Status: GuestNoAccess, Detail: "no guest access: configure guest_access in fleet.yaml"}
	case errors.Is(err, guest.ErrAuth):
		return GuestCheck{Status: GuestAuth, Detail: "the guest rejected guest_access's credentials"}
	case errors.Is(err, guest.ErrUnreachable):
		return GuestCheck{Status: GuestUnreachable, Detail: "nothing answers on its WinRM port"}
	}
	return GuestCheck{Status: GuestError, Detail: err.Error()}
}

// preflight checks the account's permissions for every action and its
// helper quota, when its provider can without effect.
func preflight(ctx context.Context, acct providers.Opened, vms []inventory.Assessed) AccountChecks {
	p := acct.Provider.Preflight
	if p == nil {
		return AccountChecks{}
	}
	out := AccountChecks{Checkable: true}
	var ref inventory.VM
	for _, a := range vms {
		if a.VM.Tenant == acct.Account.Tenant && a.VM.Account == acct.Account.Name {
			ref = a.VM
			break
		}
	}
	var err error
	if out.Permissions, err = p.Permissions(ctx, ref, providers.Actions); err != nil {
		out.Error = err.Error()
		return out
	}
	if out.Quota, err = p.HelperQuota(ctx); err != nil {
		out.Error = err.Error()
	}
	return out
}

// worstCase is the plan the planner would make if every VM boot-looped
// now: an incident starting now, so that every backup taken so far counts.
func worstCase(f *fleet.Fleet, pol policy.Policy, a *classify.Fleet, keys plan.KeyChecker, now time.Time) (*plan.Plan, error) {
	inc := f.Incident
	inc.StartedAt, inc.BadFrom, inc.BadUntil = now, now, now.Add(time.Hour)
	in := plan.Input{ID: "readiness-" + now.UTC().Format("20060102T150405Z"), Now: now, Incident: inc, Policy: pol,
		Accounts: map[string]plan.Account{}, Keys: keys}
	for _, x := range a.Accounts {
		in.Accounts[plan.AccountKey(x.Account.Tenant, x.Account.Name)] = plan.Account{Capabilities: x.Capabilities, Helpers: x.Helpers}
	}
	for _, v := range a.VMs {
		in.Fleet = append(in.Fleet, inventory.Assessed{VM: v.VM, Classification: inventory.Classification{
			State: inventory.StateBootLoop, Reasons: []string{"readiness: supposed to boot-loop now"}}})
	}
	p, err := plan.Build(in)
	if err != nil {
		return nil, fmt.Errorf("readiness: planning the worst case: %w", err)
	}
	return p, nil
}
