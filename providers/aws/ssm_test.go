package aws_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/sim/ec2api"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestSSMIsOnlyAHint: with SSM down, List still lists every instance (the
// ones whose AMI is gone without a release) and warns that it went on
// without SSM.
func TestSSMIsOnlyAHint(t *testing.T) {
	f := world.Faults{Throttle: world.ThrottleOff, Latency: 1}
	sc, err := world.GenerateScenario(world.GenOptions{VMs: 12, Seed: 7, Zones: awsZones, Faults: &f})
	if err != nil {
		t.Fatal(err)
	}
	// Windows Server 2016's AMIs are gone from the region: List asks SSM.
	var ims []world.ImageSpec
	for _, im := range sc.Images {
		if im.Release != "2016" {
			ims = append(ims, im)
		}
	}
	sc.Images = ims
	w, err := world.Load(sc, world.NewManualClock(sc.Now))
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ec2api.Start(w, "127.0.0.1:0", ec2api.Options{SSMUnavailable: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	var logs bytes.Buffer
	a := providers.Account{Tenant: "t", Name: world.DefaultAccount, Provider: aws.Name, Regions: []string{"ap-northeast-1"},
		Options: node(t, "endpoint: "+srv.URL()+"\naccess_key_id_env: K\nsecret_access_key_env: S\nretry_max_attempts: 3\n")}
	env := providers.Env{Clock: w.Clock(), Logger: slog.New(slog.NewTextHandler(&logs, nil)), Getenv: func(k string) string {
		return map[string]string{"K": world.DefaultAccount, "S": "not-a-real-secret"}[k]
	}}
	p, err := aws.Open(ctx(t), a, env)
	if err != nil {
		t.Fatal(err)
	}
	vms, err := p.Enumerator.List(ctx(t))
	if err != nil {
		t.Fatalf("List failed on an SSM error: %v", err)
	}
	if len(vms) != len(sc.VMs) {
		t.Errorf("List returned %d instances, want %d", len(vms), len(sc.VMs))
	}
	if srv.Stats().Calls["DescribeInstanceInformation"] == 0 {
		t.Fatal("List never asked SSM: the test does not exercise the SSM path")
	}
	if !strings.Contains(logs.String(), "SSM") || !strings.Contains(logs.String(), "level=WARN") {
		t.Errorf("no warning about the missing SSM signal; logs:\n%s", logs.String())
	}
	var refs []providers.VMRef
	for _, v := range vms {
		refs = append(refs, providers.Ref(v))
	}
	if _, err := p.Observer.Observe(ctx(t), refs); err != nil {
		t.Errorf("Observe failed with SSM down: %v", err)
	}
}
