package classify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// fakeCloud serves Observe and Probe from per-VM behaviours.
type fakeCloud struct {
	clk      clock.Clock
	mu       sync.Mutex
	calls    [][]string // IDs per Observe call
	boots    map[string]int
	kind     map[string]string // "loop", "healthy", "gone", "stopped", "safe", "recovered"
	failures []error           // errors returned by the next Observe calls, in order
	probing  atomic.Int32
	maxProbe atomic.Int32
	probed   sync.Map
	flaky    sync.Map // VM ID -> *atomic.Int32: control-plane failures left before its probe runs
}

func (f *fakeCloud) Observe(ctx context.Context, refs []providers.VMRef) (map[string]inventory.Signals, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.failures) > 0 {
		err := f.failures[0]
		f.failures = f.failures[1:]
		return nil, err
	}
	ids := make([]string, len(refs))
	out := map[string]inventory.Signals{}
	for i, r := range refs {
		ids[i] = r.ID
		s := inventory.Signals{At: f.clk.Now(), Power: inventory.PowerRunning}
		switch f.kind[r.ID] {
		case "gone":
			continue
		case "stopped":
			s.Power = inventory.PowerStopped
		case "loop":
			f.boots[r.ID] += 2
		case "flaky", "endpoint-down":
			s.InstanceReachable = ptr(true)
		case "recovered":
			// Down through the window, up once its probe has run.
			_, up := f.probed.Load(r.ID)
			s.InstanceReachable = ptr(up)
		}
		s.BootCount = ptr(f.boots[r.ID])
		out[r.ID] = s
	}
	f.calls = append(f.calls, ids)
	return out, nil
}

func (f *fakeCloud) Probe(ctx context.Context, vm inventory.VM) inventory.Probe {
	n := f.probing.Add(1)
	defer f.probing.Add(-1)
	for {
		m := f.maxProbe.Load()
		if n <= m || f.maxProbe.CompareAndSwap(m, n) {
			break
		}
	}
	f.probed.Store(vm.ID, true)
	time.Sleep(time.Millisecond) // let probes overlap
	switch f.kind[vm.ID] {
	case "loop":
		return inventory.Probe{Error: "timeout"}
	case "endpoint-down":
		return inventory.Probe{Error: "no guest address: HTTP 503", Retryable: true}
	case "flaky":
		if n, ok := f.flaky.Load(vm.ID); ok && n.(*atomic.Int32).Add(-1) >= 0 {
			return inventory.Probe{Error: "no guest address: connection reset by peer", Retryable: true}
		}
	case "safe":
		return inventory.Probe{Reachable: true, BootMode: inventory.BootSafeMode, SafeBootFlag: true}
	}
	return inventory.Probe{Reachable: true, BootMode: inventory.BootNormal}
}

func fleet(kinds ...string) ([]inventory.VM, *fakeCloud) {
	f := &fakeCloud{boots: map[string]int{}, kind: map[string]string{}}
	var vms []inventory.VM
	for i, k := range kinds {
		id := fmt.Sprintf("vm-%02d", i)
		f.kind[id] = k
		vms = append(vms, inventory.VM{
			Location: inventory.Location{Tenant: "acme", Account: "prod", Provider: "sim", Zone: "is1a"},
			ID:       id, Name: "web-" + k,
		})
	}
	return vms, f
}

func scaled() clock.Clock { return clock.NewScaled(t0, 1e6) }

func TestAssess(t *testing.T) {
	vms, f := fleet("loop", "healthy", "gone", "stopped", "safe", "healthy", "loop")
	clk := scaled()
	f.clk = clk
	got, err := Assess(context.Background(), vms, AssessOptions{
		Incident: inc, Observer: f, Prober: f, Clock: clk, Batch: 3, ProbeConcurrency: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []inventory.State{
		inventory.StateBootLoop, inventory.StateHealthy, inventory.StateUnknown, inventory.StateUnknown,
		inventory.StateSafeMode, inventory.StateHealthy, inventory.StateBootLoop,
	}
	for i, a := range got {
		if a.VM.ID != vms[i].ID {
			t.Fatalf("order: got %s at %d", a.VM.ID, i)
		}
		if a.Classification.State != want[i] {
			t.Errorf("%s (%s): %s, want %s: %q", a.VM.ID, f.kind[a.VM.ID], a.Classification.State, want[i], a.Classification.Reasons)
		}
	}
	if r := strings.Join(got[2].Classification.Reasons, " "); !strings.Contains(r, "not found by the cloud during sampling") {
		t.Errorf("gone VM reasons: %q", r)
	}
	// 3 samples × ceil(7/3) batches, each of at most 3 refs.
	if len(f.calls) != 9 {
		t.Errorf("Observe calls = %d, want 9", len(f.calls))
	}
	for _, c := range f.calls {
		if len(c) > 3 {
			t.Errorf("batch of %d refs", len(c))
		}
	}
	if len(got[0].Classification.Evidence.Samples) != 3 {
		t.Errorf("samples = %d", len(got[0].Classification.Evidence.Samples))
	}
	if m := f.maxProbe.Load(); m > 2 {
		t.Errorf("probe concurrency %d > 2", m)
	}
	for _, id := range []string{"vm-02", "vm-03"} { // gone, stopped
		if _, ok := f.probed.Load(id); ok {
			t.Errorf("%s was probed", id)
		}
	}
	if got[1].Classification.Evidence.Probe == nil {
		t.Error("healthy VM has no probe")
	}
}

// TestAssessResamples: a guest that answers its probe while the last
// sample said the cloud could not reach it is observed once more, and
// judged on that: it came up between the two. Other VMs are not.
func TestAssessResamples(t *testing.T) {
	vms, f := fleet("recovered", "healthy")
	clk := scaled()
	f.clk = clk
	got, err := Assess(context.Background(), vms, AssessOptions{Incident: inc, Observer: f, Prober: f, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []struct {
		state   inventory.State
		samples int
	}{{inventory.StateHealthy, DefaultSamples + 1}, {inventory.StateHealthy, DefaultSamples}} {
		c := got[i].Classification
		if c.State != want.state || len(c.Evidence.Samples) != want.samples {
			t.Errorf("%s: %s with %d samples, want %s with %d: %q", got[i].VM.ID, c.State, len(c.Evidence.Samples), want.state, want.samples, c.Reasons)
		}
	}
}

func TestAssessRetries(t *testing.T) {
	throttled := providers.Errorf(providers.ErrThrottled, "Observe", "account prod", "slow down")
	vms, f := fleet("loop", "loop")
	f.clk = scaled()
	f.failures = []error{throttled, throttled}
	got, err := Assess(context.Background(), vms, AssessOptions{Incident: inc, Observer: f, Clock: f.clk})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Classification.State != inventory.StateBootLoop {
		t.Errorf("state %s: %q", got[0].Classification.State, got[0].Classification.Reasons)
	}
}

// TestAssessGuestEndpointFailure: a 5xx or reset while the cloud is asked
// for the guest's address is a control-plane error: retried, and never
// read as "WinRM does not answer".
func TestAssessGuestEndpointFailure(t *testing.T) {
	vms, f := fleet("flaky", "endpoint-down")
	f.clk = scaled()
	n := &atomic.Int32{}
	n.Store(2)
	f.flaky.Store(vms[0].ID, n)
	got, err := Assess(context.Background(), vms, AssessOptions{Incident: inc, Observer: f, Prober: f, Clock: f.clk})
	if err != nil {
		t.Fatal(err)
	}
	if c := got[0].Classification; c.State != inventory.StateHealthy {
		t.Errorf("a guest whose address lookup failed twice, then answered: %s %q, want healthy", c.State, c.Reasons)
	}
	c := got[1].Classification
	r := strings.Join(c.Reasons, " ")
	if c.State != inventory.StateUnknown || strings.Contains(r, "WinRM does not") || strings.Contains(r, "firewall") ||
		!strings.Contains(r, "could not say where the guest is") {
		t.Errorf("a guest whose address the cloud never gave: %s %q, want unknown for a control-plane reason", c.State, c.Reasons)
	}
}

func TestAssessErrors(t *testing.T) {
	throttled := providers.Errorf(providers.ErrThrottled, "Observe", "", "slow down")
	denied := providers.Errorf(providers.ErrPermanent, "Observe", "", "access denied")
	tests := []struct {
		name     string
		failures []error
		retries  int
		want     []string
		is       error
	}{
		{"permanent", []error{denied}, 0, []string{"acme/prod (sim)", "VM vm-00", "access denied"}, providers.ErrPermanent},
		{"retries exhausted", []error{throttled, throttled, throttled}, 2, []string{"after 3 attempts", "throttled"}, providers.ErrThrottled},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			vms, f := fleet("loop", "healthy")
			f.clk = scaled()
			f.failures = tc.failures
			_, err := Assess(context.Background(), vms, AssessOptions{Incident: inc, Observer: f, Clock: f.clk, Retries: tc.retries})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func TestAssessDuplicateAndCancel(t *testing.T) {
	vms, f := fleet("loop", "loop")
	f.clk = scaled()
	vms[1].ID = vms[0].ID
	if _, err := Assess(context.Background(), vms, AssessOptions{Observer: f, Clock: f.clk}); err == nil || !strings.Contains(err.Error(), "appears twice") {
		t.Errorf("duplicate: %v", err)
	}
	vms, f = fleet("loop")
	f.clk = clock.Real{}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Assess(ctx, vms, AssessOptions{Observer: f, Clock: f.clk}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}
	if _, err := Assess(context.Background(), vms, AssessOptions{}); err == nil {
		t.Error("nil observer accepted")
	}
}
