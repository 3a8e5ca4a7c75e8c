package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"

	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/config"
	"github.com/fixfleet/fixfleet/internal/keys"
	"github.com/fixfleet/fixfleet/internal/retry"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/probe"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sakura"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// sourceOpts say where the fleet comes from: a fleet.yaml, or (--sim) the
// embedded simulated cloud.
type sourceOpts struct {
	config      string
	sim         bool
	simEndpoint string
	// consoleConfirmed is a file of VMs an operator saw crash-looping on
	// their consoles (see consoleReports).
	consoleConfirmed string
	world            worldOpts
	window           classify.AssessOptions // only Window and Samples are set from flags
}

func (o *sourceOpts) addFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.config, "config", "fleet.yaml", "fleet configuration file")
	fs.BoolVar(&o.sim, "sim", false, "use the embedded simulated cloud instead of --config")
	fs.StringVar(&o.simEndpoint, "sim-endpoint", "", "use the simulated world served at this URL (fixfleet sim serve)")
	o.world.addFlags(fs, 600)
	fs.DurationVar(&o.window.Window, "window", classify.DefaultWindow, "sampling window for boot loops (cloud time)")
	fs.StringVar(&o.consoleConfirmed, "console-confirmed", "", "file of VMs (ID or name, one per line, optional note) you saw crash-looping on their consoles: evidence the cloud's API may not give")
	fs.IntVar(&o.window.Samples, "samples", classify.DefaultSamples, "control-plane samples taken over the window")
}

// account is one opened account scope.
type account struct {
	acct providers.Account
	prov *providers.Provider
}

// fleet is everything the commands need to assess and plan a fleet.
type fleet struct {
	incident inventory.Incident
	policy   policy.Policy
	keys     plan.KeyChecker
	accounts []account
	prober   *probe.Prober
	clock    clock.Clock
	// guest and creds reach the guests over WinRM (nil/zero without
	// guest access); keySource holds the BitLocker recovery keys.
	guest     *guest.Client
	creds     guest.Credentials
	keySource *keys.Source
	sim       *simBackend // set only for the simulator
	// consoleConfirmed is the --console-confirmed file ("" for none).
	consoleConfirmed string
	closers          []func() error
}

// Close releases what openFleet started (the simulator's servers).
func (f *fleet) Close() error {
	var errs []error
	for i := len(f.closers) - 1; i >= 0; i-- {
		errs = append(errs, f.closers[i]())
	}
	return errors.Join(errs...)
}

// openFleet opens the fleet the options name.
func openFleet(ctx context.Context, o *sourceOpts) (*fleet, error) {
	open := openConfigFleet
	if o.sim || o.simEndpoint != "" || o.world.scenario != "" {
		open = openSimFleet
	}
	f, err := open(ctx, o)
	if err != nil {
		return nil, err
	}
	f.consoleConfirmed = o.consoleConfirmed
	return f, nil
}

// newRegistry lists the cloud provider kinds this build knows, for
// fleet.yaml. Providers not built yet validate accounts offline where they
// can and fail to open with an error that says so. (The simulator is not a
// fleet.yaml provider: its clock runs faster than a real account's.)
func newRegistry() *providers.Registry {
	reg := providers.NewRegistry()
	// Names are constant and distinct: Register cannot fail here.
	_ = reg.Register("sakura", sakura.Spec())
	_ = reg.Register(aws.Name, aws.Spec())
	_ = reg.Register("azure", notBuilt("Azure", nil))
	return reg
}

// notBuilt is the spec of a provider this build does not have yet.
func notBuilt(cloud string, validate func(providers.Account) error) providers.Spec {
	return providers.Spec{
		Validate: validate,
		Open: func(context.Context, providers.Account, providers.Env) (*providers.Provider, error) {
			return nil, fmt.Errorf("the %s provider is not built into this version of fixfleet yet: %w; "+
				"use the simulator (--sim) to plan a drill", cloud, providers.ErrUnsupported)
		},
	}
}

func openConfigFleet(ctx context.Context, o *sourceOpts) (*fleet, error) {
	reg := newRegistry()
	cfg, err := config.Load(o.config, reg, os.Getenv)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) && o.config == "fleet.yaml" {
			err = fmt.Errorf("%w\n(no fleet.yaml here: give one with --config FILE, or try the simulator with --sim)", err)
		}
		return nil, badInput(err)
	}
	pol, err := policy.Parse(cfg.PolicyNode)
	if err != nil {
		return nil, badInput(fmt.Errorf("%s: %w", cfg.File, err))
	}
	f := &fleet{incident: cfg.Incident, policy: pol, clock: clock.Real{}}
	if cfg.Keys != nil {
		f.keys, f.keySource = cfg.Keys, cfg.Keys
	}
	env := providers.Env{Getenv: os.Getenv, Clock: f.clock}
	for _, a := range cfg.Accounts() {
		p, err := reg.Open(ctx, a, env)
		if err != nil {
			return nil, err
		}
		f.accounts = append(f.accounts, account{acct: a, prov: p})
	}
	if cfg.Guest.Configured() {
		var dial func(string, string) (net.Conn, error)
		if cfg.Guest.Proxy != "" {
			dial = guest.NewConnectDialer(cfg.Guest.Proxy)
		}
		f.guest = guest.NewClient(guest.ClientOptions{Dial: dial})
		f.closers = append(f.closers, func() error { f.guest.CloseIdleConnections(); return nil })
		f.creds = guest.Credentials{User: cfg.Guest.Username, Password: cfg.Guest.Password.Reveal()}
		f.prober = f.newProber(f.guest, f.creds)
		f.prober.Port, f.prober.HTTPS = cfg.Guest.Port, cfg.Guest.HTTPS
	}
	return f, nil
}

func openSimFleet(ctx context.Context, o *sourceOpts) (*fleet, error) {
	var b *simBackend
	if o.simEndpoint != "" {
		rb, err := remoteBackend(ctx, o.simEndpoint)
		if err != nil {
			return nil, err
		}
		b = rb
	} else {
		w, err := o.world.open(false)
		if err != nil {
			return nil, err
		}
		if b, err = localBackend(w); err != nil {
			return nil, err
		}
	}
	f, err := fleetOn(ctx, b)
	if err != nil {
		b.close()
		return nil, err
	}
	return f, nil
}

// accountOf is the account of the world's account name as b's face opens
// it.
func accountOf(b *simBackend, name string) providers.Account {
	a := providers.Account{Tenant: name, Name: name, Provider: b.provider, Zones: b.zones}
	b.account(&a)
	return a
}

// fleetOn opens every account of a simulated world, with the policy
// defaults and the world's escrowed keys.
func fleetOn(ctx context.Context, b *simBackend) (*fleet, error) {
	ks, err := keys.FromSecrets(b.keys)
	if err != nil {
		return nil, fmt.Errorf("simulator: escrowed keys: %w", err)
	}
	f := &fleet{incident: b.incident, policy: policy.Default(), keys: ks, keySource: ks, clock: b.clock, sim: b,
		closers: []func() error{func() error { b.close(); return nil }}}
	reg := providers.NewRegistry()
	if err := reg.Register(b.provider, b.spec); err != nil {
		return nil, err
	}
	env := providers.Env{Getenv: b.getenv, Clock: b.clock}
	for _, name := range b.accounts {
		a := accountOf(b, name)
		p, err := reg.Open(ctx, a, env)
		if err != nil {
			return nil, err
		}
		f.accounts = append(f.accounts, account{acct: a, prov: p})
	}
	f.guest = guest.NewClient(guest.ClientOptions{Dial: guest.NewConnectDialer(b.gateway)})
	f.closers = append(f.closers, func() error { f.guest.CloseIdleConnections(); return nil })
	f.creds = b.creds()
	f.prober = f.newProber(f.guest, f.creds)
	return f, nil
}

func (f *fleet) newProber(r probe.Runner, cr guest.Credentials) *probe.Prober {
	byKey := map[string]providers.Guests{}
	for _, a := range f.accounts {
		if a.prov.Guests != nil {
			byKey[plan.AccountKey(a.acct.Tenant, a.acct.Name)] = a.prov.Guests
		}
	}
	return &probe.Prober{
		Incident: f.incident, Runner: r, Creds: cr, Clock: f.clock,
		EndpointsFor: func(vm inventory.VM) (probe.Endpoints, bool) {
			g, ok := byKey[plan.AccountKey(vm.Tenant, vm.Account)]
			return g, ok
		},
	}
}

// assessment is the classified fleet with what the planner needs of each
// account.
type assessment struct {
	fleet    []inventory.Assessed
	accounts map[string]plan.Account
}

// assess enumerates every account, classifies its VMs, and lists the
// backups of the VMs that may need them. Accounts are assessed
// concurrently; progress lines go to progress (nil: none).
func (f *fleet) assess(ctx context.Context, win classify.AssessOptions, progress io.Writer) (*assessment, error) {
	reports, err := loadConsoleReports(f.consoleConfirmed)
	if err != nil {
		return nil, err
	}
	if reports != nil {
		win.Attested = reports.attested
	}
	results := make([][]inventory.Assessed, len(f.accounts))
	pa := make([]plan.Account, len(f.accounts))
	g, gctx := errgroup.WithContext(ctx)
	for i, a := range f.accounts {
		g.Go(func() error {
			r, p, err := f.assessAccount(gctx, a, win)
			results[i], pa[i] = r, p
			if err == nil && progress != nil {
				fmt.Fprintf(progress, "assessed %s: %d Windows VMs\n", a.acct, len(r))
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if reports != nil {
		if err := reports.unmatched(); err != nil {
			return nil, err
		}
	}
	out := &assessment{accounts: map[string]plan.Account{}}
	for i, a := range f.accounts {
		out.fleet = append(out.fleet, results[i]...)
		out.accounts[plan.AccountKey(a.acct.Tenant, a.acct.Name)] = pa[i]
	}
	return out, nil
}

func (f *fleet) assessAccount(ctx context.Context, a account, win classify.AssessOptions) ([]inventory.Assessed, plan.Account, error) {
	pa := plan.Account{Capabilities: a.prov.Capabilities()}
	if a.prov.Enumerator == nil || a.prov.Observer == nil {
		return nil, pa, fmt.Errorf("account %s: provider %s cannot enumerate and observe VMs: %w", a.acct, a.prov.Name, providers.ErrUnsupported)
	}
	var vms []inventory.VM
	err := retry.Do(ctx, f.clock, retry.Policy{}, func() (err error) {
		vms, err = a.prov.Enumerator.List(ctx)
		return err
	})
	if err != nil {
		return nil, pa, fmt.Errorf("account %s: listing VMs: %w", a.acct, err)
	}
	for i := range vms {
		vms[i].Tenant, vms[i].Account, vms[i].Provider = a.acct.Tenant, a.acct.Name, a.acct.Provider
	}
	opts := win
	opts.Incident, opts.Observer, opts.Clock = f.incident, a.prov.Observer, f.clock
	if f.prober != nil {
		opts.Prober = f.prober
	}
	assessed, err := classify.Assess(ctx, vms, opts)
	if err != nil {
		return nil, pa, fmt.Errorf("account %s: %w", a.acct, err)
	}
	if a.prov.Helpers != nil {
		err := retry.Do(ctx, f.clock, retry.Policy{}, func() (err error) {
			pa.Helpers, err = a.prov.Helpers.Images(ctx)
			return err
		})
		if err != nil {
			return nil, pa, fmt.Errorf("account %s: listing helper images: %w", a.acct, err)
		}
	}
	if a.prov.Backups != nil {
		for i := range assessed {
			if s := assessed[i].Classification.State; s == inventory.StateHealthy || s == inventory.StateUnknown {
				continue // the planner never restores these
			}
			err := retry.Do(ctx, f.clock, retry.Policy{}, func() (err error) {
				assessed[i].VM.Backups, err = a.prov.Backups.List(ctx, providers.Ref(assessed[i].VM))
				return err
			})
			if err != nil {
				return nil, pa, fmt.Errorf("account %s: listing backups of %s: %w", a.acct, assessed[i].VM.ID, err)
			}
		}
	}
	return assessed, pa, nil
}
