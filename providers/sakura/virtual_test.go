package sakura_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fixfleet/fixfleet/internal/memnet"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/conformance"
	"github.com/fixfleet/fixfleet/providers/sakura"
	"github.com/fixfleet/fixfleet/providers/sim/sakuraapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestVirtualTime runs the real provider (iaas-api-go and its HTTP stack,
// in the library's test-server mode with the server's client dialling the
// in-memory network) against the Sakura emulator on virtual time.
func TestVirtualTime(t *testing.T) {
	conformance.RunVirtual(t, conformance.Virtual{
		ID: sakuraapi.ID,
		Open: func(t *testing.T, w *world.World, n *memnet.Network) (*providers.Provider, func()) {
			ln, err := n.Listen("secure.sakura.sim:80")
			if err != nil {
				t.Fatal(err)
			}
			srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: sakuraapi.New(w, sakuraapi.Options{})}}
			srv.Start()
			srv.Client().Transport.(*http.Transport).Dial = func(network, addr string) (net.Conn, error) {
				return n.Dial(context.Background(), network, addr)
			}
			env := providers.Env{Clock: w.Clock(), Getenv: func(k string) string {
				switch k {
				case sakura.EnvAccessToken:
					return world.DefaultAccount
				case sakura.EnvAccessTokenSecret:
					return "emulator-secret"
				}
				return ""
			}}
			a := providers.Account{Tenant: world.DefaultAccount, Name: world.DefaultAccount, Provider: sakura.Name, Zones: w.Zones(),
				Options: emulatorOptions(t, srv.URL+sakuraapi.Root)}
			p, err := sakura.OpenVia(context.Background(), a, env, srv)
			if err != nil {
				t.Fatal(err)
			}
			return p, srv.Close
		},
	})
}
