// Package endpointcache remembers where each VM's guest answers for the
// length of a run.
//
// A VM's guest address does not change while the VM runs, yet every probe,
// re-check and guest script asked the control plane for it again: at 10,000
// VMs those reads were three quarters of all API calls, taken from the same
// bucket as the calls that repair. Guests asks once per VM and answers from
// memory afterwards; where the provider reads the address from the VM's
// listing (Listed), Remember takes it from there (Listing does for each
// list of the fleet) and the control plane is not asked at all.
//
// An address can change when a VM is deallocated and started again (a
// dynamic public address); a caller that cannot connect calls Forget, and
// the next ask reads the control plane again. Nothing answering is far more
// often a guest that is down than an address that moved (a boot-looping VM
// refuses connections for hours at the same address), so a VM's address is
// read again at most once per MinAge, and each read that finds it unchanged
// doubles that VM's wait before the next.
package endpointcache

import (
	"context"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// DefaultMinAge is the least age of an address before a connection failure
// makes Guests read it again: longer than a VM takes to be stopped,
// deallocated and started again (the one way an address may move), far
// shorter than a repair that waits on it.
const DefaultMinAge = 30 * time.Minute

// Listed is the optional capability of a providers.Guests whose answer a
// VM's listing already holds: ListedEndpoint returns, without a call, what
// GuestEndpoint would answer for vm as Enumerator.List returned it; ok is
// false when the listing does not say.
type Listed interface {
	ListedEndpoint(vm inventory.VM) (ep providers.Endpoint, ok bool)
}

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

// entry is a remembered address: read at at, kept until Forget after wait;
// stale once Forget has dropped it (ep stays, to tell a moved address from
// an unchanged one on the next read).
type entry struct {
	ep    providers.Endpoint
	at    time.Time
	wait  time.Duration
	stale bool
}

// New wraps next; minAge 0 means DefaultMinAge.
func New(next providers.Guests, clk clock.Clock, minAge time.Duration) *Guests {
	if minAge <= 0 {
		minAge = DefaultMinAge
	}
	return &Guests{next: next, clk: clk, minAge: minAge, seen: map[key]entry{}}
}

// Remember takes the address of each of vms from its listing, where the
// wrapped Guests reads it there (Listed), so that their first GuestEndpoint
// asks nothing. A VM already remembered keeps its entry; without Listed,
// Remember does nothing.
func (g *Guests) Remember(vms []inventory.VM) {
	l, ok := g.next.(Listed)
	if !ok {
		return
	}
	now := g.clk.Now()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, vm := range vms {
		k := keyOf(providers.Ref(vm))
		if _, known := g.seen[k]; known {
			continue
		}
		if ep, ok := l.ListedEndpoint(vm); ok {
			g.seen[k] = entry{ep: ep, at: now, wait: g.minAge}
		}
	}
}

// Listing wraps next so that every VM list it returns is remembered
// (Remember) on its way to the caller: wherever the fleet is listed, the
// addresses are taken from it. Errors pass through; nothing is remembered
// then.
func (g *Guests) Listing(next providers.Enumerator) providers.Enumerator {
	return listing{next: next, g: g}
}

type listing struct {
	next providers.Enumerator
	g    *Guests
}

// List implements providers.Enumerator.
func (l listing) List(ctx context.Context) ([]inventory.VM, error) {
	vms, err := l.next.List(ctx)
	if err == nil {
		l.g.Remember(vms)
	}
	return vms, err
}

// GuestEndpoint returns vm's remembered address, or asks the wrapped
// provider and remembers its answer.
func (g *Guests) GuestEndpoint(ctx context.Context, vm providers.VMRef) (providers.Endpoint, error) {
	g.mu.Lock()
	e, ok := g.seen[keyOf(vm)]
	g.mu.Unlock()
	if ok && !e.stale {
		return e.ep, nil
	}
	ep, err := g.next.GuestEndpoint(ctx, vm)
	if err != nil {
		return ep, err
	}
	wait := g.minAge
	if ok && ep == e.ep {
		wait = 2 * e.wait // it had not moved: a guest that is down, not an address
	}
	g.mu.Lock()
	g.seen[keyOf(vm)] = entry{ep: ep, at: g.clk.Now(), wait: wait}
	g.mu.Unlock()
	return ep, nil
}

// Forget says that nothing answered at vm's remembered address: the next
// GuestEndpoint reads the control plane again, unless the address was read
// less than its wait ago (MinAge, doubled by each read that found it
// unchanged). It reports whether the address was dropped.
func (g *Guests) Forget(vm providers.VMRef) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	e, ok := g.seen[keyOf(vm)]
	if !ok || e.stale || g.clk.Now().Sub(e.at) < e.wait {
		return false
	}
	e.stale = true
	g.seen[keyOf(vm)] = e
	return true
}
