package azure_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/azure"
	"github.com/fixfleet/fixfleet/providers/conformance"
	"github.com/fixfleet/fixfleet/providers/sim/azureapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// azureZones are the world's zones in Azure's naming.
var azureZones = []string{"japaneast-1", "japaneast-2", "japaneast-3"}

// staticToken is a credential for tests only: production uses
// DefaultAzureCredential.
type staticToken struct{}

func (staticToken) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "test-token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

const helperPasswordEnv = "FIXFLEET_TEST_HELPER_PASSWORD"

// account is a fleet.yaml account of subscription sub, named acct.
func account(t *testing.T, acct, sub string) providers.Account {
	t.Helper()
	var n yaml.Node
	doc := "subscriptions: [" + sub + "]\nresource_group: fleet\npoll_interval: 5s\n" +
		"helper_subnets: {japaneast: /subscriptions/" + sub + "/resourceGroups/net/providers/Microsoft.Network/virtualNetworks/v/subnets/repair}\n" +
		"helper_admin_user: fixfleet\nhelper_password_env: " + helperPasswordEnv + "\n"
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	return providers.Account{Tenant: "sim", Name: acct, Provider: azure.Name, Regions: []string{"japaneast"}, Options: &n}
}

// connection reaches the emulator over HTTPS with a static token.
func connection(srv *azureapi.Server) azure.Connection {
	return azure.Connection{Credential: staticToken{}, Transport: srv.Client(), Cloud: cloud.Configuration{
		ActiveDirectoryAuthorityHost: srv.URL() + "/",
		Services:                     map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {Endpoint: srv.URL(), Audience: srv.URL()}},
	}}
}

// open starts an emulator of w and opens the provider on it as acct.
func open(t *testing.T, w *world.World, acct string, opts azureapi.Options) (*azureapi.Server, *providers.Provider) {
	t.Helper()
	srv, err := azureapi.Start(w, "127.0.0.1:0", opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	getenv := func(k string) string {
		if k == helperPasswordEnv {
			return "not-a-real-password"
		}
		return ""
	}
	p, err := azure.OpenWith(t.Context(), account(t, acct, azureapi.SubscriptionID(acct)), providers.Env{Clock: w.Clock(), Getenv: getenv}, connection(srv))
	if err != nil {
		t.Fatal(err)
	}
	return srv, p
}

// TestConformance runs the shared provider suite against the ARM emulator
// over HTTPS, with the real SDK clients. The scenarios run one at a time:
// the resources a client names (snapshots, disk copies, helpers) are
// mapped to world IDs by the emulator of the running scenario.
func TestConformance(t *testing.T) {
	var cur atomic.Pointer[azureapi.Server]
	conformance.Run(t, conformance.Harness{
		Name:   "azure",
		Serial: true,
		// Its OS disks are swapped, not detached (see TestSwap*).
		Lacks: []string{conformance.CapBackups, conformance.CapOSDiskDetach},
		World: func(o *world.GenOptions) { o.Zones = azureZones },
		ID: func(worldID string) string {
			return cur.Load().ARMID(world.DefaultAccount, worldID)
		},
		New: func(t *testing.T, w *world.World) *providers.Provider {
			srv, p := open(t, w, world.DefaultAccount, azureapi.Options{})
			cur.Store(srv)
			return p
		},
	})
}
