// Package probe runs the guest probe script on a VM over WinRM and reports
// what it found as an inventory.Probe, the guest half of the evidence that
// classification rests on. The same probe re-checks a VM right before
// remediation acts on it, and verifies it afterwards.
package probe

import (
	"context"
	"errors"
	"fmt"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
)

// Endpoints tells where a VM's WinRM service answers (providers.Guests).
type Endpoints interface {
	GuestEndpoint(ctx context.Context, vm providers.VMRef) (providers.Endpoint, error)
}

// forgetter is an Endpoints that remembers addresses
// (*endpointcache.Guests): told that nothing answered, it may read the
// address again next time.
type forgetter interface {
	Forget(vm providers.VMRef) bool
}

// Runner runs the probe script (*guest.Client).
type Runner interface {
	Probe(ctx context.Context, ep providers.Endpoint, cr guest.Credentials, p guest.ProbeParams) (guest.ProbeResult, error)
}

// Prober probes guests. Its zero value is not usable: set every field but
// Port and HTTPS.
type Prober struct {
	Incident inventory.Incident
	Runner   Runner
	Creds    guest.Credentials
	// EndpointsFor returns the Guests capability of the VM's account; ok is
	// false when that account cannot reach guests.
	EndpointsFor func(vm inventory.VM) (Endpoints, bool)
	Clock        clock.Clock
	// Port, when non-zero, replaces the provider's WinRM port
	// (guest_access.port); HTTPS selects WinRM over HTTPS.
	Port  int
	HTTPS bool
}

// Probe implements classify.Prober: it never fails; an unreachable guest is
// a Probe with Reachable false and Error saying why, without secrets.
func (p *Prober) Probe(ctx context.Context, vm inventory.VM) inventory.Probe {
	out := inventory.Probe{At: p.Clock.Now()}
	eps, ok := p.EndpointsFor(vm)
	if !ok {
		out.Error = "this cloud account gives no guest address: guest access is not possible"
		return out
	}
	ep, err := eps.GuestEndpoint(ctx, providers.Ref(vm))
	if err != nil {
		out.Error = "no guest address: " + err.Error()
		out.Retryable = providers.Retryable(err)
		return out
	}
	if p.Port != 0 {
		ep.Port = p.Port
	}
	ep.HTTPS = ep.HTTPS || p.HTTPS
	res, err := p.Runner.Probe(ctx, ep, p.Creds, guest.ProbeParams{Dir: p.Incident.RelDirectory(), Pattern: p.Incident.Pattern})
	out.At = p.Clock.Now()
	switch {
	case errors.Is(err, guest.ErrAuth):
		out.Error = classify.ProbeErrAuth + ": " + err.Error()
		return out
	case errors.Is(err, guest.ErrUnreachable):
		if f, ok := eps.(forgetter); ok {
			f.Forget(providers.Ref(vm))
		}
		out.Error = fmt.Sprintf("nothing answers at %s:%d", ep.Host, ep.Port)
		return out
	case err != nil:
		out.Error = fmt.Sprintf("WinRM probe failed: %v", err)
		return out
	}
	out.Reachable = true
	out.BootMode = res.BootMode
	out.SafeBootFlag = res.SafeBootFlag
	out.Hostname = res.Hostname
	out.Files = res.Files
	return out
}
