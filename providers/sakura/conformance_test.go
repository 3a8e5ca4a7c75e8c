package sakura_test

import (
	"context"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/conformance"
	"github.com/fixfleet/fixfleet/providers/sakura"
	"github.com/fixfleet/fixfleet/providers/sim/sakuraapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// emulatorOptions are the account options of a provider drilled against
// the emulator at url: no client retries (the suite checks classes), a
// rate that never binds on the manual clock, a short poll.
func emulatorOptions(t *testing.T, url string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	doc := "api_root_url: " + url + "\nclient_retries: 0\nrate: 1000\nburst: 1000\npoll: 2s\n"
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

// openOnEmulator starts the emulator over w and opens the provider on it
// as world account acct.
func openOnEmulator(t *testing.T, w *world.World, acct string) (*providers.Provider, *sakuraapi.Server) {
	t.Helper()
	srv, err := sakuraapi.Start(w, "127.0.0.1:0", sakuraapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	env := providers.Env{Clock: w.Clock(), Getenv: func(k string) string {
		switch k {
		case sakura.EnvAccessToken:
			return acct
		case sakura.EnvAccessTokenSecret:
			return "emulator-secret"
		}
		return ""
	}}
	a := providers.Account{Tenant: acct, Name: acct, Provider: sakura.Name, Zones: w.Zones(), Options: emulatorOptions(t, srv.URL())}
	p, err := sakura.Open(context.Background(), a, env)
	if err != nil {
		t.Fatal(err)
	}
	return p, srv
}

func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		Name:  "sakura",
		Lacks: []string{conformance.CapOSDiskSwap, conformance.CapCrossZoneCopy}, // an OS disk is detached, not swapped; archives are zonal
		ID:    sakuraapi.ID,
		New: func(t *testing.T, w *world.World) *providers.Provider {
			p, _ := openOnEmulator(t, w, world.DefaultAccount)
			return p
		},
		Timeout: time.Minute,
	})
}

func TestConformanceReal(t *testing.T) {
	conformance.RunReal(t, conformance.Real{
		Name: "sakura",
		Env:  []string{sakura.EnvAccessToken, sakura.EnvAccessTokenSecret, "SAKURACLOUD_ZONE"},
		Open: func(ctx context.Context, getenv func(string) string) (*providers.Provider, error) {
			a := providers.Account{Tenant: "real", Name: "real", Provider: sakura.Name, Zones: []string{getenv("SAKURACLOUD_ZONE")}}
			return sakura.Open(ctx, a, providers.Env{Getenv: getenv, Clock: clock.Real{}})
		},
		UnknownDisk: providers.DiskRef{ID: "999999999999"},
		UnknownVM:   providers.VMRef{ID: "999999999999"},
	})
}
