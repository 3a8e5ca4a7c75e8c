package aws_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/sim/ec2api"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestSDKEndpointSettings: with no options.endpoint, the SDK's standard
// endpoint settings (AWS_ENDPOINT_URL, a profile's endpoint_url) carry the
// calls: the emulator answers them.
func TestSDKEndpointSettings(t *testing.T) {
	w, err := world.Generate(world.GenOptions{VMs: 4, Seed: 7, Zones: awsZones, Clock: world.NewManualClock(world.DefaultOrigin),
		Faults: &world.Faults{Throttle: world.ThrottleOff, Latency: 1}})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ec2api.Start(w, "127.0.0.1:0", ec2api.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "config")
	if err := os.WriteFile(cfgFile, []byte("[profile emu]\nregion = ap-northeast-1\nendpoint_url = "+srv.URL()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, opts string
		env        map[string]string
	}{
		{"AWS_ENDPOINT_URL", "", map[string]string{"AWS_ENDPOINT_URL": srv.URL()}},
		{"profile endpoint_url", "profile: emu\n", map[string]string{"AWS_CONFIG_FILE": cfgFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "none"))
			t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "none"))
			t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			before := srv.Stats().Total()
			a := providers.Account{Tenant: "t", Name: world.DefaultAccount, Provider: aws.Name, Regions: []string{"ap-northeast-1"},
				Options: node(t, tc.opts+"access_key_id_env: K\nsecret_access_key_env: S\nretry_max_attempts: 1\n")}
			env := providers.Env{Clock: w.Clock(), Getenv: func(k string) string {
				return map[string]string{"K": world.DefaultAccount, "S": "not-a-real-secret"}[k]
			}}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			p, err := aws.Open(ctx, a, env)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if _, err := p.Enumerator.List(ctx); err != nil {
				t.Fatalf("List: %v", err)
			}
			if srv.Stats().Total() <= before {
				t.Error("the emulator served no call: the SDK's endpoint setting was overwritten")
			}
		})
	}
}
