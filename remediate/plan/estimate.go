package plan

import (
	"container/heap"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// PollInterval is how often, by assumption, a provider polls an
// asynchronous cloud operation; it turns durations into API-call counts.
const PollInterval = 15 * time.Second

// Estimate is the plan's forecast. Durations use the middle of each
// timing.Range.
type Estimate struct {
	// DurationSeconds is the makespan: from the start of apply until the
	// last wave ends.
	DurationSeconds int64  `json:"duration_seconds"`
	Duration        string `json:"duration"` // e.g. "2h03m"
	// CanarySeconds is when the canary wave ends.
	CanarySeconds int64              `json:"canary_seconds"`
	Concurrency   policy.Concurrency `json:"concurrency"`
	// PerStrategy is the nominal cost of one VM per strategy (no BitLocker
	// unlock, helper already running, no fallback).
	PerStrategy map[policy.Strategy]StrategyCost `json:"per_strategy"`
	// APICalls counts expected control-plane calls per account
	// (AccountKey), helpers' creation and release included.
	APICalls      map[string]int `json:"api_calls"`
	APICallsTotal int            `json:"api_calls_total"`
	// ByState and ByStrategy count the VMs.
	ByState     map[inventory.State]int `json:"by_state"`
	ByStrategy  map[policy.Strategy]int `json:"by_strategy"`
	Assumptions []string                `json:"assumptions"`
}

// StrategyCost is the expected cost of one VM under a strategy.
type StrategyCost struct {
	Seconds  int64  `json:"seconds"`
	APICalls int    `json:"api_calls"`
	Formula  string `json:"formula"`
	// Steps are the strategy's steps with their share of the cost.
	Steps []StepCost `json:"steps"`
}

// cost is a duration and a count of API calls; early is the part of d
// that a VM's own Early steps take (its snapshot), which apply runs ahead
// of the VM's turn (schedule).
type cost struct {
	d     time.Duration
	calls int
	early time.Duration
}

// add is c followed by o; its early part stays c's (what o adds, a
// fallback or a helper's creation, is not run ahead).
func (c cost) add(o cost) cost { return cost{c.d + o.d, c.calls + o.calls, c.early} }

func (c cost) times(x float64) cost {
	return cost{time.Duration(float64(c.d) * x), int(math.Round(float64(c.calls) * x)), time.Duration(float64(c.early) * x)}
}

// op is one cloud operation: its middle duration, one call to start it and
// one poll per PollInterval while it runs.
func op(o timing.Op) cost {
	d := timing.Of(o).Mid()
	return cost{d: d, calls: 1 + int((d+PollInterval-1)/PollInterval)}
}

// stepCost is the expected cost of one run of st: its operations, its
// waits, its immediate calls and its guest scripts, times its chance to
// run. Calls are a float: a step that may not run counts its chance.
func stepCost(st step.Step) (time.Duration, float64) {
	var d time.Duration
	calls := st.Cost.Calls
	for _, o := range st.Cost.Ops {
		c := op(o)
		d, calls = d+c.d, calls+c.calls
	}
	for _, o := range st.Cost.Waits {
		d += timing.Of(o).Mid()
	}
	d += time.Duration(st.Cost.Calls)*timing.Of(timing.OpAPICall).Mid() +
		time.Duration(st.Cost.Scripts)*timing.Of(timing.OpGuestScript).Mid()
	if ch := st.Cost.Chance; ch > 0 {
		return time.Duration(float64(d) * ch), float64(calls) * ch
	}
	return d, float64(calls)
}

// StepCost is one step's part of a StrategyCost.
type StepCost struct {
	Step     string  `json:"step"`
	Seconds  float64 `json:"seconds"`
	APICalls float64 `json:"api_calls"`
}

// strategyCost is the cost of one VM under u (without fallbacks nor helper
// creation): the sum of its steps' costs for target t, its Early steps'
// time as its early part. As a fallback (fallback set), its Early steps
// add their calls but no time: the executor takes them ahead, while the
// strategy before it tries.
func strategyCost(u strategy.Unit, t *step.Target, pol policy.Policy, fallback bool) (cost, []StepCost) {
	var d, early time.Duration
	var calls float64
	var steps []StepCost
	for _, st := range u.Steps(t, pol) {
		sd, sc := stepCost(st)
		switch {
		case st.Early && fallback:
			sd = 0
		case st.Early:
			early += sd
		}
		d, calls = d+sd, calls+sc
		steps = append(steps, StepCost{Step: st.Name, Seconds: sd.Seconds(), APICalls: sc})
	}
	return cost{d, int(math.Round(calls)), early}, steps
}

// formula writes the cost of a strategy as its steps' costs.
func formula(u strategy.Unit, t *step.Target, pol policy.Policy) string {
	var parts []string
	for _, st := range u.Steps(t, pol) {
		var what []string
		for _, o := range st.Cost.Ops {
			what = append(what, string(o))
		}
		for _, o := range st.Cost.Waits {
			what = append(what, string(o))
		}
		if n := st.Cost.Calls; n > 0 {
			what = append(what, plural(n, "call"))
		}
		if n := st.Cost.Scripts; n > 0 {
			what = append(what, plural(n, "guest script"))
		}
		if len(what) == 0 {
			continue
		}
		part := st.Name + " (" + strings.Join(what, ", ") + ")"
		if st.Cost.Chance > 0 && st.Cost.Chance < 1 {
			part += fmt.Sprintf(" × %.3f", st.Cost.Chance)
		}
		parts = append(parts, part)
	}
	return strings.Join(parts, " + ")
}

// plural writes "1 call", "2 calls".
func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// vmCost is the expected cost of one planned VM: its strategy, plus the
// chance it fails times its first fallback's cost (the first that runs
// unconditionally: see step.Conditional).
func vmCost(v VMPlan, reg *strategy.Registry, pol policy.Policy) cost {
	if !v.Acts() {
		return cost{}
	}
	u, ok := reg.Get(v.Strategy)
	if !ok {
		return cost{}
	}
	t := v.Target()
	c, _ := strategyCost(u, t, pol, false)
	p := u.FailureChance(pol)
	if p == 0 {
		return c
	}
	for _, s := range v.Fallbacks {
		fb, ok := reg.Get(s)
		if !ok {
			return c
		}
		if step.ConditionOf(fb, t) != "" {
			continue
		}
		fc, _ := strategyCost(fb, t, pol, true)
		return c.add(fc.times(p))
	}
	return c
}

func helperGroup(v VMPlan) string {
	if v.Helper == nil {
		return ""
	}
	return AccountKey(v.Tenant, v.Account) + "|" + v.Helper.Zone + "|" + v.Helper.Windows.Release
}

// estimate fills VMPlan.EstimateSeconds/APICalls and Wave start/end, and
// returns the plan's estimate.
func estimate(p *Plan, reg *strategy.Registry) Estimate {
	pol := p.Policy
	e := Estimate{
		Concurrency: pol.Concurrency,
		PerStrategy: map[policy.Strategy]StrategyCost{},
		APICalls:    map[string]int{},
		ByState:     map[inventory.State]int{},
		ByStrategy:  map[policy.Strategy]int{},
		Assumptions: []string{
			"durations are the middle of each range in inventory/timing",
			fmt.Sprintf("a provider polls an asynchronous operation every %s", PollInterval),
			"the canary wave runs alone; the other waves' VMs then start in wave order as slots free up, each once the canary VMs of its strategy and account have ended (or the whole canary, where none has its strategy and account)",
			"a fallback's early steps (its snapshot) run while the strategy before it tries: they add calls, not time",
			"a VM's own early steps (its snapshot) run from the start of apply, per_account at a time per account in the VMs' order: what of them is done when the VM's turn comes is off its time",
			"control-plane throttling and outages are not modelled: the real run can be slower",
		},
	}
	nominal := &step.Target{} // no BitLocker, no planned helper or backup
	for _, u := range reg.All() {
		c, steps := strategyCost(u, nominal, pol, false)
		f := formula(u, nominal, pol)
		if u.FailureChance(pol) > 0 {
			f += fmt.Sprintf("; per VM, plus %.3f × the first fallback's cost", u.FailureChance(pol))
		}
		if u.Needs().Helper {
			f += "; the first VM of each helper (account, zone, release) also waits helper-create"
		}
		e.PerStrategy[u.Name()] = StrategyCost{Seconds: ceilSeconds(c.d), APICalls: c.calls, Formula: f, Steps: steps}
	}
	index := map[string]int{}
	for i, v := range p.VMs {
		index[v.Key] = i
		e.ByState[v.State]++
		e.ByStrategy[v.Strategy]++
	}

	helperCreate := op(timing.OpHelperCreate).add(cost{d: timing.Of(timing.OpAPICall).Mid(), calls: 1}) // + Release
	helpersMade := map[string]bool{}
	durs := make([]time.Duration, len(p.VMs))
	early := make([]time.Duration, len(p.VMs))
	for _, w := range p.Waves {
		for _, k := range w.VMs {
			i := index[k]
			v := &p.VMs[i]
			c := vmCost(*v, reg, pol)
			if u, ok := reg.Get(v.Strategy); ok && u.Needs().Helper {
				if g := helperGroup(*v); !helpersMade[g] {
					helpersMade[g] = true
					c = c.add(helperCreate)
				}
			}
			durs[i], early[i] = c.d, c.early
			v.EstimateSeconds = ceilSeconds(c.d)
			v.APICalls = c.calls
			e.APICalls[AccountKey(v.Tenant, v.Account)] += c.calls
			e.APICallsTotal += c.calls
		}
	}

	end := schedule(p, index, durs, early, pol.Concurrency)
	e.DurationSeconds = ceilSeconds(end)
	e.Duration = timing.Format(time.Duration(e.DurationSeconds) * time.Second)
	if len(p.Waves) > 0 {
		e.CanarySeconds = p.Waves[0].EndSeconds
	}
	return e
}

// schedule list-schedules the VMs, wave by wave and longest VM first within
// a wave, on conc.Total global slots and conc.PerAccount slots per account,
// as apply runs them: the canary wave alone first; then every other wave's
// VMs in order, each starting as soon as the canary VMs of its canary group
// have ended (the whole canary, for a group without any), and both a
// global and an account slot are free. Each VM's early steps (early: their
// time) run on conc.PerAccount early slots of its account from the start,
// in the same order, as apply's early runs do; the part of them done when
// the VM starts is off its time (a VM that starts before its early run
// could begin takes its own snapshot, and no early slot). It sets each
// wave's start and end and returns the end of the last VM.
func schedule(p *Plan, index map[string]int, durs, early []time.Duration, conc policy.Concurrency) time.Duration {
	global := newSlots(conc.Total)
	accounts := map[string]*slots{}
	earlySlots := map[string]*slots{}
	var canaryEnd, last time.Duration
	groupEnd := map[string]time.Duration{} // canary group -> its canary VMs' end
	for w := range p.Waves {
		wave := &p.Waves[w]
		order := make([]int, len(wave.VMs))
		for j, k := range wave.VMs {
			order[j] = index[k]
		}
		sort.SliceStable(order, func(a, b int) bool { return durs[order[a]] > durs[order[b]] })
		first, end := time.Duration(-1), time.Duration(0)
		for _, i := range order {
			v := p.VMs[i]
			ak := AccountKey(v.Tenant, v.Account)
			acct := accounts[ak]
			if acct == nil {
				acct, earlySlots[ak] = newSlots(conc.PerAccount), newSlots(conc.PerAccount)
				accounts[ak] = acct
			}
			start := canaryEnd
			if e, ok := groupEnd[CanaryGroup(v)]; ok && w > 0 {
				start = e
			}
			s := max(start, global.earliest(), acct.earliest())
			f := s + durs[i]
			if e := earlySlots[ak].earliest(); early[i] > 0 && e < s {
				done := min(early[i], s-e)
				earlySlots[ak].take(e + early[i])
				f -= done
			}
			global.take(f)
			acct.take(f)
			end = max(end, f)
			if first < 0 || s < first {
				first = s
			}
			if w == 0 {
				groupEnd[CanaryGroup(v)] = max(groupEnd[CanaryGroup(v)], f)
			}
		}
		wave.StartSeconds = ceilSeconds(max(first, 0))
		wave.EndSeconds = ceilSeconds(end)
		if w == 0 {
			canaryEnd = end
		}
		last = max(last, end)
	}
	return last
}

// ceilSeconds rounds d up to whole seconds.
func ceilSeconds(d time.Duration) int64 { return int64((d + time.Second - 1) / time.Second) }

// slots is a min-heap of the times at which each slot becomes free.
type slots []time.Duration

func newSlots(n int) *slots {
	s := make(slots, max(n, 1))
	return &s
}

func (s slots) Len() int           { return len(s) }
func (s slots) Less(i, j int) bool { return s[i] < s[j] }
func (s slots) Swap(i, j int)      { s[i], s[j] = s[j], s[i] }
func (s *slots) Push(x any)        { *s = append(*s, x.(time.Duration)) }
func (s *slots) Pop() any {
	old := *s
	x := old[len(old)-1]
	*s = old[:len(old)-1]
	return x
}

// earliest is when the first slot is free.
func (s *slots) earliest() time.Duration { return (*s)[0] }

// take occupies the earliest slot until free.
func (s *slots) take(free time.Duration) {
	(*s)[0] = free
	heap.Fix(s, 0)
}
