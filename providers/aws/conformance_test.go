package aws_test

import (
	"context"
	"testing"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/conformance"
	"github.com/fixfleet/fixfleet/providers/sim/ec2api"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestConformance runs the shared provider suite against the EC2/SSM/STS
// emulator over HTTP, with the real SDK clients.
func TestConformance(t *testing.T) {
	conformance.Run(t, conformance.Harness{
		Name:    "aws",
		Lacks:   []string{conformance.CapOSDiskSwap}, // an OS disk is detached, not swapped
		Account: world.DefaultAccount,
		ID:      ec2api.ID,
		World: func(o *world.GenOptions) {
			o.Zones = awsZones
		},
		ImageID: func(im world.ImageSpec) string { return ec2api.AMI(ec2api.RegionOf(im.Zone), im.Release) },
		New: func(t *testing.T, w *world.World) *providers.Provider {
			srv, err := ec2api.Start(w, "127.0.0.1:0", ec2api.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = srv.Close() })
			return openAs(t, w, srv, world.DefaultAccount, "")
		},
	})
}

// TestConformanceReal runs the read-only scenarios against a real AWS
// account when credentials are in the environment.
func TestConformanceReal(t *testing.T) {
	conformance.RunReal(t, conformance.Real{
		Name: "AWS",
		Env:  []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "FIXFLEET_AWS_REGION"},
		Open: func(ctx context.Context, getenv func(string) string) (*providers.Provider, error) {
			a := providers.Account{Tenant: "real", Name: "real", Provider: aws.Name, Regions: []string{getenv("FIXFLEET_AWS_REGION")},
				Options: node(t, "access_key_id_env: AWS_ACCESS_KEY_ID\nsecret_access_key_env: AWS_SECRET_ACCESS_KEY\nsession_token_env: AWS_SESSION_TOKEN\n")}
			return aws.Open(ctx, a, providers.Env{Getenv: getenv})
		},
		UnknownDisk: providers.DiskRef{ID: "vol-0000000000000000f"},
		UnknownVM:   providers.VMRef{ID: "i-0000000000000000f"},
	})
}
