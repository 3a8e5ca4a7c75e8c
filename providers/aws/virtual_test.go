package aws_test

import (
	"context"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/memnet"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/conformance"
	"github.com/fixfleet/fixfleet/providers/sim/ec2api"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestVirtualTime runs the real provider (aws-sdk-go-v2's own HTTP client,
// dialling the in-memory network) against the EC2 emulator on virtual time.
func TestVirtualTime(t *testing.T) {
	conformance.RunVirtual(t, conformance.Virtual{
		Zones: awsZones,
		ID:    ec2api.ID,
		// Each power call waits out the provider's batch window
		// (quietGap: a lone caller waits that long) for other callers.
		Window: 5 * time.Second,
		Open: func(t *testing.T, w *world.World, n *memnet.Network) (*providers.Provider, func()) {
			ln, err := n.Listen("ec2.sim:80")
			if err != nil {
				t.Fatal(err)
			}
			srv := ec2api.Serve(w, ln, ec2api.Options{})
			a := providers.Account{Tenant: "t", Name: world.DefaultAccount, Provider: aws.Name, Regions: []string{"ap-northeast-1"},
				Options: node(t, "endpoint: http://ec2.sim:80\naccess_key_id_env: K\nsecret_access_key_env: S\n")}
			env := providers.Env{Clock: w.Clock(), Getenv: func(k string) string {
				return map[string]string{"K": world.DefaultAccount, "S": "not-a-real-secret"}[k]
			}}
			p, err := aws.OpenVia(context.Background(), a, env, n.Dial)
			if err != nil {
				t.Fatal(err)
			}
			return p, func() { _ = srv.Close() }
		},
	})
}
