package world

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

func TestFaults(t *testing.T) {
	for _, tc := range []struct {
		name        string
		faults      Faults
		outage      bool
		wantClass   error
		wantApplied bool
	}{
		{"none", Faults{Throttle: ThrottleOff}, false, nil, true},
		{"5xx", Faults{Throttle: ThrottleOff, ErrorRate: 1}, false, providers.ErrUnavailable, false},
		{"drop before", Faults{Throttle: ThrottleOff, DropBeforeRate: 1}, false, providers.ErrUnavailable, false},
		{"drop after", Faults{Throttle: ThrottleOff, DropAfterRate: 1}, false, providers.ErrUnavailable, true},
		{"outage switched on", Faults{Throttle: ThrottleOff}, true, providers.ErrUnavailable, false},
		{"outage window", Faults{Throttle: ThrottleOff, Outages: []Outage{{From: t0.Add(-time.Minute), Until: t0.Add(time.Hour)}}}, false, providers.ErrUnavailable, false},
		{"outage over", Faults{Throttle: ThrottleOff, Outages: []Outage{{From: t0.Add(-time.Hour), Until: t0}}}, false, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, _ := load(t, scenario(vmSpec("1", img2019, goodFile)))
			if err := w.SetFaults(tc.faults); err != nil {
				t.Fatal(err)
			}
			w.SetOutage(tc.outage)
			_, err := w.StopVMs(ctx, "sim", []string{"vm-1"}, false)
			if tc.wantClass == nil && err != nil || tc.wantClass != nil && !providers.Retryable(err) {
				t.Fatalf("error %v, want %v", err, tc.wantClass)
			}
			if applied := w.powerOf("vm-1") == inventory.PowerStopping; applied != tc.wantApplied {
				t.Fatalf("applied %v, want %v", applied, tc.wantApplied)
			}
			st := w.Stats()
			if st.Calls["StopVMs"] != 1 {
				t.Fatalf("stats %+v", st)
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	for _, model := range []string{ThrottleSimple, ThrottleEC2} {
		t.Run(model, func(t *testing.T) {
			sc := scenario(vmSpec("1", img2019, goodFile))
			sc.Faults.Throttle = model
			w, clk := load(t, sc)
			var err error
			n := 0
			for ; n < 1000 && err == nil; n++ {
				clk.Advance(time.Nanosecond)                      // one call per instant: the bucket drains
				_, err = w.StartVMs(ctx, "sim", []string{"vm-1"}) // running: a no-op, but a call
			}
			wantClass(t, err, providers.ErrThrottled)
			ra := providers.RetryAfter(err)
			if ra <= 0 || w.Stats().Throttled != 1 {
				t.Fatalf("retry after %v, stats %+v", ra, w.Stats())
			}
			clk.Advance(ra)
			if _, err := w.StartVMs(ctx, "sim", []string{"vm-1"}); err != nil {
				t.Fatalf("after waiting: %v", err)
			}
			// Another account has its own bucket.
			if _, err := w.HelperImages(ctx, "other"); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSetFaultsRejectsBad(t *testing.T) {
	w, _ := load(t, scenario())
	if err := w.SetFaults(Faults{Throttle: "x"}); err == nil {
		t.Fatal("accepted a bad throttle model")
	}
	if w.Faults().Throttle != ThrottleOff {
		t.Fatal("bad faults changed the configuration")
	}
}

// TestThrottleOneInstant: the calls of one instant are all admitted while
// the bucket's level at the start of the instant is at least one token,
// whatever their order; they overdraw it, and the next instant is refused
// until the bucket has refilled.
func TestThrottleOneInstant(t *testing.T) {
	sc := scenario(vmSpec("1", img2019, goodFile))
	sc.Faults.Throttle = ThrottleSimple
	w, clk := load(t, sc)
	burst := 2 * calib.SimpleBucket.Size
	for i := range burst {
		if _, err := w.StartVMs(ctx, "sim", []string{"vm-1"}); err != nil {
			t.Fatalf("call %d of one instant: %v", i, err)
		}
	}
	clk.Advance(time.Nanosecond)
	_, err := w.StartVMs(ctx, "sim", []string{"vm-1"})
	wantClass(t, err, providers.ErrThrottled)
	debt := float64(burst-calib.SimpleBucket.Size) / calib.SimpleBucket.Refill
	if ra := providers.RetryAfter(err).Seconds(); ra < debt {
		t.Fatalf("retry after %vs: the overdraft of %d calls needs %vs", ra, burst-calib.SimpleBucket.Size, debt)
	}
	clk.Advance(providers.RetryAfter(err))
	if _, err := w.StartVMs(ctx, "sim", []string{"vm-1"}); err != nil {
		t.Fatalf("after the refill: %v", err)
	}
}

// TestDropReplies: the reply of exactly the chosen applied call is lost;
// the change stays, refused calls do not count.
func TestDropReplies(t *testing.T) {
	w, clk := load(t, scenario(vmSpec("1", img2019, badFile)))
	if err := w.SetFaults(Faults{Throttle: ThrottleOff, DropReplies: []DropReply{{Op: "Snapshot", Nth: 2}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Snapshot(ctx, "sim", "no-such-disk", nil); !errors.Is(err, providers.ErrNotFound) {
		t.Fatalf("refused call: %v", err)
	}
	var errs []error
	for range 3 {
		_, err := w.Snapshot(ctx, "sim", "disk-1", nil)
		errs = append(errs, err)
		clk.Set(clk.Now().Add(time.Minute))
	}
	if errs[0] != nil || !errors.Is(errs[1], providers.ErrUnavailable) || errs[2] != nil {
		t.Fatalf("errors %v, want only the second applied call's reply lost", errs)
	}
	if ss := must[[]SnapshotInfo](t)(w.FindSnapshots(ctx, "sim", nil)); len(ss) != 3 {
		t.Fatalf("%d snapshots, want 3: a lost reply keeps the change", len(ss))
	}
	if err := w.SetFaults(Faults{Throttle: ThrottleOff, DropReplies: []DropReply{{Op: "Snapshot"}}}); err == nil || !strings.Contains(err.Error(), "drop_replies[0]") {
		t.Errorf("nth 0 accepted: %v", err)
	}
}

// TestOneRequestTakesOneToken: the world calls of one emulated request
// take one token between them: once the bucket is drained, a request's
// later calls still go through, and the next request is refused at its
// first call, before it changed anything.
func TestOneRequestTakesOneToken(t *testing.T) {
	sc := scenario(vmSpec("1", img2019, goodFile))
	sc.Faults.Throttle = ThrottleSimple
	w, clk := load(t, sc)
	drain := func() context.Context {
		// Calls one instant apart until the bucket refuses, then one
		// request admitted at its first call on the token that refills.
		for range 1000 {
			clk.Advance(time.Nanosecond)
			if _, err := w.StartVMs(ctx, "sim", []string{"vm-1"}); err != nil {
				clk.Advance(providers.RetryAfter(err))
				break
			}
		}
		return OneRequest(ctx)
	}
	rq := drain()
	for i := range 3 {
		clk.Advance(time.Nanosecond)
		if _, err := w.StartVMs(rq, "sim", []string{"vm-1"}); err != nil {
			t.Fatalf("call %d of one admitted request: %v", i+1, err)
		}
	}
	clk.Advance(time.Nanosecond)
	if _, err := w.StartVMs(OneRequest(ctx), "sim", []string{"vm-1"}); !errors.Is(err, providers.ErrThrottled) {
		t.Fatalf("the next request's first call: %v, want throttled", err)
	}
}
