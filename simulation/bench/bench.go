// Package bench is the incident benchmark's measure: one simulated
// incident, the world's lower bound on its makespan, the world's truth
// about which VMs were broken and when they came back, and the baselines
// (per-VM repair tools as policies of the same executor, on a fresh copy
// of the same world). TestIncidentBenchmark runs it on virtual time and
// writes Report as JSON; docs/benchmark.md describes the fields.
//
// Nothing here opens a bubble or reads the wall clock: the test does both.
package bench

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync/atomic"
	"time"

	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/simulation"
)

// Options are the benchmark's inputs (its FIXFLEET_BENCH_* variables).
type Options struct {
	VMs      int
	Seed     int64
	Provider string // a simulation face: sim, sakura, aws
	// FaultRate, DropBefore and DropAfter are demo's --fault-rate,
	// --drop-before and --drop-after; Mix its --mix.
	FaultRate, DropBefore, DropAfter float64
	Mix                              string
	// Concurrency, when > 0, is the policy's concurrency, in total and per
	// account (FIXFLEET_BENCH_CONCURRENCY); 0 keeps the default policy's.
	Concurrency int
	// Journal, when set, is where the main run's journal is kept
	// (FIXFLEET_BENCH_JOURNAL), for `fixfleet status --journal` and
	// `fixfleet report` to read; "" keeps none. The baselines keep none.
	Journal string
	// JournalDir is where the journals not kept are made (the main run's
	// when Journal is "", and the baselines'): FIXFLEET_BENCH_JOURNAL_DIR.
	// "" is the system's temporary directory. See DefaultJournalDir.
	JournalDir string
}

// DefaultJournalDir is the benchmark's journal directory when
// FIXFLEET_BENCH_JOURNAL_DIR is unset: /dev/shm (memory) where the host
// has it, else "" (the system's temporary directory). The journals are
// the product's (WAL, synchronous=FULL, every fsync made); in memory an
// fsync returns at once. On virtual time the fsyncs of the journal's
// group commits otherwise stall the whole simulated incident for the
// disk's latency each (the clock waits for every goroutine), which a real
// run overlaps with its waits on the cloud: the benchmark would measure
// the host's disk rather than the orchestrator.
func DefaultJournalDir(isDir func(string) bool) string {
	if isDir("/dev/shm") {
		return "/dev/shm"
	}
	return ""
}

// Incident is the incident o describes, as `fixfleet demo` runs it: the
// demo's faults (simple throttling, calibrated latency) and policy
// (restore-backup allowed), the default concurrency.
func (o Options) Incident() simulation.RunOptions {
	f := simulation.DefaultFaults()
	f.ErrorRate, f.DropBefore, f.DropAfter = o.FaultRate, o.DropBefore, o.DropAfter
	return simulation.RunOptions{
		Options:    simulation.Options{World: simulation.WorldOptions{VMs: o.VMs, Seed: o.Seed, Mix: o.Mix}, Faults: &f, Face: o.Provider},
		JournalDir: o.JournalDir,
		Policy: func(p policy.Policy) (policy.Policy, error) {
			p.AllowDataLoss = true
			if o.Concurrency > 0 {
				p.Concurrency = policy.Concurrency{Total: o.Concurrency, PerAccount: o.Concurrency}
			}
			return p, p.Validate()
		},
	}
}

// Baseline is a per-VM repair tool's shape, as a policy of the same
// executor: Concurrency VMs at a time, each on a new helper of its own
// (no helper shared or reused), each VM's re-checks its own calls, and no
// fleet brake (per-VM tools have none: the failure threshold is 1).
type Baseline struct {
	Name        string
	Concurrency int
	// SampleFor, when > 0, stops the run after that much simulated apply
	// time and extrapolates the makespan from the VMs finished by then.
	SampleFor time.Duration
}

// Baselines are the benchmark's two: serial (one VM at a time, the shape
// of `az vm repair`), sampled for at most sample of simulated apply time,
// and helper_per_vm (100 at a time, the shape of EC2Rescue's automation
// with its 100 concurrent executions).
func Baselines(sample time.Duration) []Baseline {
	return []Baseline{
		{Name: "serial", Concurrency: 1, SampleFor: sample},
		{Name: "helper_per_vm", Concurrency: 100},
	}
}

// Incident is o's incident run as b.
func (b Baseline) Incident(o Options) simulation.RunOptions {
	ro := o.Incident()
	ro.Policy = func(p policy.Policy) (policy.Policy, error) {
		p.AllowDataLoss = true
		p.Concurrency = policy.Concurrency{Total: b.Concurrency, PerAccount: b.Concurrency}
		p.FailureThreshold = 1
		return p, p.Validate()
	}
	ro.Apply = fleet.ApplyOptions{Helpers: fleet.HelperShape{PerHelper: 1, Fresh: true}, NoCoalesce: true}
	ro.ApplyFor = b.SampleFor
	return ro
}

// BaselineResult is a baseline's makespan.
type BaselineResult struct {
	MakespanSec float64 `json:"makespan_seconds"`
	// Extrapolated: the run was stopped after a sample of the VMs, and
	// the makespan is the sample's apply time scaled to every VM it had to
	// act on (plus the assessment).
	Extrapolated bool `json:"extrapolated"`
	SampleVMs    int  `json:"sample_vms,omitempty"`
	Concurrency  int  `json:"concurrency"`
	Fixed        int  `json:"fixed"`
	// WallSec is the real time the baseline's run took (the machine's
	// figure, filled by the caller). The baselines run at once: their
	// CPU time is Report.BaselinesCPUSec, together.
	WallSec float64 `json:"wall_seconds"`
}

// RunBaseline runs b's incident on bk (a fresh world of o's seed).
func RunBaseline(ctx context.Context, bk *simulation.Backend, o Options, b Baseline) (BaselineResult, error) {
	s, err := bk.Run(ctx, b.Incident(o))
	if err != nil {
		return BaselineResult{}, fmt.Errorf("baseline %s: %w", b.Name, err)
	}
	r := BaselineResult{MakespanSec: s.ElapsedSec, Concurrency: b.Concurrency, Fixed: s.Fixed}
	switch {
	case s.RunStatus == apply.RunDone:
	case s.RunStatus != apply.RunPausedInterrupt || b.SampleFor <= 0:
		return r, fmt.Errorf("baseline %s: the run ended %q, not done: its makespan would mean nothing", b.Name, s.RunStatus)
	default:
		done := s.Fixed + s.FoundHealthy + acted(s) // acted counts the failed too
		if done == 0 {
			return r, fmt.Errorf("baseline %s: no VM finished within the %s sample", b.Name, b.SampleFor)
		}
		applied := s.ElapsedSec - s.AssessSec
		r.MakespanSec = s.AssessSec + applied*float64(done+s.Pending)/float64(done)
		r.Extrapolated, r.SampleVMs = true, done
	}
	return r, nil
}

// acted counts the flagged VMs the executor acted on (not those the plan
// left to a person).
func acted(s simulation.Summary) int {
	n := 0
	for _, f := range s.FlaggedVMs {
		if f.Strategy != string(plan.Manual) {
			n++
		}
	}
	return n
}

// Report is the benchmark's JSON object.
type Report struct {
	VMs      int    `json:"vms"`
	Seed     int64  `json:"seed"`
	Provider string `json:"provider"`
	// JournalDir is where the journals not kept were made ("": the
	// system's temporary directory).
	JournalDir string `json:"journal_dir"`
	// Concurrency is the policy's (total, per account).
	Concurrency policy.Concurrency `json:"concurrency"`

	MakespanSec float64 `json:"makespan_seconds"`
	// ApplySec is the makespan without the assessment: apply's own time,
	// which the plan's estimate predicts (EstimateSec, the plan's
	// estimate.duration_seconds); EstimateError is EstimateSec / ApplySec
	// - 1 (the goal: within ±0.15).
	ApplySec      float64     `json:"apply_seconds"`
	EstimateSec   float64     `json:"estimate_seconds"`
	EstimateError float64     `json:"estimate_error"`
	LowerBoundSec float64     `json:"lower_bound_seconds"`
	Ratio         float64     `json:"ratio"`
	LowerBound    world.Bound `json:"lower_bound"`

	BrokenAtStart int `json:"broken_at_start"`
	BrokenAtEnd   int `json:"broken_at_end"`
	// LeftBroken are the VMs broken at the end that the run left to a
	// person, each with its reason (the rest of BrokenAtEnd, if any, is
	// in Problems: neither healthy nor flagged).
	LeftBroken []simulation.FlaggedVM `json:"left_broken"`
	// RepairableLeft are the VMs broken at the end that the lower bound
	// counted repairable at the start (some repair within the policy,
	// allow_data_loss and stopped_vms, could fix them): the ones the run
	// left behind that it need not have.
	RepairableLeft []string `json:"repairable_left"`
	// HealthyBy is the share of the VMs broken at start that are healthy
	// (by the world's truth) that long after the start, by "1h" ... "24h".
	HealthyBy       map[string]float64 `json:"healthy_by"`
	TimeToHealthy50 float64            `json:"time_to_healthy_p50_seconds"`
	TimeToHealthy90 float64            `json:"time_to_healthy_p90_seconds"`

	APICalls             map[string]int `json:"api_calls"`
	APICallsTotal        int            `json:"api_calls_total"`
	APICallsPerRepairedV float64        `json:"api_calls_per_repaired_vm"`
	Throttled            int            `json:"throttled"`

	Fixed      int                       `json:"fixed"`
	ByStrategy map[string]int            `json:"by_strategy"`
	Flagged    int                       `json:"flagged"`
	Invariants world.Invariants          `json:"invariants"`
	Problems   []string                  `json:"problems"`
	Baselines  map[string]BaselineResult `json:"baselines"`

	// Steps counts the step attempts the executor began.
	Steps          int64   `json:"steps"`
	CPUSec         float64 `json:"cpu_seconds"`
	CPUMsPerVMStep float64 `json:"cpu_ms_per_vm_step"`
	PeakHeapMB     float64 `json:"peak_heap_mb"`
	WallSec        float64 `json:"wall_seconds"`
	// BaselinesCPUSec and BaselinesWallSec are the CPU time and the real
	// time of the baselines' runs, together: they run at once, in a child
	// process, while the main run runs (CPUSec and PeakHeapMB are this
	// process's: the main run's alone).
	BaselinesCPUSec  float64 `json:"baselines_cpu_seconds"`
	BaselinesWallSec float64 `json:"baselines_wall_seconds"`
}

// healthyMarks are the instants healthy_by reports.
var healthyMarks = []time.Duration{time.Hour, 2 * time.Hour, 4 * time.Hour, 8 * time.Hour, 24 * time.Hour}

// Measure runs o's incident on bk (opened by simulation.Open from
// o.Incident().Options) and reports it, without the baselines and the
// machine's figures (CPU, heap, wall), which are the caller's.
func Measure(ctx context.Context, bk *simulation.Backend, o Options) (Report, error) {
	w := bk.World()
	if w == nil {
		return Report{}, fmt.Errorf("bench: the world must run in this process")
	}
	start := w.Clock().Now()
	var broken []string
	for id, truth := range w.Audit().Truth {
		if truth != world.TruthHealthy {
			broken = append(broken, id)
		}
	}
	slices.Sort(broken)
	ro := o.Incident()
	ro.Journal = o.Journal
	pol, err := ro.Policy(policy.Default())
	if err != nil {
		return Report{}, err
	}
	bound := w.LowerBound(world.BoundOptions{AllowDataLoss: pol.AllowDataLoss, StartStopped: pol.StartsStopped(), MaxRestarts: pol.RebootRetry.LastResort()})
	var steps atomic.Int64
	var estimate float64
	ro.Watch = func(p *plan.Plan) func(apply.Event) {
		estimate = float64(p.Estimate.DurationSeconds)
		return func(e apply.Event) {
			if e.Kind == apply.EvStepBegun {
				steps.Add(1)
			}
		}
	}
	s, err := bk.Run(ctx, ro)
	if err != nil {
		return Report{}, err
	}
	r := Report{
		VMs: o.VMs, Seed: o.Seed, Provider: s.Provider, JournalDir: o.JournalDir, Concurrency: pol.Concurrency,
		MakespanSec: s.ElapsedSec, ApplySec: s.ElapsedSec - s.AssessSec, EstimateSec: estimate,
		LowerBoundSec: bound.Seconds, LowerBound: bound,
		BrokenAtStart: len(broken), HealthyBy: map[string]float64{},
		APICalls: s.API.Calls, APICallsTotal: s.API.Total, Throttled: s.API.Throttled,
		Fixed: s.Fixed, ByStrategy: s.ByStrategy, Flagged: s.Flagged, Invariants: s.Invariants,
		Problems: s.Problems(), Baselines: map[string]BaselineResult{}, Steps: steps.Load(),
	}
	if r.Problems == nil {
		r.Problems = []string{}
	}
	r.LeftBroken = []simulation.FlaggedVM{}
	for _, f := range s.FlaggedVMs {
		if f.Broken {
			r.LeftBroken = append(r.LeftBroken, f)
		}
	}
	if bound.Seconds > 0 {
		r.Ratio = s.ElapsedSec / bound.Seconds
	}
	if r.ApplySec > 0 {
		r.EstimateError = r.EstimateSec/r.ApplySec - 1
	}
	if s.Fixed > 0 {
		r.APICallsPerRepairedV = float64(s.API.Total) / float64(s.Fixed)
	}
	truth := w.Audit().Truth
	for _, t := range truth {
		if t != world.TruthHealthy {
			r.BrokenAtEnd++
		}
	}
	r.RepairableLeft = []string{}
	for _, id := range bound.RepairableVMs {
		if truth[id] != world.TruthHealthy {
			r.RepairableLeft = append(r.RepairableLeft, id)
		}
	}
	var times []float64 // seconds from start to healthy, of the broken VMs healed
	for _, id := range broken {
		if at, ok := w.HealthySince(id); ok {
			times = append(times, max(0, at.Sub(start).Seconds()))
		}
	}
	slices.Sort(times)
	for _, m := range healthyMarks {
		n := 0
		for _, t := range times {
			if t <= m.Seconds() {
				n++
			}
		}
		if len(broken) > 0 {
			r.HealthyBy[fmt.Sprintf("%dh", int(m.Hours()))] = float64(n) / float64(len(broken))
		}
	}
	r.TimeToHealthy50, r.TimeToHealthy90 = quantile(times, len(broken), 0.5), quantile(times, len(broken), 0.9)
	return r, nil
}

// quantile is the q-quantile of the time to healthy over all n VMs broken
// at start, of which times (sorted) came back: -1 when fewer than q·n did
// (the quantile is then beyond the run).
func quantile(times []float64, n int, q float64) float64 {
	if n == 0 {
		return 0
	}
	k := int(math.Ceil(q*float64(n))) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(times) {
		return -1
	}
	return times[k]
}
