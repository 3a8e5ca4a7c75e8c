// Package endpointcache remembers where each VM's guest answers for the
// length of a run.
//
// A VM's guest address does not change while the VM runs, yet every probe,
// re-check and guest script asked the control plane for it again: at 10,000
// VMs those reads were three quarters of all API calls, taken from the same
// bucket as the calls that repair. Guests asks once per VM and answers from
// memory afterwards. An address can change when a VM is deallocated and
// started again (a dynamic public address); a caller that cannot connect
// calls Forget, and the next ask reads the control plane again, at most once
// per MinAge per VM (a VM that is still booting refuses connections for
// minutes, and its address has not changed for that).
package endpointcache

import (
	"context"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers"
)

// DefaultMinAge is the least age of an address before a connection failure
// makes Guests read it again.
const DefaultMinAge = 10 * time.Minute

// Guests is a providers.Guests that caches its answers per VM. Errors are
// never cached. Safe for concurrent use.
type Guests struct {
	next   providers.Guests
	clk    clock.Clock
	minAge time.Duration

	mu   sync.Mutex
	seen map[key]entry
}

// key names a VM: its ID within its region (Name is for messages only).
type key struct{ region, id string }

func keyOf(vm providers.VMRef) key { return key{vm.Region, vm.ID} }

type entry struct {
	ep providers.Endpoint
	at time.Time
}

// New wraps next; minAge 0 means DefaultMinAge.
func New(next providers.Guests, clk clock.Clock, minAge time.Duration) *Guests {
	if minAge <= 0 {
		minAge = DefaultMinAge
	}
	return &Guests{next: next, clk: clk, minAge: minAge, seen: map[key]entry{}}
}

// GuestEndpoint returns vm's remembered address, or asks the wrapped
// provider and remembers its answer.
func (g *Guests) GuestEndpoint(ctx context.Context, vm providers.VMRef) (providers.Endpoint, error) {
	g.mu.Lock()
	e, ok := g.seen[keyOf(vm)]
	g.mu.Unlock()
	if ok {
		return e.ep, nil
	}
	ep, err := g.next.GuestEndpoint(ctx, vm)
	if err != nil {
		return ep, err
	}
	g.mu.Lock()
	g.seen[keyOf(vm)] = entry{ep: ep, at: g.clk.Now()}
	g.mu.Unlock()
	return ep, nil
}

// Forget says that nothing answered at vm's remembered address: the next
// GuestEndpoint reads the control plane again, unless the address was read
// less than MinAge ago. It reports whether the address was dropped.
func (g *Guests) Forget(vm providers.VMRef) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.seen[keyOf(vm)]
	if !ok || g.clk.Now().Sub(e.at) < g.minAge {
		return false
	}
	delete(g.seen, keyOf(vm))
	return true
}
