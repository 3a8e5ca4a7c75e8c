// Package fleet is the orchestrator as a library: a fleet's opened
// accounts, its guest access and its recovery keys, assessed, planned and
// repaired. The CLI opens one from fleet.yaml; the simulated incident opens
// one on a simulated world. Both then call Plan (or Assess) and Apply.
package fleet

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/config"
	"github.com/fixfleet/fixfleet/internal/keys"
	"github.com/fixfleet/fixfleet/internal/retry"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/invdoc"
	"github.com/fixfleet/fixfleet/inventory/probe"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/endpointcache"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/target"
)

// GuestAccess is how a fleet reaches its guests over WinRM.
type GuestAccess struct {
	Client *guest.Client
	Creds  guest.Credentials
	// Port, when non-zero, replaces the provider's WinRM port; HTTPS
	// selects WinRM over HTTPS.
	Port  int
	HTTPS bool
}

// GuestFromConfig is the guest access fleet.yaml's guest_access describes
// (nil when it is absent): a WinRM client, through the proxy if one is
// set.
func GuestFromConfig(g config.Guest) *GuestAccess {
	if !g.Configured() {
		return nil
	}
	var dial func(string, string) (net.Conn, error)
	if g.Proxy != "" {
		dial = guest.NewConnectDialer(g.Proxy)
	}
	return &GuestAccess{
		Client: guest.NewClient(guest.ClientOptions{Dial: dial}),
		Creds:  guest.Credentials{User: g.Username, Password: g.Password.Reveal()},
		Port:   g.Port, HTTPS: g.HTTPS,
	}
}

// Config is what a fleet is opened from.
type Config struct {
	Incident inventory.Incident
	Policy   policy.Policy
	// Registry opens Accounts, each with Env.
	Registry *providers.Registry
	Accounts []providers.Account
	Env      providers.Env
	// Guest is nil without guest access.
	Guest *GuestAccess
	// Keys holds the BitLocker recovery keys (nil: none).
	Keys *keys.Source
	// Strict fails Open on the first account that cannot be opened,
	// instead of skipping it.
	Strict bool
	// Target selects the accounts opened and the VMs assessed (zero:
	// all).
	Target target.Selector
}

// Fleet is an opened fleet. Its zero value is not usable: use Open.
type Fleet struct {
	Incident inventory.Incident
	Policy   policy.Policy
	Clock    clock.Clock
	Accounts []providers.Opened
	// Skipped are the accounts that could not be opened, and why.
	Skipped []classify.SkippedAccount
	// Target selects the VMs Assess and Plan cover (see Select).
	Target target.Selector
	guest  *GuestAccess
	keys   *keys.Source
	prober *probe.Prober // nil without guest access
}

// Open opens every account of cfg in order. One that fails to open is
// skipped (Fleet.Skipped says why) and the others go on; with cfg.Strict,
// or when every account fails, the call fails with the accounts' errors,
// each naming its account. Close the fleet when done.
func Open(ctx context.Context, cfg Config) (*Fleet, error) {
	if cfg.Env.Clock == nil {
		cfg.Env.Clock = clock.Real{}
	}
	if err := cfg.Target.Check(cfg.Accounts); err != nil {
		return nil, err
	}
	f := &Fleet{Incident: cfg.Incident, Policy: cfg.Policy, Clock: cfg.Env.Clock, guest: cfg.Guest, keys: cfg.Keys, Target: cfg.Target}
	cfg.Accounts = cfg.Target.SelectAccounts(cfg.Accounts)
	for _, a := range cfg.Accounts {
		p, err := cfg.Registry.Open(ctx, a, cfg.Env)
		switch {
		case err != nil && (cfg.Strict || ctx.Err() != nil):
			return nil, err
		case err != nil:
			f.Skipped = append(f.Skipped, classify.Skip(a, err))
		default:
			if p.Guests != nil {
				// Guest addresses hold for the run: ask the cloud once per
				// VM, or never where its listing holds them.
				cached := *p
				guests := endpointcache.New(p.Guests, cfg.Env.Clock, 0)
				cached.Guests = guests
				if p.Enumerator != nil {
					cached.Enumerator = guests.Listing(p.Enumerator)
				}
				p = &cached
			}
			f.Accounts = append(f.Accounts, providers.Opened{Account: a, Provider: p})
		}
	}
	if len(f.Accounts) == 0 && len(f.Skipped) > 0 {
		return nil, classify.SkippedError(f.Skipped)
	}
	if f.guest != nil {
		f.prober = f.newProber()
	}
	return f, nil
}

// Select sets the fleet's Target to sel, checked against its accounts (a
// *target.Error), and drops the accounts sel leaves out.
func (f *Fleet) Select(sel target.Selector) error {
	if err := sel.Check(f.OpenedAccounts()); err != nil {
		return err
	}
	f.Accounts = slices.DeleteFunc(f.Accounts, func(a providers.Opened) bool { return !sel.Account(a.Account.Tenant, a.Account.Name) })
	f.Target = sel
	return nil
}

// OpenedAccounts lists the accounts of f.Accounts, in order.
func (f *Fleet) OpenedAccounts() []providers.Account {
	out := make([]providers.Account, 0, len(f.Accounts))
	for _, a := range f.Accounts {
		out = append(out, a.Account)
	}
	return out
}

// Close releases the guest client's idle connections. Idempotent.
func (f *Fleet) Close() {
	if f.guest != nil {
		f.guest.Client.CloseIdleConnections()
	}
}

func (f *Fleet) newProber() *probe.Prober {
	byKey := map[string]providers.Guests{}
	for _, a := range f.Accounts {
		if a.Provider.Guests != nil {
			byKey[plan.AccountKey(a.Account.Tenant, a.Account.Name)] = a.Provider.Guests
		}
	}
	return &probe.Prober{
		Incident: f.Incident, Runner: f.guest.Client, Creds: f.guest.Creds, Clock: f.Clock,
		Port: f.guest.Port, HTTPS: f.guest.HTTPS,
		EndpointsFor: func(vm inventory.VM) (probe.Endpoints, bool) {
			g, ok := byKey[plan.AccountKey(vm.Tenant, vm.Account)]
			return g, ok
		},
	}
}

// AssessOptions tune Assess: the sampling window and samples, console
// reports, progress. The fleet sets the incident, clock and prober.
type AssessOptions = classify.FleetOptions

// Assess enumerates and classifies the whole fleet (classify.AssessFleet),
// probing guests when the fleet has guest access. Read-only. The accounts
// Open skipped come first in the result's Skipped.
func (f *Fleet) Assess(ctx context.Context, o AssessOptions) (*classify.Fleet, error) {
	o.Incident, o.Clock = f.Incident, f.Clock
	if f.prober != nil {
		o.Prober = f.prober
	}
	if !f.Target.Empty() {
		o.Select = f.Target.InventoryVM
	}
	a, err := classify.AssessFleet(ctx, f.Accounts, o)
	if err != nil {
		return nil, err
	}
	vms := make([]inventory.VM, len(a.VMs))
	for i := range a.VMs {
		vms[i] = a.VMs[i].VM
	}
	if miss := f.Target.Unmatched(vms); len(miss) > 0 {
		return nil, &target.Error{Err: fmt.Errorf("--only %s: no such VM among the selected accounts (give a VM ID or name as inventory lists it)", strings.Join(miss, ", "))}
	}
	a.Skipped = append(append([]classify.SkippedAccount(nil), f.Skipped...), a.Skipped...)
	return a, nil
}

// Inventory assesses the fleet (Assess) with every VM's backups listed, as
// the inventory document needs them (a drill copy restores from them), and
// returns the assessment and its document (invdoc.Build, at the fleet's
// clock's now). Read-only.
func (f *Fleet) Inventory(ctx context.Context, o AssessOptions) (*classify.Fleet, invdoc.Document, error) {
	o.AllBackups = true
	a, err := f.Assess(ctx, o)
	if err != nil {
		return nil, invdoc.Document{}, err
	}
	return a, invdoc.Build(a, f.Clock.Now(), f.Incident.Name, f.Keys()), nil
}

// Plan assesses the fleet and plans its repair under pol (the fleet's
// policy with the caller's overrides). Read-only: nothing in any cloud
// changes. The plan's ID carries its time and 32 random bits.
func (f *Fleet) Plan(ctx context.Context, pol policy.Policy, o AssessOptions) (*plan.Plan, error) {
	a, err := f.Assess(ctx, o)
	if err != nil {
		return nil, err
	}
	accounts := map[string]plan.Account{}
	for _, x := range a.Accounts {
		accounts[plan.AccountKey(x.Account.Tenant, x.Account.Name)] = plan.Account{Capabilities: x.Capabilities, Helpers: x.Helpers}
	}
	now := f.Clock.Now()
	in := plan.Input{
		ID: newPlanID(now), Now: now, Incident: f.Incident,
		Policy: pol, Fleet: a.VMs, Accounts: accounts, Skipped: a.Skipped,
	}
	if f.keys != nil {
		in.Keys = f.keys
	}
	return plan.Build(in)
}

// newPlanID returns a plan ID: the plan's time and 32 random bits, so two
// plans made in the same second never share a run in a journal.
func newPlanID(now time.Time) string {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return "plan-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])
}

// List lists the VMs of every opened account, stamped with their tenant,
// account and provider, retrying read-only calls: the live fleet to check
// a plan against (plan.CheckFresh). Read-only; no sampling.
func (f *Fleet) List(ctx context.Context) ([]inventory.VM, error) {
	var out []inventory.VM
	for _, a := range f.Accounts {
		if a.Provider.Enumerator == nil {
			continue
		}
		var vms []inventory.VM
		err := retry.Do(ctx, f.Clock, retry.Policy{}, func() (err error) {
			vms, err = a.Provider.Enumerator.List(ctx)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("account %s: listing VMs: %w", a.Account, err)
		}
		for _, v := range vms {
			v.Tenant, v.Account, v.Provider = a.Account.Tenant, a.Account.Name, a.Account.Provider
			out = append(out, v)
		}
	}
	return out, nil
}

// ErrNoGuestAccess: the fleet has no guest access (fleet.yaml's
// guest_access), or the VM's account gives no guest address.
var ErrNoGuestAccess = errors.New("no guest access")

// Keys is the fleet's recovery-key source as the planner reads it (nil
// when the fleet has none).
func (f *Fleet) Keys() plan.KeyChecker {
	if f.keys == nil {
		return nil
	}
	return f.keys
}

// ReadinessFacts runs the read-only readiness-facts script on vm's
// guest: whether WinRM may start in Safe Mode with networking, and the
// system volume's BitLocker protector ID. Errors:
// ErrNoGuestAccess; guest.ErrAuth (credentials rejected),
// guest.ErrUnreachable (nothing answers); the provider's when it cannot
// say where the guest is.
func (f *Fleet) ReadinessFacts(ctx context.Context, vm inventory.VM) (guest.ReadinessFactsResult, error) {
	var g providers.Guests
	for _, a := range f.Accounts {
		if a.Account.Tenant == vm.Tenant && a.Account.Name == vm.Account {
			g = a.Provider.Guests
		}
	}
	if f.guest == nil || g == nil {
		return guest.ReadinessFactsResult{}, ErrNoGuestAccess
	}
	ep, err := g.GuestEndpoint(ctx, providers.Ref(vm))
	if err != nil {
		return guest.ReadinessFactsResult{}, err
	}
	if f.guest.Port != 0 {
		ep.Port = f.guest.Port
	}
	ep.HTTPS = ep.HTTPS || f.guest.HTTPS
	return f.guest.Client.ReadinessFacts(ctx, ep, f.guest.Creds)
}
