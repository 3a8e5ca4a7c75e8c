package simulation

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/azure"
	"github.com/fixfleet/fixfleet/providers/sim/azureapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// azureZones are the zones of a world served through the ARM emulator:
// one location's availability zones, as fleet.yaml names them.
var azureZones = []string{"japaneast-1", "japaneast-2", "japaneast-3"}

// simAzureHelperPasswordEnv names the variable the simulated accounts'
// helper administrator password is read from (the backend serves it).
const simAzureHelperPasswordEnv = "FIXFLEET_SIM_AZURE_HELPER_PASSWORD"

// simAzureEnv are the test credentials a drill's environment gives
// DefaultAzureCredential (its EnvironmentCredential), which the emulator's
// fake authority accepts.
var simAzureEnv = map[string]string{
	"AZURE_TENANT_ID":         "00000000-0000-4000-8000-000000051a1e",
	"AZURE_CLIENT_ID":         "00000000-0000-4000-8000-0000000c11e7",
	"AZURE_CLIENT_SECRET":     "simulator",
	simAzureHelperPasswordEnv: "simulator-helper-password",
}

// simToken is the simulated path's credential: the emulator accepts any
// bearer token. Production opens accounts with DefaultAzureCredential.
type simToken struct{}

func (simToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "simulator", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// azureBackend runs w here behind an emulator of Azure Resource Manager
// over HTTPS on n (a certificate generated at start, trusted by the
// provider's client): the world's accounts are opened with the real Azure
// provider (armcompute over azcore, its HTTP client dialling n), each
// account one subscription, with a static test token.
//
// Resource Manager's own token buckets, which the emulator applies, are
// this face's throttling: the world's per-account model (one bucket of
// 10 requests a second, Sakura Cloud's) is turned off, as it would refuse
// what ARM allows (an assessment's instance views, one request per VM);
// a world that does not throttle turns the emulator's buckets off too.
func azureBackend(w *world.World, n network) (*Backend, error) {
	f := w.Faults()
	noThrottle := f.Throttle == world.ThrottleOff
	f.Throttle = world.ThrottleOff
	if err := w.SetFaults(f); err != nil {
		return nil, err
	}
	b, err := localBackend(w, n)
	if err != nil {
		return nil, err
	}
	ln, err := n.listen("management.azure.sim:443")
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("simulator: starting the ARM emulator: %w", err)
	}
	srv, err := azureapi.Serve(w, ln, azureapi.Options{NoThrottle: noThrottle})
	if err != nil {
		_ = ln.Close()
		b.Close()
		return nil, fmt.Errorf("simulator: starting the ARM emulator: %w", err)
	}
	b.closers = append(b.closers, srv.Close)
	client := srv.Client()
	if dial := n.dial(); dial != nil {
		client.Transport.(*http.Transport).DialContext = dial
	}
	b.closers = append(b.closers, func() error { client.CloseIdleConnections(); return nil })
	// The emulator's certificate, for a drill's fleet.yaml (ca_file).
	dir, err := os.MkdirTemp("", "fixfleet-azure-")
	if err != nil {
		b.Close()
		return nil, err
	}
	b.closers = append(b.closers, func() error { return os.RemoveAll(dir) })
	caFile := filepath.Join(dir, "emulator-ca.pem")
	if err := os.WriteFile(caFile, srv.CertPEM(), 0o644); err != nil {
		b.Close()
		return nil, err
	}
	conn := azure.Connection{Credential: simToken{}, Transport: client, Cloud: cloud.Configuration{
		ActiveDirectoryAuthorityHost: srv.URL() + "/",
		Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: srv.URL(), Audience: srv.URL()}},
	}}
	b.provider, b.spec = FaceAzure, azure.SpecWith(conn)
	b.apiCalls = func() map[string]int { return srv.Stats().Calls }
	b.apiThrottled = func() int { return srv.Stats().Throttled }
	var regions []string
	for _, z := range w.Zones() {
		if loc, _, ok := azure.SplitZone(z); ok && !slices.Contains(regions, loc) {
			regions = append(regions, loc)
		}
	}
	b.account = func(a *providers.Account) {
		sub := azureapi.SubscriptionID(a.Name)
		a.Regions = regions
		doc := "subscriptions: [" + sub + "]\nresource_group: fleet\nhelper_admin_user: fixfleet\nhelper_password_env: " + simAzureHelperPasswordEnv +
			"\nresource_manager_endpoint: " + srv.URL() + "\nauthority_host: " + srv.URL() + "\nca_file: " + caFile + "\nhelper_subnets:\n"
		for _, loc := range regions {
			doc += "  " + loc + ": /subscriptions/" + sub + "/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/fleet/subnets/repair\n"
		}
		var n yaml.Node
		if err := yaml.Unmarshal([]byte(doc), &n); err == nil && len(n.Content) == 1 {
			a.Options = n.Content[0] // the mapping; built from IDs, it always parses
		}
	}
	b.getenv = func(k string) string { return simAzureEnv[k] }
	b.worldID = func(id string) string {
		if wid := srv.WorldID(id); wid != "" {
			return wid
		}
		return id
	}
	return b, nil
}
