package main

import (
	"context"
	"fmt"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim"
	"github.com/fixfleet/fixfleet/providers/sim/simapi"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// simBackend is a simulated world as the orchestrator reaches it: in this
// process (the world and its WinRM service run here), or served by another
// process (`fixfleet sim serve`, reached with --sim-endpoint).
type simBackend struct {
	incident inventory.Incident
	accounts []string
	zones    []string
	clock    clock.Clock
	spec     providers.Spec
	gateway  string // host:port of the guests' CONNECT gateway
	user     string
	password secret.Secret
	keys     map[string]secret.Secret
	// audit asks the world itself for its referee's report.
	audit func(ctx context.Context) (world.Audit, error)
	// world is set for an in-process world only.
	world   *world.World
	closers []func() error
}

func (b *simBackend) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		_ = b.closers[i]()
	}
}

// creds returns the guests' credentials, revealing the password at the
// point of use.
func (b *simBackend) creds() guest.Credentials {
	return guest.Credentials{User: b.user, Password: b.password.Reveal()}
}

// localBackend runs w here, with its WinRM service on loopback.
func localBackend(w *world.World) (*simBackend, error) {
	srv, err := winrmd.Start(w, winrmd.Options{})
	if err != nil {
		return nil, fmt.Errorf("simulator: starting the WinRM service: %w", err)
	}
	return &simBackend{
		incident: w.Incident(), accounts: w.Accounts(), zones: w.Zones(), clock: w.Clock(),
		spec: sim.Spec(w), gateway: srv.GatewayAddr(),
		user: w.GuestUser(), password: w.GuestPassword(), keys: w.EscrowedKeys(),
		audit: func(context.Context) (world.Audit, error) { return w.Audit(), nil },
		world: w, closers: []func() error{srv.Close},
	}, nil
}

// remoteBackend reaches a world served at url by `fixfleet sim serve`.
func remoteBackend(ctx context.Context, url string) (*simBackend, error) {
	r, err := simapi.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("--sim-endpoint %s: %w (is `fixfleet sim serve` running there?)", url, err)
	}
	if r.Info.Gateway == "" {
		r.Close()
		return nil, fmt.Errorf("--sim-endpoint %s: the simulator serves no WinRM gateway", url)
	}
	return &simBackend{
		incident: r.Info.Incident, accounts: r.Info.Accounts, zones: r.Info.Zones, clock: r.Clock,
		spec: simapi.Spec(r), gateway: r.Info.Gateway,
		user: r.GuestUser, password: r.GuestPassword, keys: r.Keys,
		audit:   r.Audit,
		closers: []func() error{func() error { r.Close(); return nil }},
	}, nil
}
