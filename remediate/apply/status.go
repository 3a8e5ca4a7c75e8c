package apply

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// VM statuses the executor records (journal VM.Status).
const (
	StatusPending        = journal.VMPending
	StatusRunning        = journal.VMRunning
	StatusFixed          = journal.VMFixed          // healthy after fixfleet acted; Strategy says which
	StatusFlagged        = journal.VMFlagged        // a person must act; Reason says what
	StatusFailed         = journal.VMFailed         // a strategy could not be aborted cleanly; Reason says where things are
	StatusSkippedHealthy = journal.VMSkippedHealthy // found healthy before anything was changed
	// StatusUntouchedHealthy: the plan gave strategy none (healthy); never
	// touched.
	StatusUntouchedHealthy = journal.VMUntouchedHealthy
)

// RunStatus is the phase of a run as Result.Status reports it.
type RunStatus string

// Run statuses (Result.Status).
const (
	RunDone             RunStatus = "done"
	RunRunning          RunStatus = "running" // in progress, or its process died (see the journal lock)
	RunPausedCanary     RunStatus = "paused: canary failed"
	RunPausedBrake      RunStatus = "paused: failure brake"
	RunPausedInterrupt  RunStatus = "paused: interrupted"
	RunAbortedByJournal RunStatus = "aborted"
)

// Reason says, machine-readably, why a VM has its status (VMResult.Code,
// the journal's VM.Code); the message beside it says it in words. Control
// flow reads the Reason, never the message.
type Reason string

// Reasons of a VM's status.
const (
	ReasonWaiting        Reason = "waiting"         // pending: its wave has not started
	ReasonRunning        Reason = "running"         // running a strategy
	ReasonPlannedHealthy Reason = "planned-healthy" // untouched-healthy
	ReasonPlannedManual  Reason = "planned-manual"  // flagged: the plan left it to a person
	// ReasonAccountNotConfigured: flagged because fixfleet has no
	// credentials or provider for its account; a later apply with the
	// account configured picks it up again.
	ReasonAccountNotConfigured Reason = "account-not-configured"
	ReasonFixed                Reason = "fixed"              // all steps of a strategy ended ok
	ReasonHealthyAfter         Reason = "healthy-after"      // fixed: healthy on a re-check after a change
	ReasonFoundHealthy         Reason = "found-healthy"      // skipped-healthy
	ReasonNeedsPerson          Reason = "needs-person"       // flagged: a step said a person must act
	ReasonAbortNeedsPerson     Reason = "abort-needs-person" // flagged: the strategy could not be undone
	ReasonAbortFailed          Reason = "abort-failed"       // failed: the strategy and its abort failed
	ReasonNoStrategyLeft       Reason = "no-strategy-left"   // flagged: every strategy failed, at least one by surprise
	// ReasonNoPath: flagged: every strategy of the plan's chain reported
	// that it cannot repair this VM (step.ErrStrategyFailed) and left it
	// safe; the plan foresaw that its chain could end there. A person must
	// act; nothing went wrong.
	ReasonNoPath Reason = "no-path"
	// ReasonUnverified: flagged: the strategy's repair is done but the
	// guest rejects the configured credentials, so nothing could verify
	// it (step.ErrUnverifiable); a person must check it.
	ReasonUnverified Reason = "unverified"
	// ReasonRepairedStopped: fixed: a powered-off VM's disk was repaired
	// offline and the VM left powered off as policy.stopped_vms says
	// (step.EndRepairedStopped); no boot verified it.
	ReasonRepairedStopped Reason = "repaired-stopped"
	// ReasonFoundClean: skipped-healthy: a powered-off VM's disk, read
	// offline, carried nothing to repair and was put back unchanged
	// (step.EndFoundClean). Nothing was wrong, so it is not "fixed".
	ReasonFoundClean Reason = "found-clean"
)

// Outcome sorts reasons into what a summary separates: repaired, healthy,
// no path (a person must act, as the plan foresaw), failed (a surprise:
// an error, an abort that failed, a step that found what the plan did not
// know), and not finished.
type Outcome string

// Outcomes.
const (
	OutcomeFixed   Outcome = "fixed"
	OutcomeHealthy Outcome = "healthy"
	OutcomeNoPath  Outcome = "no-path"
	OutcomeFailed  Outcome = "failed"
	OutcomePending Outcome = "pending"
)

// Outcome is the outcome a reason stands for. The failure brake counts
// OutcomeFailed only.
func (r Reason) Outcome() Outcome {
	switch r {
	case ReasonFixed, ReasonHealthyAfter, ReasonRepairedStopped:
		return OutcomeFixed
	case ReasonFoundHealthy, ReasonPlannedHealthy, ReasonFoundClean:
		return OutcomeHealthy
	case ReasonPlannedManual, ReasonNoPath, ReasonAccountNotConfigured, ReasonUnverified:
		return OutcomeNoPath
	case ReasonNeedsPerson, ReasonAbortNeedsPerson, ReasonAbortFailed, ReasonNoStrategyLeft:
		return OutcomeFailed
	}
	return OutcomePending
}

// Step names with a meaning to the executor.
const (
	// StepAbort is the journal name of a strategy's Abort.
	StepAbort = "abort"
)

// Event kinds, journaled (in the journal's event log) unless marked.
const (
	EvRunStarted        = "run.started"
	EvRunResumed        = "run.resumed"
	EvRunDone           = "run.done"
	EvPausedCanary      = "run.paused.canary"
	EvPausedBrake       = "run.paused.failure-brake"
	EvPausedInterrupted = "run.paused.interrupted"
	EvWaveStarted       = "wave.started"
	EvWaveFinished      = "wave.finished"
	EvVMStarted         = "vm.started"
	EvVMResumed         = "vm.resumed"
	EvVMFixed           = "vm.fixed"
	EvVMSkippedHealthy  = "vm.skipped-healthy"
	EvVMFlagged         = "vm.flagged"
	EvVMFailed          = "vm.failed"
	EvStrategyFailed    = "vm.strategy-failed" // message "<strategy>: <reason>"
	// EvStrategyNoRepair: the strategy reported it cannot repair the VM
	// (step.ErrStrategyFailed), an expected end; message as
	// EvStrategyFailed's.
	EvStrategyNoRepair = "vm.strategy-no-repair"
	EvStrategyAborted  = "vm.strategy-aborted"
	EvStepBegun        = "step.begun" // not journaled (the steps table has it)
	EvStepEnded        = "step.ended" // not journaled
	EvStepRetry        = "step.retry"
	EvBreakerOpen      = "breaker.open"
	EvBreakerHalfOpen  = "breaker.half-open"
	EvBreakerClosed    = "breaker.closed"
	EvBrakeTripped     = "brake.tripped"
	// EvCanaryPassed: the canary can no longer fail (even if its
	// unfinished VMs all failed, the share would stay within the
	// threshold): the other waves start before its end.
	EvCanaryPassed = "canary.passed"
	// EvCanaryDone: the canary ended and passed (its verdict at its end;
	// an early pass is EvCanaryPassed). With the strategy gate, VMs after
	// the canary may have started before it.
	EvCanaryDone = "canary.done"
	// EvCanaryFailed: the canary ended and failed, the canary's brake: no
	// other VM starts, and the run pauses (EvPausedCanary). The failure
	// brake after the canary is EvBrakeTripped.
	EvCanaryFailed = "canary.failed"
	// EvWindowShrank: the cloud throttled an account's calls and fewer of
	// its VMs now run at once (brake.Window); message names the account
	// and the new limit.
	EvWindowShrank    = "window.shrank"
	EvHelpersReleased = "helpers.released"
	EvHelpersKept     = "helpers.kept"
	EvHelpersFailed   = "helpers.release-failed"
)

// Event is one progress event.
type Event struct {
	At       time.Time
	Kind     string // one of the Ev* kinds
	VMKey    string // "" for run-wide events
	Strategy policy.Strategy
	Step     string
	Attempt  int
	Message  string
	// Wait is, for breaker.open, how long new work waits before the
	// breaker tries the API again.
	Wait time.Duration
}

// VMResult is one VM's outcome.
type VMResult struct {
	Key      string           `json:"key"`
	Tenant   string           `json:"tenant"`
	Account  string           `json:"account"`
	Name     string           `json:"name"`
	Wave     int              `json:"wave"`
	Strategy policy.Strategy  `json:"strategy"` // the strategy it ended on (or is on)
	Status   journal.VMStatus `json:"status"`   // one of the Status* constants
	Code     Reason           `json:"reason_code,omitempty"`
	Reason   string           `json:"reason"`
}

// Result summarises a run. Run returns it; Status rebuilds the same from
// the journal alone.
type Result struct {
	RunID  string    `json:"run_id"`
	PlanID string    `json:"plan_id"`
	Status RunStatus `json:"status"`
	// Message says why the run paused (empty when done).
	Message string `json:"message"`
	// VMs in plan order.
	VMs []VMResult `json:"vms"`

	Fixed            int                     `json:"fixed"`
	FixedBy          map[policy.Strategy]int `json:"fixed_by"`
	SkippedHealthy   int                     `json:"skipped_healthy"`   // found healthy on re-check, untouched
	UntouchedHealthy int                     `json:"untouched_healthy"` // planned as healthy (strategy none)
	Flagged          int                     `json:"flagged"`           // acted-on VMs a person must look at (both below)
	NoPath           int                     `json:"no_path"`           // of Flagged: every strategy found it cannot repair the VM, as the plan foresaw
	Surprises        int                     `json:"surprises"`         // of Flagged: ended by something the plan did not foresee
	Failed           int                     `json:"failed"`
	Manual           int                     `json:"manual"`  // planned as manual (flagged with the plan's reasons)
	Pending          int                     `json:"pending"` // not finished (not started, or in progress)

	// Elapsed is the clock time the run's apply processes ran, summed
	// (from each start or resume event to the matching end or pause
	// event; a segment still open, or whose process died, is not counted).
	Elapsed time.Duration `json:"-"`
	// Retries counts step attempts retried after a retryable error.
	Retries int `json:"retries"`
	// BreakerOpenings counts control-plane breaker openings.
	BreakerOpenings int `json:"breaker_openings"`
}

// Status rebuilds a run's Result from the journal alone (for `fixfleet
// status` and `report`). It needs no lock and may run while an apply is
// under way. runID "" selects the latest run.
func Status(ctx context.Context, j *journal.Journal, runID string) (*Result, error) {
	var run journal.Run
	var err error
	if runID == "" {
		run, err = j.LatestRun(ctx)
	} else {
		run, err = j.GetRun(ctx, runID)
	}
	if err != nil {
		return nil, err
	}
	var p plan.Plan
	if err := json.Unmarshal(run.PlanJSON, &p); err != nil {
		return nil, fmt.Errorf("run %s: the stored plan does not decode: %w", run.ID, err)
	}
	vms, err := j.ListVMs(ctx, run.ID)
	if err != nil {
		return nil, err
	}
	rec := make(map[string]journal.VM, len(vms))
	for _, v := range vms {
		rec[v.VMKey] = v
	}
	res := &Result{RunID: run.ID, PlanID: run.PlanID, FixedBy: map[policy.Strategy]int{}}
	for _, v := range p.VMs {
		vr := VMResult{Key: v.Key, Tenant: v.Tenant, Account: v.Account, Name: v.Name, Wave: v.Wave, Strategy: v.Strategy, Status: StatusPending}
		if r, ok := rec[v.Key]; ok {
			vr.Status, vr.Code, vr.Reason = r.Status, Reason(r.Code), r.Reason
			if r.Strategy != "" {
				vr.Strategy = policy.Strategy(r.Strategy)
			}
		}
		switch {
		case vr.Status == StatusFixed:
			res.Fixed++
			res.FixedBy[vr.Strategy]++
		case vr.Status == StatusSkippedHealthy:
			res.SkippedHealthy++
		case vr.Status == StatusUntouchedHealthy:
			res.UntouchedHealthy++
		case vr.Status == StatusFlagged && v.Strategy == plan.Manual:
			res.Manual++
		case vr.Status == StatusFlagged:
			res.Flagged++
			if vr.Code.Outcome() == OutcomeNoPath {
				res.NoPath++
			} else {
				res.Surprises++
			}
		case vr.Status == StatusFailed:
			res.Failed++
		default:
			res.Pending++
		}
		res.VMs = append(res.VMs, vr)
	}
	evs, err := j.Events(ctx, run.ID, journal.EventFilter{Kinds: []string{
		EvRunStarted, EvRunResumed, EvRunDone, EvPausedCanary, EvPausedBrake, EvPausedInterrupted,
		EvStepRetry, EvBreakerOpen,
	}})
	if err != nil {
		return nil, err
	}
	var segStart time.Time
	var last journal.Event
	for _, e := range evs {
		switch e.Kind {
		case EvStepRetry:
			res.Retries++
		case EvBreakerOpen:
			res.BreakerOpenings++
		case EvRunStarted, EvRunResumed:
			segStart = e.At
		default: // the end of a segment
			if !segStart.IsZero() {
				res.Elapsed += e.At.Sub(segStart)
				segStart = time.Time{}
			}
			last = e
		}
	}
	switch run.Status {
	case journal.RunDone:
		res.Status = RunDone
	case journal.RunAborted:
		res.Status = RunAbortedByJournal
	case journal.RunPaused:
		res.Status, res.Message = RunPausedInterrupt, last.Message
		switch last.Kind {
		case EvPausedCanary:
			res.Status = RunPausedCanary
		case EvPausedBrake:
			res.Status = RunPausedBrake
		}
	default:
		res.Status = RunRunning
	}
	return res, nil
}

// lastPause returns the kind and message of the run's last end-of-segment
// event ("" if none).
func lastPause(ctx context.Context, j *journal.Journal, runID string) (kind, msg string, err error) {
	evs, err := j.Events(ctx, runID, journal.EventFilter{Kinds: []string{EvRunDone, EvPausedCanary, EvPausedBrake, EvPausedInterrupted}})
	if err != nil || len(evs) == 0 {
		return "", "", err
	}
	e := evs[len(evs)-1]
	return e.Kind, e.Message, nil
}

// PausedError is a run that stopped before the end (a brake, an
// interrupt, a journal that aborted it), or a simulated incident whose
// outcome breaks a promise (Msg says which). The CLI gives it its own exit
// code, so that scripts notice.
type PausedError struct {
	Status RunStatus
	Msg    string
}

func (e *PausedError) Error() string {
	if e.Msg == "" {
		return "run " + string(e.Status) + ": run apply again to continue"
	}
	return "run stopped (" + string(e.Status) + "): " + e.Msg
}

// Err is nil for a run that finished (RunDone); for one an interrupt
// paused, an error wrapping context.Canceled; otherwise a *PausedError
// with the run's status and message.
func (r *Result) Err() error {
	switch r.Status {
	case RunDone:
		return nil
	case RunPausedInterrupt:
		return fmt.Errorf("run %s %w: run apply again to continue where it stopped", r.RunID, context.Canceled)
	}
	return &PausedError{Status: r.Status, Msg: r.Message}
}
