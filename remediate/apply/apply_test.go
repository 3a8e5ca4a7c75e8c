package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

func TestHappyPathWaves(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "happy", acts: 11, accounts: 2, healthy: 2, manual: 1, canary: 3, waveSize: 4, total: 3, perAccount: 2}.build(t)
		rr := newFake(policy.RebootRetry, nil, "recheck", "restart-1")
		hm := newFake(policy.HelperMount, nil, "snapshot")
		rel := &releaser{}
		o := h.opts(p, rr, hm)
		o.Helpers = rel
		res, err := Run(context.Background(), p, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != RunDone || res.Fixed != 11 || res.FixedBy[policy.RebootRetry] != 11 || res.UntouchedHealthy != 2 ||
			res.Manual != 1 || res.Flagged != 0 || res.Failed != 0 || res.Pending != 0 {
			t.Errorf("result %+v", res)
		}
		if res.Elapsed <= 0 || res.RunID != "happy" {
			t.Errorf("elapsed %v, run %q", res.Elapsed, res.RunID)
		}
		if hm.sum("snapshot") != 0 || rr.sum("restart-1") != 11 {
			t.Errorf("calls: restart %d, snapshot %d", rr.sum("restart-1"), hm.sum("snapshot"))
		}
		if rr.maxAccount > 2 || rr.maxT > 3 {
			t.Errorf("concurrency: %d per account (max 2), %d total (max 3)", rr.maxAccount, rr.maxT)
		}
		if rel.calls.Load() != 1 {
			t.Errorf("ReleaseAll called %d times", rel.calls.Load())
		}
		// The canary finished before anything else started; the other waves
		// flow, each account's VMs in wave order (accounts' dispatchers race
		// for the run-wide slots, so the order across accounts may vary).
		evs, err := h.j.Events(context.Background(), "happy", journal.EventFilter{Kinds: []string{EvWaveStarted, EvWaveFinished, EvVMStarted}})
		if err != nil {
			t.Fatal(err)
		}
		var order []string
		type start struct {
			at   time.Time
			wave int
		}
		byAccount := map[string][]start{}
		for _, e := range evs {
			if e.Kind == EvVMStarted {
				vm := p.VMs[indexOf(p, e.VMKey)]
				byAccount[vm.Account] = append(byAccount[vm.Account], start{e.At, vm.Wave})
				if vm.Wave > 1 {
					order = append(order, "vm:2+")
					continue
				}
				order = append(order, "vm:1")
			} else {
				order = append(order, e.Kind)
			}
		}
		// The canary starts first and the flow ends last; a wave 2+ VM
		// starts only once the canary VMs of its canary group have ended
		// (TestStrategyGate).
		if got := strings.Join(order, " "); !strings.HasPrefix(got, "wave.started vm:1") || !strings.HasSuffix(got, "vm:2+ wave.finished") ||
			strings.Count(got, "wave.started") != 2 || strings.Count(got, "wave.finished") != 2 || strings.Count(got, "vm:1") != 3 || strings.Count(got, "vm:2+") != 8 {
			t.Errorf("order: %s", got)
		}
		ended := map[string]time.Time{} // canary group -> its last canary VM's end
		fixed, err := h.j.Events(context.Background(), "happy", journal.EventFilter{Kinds: []string{EvVMFixed}})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range fixed {
			if vm := p.VMs[indexOf(p, e.VMKey)]; vm.Wave == 1 && e.At.After(ended[plan.CanaryGroup(vm)]) {
				ended[plan.CanaryGroup(vm)] = e.At
			}
		}
		for _, e := range evs {
			if e.Kind != EvVMStarted {
				continue
			}
			if vm := p.VMs[indexOf(p, e.VMKey)]; vm.Wave > 1 && e.At.Before(ended[plan.CanaryGroup(vm)]) {
				t.Errorf("%s started at %v, before its canary group's VMs ended at %v", e.VMKey, e.At, ended[plan.CanaryGroup(vm)])
			}
		}
		// VMs dispatched at the same virtual instant journal their
		// vm.started events in any order; across instants an account's
		// VMs start in wave order.
		for a, starts := range byAccount {
			for i, x := range starts {
				for _, y := range starts[i+1:] {
					if x.at.Before(y.at) && x.wave > y.wave {
						t.Errorf("account %s started a wave %d VM at %v, after a wave %d VM at %v: want wave order", a, y.wave, y.at, x.wave, x.at)
					}
				}
			}
		}
		if v := h.vm("happy", "t/a0/man00"); v.Status != StatusFlagged || !strings.Contains(v.Reason, "check the console") {
			t.Errorf("manual VM %+v", v)
		}
		// Status rebuilds the same result from the journal alone.
		st, err := Status(context.Background(), h.j, "happy")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(st, res) {
			t.Errorf("Status differs from Run:\n%+v\n%+v", st, res)
		}
		// Running a finished plan again does nothing.
		res2, err := Run(context.Background(), p, o)
		if err != nil || res2.Fixed != 11 || rr.sum("restart-1") != 11 {
			t.Errorf("rerun: %v, fixed %d, restarts %d", err, res2.Fixed, rr.sum("restart-1"))
		}
	})
}

func indexOf(p *plan.Plan, key string) int {
	for i, v := range p.VMs {
		if v.Key == key {
			return i
		}
	}
	return -1
}

type releaser struct{ calls atomic.Int32 }

func (r *releaser) ReleaseAll(ctx context.Context, keep bool) error { r.calls.Add(1); return nil }

func TestCanaryBrake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "canary", acts: 8, canary: 3, waveSize: 5, total: 4, perAccount: 4, threshold: 0.3}.build(t)
		fail := true
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			if name == "restart-1" && fail && p.VMs[indexOf(p, vm)].Wave == 1 && vm != "t/a0/vm00" {
				return nil, step.Flag("restart did not help and the console shows a disk error: look at it")
			}
			return nil, nil
		}, "recheck", "restart-1")
		o := h.opts(p, rr)
		res, err := Run(context.Background(), p, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != RunPausedCanary || res.Flagged != 2 || res.Fixed != 1 || res.Pending != 5 {
			t.Fatalf("result %+v", res)
		}
		if !strings.Contains(res.Message, "2 of the 3") {
			t.Errorf("message %q", res.Message)
		}
		if k := h.kinds(); k[EvCanaryFailed] != 1 || k[EvBrakeTripped] != 0 {
			t.Errorf("events %v, want one canary.failed and no brake.tripped", k)
		}
		for _, v := range p.Waves[1].VMs {
			if rr.count(v, "recheck") != 0 {
				t.Errorf("VM %s of wave 2 was started after the canary failed", v)
			}
		}
		// Resuming a brake-paused run needs Continue.
		if _, err := Run(context.Background(), p, o); err == nil || !strings.Contains(err.Error(), "--continue") {
			t.Fatalf("resume without Continue: %v", err)
		}
		o.Continue = true
		fail = false
		res, err = Run(context.Background(), p, o)
		if err != nil || res.Status != RunDone || res.Fixed != 6 || res.Flagged != 2 {
			t.Fatalf("continue: %v %+v", err, res)
		}
		if rr.count("t/a0/vm01", "restart-1") != 1 {
			t.Errorf("flagged canary VM redone")
		}
	})
}

func TestFailureBrake(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "brake", acts: 20, canary: 2, waveSize: 18, total: 1, perAccount: 1, threshold: 0.5}.build(t)
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			if name == "restart-1" && p.VMs[indexOf(p, vm)].Wave > 1 {
				return nil, errors.New("restart refused: permanent error")
			}
			return nil, nil
		}, "recheck", "restart-1")
		hm := newFake(policy.HelperMount, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			return nil, step.Fail("no helper image")
		}, "snapshot")
		o := h.opts(p, rr, hm)
		res, err := Run(context.Background(), p, o)
		if err != nil {
			t.Fatal(err)
		}
		// Concurrency 1: the brake trips on the 5th bad VM after the canary.
		if res.Status != RunPausedBrake || res.Fixed != 2 || res.Flagged != 5 || res.Surprises != 5 || res.Pending != 13 {
			t.Fatalf("result %+v", res)
		}
		if h.kinds()[EvBrakeTripped] != 1 {
			t.Errorf("brake events: %v", h.kinds())
		}
		v := h.vm("brake", "t/a0/vm02")
		if !strings.Contains(v.Reason, "reboot-retry: step restart-1") || !strings.Contains(v.Reason, "helper-mount: step snapshot: strategy failed: no helper image") {
			t.Errorf("flagged reason %q", v.Reason)
		}
	})
}

// TestCanaryPassesEarly: once the canary cannot fail whatever its last
// VMs do, the other waves start before they finish; while a failure of
// theirs could still fail it, nothing else starts.
func TestCanaryPassesEarly(t *testing.T) {
	cases := []struct {
		name      string
		threshold float64
		early     bool
	}{
		{name: "4 of 5 fixed, one more failure stays within 20%", threshold: 0.2, early: true},
		{name: "4 of 5 fixed, one more failure would pass 10%", threshold: 0.1, early: false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			p := fleet{id: "early", acts: 8, canary: 5, waveSize: 3, total: 8, perAccount: 8, threshold: c.threshold}.build(t)
			slow := p.Waves[0].VMs[4]
			wave2 := make(chan struct{})
			var once sync.Once
			var startedBeforeSlowEnded atomic.Bool
			slowDone := atomic.Bool{}
			rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
				switch {
				case vm == slow && name == "restart-1":
					holdUntil(wave2)
					slowDone.Store(true)
				case p.VMs[indexOf(p, vm)].Wave > 1 && name == "recheck":
					if !slowDone.Load() {
						startedBeforeSlowEnded.Store(true)
					}
					once.Do(func() { close(wave2) })
				}
				return nil, nil
			}, "recheck", "restart-1")
			res, err := Run(context.Background(), p, h.opts(p, rr))
			if err != nil {
				t.Fatal(err)
			}
			if res.Status != RunDone || res.Fixed != 8 {
				t.Fatalf("result %+v, want done with 8 fixed", res)
			}
			if got := startedBeforeSlowEnded.Load(); got != c.early {
				t.Errorf("wave 2 started before the last canary VM ended: %v, want %v", got, c.early)
			}
			if got := h.kinds()[EvCanaryPassed]; (got == 1) != c.early || got > 1 {
				t.Errorf("%d canary.passed events, want early=%v", got, c.early)
			}
		})
	}
}

// TestStrategyGate: after the canary, a canary group's VMs (first
// strategy and account) start once that group's canary VMs have ended
// well, without waiting for another group's slow canary VM; the slow
// group's VMs wait for it.
func TestStrategyGate(t *testing.T) {
	h := newHarness(t)
	p := fleet{id: "gate", acts: 8, accounts: 2, canary: 2, waveSize: 3, total: 8, perAccount: 8}.build(t)
	var slow string
	for _, k := range p.Waves[0].VMs {
		if p.VMs[indexOf(p, k)].Account == "a1" {
			slow = k
		}
	}
	fastStarted := make(chan struct{})
	var once sync.Once
	var slowDone, fastBeforeSlow, slowGroupBeforeSlow atomic.Bool
	rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		v := p.VMs[indexOf(p, vm)]
		switch {
		case vm == slow && name == "restart-1":
			holdUntil(fastStarted)
			slowDone.Store(true)
		case v.Wave > 1 && name == "recheck" && v.Account == "a0":
			if !slowDone.Load() {
				fastBeforeSlow.Store(true)
			}
			once.Do(func() { close(fastStarted) })
		case v.Wave > 1 && name == "recheck" && !slowDone.Load():
			slowGroupBeforeSlow.Store(true)
		}
		return nil, nil
	}, "recheck", "restart-1")
	res, err := Run(context.Background(), p, h.opts(p, rr))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != RunDone || res.Fixed != 8 {
		t.Fatalf("result %+v, want done with 8 fixed", res)
	}
	if !fastBeforeSlow.Load() {
		t.Errorf("account a0's wave 2 waited for account a1's slow canary VM")
	}
	if slowGroupBeforeSlow.Load() {
		t.Errorf("account a1's wave 2 started before its own canary VM ended")
	}
}

// TestStrategyGateNoRepair: a canary VM whose first strategy reports, as
// designed, that it cannot repair it proves that strategy: its group's
// other VMs start while the canary VM is still on its fallback.
func TestStrategyGateNoRepair(t *testing.T) {
	h := newHarness(t)
	p := fleet{id: "gate-norepair", acts: 6, canary: 1, waveSize: 5, total: 6, perAccount: 6}.build(t)
	canary := p.Waves[0].VMs[0]
	wave2 := make(chan struct{})
	var once sync.Once
	var fallbackDone, startedDuringFallback atomic.Bool
	rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		switch {
		case vm == canary && name == "restart-1":
			return nil, step.Fail("still boot-looping after 1 restart")
		case vm != canary && name == "recheck":
			if !fallbackDone.Load() {
				startedDuringFallback.Store(true)
			}
			once.Do(func() { close(wave2) })
		}
		return nil, nil
	}, "recheck", "restart-1")
	hm := newFake(policy.HelperMount, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		if vm == canary {
			holdUntil(wave2)
			fallbackDone.Store(true)
		}
		return nil, nil
	}, "snapshot")
	res, err := Run(context.Background(), p, h.opts(p, rr, hm))
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != RunDone || res.Fixed != 6 || res.FixedBy[policy.HelperMount] != 1 {
		t.Fatalf("result %+v, want done with 6 fixed, 1 by helper-mount", res)
	}
	if !startedDuringFallback.Load() {
		t.Errorf("wave 2 waited for the canary VM's fallback, though its first strategy had ended as designed")
	}
}

// holdUntil blocks a slow canary VM's step until ch is closed (a later
// wave started), or long enough to tell that it did not.
func holdUntil(ch <-chan struct{}) {
	select {
	case <-ch:
	case <-time.After(2 * time.Second):
	}
}

// TestBrakeCountsSurprisesOnly: VMs whose every planned strategy reports
// it cannot repair them end "no path" (a person must act), which the
// failure brake does not count: the run finishes; the summary counts them
// apart from surprises.
func TestBrakeCountsSurprisesOnly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "nopath", acts: 20, canary: 2, waveSize: 18, total: 1, perAccount: 1, threshold: 0.5}.build(t)
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			if name == "restart-1" && p.VMs[indexOf(p, vm)].Wave > 1 {
				return nil, step.Fail("still boot-looping after 1 restart")
			}
			return nil, nil
		}, "recheck", "restart-1")
		hm := newFake(policy.HelperMount, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			return nil, step.Fail("no helper image")
		}, "snapshot")
		res, err := Run(context.Background(), p, h.opts(p, rr, hm))
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != RunDone || res.Fixed != 2 || res.NoPath != 18 || res.Surprises != 0 || res.Pending != 0 {
			t.Fatalf("result %+v, want done with 2 fixed and 18 no-path", res)
		}
		if h.kinds()[EvBrakeTripped] != 0 {
			t.Errorf("the brake tripped on expected ends: %v", h.kinds())
		}
		if v := h.vm("nopath", "t/a0/vm02"); Reason(v.Code) != ReasonNoPath || Reason(v.Code).Outcome() != OutcomeNoPath {
			t.Errorf("vm02: code %q, want %q", v.Code, ReasonNoPath)
		}
	})
}

func TestBreakerRidesOutOutage(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "outage", acts: 12, canary: 2, waveSize: 10, total: 6, perAccount: 6}.build(t)
		var outageEnd atomic.Int64
		var calls atomic.Int64
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			calls.Add(1)
			if name == "restart-1" && outageEnd.Load() == 0 && p.VMs[indexOf(p, vm)].Wave == 2 {
				outageEnd.Store(h.clk.Now().Add(20 * time.Minute).UnixNano()) // the outage starts now
			}
			if end := outageEnd.Load(); end != 0 && h.clk.Now().UnixNano() < end {
				return nil, providers.Errorf(providers.ErrUnavailable, "Restart", "vm "+vm, "503 Service Unavailable")
			}
			return nil, nil
		}, "recheck", "restart-1", "verify")
		o := h.opts(p, rr)
		o.Retry.MaxAttempts = 4
		res, err := Run(context.Background(), p, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Status != RunDone || res.Fixed != 12 || res.Failed != 0 || res.Flagged != 0 {
			t.Fatalf("result %+v", res)
		}
		if res.BreakerOpenings < 1 {
			t.Errorf("breaker never opened: %+v", res)
		}
		k := h.kinds()
		if k[EvBreakerOpen] < 1 || k[EvBreakerClosed] < 1 || k[EvStrategyFailed] != 0 {
			t.Errorf("events %v", k)
		}
		// The breaker kept calls down during a 20-minute outage: far fewer
		// than six workers retrying freely every few seconds would make.
		if n := calls.Load(); n > 200 {
			t.Errorf("%d step calls during the outage", n)
		}
	})
}

// TestThrottleShrinksWindow: a throttled step is retried without using up
// its attempts, and the account's window shrinks (journaled once per
// cool-down, not once per throttled call).
// TestThrottleShrinksWindow runs on virtual time: on the scaled clock a
// loaded machine spread the throttled calls so far apart that each shrank
// the window on its own.
func TestThrottleShrinksWindow(t *testing.T) { synctest.Test(t, testThrottleShrinksWindow) }

func testThrottleShrinksWindow(t *testing.T) {
	h := newVirtualHarness(t)
	p := fleet{id: "throttle", acts: 12, canary: 2, waveSize: 10, total: 6, perAccount: 6}.build(t)
	var throttles atomic.Int64
	rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		if name == "restart-1" && n <= 2 {
			throttles.Add(1)
			return nil, providers.Errorf(providers.ErrThrottled, "Restart", "vm "+vm, "request limit exceeded")
		}
		return nil, nil
	}, "recheck", "restart-1", "verify")
	o := h.opts(p, rr)
	o.Retry.MaxAttempts = 1
	res, err := Run(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != RunDone || res.Fixed != 12 || res.Failed != 0 || res.Flagged != 0 {
		t.Fatalf("result %+v, want all 12 fixed though each was throttled twice", res)
	}
	if n, k := throttles.Load(), h.kinds()[EvWindowShrank]; k < 1 || int64(k) >= n {
		t.Errorf("%d window.shrank events for %d throttled calls, want at least one and fewer than the calls", k, n)
	}
}

// TestBusyGuestWaited: a guest at its WinRM quota (guest.ErrBusy, e.g. a
// helper holding a killed process's shells until they time out), and a
// restart not made because its turn in the provider's pacing came after
// its re-check went stale (pace.ErrStale), are retried without using up
// the step's attempts, within Retry.MaxTime.
func TestBusyGuestWaited(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"busy guest", fmt.Errorf("guest 10.0.0.9: script list-disks: WinRM fault (HTTP 500): w:QuotaLimit: %w", guest.ErrBusy)},
		{"stale re-check", fmt.Errorf("Restart vm-1: %w", pace.ErrStale)},
	} {
		t.Run(tc.name, func(t *testing.T) { synctest.Test(t, func(t *testing.T) { testNotCharged(t, tc.err) }) })
	}
}

func testNotCharged(t *testing.T, busy error) {
	h := newVirtualHarness(t)
	p := fleet{id: "busy", acts: 2, canary: 1, total: 2, perAccount: 2}.build(t)
	rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		if name == "restart-1" && n <= 4 {
			return nil, busy
		}
		return nil, nil
	}, "recheck", "restart-1", "verify")
	o := h.opts(p, rr)
	o.Retry.MaxAttempts = 1
	res, err := Run(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != RunDone || res.Fixed != 2 || res.Failed != 0 || res.Flagged != 0 {
		t.Fatalf("result %+v, want both fixed after their guest was busy four times", res)
	}
	for _, v := range p.VMs {
		if got := rr.count(v.Key, "restart-1"); got != 5 {
			t.Errorf("%s: restart-1 ran %d times, want 5", v.Key, got)
		}
	}
}

func TestRetriesBounded(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		attempts int
	}{
		{"guest unreachable retried", fmt.Errorf("probe: %w", guest.ErrUnreachable), 5},
		{"permanent not retried", providers.Errorf(providers.ErrPermanent, "Restart", "vm x", "access denied"), 1},
		{"conflict not retried", providers.Errorf(providers.ErrConflict, "Restart", "vm x", "busy"), 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			p := fleet{id: "retry", acts: 1, canary: 1, total: 1, perAccount: 1}.build(t)
			rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
				if name == "restart-1" {
					return nil, tc.err
				}
				return nil, nil
			}, "recheck", "restart-1")
			hm := newFake(policy.HelperMount, nil, "snapshot", "repair")
			o := h.opts(p, rr, hm)
			o.Retry.MaxAttempts = 5
			// Only the attempt bound is under test: the harness clock runs
			// fast, so a loaded machine could use up a time budget first.
			o.Retry.MaxTime = 1000 * time.Hour
			res, err := Run(context.Background(), p, o)
			if err != nil {
				t.Fatal(err)
			}
			key := p.VMs[0].Key
			if got := rr.count(key, "restart-1"); got != tc.attempts {
				t.Errorf("attempts %d, want %d", got, tc.attempts)
			}
			if rr.count(key, StepAbort) != 1 || res.FixedBy[policy.HelperMount] != 1 {
				t.Errorf("abort %d, result %+v", rr.count(key, StepAbort), res)
			}
			if res.Retries != tc.attempts-1 {
				t.Errorf("retries %d, want %d", res.Retries, tc.attempts-1)
			}
			steps, _ := h.j.ListSteps(context.Background(), "retry", key)
			var names []string
			for _, s := range steps {
				names = append(names, fmt.Sprintf("%s/%s#%d:%s", s.Strategy, s.Step, s.Attempt, s.Status))
			}
			if last := names[len(names)-1]; last != "helper-mount/repair#1:ok" || !strings.Contains(strings.Join(names, " "), "reboot-retry/abort#1:ok") {
				t.Errorf("steps %v", names)
			}
		})
	}
}

func TestFallbackAndAbort(t *testing.T) {
	failing := func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		if name == "restart-1" {
			return step.Facts{"restarted": "1"}, step.Fail("still boot-looping after 1 restart")
		}
		return nil, nil
	}
	tests := []struct {
		name       string
		hmRun      behavior
		rrAbort    behavior
		status     journal.VMStatus
		strategy   policy.Strategy
		reasonHas  []string
		hmSnapshot int
		code       Reason // "": not checked
	}{
		{"fallback fixes", nil, nil, StatusFixed, policy.HelperMount, []string{"fixed by helper-mount"}, 1, ReasonFixed},
		{"every strategy fails", func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			if f["restarted"] != "1" || f["aborted"] != "reboot-retry" {
				return nil, fmt.Errorf("facts not passed: %v", f)
			}
			return nil, step.Fail("no helper in zone")
		}, nil, StatusFlagged, policy.RebootRetry,
			[]string{"no path left", "reboot-retry: step restart-1: strategy failed: still boot-looping", "helper-mount: step snapshot: strategy failed: no helper in zone"}, 1, ReasonNoPath},
		{"a strategy fails by surprise", func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			return nil, providers.Errorf(providers.ErrPermanent, "Snapshot", "disk d-1", "denied")
		}, nil, StatusFlagged, policy.RebootRetry,
			[]string{"no strategy left", "helper-mount: step snapshot: Snapshot disk d-1"}, 1, ReasonNoStrategyLeft},
		{"repair unverifiable", func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			return nil, step.Unverifiable("the guest rejects the credentials")
		}, nil, StatusFlagged, policy.HelperMount, []string{"repaired but unverifiable"}, 1, ReasonUnverified},
		{"abort needs a person", nil, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			return nil, step.Flag("disk d-1 is attached to helper h-1: reattach it by hand")
		}, StatusFlagged, policy.RebootRetry, []string{"could not be undone", "reattach it by hand"}, 0, ReasonAbortNeedsPerson},
		{"abort fails", nil, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			return nil, providers.Errorf(providers.ErrPermanent, "Attach", "disk d-1", "denied")
		}, StatusFailed, policy.RebootRetry, []string{"may not be in a safe state", "Attach disk d-1"}, 0, ReasonAbortFailed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			p := fleet{id: "fb", acts: 1, canary: 1, total: 1, perAccount: 1}.build(t)
			rr := newFake(policy.RebootRetry, failing, "recheck", "restart-1")
			rr.abort = tc.rrAbort
			hm := newFake(policy.HelperMount, tc.hmRun, "snapshot")
			if _, err := Run(context.Background(), p, h.opts(p, rr, hm)); err != nil {
				t.Fatal(err)
			}
			key := p.VMs[0].Key
			v := h.vm("fb", key)
			if v.Status != tc.status || policy.Strategy(v.Strategy) != tc.strategy {
				t.Errorf("VM %s/%s, want %s/%s (%s)", v.Status, v.Strategy, tc.status, tc.strategy, v.Reason)
			}
			for _, s := range tc.reasonHas {
				if !strings.Contains(v.Reason, s) {
					t.Errorf("reason %q lacks %q", v.Reason, s)
				}
			}
			if tc.code != "" && Reason(v.Code) != tc.code {
				t.Errorf("reason code %q, want %q", v.Code, tc.code)
			}
			if rr.count(key, StepAbort) != 1 || hm.count(key, "snapshot") != tc.hmSnapshot {
				t.Errorf("abort %d snapshot %d", rr.count(key, StepAbort), hm.count(key, "snapshot"))
			}
		})
	}
}

func TestHealthyAttribution(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "healthy", acts: 3, canary: 3, total: 3, perAccount: 3}.build(t)
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			switch {
			case vm == "t/a0/vm00" && name == "recheck": // recovered on its own
				return nil, step.ErrHealthy
			case vm == "t/a0/vm01" && name == "recheck-2": // healthy after a restart
				return nil, fmt.Errorf("probe: %w", step.ErrHealthy)
			case vm == "t/a0/vm02" && name == "restart-1":
				return nil, step.Fail("restart refused")
			}
			return nil, nil
		}, "recheck", "restart-1", "recheck-2", "more")
		hm := newFake(policy.HelperMount, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			return nil, step.ErrHealthy // healthy after reboot-retry's restart attempt and abort
		}, "recheck")
		o := h.opts(p, rr, hm)
		rr.readOnlyStep = func(name string) bool { return strings.HasPrefix(name, "recheck") }
		res, err := Run(context.Background(), p, o)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			key      string
			status   journal.VMStatus
			strategy policy.Strategy
		}{
			{"t/a0/vm00", StatusSkippedHealthy, policy.RebootRetry},
			{"t/a0/vm01", StatusFixed, policy.RebootRetry},
			{"t/a0/vm02", StatusFixed, policy.HelperMount}, // the abort ended ok: the VM was acted on
		} {
			v := h.vm("healthy", c.key)
			if v.Status != c.status || policy.Strategy(v.Strategy) != c.strategy {
				t.Errorf("%s: %s by %s, want %s by %s", c.key, v.Status, v.Strategy, c.status, c.strategy)
			}
		}
		if rr.count("t/a0/vm00", "restart-1") != 0 || rr.count("t/a0/vm01", "more") != 0 {
			t.Errorf("a healthy VM was touched")
		}
		if res.SkippedHealthy != 1 || res.Fixed != 2 {
			t.Errorf("result %+v", res)
		}
	})
}

func TestResumeAfterCancel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "resume", acts: 6, canary: 2, waveSize: 4, total: 2, perAccount: 2}.build(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		block := make(chan struct{})
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			if vm == "t/a0/vm03" && name == "restart-1" && n == 1 {
				cancel() // the operator presses Ctrl-C while this step runs
				<-block
				return nil, context.Canceled
			}
			return step.Facts{step.Fact(name): vm}, nil
		}, "recheck", "restart-1", "verify")
		o := h.opts(p, rr)
		go func() { <-ctx.Done(); close(block) }()
		res, err := Run(ctx, p, o)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run: %v, want context.Canceled", err)
		}
		if res.Status != RunPausedInterrupt || res.Fixed < 2 {
			t.Fatalf("result %+v", res)
		}
		before := map[string]int{}
		for _, v := range p.VMs {
			before[v.Key+"/recheck"] = rr.count(v.Key, "recheck")
			before[v.Key+"/verify"] = rr.count(v.Key, "verify")
		}
		res, err = Run(context.Background(), p, o)
		if err != nil || res.Status != RunDone || res.Fixed != 6 {
			t.Fatalf("resume: %v %+v", err, res)
		}
		for _, v := range p.VMs {
			k := v.Key
			if rr.count(k, "recheck") != 1 || rr.count(k, "verify") != 1 {
				t.Errorf("%s: recheck %d verify %d, want 1 each", k, rr.count(k, "recheck"), rr.count(k, "verify"))
			}
		}
		if rr.count("t/a0/vm03", "restart-1") != 2 {
			t.Errorf("interrupted step ran %d times, want 2", rr.count("t/a0/vm03", "restart-1"))
		}
		if k := h.kinds(); k[EvRunResumed] != 1 || k[EvVMResumed] < 1 {
			t.Errorf("events %v", k)
		}
	})
}

func TestResumeBegunNeverEnded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		ctx := context.Background()
		p := fleet{id: "crash", acts: 2, canary: 2, total: 2, perAccount: 2}.build(t)
		// A previous process journaled recheck (ok, with a fact) and began
		// restart-1, then died.
		var doc bytes.Buffer
		if err := plan.Write(&doc, p); err != nil {
			t.Fatal(err)
		}
		if err := h.j.CreateRun(ctx, journal.Run{ID: "crash", PlanID: "crash", PlanJSON: doc.Bytes(), CreatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		key := p.VMs[0].Key
		id, err := h.j.BeginStep(ctx, journal.StepIntent{RunID: "crash", VMKey: key, Strategy: "reboot-retry", Step: "recheck", Attempt: 1, At: t0})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.j.EndStep(ctx, id, journal.StepResult{Status: journal.StepOK, Facts: map[string]string{"snapshot": "snap-1"}, At: t0}); err != nil {
			t.Fatal(err)
		}
		if _, err := h.j.BeginStep(ctx, journal.StepIntent{RunID: "crash", VMKey: key, Strategy: "reboot-retry", Step: "restart-1", Attempt: 1, At: t0}); err != nil {
			t.Fatal(err)
		}
		var seen step.Facts
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			if vm == key && name == "restart-1" {
				seen = f
			}
			return nil, nil
		}, "recheck", "restart-1")
		res, err := Run(ctx, p, h.opts(p, rr))
		if err != nil || res.Fixed != 2 {
			t.Fatalf("%v %+v", err, res)
		}
		if rr.count(key, "recheck") != 0 || rr.count(key, "restart-1") != 1 || seen["snapshot"] != "snap-1" {
			t.Errorf("recheck %d restart %d facts %v", rr.count(key, "recheck"), rr.count(key, "restart-1"), seen)
		}
		steps, _ := h.j.ListSteps(ctx, "crash", key)
		if last := steps[len(steps)-1]; last.Step != "restart-1" || last.Attempt != 2 || last.Status != journal.StepOK {
			t.Errorf("last step %+v", last)
		}
	})
}

func TestResumeRecoversStrategyPosition(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "pos", acts: 1, canary: 1, total: 1, perAccount: 1}.build(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			return nil, step.Fail("still looping")
		}, "restart-1")
		hm := newFake(policy.HelperMount, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			if name == "attach" && n == 1 {
				cancel()
				return nil, context.Canceled
			}
			return nil, nil
		}, "snapshot", "attach")
		o := h.opts(p, rr, hm)
		if _, err := Run(ctx, p, o); !errors.Is(err, context.Canceled) {
			t.Fatalf("first run: %v", err)
		}
		res, err := Run(context.Background(), p, o)
		if err != nil || res.FixedBy[policy.HelperMount] != 1 {
			t.Fatalf("%v %+v", err, res)
		}
		key := p.VMs[0].Key
		if rr.count(key, "restart-1") != 1 || rr.count(key, StepAbort) != 1 || hm.count(key, "snapshot") != 1 || hm.count(key, "attach") != 2 {
			t.Errorf("restart %d abort %d snapshot %d attach %d", rr.count(key, "restart-1"), rr.count(key, StepAbort),
				hm.count(key, "snapshot"), hm.count(key, "attach"))
		}
	})
}

func TestSecondApplyLocked(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "lock", acts: 1, canary: 1, total: 1, perAccount: 1}.build(t)
		inside, release := make(chan struct{}), make(chan struct{})
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			close(inside)
			<-release
			return nil, nil
		}, "recheck")
		o := h.opts(p, rr)
		done := make(chan error, 1)
		go func() { _, err := Run(context.Background(), p, o); done <- err }()
		<-inside
		_, err := Run(context.Background(), p, o)
		var le *journal.LockedError
		if !errors.As(err, &le) || le.Holder.PID != os.Getpid() {
			t.Errorf("second Run: %v, want *journal.LockedError", err)
		}
		close(release)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		// Released on return: a third Run takes the lock.
		if _, err := Run(context.Background(), p, o); err != nil {
			t.Errorf("after release: %v", err)
		}
	})
}

func TestDifferentPlanRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "same-id", acts: 2, canary: 1, total: 1, perAccount: 1}.build(t)
		rr := newFake(policy.RebootRetry, nil, "recheck")
		if _, err := Run(context.Background(), p, h.opts(p, rr)); err != nil {
			t.Fatal(err)
		}
		q := fleet{id: "same-id", acts: 3, canary: 1, total: 1, perAccount: 1}.build(t)
		_, err := Run(context.Background(), q, h.opts(q, rr))
		if err == nil || !strings.Contains(err.Error(), "different plan") {
			t.Errorf("Run with another plan: %v", err)
		}
		// The verbatim document is stored; a reformatted copy of the same plan resumes.
		run, _ := h.j.GetRun(context.Background(), "same-id")
		o := h.opts(p, rr)
		o.PlanJSON = bytes.ReplaceAll(run.PlanJSON, []byte("\n  "), []byte("\n"))
		if _, err := Run(context.Background(), p, o); err != nil {
			t.Errorf("same plan, other formatting: %v", err)
		}
	})
}

func TestAccountNotConfigured(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "noacct", acts: 2, accounts: 2, canary: 2, total: 2, perAccount: 2}.build(t)
		rr := newFake(policy.RebootRetry, nil, "recheck")
		o := h.opts(p, rr)
		delete(o.Envs, "t/a1")
		res, err := Run(context.Background(), p, o)
		if err != nil || res.Flagged != 1 || res.Fixed != 1 || res.Status != RunDone {
			t.Fatalf("%v %+v", err, res)
		}
		if v := h.vm("noacct", "t/a1/vm01"); Reason(v.Code) != ReasonAccountNotConfigured || !strings.Contains(v.Reason, "t/a1") {
			t.Errorf("reason %s %q, want %s naming the account", v.Code, v.Reason, ReasonAccountNotConfigured)
		}
		// Configured later: the next apply repairs it.
		res, err = Run(context.Background(), p, h.opts(p, rr))
		if err != nil || res.Fixed != 2 {
			t.Fatalf("%v %+v", err, res)
		}
	})
}

func TestNoSecretInJournalOrEvents(t *testing.T) {
	const pw = "Hunter2-Sup3rSecret-Pw"
	h := newHarness(t, journal.WithSecrets(secret.New(pw)))
	p := fleet{id: "secret", acts: 2, canary: 2, total: 2, perAccount: 2}.build(t)
	rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
		if vm == "t/a0/vm00" && name == "restart-1" { // a buggy step leaks the password
			return step.Facts{"cred": pw}, fmt.Errorf("winrm login as admin/%s failed: %w", pw, guest.ErrUnreachable)
		}
		return nil, nil
	}, "recheck", "restart-1")
	o := h.opts(p, rr, newFake(policy.HelperMount, nil, "snapshot"))
	for _, e := range o.Envs {
		e.Creds = guest.Credentials{User: "admin", Password: pw}
	}
	res, err := Run(context.Background(), p, o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Fixed != 2 || rr.count("t/a0/vm00", "restart-1") != 1 {
		t.Errorf("result %+v, leaking step ran %d times", res, rr.count("t/a0/vm00", "restart-1"))
	}
	if err := h.j.Close(); err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		b, err := os.ReadFile(h.path + suffix)
		if err != nil {
			continue
		}
		if bytes.Contains(b, []byte(pw)) {
			t.Errorf("secret found in %s", h.path+suffix)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, e := range h.events {
		if strings.Contains(fmt.Sprint(e), pw) {
			t.Errorf("secret in event %+v", e)
		}
	}
	for _, v := range res.VMs {
		if strings.Contains(v.Reason, pw) {
			t.Errorf("secret in result")
		}
	}
}

// TestRerunFact: a step whose earlier attempt may have acted unrecorded (a
// retryable error: the reply lost) is told so on its next attempt
// (step.FactRerun); its first attempt, and the other steps, are not.
func TestRerunFact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newVirtualHarness(t)
		p := fleet{id: "rerun", acts: 1, canary: 1, waveSize: 1, total: 1, perAccount: 1}.build(t)
		var seen []string
		rr := newFake(policy.RebootRetry, func(vm, name string, n int, f step.Facts) (step.Facts, error) {
			seen = append(seen, fmt.Sprintf("%s#%d rerun=%q", name, n, f[step.FactRerun]))
			if name == "restart-1" && n == 1 {
				return nil, providers.Errorf(providers.ErrUnavailable, "Restart", "vm "+vm, "reply lost")
			}
			return nil, nil
		}, "recheck", "restart-1", "verify")
		res, err := Run(context.Background(), p, h.opts(p, rr))
		if err != nil || res.Fixed != 1 {
			t.Fatalf("run: %v, %+v", err, res)
		}
		want := []string{`recheck#1 rerun=""`, `restart-1#1 rerun=""`, `restart-1#2 rerun="true"`, `verify#1 rerun=""`}
		if !slices.Equal(seen, want) {
			t.Errorf("steps saw %v, want %v", seen, want)
		}
	})
}
