package plan

import (
	"container/heap"
	"fmt"
	"math"
	"sort"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/remediate/policy"
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
}

// cost is a duration and a count of API calls.
type cost struct {
	d     time.Duration
	calls int
}

func (c cost) add(o cost) cost { return cost{c.d + o.d, c.calls + o.calls} }

func (c cost) times(x float64) cost {
	return cost{time.Duration(float64(c.d) * x), int(math.Round(float64(c.calls) * x))}
}

// op is one cloud operation: its middle duration, one call to start it and
// one poll per PollInterval while it runs.
func op(o timing.Op) cost {
	d := timing.Of(o).Mid()
	return cost{d, 1 + int((d+PollInterval-1)/PollInterval)}
}

// script is one guest script over WinRM: no control-plane call.
func script(n int) cost { return cost{time.Duration(n) * timing.Of(timing.OpGuestScript).Mid(), 0} }

// recheck is the re-check right before acting: one Observe call and one
// guest probe script.
func recheck() cost { return cost{timing.Of(timing.OpAPICall).Mid(), 1}.add(script(1)) }

// Formulas, documented in StrategyCost.Formula.
const (
	formulaReboot  = "recheck + E × (restart + crash-cycle), E = Σ_{k<max_restarts} (1-p)^k expected restarts, p = timing.NaturalRecoveryPerBoot; per VM, plus (1-p)^max_restarts × the first fallback's cost"
	formulaDelete  = "recheck + snapshot + 2 guest scripts (delete-files, clear-safeboot) + restart + boot-to-winrm + 1 guest script (verify)"
	formulaHelper  = "recheck + snapshot + stop + detach + attach + 6 guest scripts (list-disks, online-disk, delete-files, check-hives, set-disk-identity, offline-disk; +1 unlock-volume if BitLocker) + detach + attach + start + boot-to-winrm + 1 guest script (verify); the first VM of each helper (account, zone, release) also waits helper-create"
	formulaRestore = "recheck + disk-from-snapshot (restore) + stop + detach + attach + start + boot-to-winrm + 1 guest script (verify)"
)

// rebootAttempts is the expected number of restarts under reboot-retry and
// the chance that they all fail.
func rebootAttempts(maxRestarts int) (expected, pFail float64) {
	q := 1 - timing.NaturalRecoveryPerBoot
	for k := 0; k < maxRestarts; k++ {
		expected += math.Pow(q, float64(k))
	}
	return expected, math.Pow(q, float64(maxRestarts))
}

// strategyCost is the cost of one VM under s (without fallbacks nor helper
// creation).
func strategyCost(s policy.Strategy, pol policy.Policy, bitlocker bool) cost {
	switch s {
	case policy.RebootRetry:
		e, _ := rebootAttempts(pol.RebootRetry.MaxRestarts)
		per := op(timing.OpRestart).add(cost{timing.Of(timing.OpCrashCycle).Mid(), 1}) // one Observe per attempt
		return recheck().add(per.times(e))
	case policy.DeleteFile:
		return recheck().add(op(timing.OpSnapshot)).add(script(2)).add(op(timing.OpRestart)).
			add(op(timing.OpBootToWinRM)).add(script(1))
	case policy.HelperMount:
		n := 6
		if bitlocker {
			n++
		}
		return recheck().add(op(timing.OpSnapshot)).add(op(timing.OpStop)).add(op(timing.OpDetach)).
			add(op(timing.OpAttach)).add(script(n)).add(op(timing.OpDetach)).add(op(timing.OpAttach)).
			add(op(timing.OpStart)).add(op(timing.OpBootToWinRM)).add(script(1))
	case policy.RestoreBackup:
		return recheck().add(op(timing.OpDiskFromSnapshot)).add(op(timing.OpStop)).add(op(timing.OpDetach)).
			add(op(timing.OpAttach)).add(op(timing.OpStart)).add(op(timing.OpBootToWinRM)).add(script(1))
	}
	return cost{}
}

// vmCost is the expected cost of one planned VM: its strategy, plus for
// reboot-retry the chance it fails times its first fallback's cost.
func vmCost(v VMPlan, pol policy.Policy) cost {
	if !v.Acts() {
		return cost{}
	}
	bl := v.OSDisk.Encryption.BitLocker
	c := strategyCost(v.Strategy, pol, bl)
	if v.Strategy == policy.RebootRetry && len(v.Fallbacks) > 0 {
		_, pFail := rebootAttempts(pol.RebootRetry.MaxRestarts)
		c = c.add(strategyCost(v.Fallbacks[0], pol, bl).times(pFail))
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
func estimate(p *Plan) Estimate {
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
			"the canary wave runs alone; the other waves' VMs then start in wave order as slots free up",
			"control-plane throttling and outages are not modelled: the real run can be slower",
		},
	}
	formulas := map[policy.Strategy]string{
		policy.RebootRetry: formulaReboot, policy.DeleteFile: formulaDelete,
		policy.HelperMount: formulaHelper, policy.RestoreBackup: formulaRestore,
	}
	for _, s := range policy.Strategies {
		c := strategyCost(s, pol, false)
		e.PerStrategy[s] = StrategyCost{Seconds: ceilSeconds(c.d), APICalls: c.calls, Formula: formulas[s]}
	}
	index := map[string]int{}
	for i, v := range p.VMs {
		index[v.Key] = i
		e.ByState[v.State]++
		e.ByStrategy[v.Strategy]++
	}

	helperCreate := op(timing.OpHelperCreate).add(cost{timing.Of(timing.OpAPICall).Mid(), 1}) // + Release
	helpersMade := map[string]bool{}
	durs := make([]time.Duration, len(p.VMs))
	for _, w := range p.Waves {
		for _, k := range w.VMs {
			i := index[k]
			v := &p.VMs[i]
			c := vmCost(*v, pol)
			if v.Strategy == policy.HelperMount {
				if g := helperGroup(*v); !helpersMade[g] {
					helpersMade[g] = true
					c = c.add(helperCreate)
				}
			}
			durs[i] = c.d
			v.EstimateSeconds = ceilSeconds(c.d)
			v.APICalls = c.calls
			e.APICalls[AccountKey(v.Tenant, v.Account)] += c.calls
			e.APICallsTotal += c.calls
		}
	}

	end := schedule(p, index, durs, pol.Concurrency)
	e.DurationSeconds = ceilSeconds(end)
	e.Duration = fmtDur(time.Duration(e.DurationSeconds) * time.Second)
	if len(p.Waves) > 0 {
		e.CanarySeconds = p.Waves[0].EndSeconds
	}
	return e
}

// schedule list-schedules the VMs, wave by wave and longest VM first within
// a wave, on conc.Total global slots and conc.PerAccount slots per account,
// as apply runs them: the canary wave alone first; then every other wave's
// VMs in order, each starting as soon as the canary has ended and both a
// global and an account slot are free. It sets each wave's start and end
// and returns the end of the last VM. Giving more slots never makes a VM
// start later, so the makespan never grows with concurrency.
func schedule(p *Plan, index map[string]int, durs []time.Duration, conc policy.Concurrency) time.Duration {
	global := newSlots(conc.Total)
	accounts := map[string]*slots{}
	var canaryEnd, last time.Duration
	for w := range p.Waves {
		wave := &p.Waves[w]
		start := canaryEnd
		order := make([]int, len(wave.VMs))
		for j, k := range wave.VMs {
			order[j] = index[k]
		}
		sort.SliceStable(order, func(a, b int) bool { return durs[order[a]] > durs[order[b]] })
		first, end := time.Duration(-1), start
		for _, i := range order {
			v := p.VMs[i]
			ak := AccountKey(v.Tenant, v.Account)
			acct := accounts[ak]
			if acct == nil {
				acct = newSlots(conc.PerAccount)
				accounts[ak] = acct
			}
			s := max(start, global.earliest(), acct.earliest())
			f := s + durs[i]
			global.take(f)
			acct.take(f)
			end = max(end, f)
			if first < 0 || s < first {
				first = s
			}
		}
		wave.StartSeconds = ceilSeconds(max(first, start))
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
