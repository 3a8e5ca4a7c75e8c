package simulation

import (
	"fmt"
	"sort"
	"strings"

	"github.com/fixfleet/fixfleet/remediate/strategy"

	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// Summary is the outcome of a simulated incident (`fixfleet demo --format
// json` prints it).
type Summary struct {
	VMsTotal      int            `json:"vms_total"`
	HealthyBefore int            `json:"healthy_before"`
	Fixed         int            `json:"fixed"`
	ByStrategy    map[string]int `json:"by_strategy"`
	// FoundHealthy were planned for repair but had recovered by themselves
	// when re-checked: left untouched.
	FoundHealthy int `json:"found_healthy"`
	// Flagged counts the VMs left to a person (FlaggedVMs): NoPath of them
	// because no strategy could repair them, as the plan foresaw (the plan
	// left them to a person, or every planned strategy found it cannot
	// repair them), Surprises because of something the plan did not
	// foresee (apply.OutcomeFailed).
	Flagged    int         `json:"flagged"`
	NoPath     int         `json:"no_path"`
	Surprises  int         `json:"surprises"`
	FlaggedVMs []FlaggedVM `json:"flagged_vms"`
	// Failed counts VMs whose strategy and its abort both failed.
	Failed int `json:"failed"`
	// Pending were not finished when the apply stopped (0 for a run
	// done).
	Pending int `json:"pending"`
	// Unresolved lists VMs that are neither healthy (by the world's truth)
	// nor flagged for a person: must be empty.
	Unresolved []string        `json:"unresolved"`
	RunStatus  apply.RunStatus `json:"run_status"`
	ElapsedSim string          `json:"elapsed_sim"`
	ElapsedSec float64         `json:"elapsed_sim_seconds"`
	// AssessSec is the part of ElapsedSec spent assessing and planning.
	AssessSec float64 `json:"assess_sim_seconds"`
	// DurationsNote, when set, says how far the simulated durations can be
	// trusted (on a scaled clock the host's CPU time counts too).
	DurationsNote string  `json:"durations_note,omitempty"`
	WallSec       float64 `json:"wall_seconds"`
	// PeakMemoryMB is the process's peak resident memory (0 where unknown).
	PeakMemoryMB float64    `json:"peak_memory_mb"`
	Retries      int        `json:"retries"`
	Breaker      int        `json:"breaker_openings"`
	Invariants   Invariants `json:"invariants"`
	// Violations says what the world counted against the invariants.
	Violations []string       `json:"violations"`
	TruthAfter map[string]int `json:"truth_after"`
	// Provider is the face the incident ran through; API counts its calls
	// as the cloud (or its emulator) saw them.
	Provider string   `json:"provider"`
	API      APIStats `json:"api"`
	// KeptOriginals are the original OS disks repairs replaced and kept.
	KeptOriginals []KeptDisk `json:"kept_originals"`
}

// APIStats are the control-plane calls of an incident, counted by the side
// that answered them (the world, or the cloud API emulator in front of it).
type APIStats struct {
	Calls     map[string]int `json:"calls"`
	Total     int            `json:"total"`
	Throttled int            `json:"throttled"`
	// Instances counts, per action that takes many VMs per call
	// (StopInstances, StartInstances), the VMs its calls named: against
	// Calls it shows what batching saved.
	Instances map[string]int `json:"instances,omitempty"`
}

// FlaggedVM is a VM left to a person, and why.
type FlaggedVM struct {
	ID       string        `json:"id"`
	Name     string        `json:"name,omitempty"`
	Strategy string        `json:"strategy"`
	Outcome  apply.Outcome `json:"outcome"`
	Code     apply.Reason  `json:"reason_code"`
	Reason   string        `json:"reason"`
	// Broken: by the world's truth the VM is not healthy at the end (a
	// flagged VM may have recovered by itself).
	Broken bool `json:"broken"`
}

// Problems says how the outcome breaks fixfleet's promises: a run not
// done, a VM neither healthy nor flagged, an invariant counter above 0.
// Empty when it keeps them all.
func (s Summary) Problems() []string {
	var why []string
	if s.RunStatus != apply.RunDone {
		why = append(why, "the run did not finish")
	}
	if len(s.Unresolved) > 0 {
		why = append(why, fmt.Sprintf("%d VMs neither healthy nor flagged", len(s.Unresolved)))
	}
	if s.Invariants != (Invariants{}) {
		why = append(why, "invariant counters above 0: "+strings.Join(s.Violations, "; "))
	}
	for _, k := range s.KeptOriginals {
		if !k.Present {
			why = append(why, "the original disk "+k.Disk+" of "+k.VM+", which a repair kept, is gone")
		}
	}
	return why
}

// Err is nil when the outcome keeps every promise (Problems is empty),
// otherwise an *apply.PausedError with the run's status and the problems.
func (s Summary) Err() error {
	if why := s.Problems(); len(why) > 0 {
		return &apply.PausedError{Status: s.RunStatus, Msg: strings.Join(why, "; ")}
	}
	return nil
}

// ScaledNote is DurationsNote on a scaled clock.
const ScaledNote = "approximate: on the scaled clock the host's CPU time counts as simulated time too; " +
	"for exact figures run the incident benchmark on virtual time: " +
	"FIXFLEET_BENCH_VMS=N FIXFLEET_BENCH_SEED=S go test -run '^TestIncidentBenchmark$' -count=1 ./simulation/bench/"

// apiStatsOf counts the incident's control-plane calls: the emulator's per
// operation when one fronted the world, else the world's own.
func apiStatsOf(b *Backend, a world.Audit) APIStats {
	s := APIStats{Calls: a.Calls.Calls, Throttled: a.Calls.Throttled}
	if b.apiCalls != nil {
		s.Calls = b.apiCalls()
	}
	if b.apiThrottled != nil {
		s.Throttled = b.apiThrottled()
	}
	if b.apiInstances != nil {
		s.Instances = b.apiInstances()
	}
	for _, n := range s.Calls {
		s.Total += n
	}
	return s
}

// summarize builds the summary from the plan, the run's result and the
// world's truth after the run.
func summarize(p *plan.Plan, res *apply.Result, truth map[string]string, worldID func(string) string) Summary {
	s := Summary{
		VMsTotal: len(p.VMs), Fixed: res.Fixed, ByStrategy: map[string]int{}, FoundHealthy: res.SkippedHealthy,
		Failed: res.Failed, Pending: res.Pending, RunStatus: res.Status, Retries: res.Retries, Breaker: res.BreakerOpenings,
		FlaggedVMs: []FlaggedVM{}, Unresolved: []string{},
	}
	for _, st := range strategy.Default().Names() {
		s.ByStrategy[string(st)] = res.FixedBy[st]
	}
	byKey := map[string]plan.VMPlan{}
	for _, v := range p.VMs {
		byKey[v.Key] = v
		if v.Strategy == plan.None {
			s.HealthyBefore++
		}
	}
	for _, r := range res.VMs {
		v := byKey[r.Key]
		switch {
		case r.Status == apply.StatusFlagged || r.Status == apply.StatusFailed:
			s.FlaggedVMs = append(s.FlaggedVMs, FlaggedVM{ID: v.ID, Name: v.Name, Strategy: string(r.Strategy),
				Outcome: r.Code.Outcome(), Code: r.Code, Reason: r.Reason, Broken: truth[worldID(v.ID)] != world.TruthHealthy})
			switch {
			case r.Status == apply.StatusFailed:
			case r.Code.Outcome() == apply.OutcomeNoPath:
				s.NoPath++
			default:
				s.Surprises++
			}
		case truth[worldID(v.ID)] != world.TruthHealthy:
			s.Unresolved = append(s.Unresolved, v.ID+" ("+string(r.Status)+", truth "+truth[worldID(v.ID)]+")")
		}
	}
	sort.Slice(s.FlaggedVMs, func(i, j int) bool { return s.FlaggedVMs[i].ID < s.FlaggedVMs[j].ID })
	s.Flagged = len(s.FlaggedVMs)
	return s
}

// Invariants are the world's referee counters, as every summary prints
// them: the world's own struct, so a new counter shows up everywhere.
type Invariants = world.Invariants

// InvariantsOf gathers a's counters.
func InvariantsOf(a world.Audit) Invariants { return a.Invariants() }

// Violations lists, in words, what the world's referee counted against the
// invariants (empty when all counters are 0).
func Violations(a world.Audit) []string { return a.Violations() }

// EndStates is each VM's end as the kill and lost-reply tests compare
// runs by, keyed by the VM's ID: "fixed by STRATEGY", "healthy", "for a
// person" or "unfinished", then ", truth " and the referee's truth about it
// (from the world's audit).
func EndStates(vms []apply.VMResult, truth map[string]string) map[string]string {
	out := make(map[string]string, len(vms))
	for _, v := range vms {
		outcome := "healthy"
		switch v.Status {
		case apply.StatusFlagged, apply.StatusFailed:
			outcome = "for a person"
		case apply.StatusPending, apply.StatusRunning:
			outcome = "unfinished"
		case apply.StatusFixed:
			outcome = "fixed by " + string(v.Strategy)
		}
		id := v.Key[strings.LastIndex(v.Key, "/")+1:]
		out[id] = outcome + ", truth " + truth[id]
	}
	return out
}
