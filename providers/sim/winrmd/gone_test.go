package winrmd_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
)

// goneAfterTunnel is a guest that listens when the gateway opens the
// tunnel and has gone down (a restart) by the time the request arrives.
type goneAfterTunnel struct {
	mu    sync.Mutex
	calls int
}

func (g *goneAfterTunnel) Listening(string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.calls++
	return g.calls == 1
}

func (g *goneAfterTunnel) Authenticate(string, string, string) (winrmd.Machine, bool) {
	return nil, false // not listening any more
}

func (g *goneAfterTunnel) Refused(string, string) {}

// TestGuestGoneIsUnreachableNotAuth: a guest that went down after the
// tunnel opened drops the connection, as a real host does; it never looks
// like rejected credentials (which would tell the orchestrator the guest
// is up).
func TestGuestGoneIsUnreachableNotAuth(t *testing.T) {
	srv, err := winrmd.Start(&goneAfterTunnel{}, winrmd.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	c := guest.NewClient(guest.ClientOptions{Dial: guest.NewConnectDialer(srv.GatewayAddr()), OperationTimeout: 2 * time.Second})
	defer c.CloseIdleConnections()
	_, err = c.Probe(context.Background(), providers.Endpoint{Host: hostA, Port: 5985},
		guest.Credentials{User: adminUser, Password: adminPass}, guest.ProbeParams{})
	if errors.Is(err, guest.ErrAuth) || !errors.Is(err, guest.ErrUnreachable) {
		t.Errorf("err = %v, want guest.ErrUnreachable (not ErrAuth)", err)
	}
}
