package endpointcache

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time { return c.now }
func (c *fakeClock) Sleep(_ context.Context, d time.Duration) error {
	c.now = c.now.Add(d)
	return nil
}

// fakeGuests answers with the address in hosts and counts its calls.
type fakeGuests struct {
	hosts map[string]string
	calls int
}

var errGone = errors.New("gone")

func (f *fakeGuests) GuestEndpoint(_ context.Context, vm providers.VMRef) (providers.Endpoint, error) {
	f.calls++
	h, ok := f.hosts[vm.ID]
	if !ok {
		return providers.Endpoint{}, errGone
	}
	return providers.Endpoint{Host: h, Port: 5985}, nil
}

// listedGuests also reads addresses from a VM's listing (Listed): its first
// NIC's private address.
type listedGuests struct{ *fakeGuests }

func (listedGuests) ListedEndpoint(vm inventory.VM) (providers.Endpoint, bool) {
	if len(vm.NICs) == 0 || vm.NICs[0].PrivateIP == "" {
		return providers.Endpoint{}, false
	}
	return providers.Endpoint{Host: vm.NICs[0].PrivateIP, Port: 5985}, true
}

func TestGuests(t *testing.T) {
	vm := providers.VMRef{ID: "vm-1", Zone: "z1"}
	tests := []struct {
		name string
		// run drives the cache; it returns the host of the last ask.
		run       func(ctx context.Context, g *Guests, f *fakeGuests, c *fakeClock) string
		wantHost  string
		wantCalls int
	}{
		{"asks once", func(ctx context.Context, g *Guests, _ *fakeGuests, _ *fakeClock) string {
			for range 5 {
				g.GuestEndpoint(ctx, vm)
			}
			ep, _ := g.GuestEndpoint(ctx, vm)
			return ep.Host
		}, "10.0.0.1", 1},
		{"errors are not kept", func(ctx context.Context, g *Guests, f *fakeGuests, _ *fakeClock) string {
			delete(f.hosts, vm.ID)
			if _, err := g.GuestEndpoint(ctx, vm); !errors.Is(err, errGone) {
				t.Errorf("error = %v, want errGone", err)
			}
			f.hosts[vm.ID] = "10.0.0.9"
			ep, _ := g.GuestEndpoint(ctx, vm)
			return ep.Host
		}, "10.0.0.9", 2},
		{"a young address survives Forget", func(ctx context.Context, g *Guests, f *fakeGuests, c *fakeClock) string {
			g.GuestEndpoint(ctx, vm)
			f.hosts[vm.ID] = "10.0.0.2"
			c.Sleep(ctx, time.Minute)
			if g.Forget(vm) {
				t.Error("Forget dropped an address read a minute ago")
			}
			ep, _ := g.GuestEndpoint(ctx, vm)
			return ep.Host
		}, "10.0.0.1", 1},
		{"an old address is read again after Forget", func(ctx context.Context, g *Guests, f *fakeGuests, c *fakeClock) string {
			g.GuestEndpoint(ctx, vm)
			f.hosts[vm.ID] = "10.0.0.2"
			c.Sleep(ctx, DefaultMinAge)
			if !g.Forget(vm) {
				t.Error("Forget kept an address as old as MinAge")
			}
			ep, _ := g.GuestEndpoint(ctx, vm)
			return ep.Host
		}, "10.0.0.2", 2},
		{"an unchanged address waits twice as long before the next read", func(ctx context.Context, g *Guests, f *fakeGuests, c *fakeClock) string {
			g.GuestEndpoint(ctx, vm)
			c.Sleep(ctx, DefaultMinAge)
			g.Forget(vm)
			g.GuestEndpoint(ctx, vm) // read again: unchanged
			c.Sleep(ctx, DefaultMinAge)
			if g.Forget(vm) {
				t.Error("Forget dropped an address found unchanged MinAge ago")
			}
			c.Sleep(ctx, DefaultMinAge)
			if !g.Forget(vm) {
				t.Error("Forget kept an address found unchanged twice MinAge ago")
			}
			f.hosts[vm.ID] = "10.0.0.3"
			ep, _ := g.GuestEndpoint(ctx, vm) // moved: MinAge again
			c.Sleep(ctx, DefaultMinAge)
			if !g.Forget(vm) {
				t.Error("Forget kept a moved address read MinAge ago")
			}
			return ep.Host
		}, "10.0.0.3", 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeGuests{hosts: map[string]string{vm.ID: "10.0.0.1"}}
			c := &fakeClock{now: time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)}
			g := New(f, c, 0)
			if got := tt.run(context.Background(), g, f, c); got != tt.wantHost {
				t.Errorf("host = %q, want %q", got, tt.wantHost)
			}
			if f.calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", f.calls, tt.wantCalls)
			}
		})
	}
}

func TestRemember(t *testing.T) {
	listed := func(id, ip string) inventory.VM {
		vm := inventory.VM{ID: id, Location: inventory.Location{Zone: "z1"}}
		if ip != "" {
			vm.NICs = []inventory.NIC{{Name: "eth0", PrivateIP: ip}}
		}
		return vm
	}
	tests := []struct {
		name      string
		listed    bool // the wrapped Guests implements Listed
		vm        inventory.VM
		wantHost  string
		wantCalls int
	}{
		{"from the listing", true, listed("vm-1", "10.0.0.7"), "10.0.0.7", 0},
		{"the listing has no address", true, listed("vm-1", ""), "10.0.0.1", 1},
		{"a provider that does not read listings", false, listed("vm-1", "10.0.0.7"), "10.0.0.1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeGuests{hosts: map[string]string{"vm-1": "10.0.0.1"}}
			var next providers.Guests = f
			if tt.listed {
				next = listedGuests{f}
			}
			g := New(next, &fakeClock{now: time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)}, 0)
			g.Remember([]inventory.VM{tt.vm})
			ep, err := g.GuestEndpoint(context.Background(), providers.Ref(tt.vm))
			if err != nil || ep.Host != tt.wantHost {
				t.Errorf("GuestEndpoint = %+v, %v; want host %s", ep, err, tt.wantHost)
			}
			if f.calls != tt.wantCalls {
				t.Errorf("calls = %d, want %d", f.calls, tt.wantCalls)
			}
		})
	}
}

// fakeEnumerator lists vms, or fails with err.
type fakeEnumerator struct {
	vms []inventory.VM
	err error
}

func (f fakeEnumerator) List(context.Context) ([]inventory.VM, error) { return f.vms, f.err }

// TestListing: a list of the fleet through Listing is remembered, so the
// first GuestEndpoint of its VMs asks nothing; a failed list remembers
// nothing.
func TestListing(t *testing.T) {
	vm := inventory.VM{ID: "vm-1", NICs: []inventory.NIC{{Name: "eth0", PrivateIP: "10.0.0.7"}}}
	tests := []struct {
		name      string
		err       error
		wantHost  string
		wantCalls int
	}{
		{"listed", nil, "10.0.0.7", 0},
		{"the list failed", errGone, "10.0.0.1", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeGuests{hosts: map[string]string{"vm-1": "10.0.0.1"}}
			g := New(listedGuests{f}, &fakeClock{now: time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)}, 0)
			if _, err := g.Listing(fakeEnumerator{[]inventory.VM{vm}, tt.err}).List(context.Background()); !errors.Is(err, tt.err) {
				t.Fatalf("List: %v, want %v", err, tt.err)
			}
			ep, err := g.GuestEndpoint(context.Background(), providers.Ref(vm))
			if err != nil || ep.Host != tt.wantHost || f.calls != tt.wantCalls {
				t.Errorf("GuestEndpoint = %+v, %v after %d calls; want host %s after %d", ep, err, f.calls, tt.wantHost, tt.wantCalls)
			}
		})
	}
}
