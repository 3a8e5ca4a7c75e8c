package aws_test

import (
	"context"
	"maps"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/memnet"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/sim/ec2api"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// virtualRun is what one run of TestVirtualTime observes.
type virtualRun struct {
	listed          int
	stopped, booted time.Duration // simulated time of Stop, then of Start
	calls           map[string]int
}

// TestVirtualTime drives the real provider (aws-sdk-go-v2 with its whole
// HTTP stack) against the EC2 emulator over an in-memory network inside a
// synctest bubble, on a generated world with calibrated latency and
// throttling: list the fleet, stop three broken VMs (one batched call),
// start them again (each after the provider's batch window). Two runs agree to the nanosecond, and the simulated
// durations lie within the world's table.
func TestVirtualTime(t *testing.T) {
	run := func(t *testing.T) virtualRun {
		var out virtualRun
		synctest.Test(t, func(t *testing.T) {
			ctx := context.Background()
			w, err := world.Generate(world.GenOptions{VMs: 12, Seed: 5, Zones: awsZones, Clock: clock.NewOffset(world.DefaultOrigin)})
			if err != nil {
				t.Fatal(err)
			}
			mn := memnet.New()
			ln, err := mn.Listen("ec2.sim:80")
			if err != nil {
				t.Fatal(err)
			}
			srv := ec2api.Serve(w, ln, ec2api.Options{})
			defer func() { _ = srv.Close() }()
			a := providers.Account{Tenant: "t", Name: world.DefaultAccount, Provider: aws.Name, Regions: []string{"ap-northeast-1"},
				Options: node(t, "endpoint: http://ec2.sim:80\naccess_key_id_env: K\nsecret_access_key_env: S\n")}
			env := providers.Env{Clock: w.Clock(), Getenv: func(k string) string {
				return map[string]string{"K": world.DefaultAccount, "S": "not-a-real-secret"}[k]
			}}
			p, err := aws.OpenVia(ctx, a, env, mn.Dial)
			if err != nil {
				t.Fatal(err)
			}
			clk := w.Clock()
			vms, err := p.Enumerator.List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			out.listed = len(vms)
			var refs []providers.VMRef
			for _, v := range vms {
				if tr, _ := w.Truth(v.ID); tr != world.TruthHealthy && len(refs) < 3 {
					refs = append(refs, providers.VMRef{ID: v.ID, Region: v.Location.Region, Zone: v.Location.Zone})
				}
			}
			if len(refs) != 3 {
				t.Fatalf("want 3 broken VMs, have %d", len(refs))
			}
			t0 := clk.Now()
			if err := p.Power.Stop(ctx, refs, true); err != nil {
				t.Fatal(err)
			}
			t1 := clk.Now()
			if err := p.Power.Start(ctx, refs); err != nil {
				t.Fatal(err)
			}
			out.stopped, out.booted = t1.Sub(t0), clk.Now().Sub(t1)
			out.calls = w.Stats().Calls
		})
		return out
	}
	a, b := run(t), run(t)
	if a.listed != 12 {
		t.Errorf("listed %d VMs, want 12", a.listed)
	}
	// Each call waits out the provider's batch window (batchWindow, 3
	// minutes) for other callers before StopInstances / StartInstances.
	const window = 3 * time.Minute
	stop, start := timing.Of(timing.OpStop), timing.Of(timing.OpStart)
	in := func(d time.Duration, r timing.Range) bool { return d >= window+r.Min && d <= window+r.Max+time.Minute }
	if !in(a.stopped, stop) || !in(a.booted, start) {
		t.Errorf("stop took %v (table %v–%v), start %v (table %v–%v); want the batch window, the table, and at most a minute of polls and calls",
			a.stopped, stop.Min, stop.Max, a.booted, start.Min, start.Max)
	}
	if a.stopped != b.stopped || a.booted != b.booted || !maps.Equal(a.calls, b.calls) {
		t.Errorf("two runs differ:\n%+v\n%+v", a, b)
	}
	t.Logf("stop %v, start %v simulated; world calls %v", a.stopped, a.booted, a.calls)
}
