package apply

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/brake"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

var t0 = time.Date(2024, 7, 19, 6, 0, 0, 0, time.UTC)

// fleet describes a test plan.
type fleet struct {
	id         string
	acts       int // VMs acted on (reboot-retry, fallback helper-mount)
	accounts   int // acted-on VMs are spread round-robin over accounts
	healthy    int // strategy none
	manual     int // strategy manual
	canary     int
	waveSize   int
	total      int // concurrency
	perAccount int
	threshold  float64
}

func (f fleet) build(t testing.TB) *plan.Plan {
	t.Helper()
	inc, err := inventory.LookupIncident(inventory.CrowdStrike20240719)
	if err != nil {
		t.Fatal(err)
	}
	pol := policy.Default()
	pol.Canary = max(f.canary, 1)
	pol.WaveSize = max(f.waveSize, 1)
	pol.Concurrency = policy.Concurrency{Total: max(f.total, 1), PerAccount: max(f.perAccount, 1)}
	if f.threshold > 0 {
		pol.FailureThreshold = f.threshold
	}
	p := &plan.Plan{Version: plan.Version, ID: f.id, CreatedAt: t0, Incident: inc, Policy: pol, VMs: []plan.VMPlan{}}
	acc := max(f.accounts, 1)
	var act []string
	for i := 0; i < f.acts; i++ {
		loc := inventory.Location{Tenant: "t", Account: fmt.Sprintf("a%d", i%acc), Provider: "sim", Zone: "is1a"}
		id := fmt.Sprintf("vm%02d", i)
		p.VMs = append(p.VMs, plan.VMPlan{Key: loc.Tenant + "/" + loc.Account + "/" + id, Location: loc, ID: id, Name: id,
			State: inventory.StateBootLoop, Strategy: policy.RebootRetry, Fallbacks: []policy.Strategy{policy.HelperMount},
			Helper:  &plan.PlannedHelper{Zone: "is1a", ImageID: "img", SameRelease: true},
			Reasons: []string{"boot loop"}})
		act = append(act, p.VMs[len(p.VMs)-1].Key)
	}
	for i := 0; i < f.healthy; i++ {
		loc := inventory.Location{Tenant: "t", Account: "a0", Provider: "sim", Zone: "is1a"}
		id := fmt.Sprintf("ok%02d", i)
		p.VMs = append(p.VMs, plan.VMPlan{Key: "t/a0/" + id, Location: loc, ID: id, State: inventory.StateHealthy,
			Strategy: plan.None, Reasons: []string{"healthy"}})
	}
	for i := 0; i < f.manual; i++ {
		loc := inventory.Location{Tenant: "t", Account: "a0", Provider: "sim", Zone: "is1a"}
		id := fmt.Sprintf("man%02d", i)
		p.VMs = append(p.VMs, plan.VMPlan{Key: "t/a0/" + id, Location: loc, ID: id, State: inventory.StateUnknown,
			Strategy: plan.Manual, Reasons: []string{"no evidence: check the console"}})
	}
	idx := map[string]int{}
	for i, v := range p.VMs {
		idx[v.Key] = i
	}
	addWave := func(keys []string) {
		n := len(p.Waves) + 1
		name := fmt.Sprintf("wave %d", n)
		if n == 1 {
			name = "canary"
		}
		p.Waves = append(p.Waves, plan.Wave{Number: n, Name: name, VMs: keys})
		for _, k := range keys {
			p.VMs[idx[k]].Wave = n
		}
	}
	if len(act) > 0 {
		c := min(pol.Canary, len(act))
		addWave(act[:c])
		for lo := c; lo < len(act); lo += pol.WaveSize {
			addWave(act[lo:min(lo+pol.WaveSize, len(act))])
		}
	} else {
		p.Waves = []plan.Wave{}
	}
	if err := p.Validate(); err != nil {
		t.Fatalf("test plan invalid: %v", err)
	}
	return p
}

// behavior decides what a fake step does: vm key, step name, how many
// times this step of this VM has been called (1-based), the facts.
type behavior func(vm, name string, n int, facts step.Facts) (step.Facts, error)

func okStep(vm, name string, n int, facts step.Facts) (step.Facts, error) {
	return step.Facts{step.Fact(name + ".done"): "yes"}, nil
}

// fakeStrategy is a strategy of named steps with scripted behaviour.
type fakeStrategy struct {
	name  policy.Strategy
	steps []string
	run   behavior
	// readOnlyStep, when set, says which steps are read-only (default: "recheck").
	readOnlyStep func(name string) bool
	// early names the step marked step.Step.Early (and read-only), if any.
	early string
	// condition is what Conditional says ("": the fake runs
	// unconditionally).
	condition string
	abort     behavior // nil: ok

	mu          sync.Mutex
	calls       map[string]int // vm + "/" + step -> calls (abort as "abort")
	inFlight    map[string]int // account -> steps running
	maxAccount  int
	total, maxT int
}

func newFake(name policy.Strategy, run behavior, steps ...string) *fakeStrategy {
	if run == nil {
		run = okStep
	}
	return &fakeStrategy{name: name, steps: steps, run: run, calls: map[string]int{}, inFlight: map[string]int{}}
}

func (f *fakeStrategy) Name() policy.Strategy { return f.name }

// Conditional implements step.Conditional: the fake's condition.
func (f *fakeStrategy) Conditional(*step.Target) string { return f.condition }

// readOnly marks the fake's read-only steps: "recheck", or those
// readOnlyStep says.
func (f *fakeStrategy) readOnly(name string) bool {
	if f.readOnlyStep != nil {
		return f.readOnlyStep(name)
	}
	return name == "recheck"
}

func (f *fakeStrategy) enter(vm *step.Target, name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := vm.Key + "/" + name
	f.calls[k]++
	f.inFlight[vm.Account]++
	f.total++
	f.maxAccount = max(f.maxAccount, f.inFlight[vm.Account])
	f.maxT = max(f.maxT, f.total)
	return f.calls[k]
}

func (f *fakeStrategy) leave(vm *step.Target) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.inFlight[vm.Account]--
	f.total--
}

func (f *fakeStrategy) Steps(vm *step.Target, _ policy.Policy) []step.Step {
	var out []step.Step
	for _, name := range f.steps {
		out = append(out, step.Step{Name: name, ReadOnly: f.readOnly(name) || name == f.early, Early: name == f.early, Run: func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
			n := f.enter(vm, name)
			defer f.leave(vm)
			if env == nil || env.RunID == "" {
				return nil, fmt.Errorf("env without run ID")
			}
			time.Sleep(100 * time.Microsecond) // let VMs overlap
			return f.run(vm.Key, name, n, facts)
		}})
	}
	return out
}

func (f *fakeStrategy) Abort(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error) {
	n := f.enter(vm, StepAbort)
	defer f.leave(vm)
	if f.abort == nil {
		return step.Facts{"aborted": string(f.name)}, nil
	}
	return f.abort(vm.Key, StepAbort, n, facts)
}

func (f *fakeStrategy) count(vm, name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[vm+"/"+name]
}

func (f *fakeStrategy) sum(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for k, v := range f.calls {
		if filepath.Base(k) == name {
			n += v
		}
	}
	return n
}

// harness holds one test's journal and options.
type harness struct {
	t      *testing.T
	path   string
	j      *journal.Journal
	clk    clock.Clock
	mu     sync.Mutex
	events []Event
}

func newHarness(t *testing.T, jopts ...journal.Option) *harness {
	t.Helper()
	return openHarness(t, clock.NewScaled(t0, 10000), jopts...)
}

// newVirtualHarness is a harness on virtual time: call it inside a
// synctest bubble (synctest.Test), where time moves only when every
// goroutine waits, so that a loaded machine cannot stretch a run.
func newVirtualHarness(t *testing.T, jopts ...journal.Option) *harness {
	t.Helper()
	return openHarness(t, clock.NewOffset(t0), jopts...)
}

func openHarness(t *testing.T, clk clock.Clock, jopts ...journal.Option) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "fixfleet.db"), clk: clk}
	j, err := journal.Open(context.Background(), h.path, jopts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = j.Close() })
	h.j = j
	return h
}

func (h *harness) opts(p *plan.Plan, strats ...*fakeStrategy) Options {
	envs := map[string]*step.Env{}
	for _, v := range p.VMs {
		envs[plan.AccountKey(v.Tenant, v.Account)] = &step.Env{}
	}
	sm := map[policy.Strategy]step.Strategy{}
	for _, s := range strats {
		sm[s.name] = s
	}
	return Options{
		Journal: h.j, Envs: envs, Strategies: sm, Clock: h.clk,
		Owner: journal.Owner{Host: mustHost(h.t), PID: os.Getpid(), Command: "fixfleet apply (test)"},
		Events: func(e Event) {
			h.mu.Lock()
			h.events = append(h.events, e)
			h.mu.Unlock()
		},
		Retry:   Retry{Backoff: brake.Backoff{Base: time.Second, Max: 10 * time.Second}},
		Breaker: brake.BreakerConfig{CoolDown: 10 * time.Second, Poll: 200 * time.Millisecond},
	}
}

func mustHost(t testing.TB) string {
	h, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) kinds() map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string]int{}
	for _, e := range h.events {
		out[e.Kind]++
	}
	return out
}

func (h *harness) vm(runID, key string) journal.VM {
	h.t.Helper()
	v, err := h.j.GetVM(context.Background(), runID, key)
	if err != nil {
		h.t.Fatal(err)
	}
	return v
}
