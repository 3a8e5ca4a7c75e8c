package apply

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/remediate/brake"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// withheld replaces a text the journal refused because it held a secret.
const withheld = "[text withheld: it contained a secret]"

// maxErrText bounds an error text journaled for a step.
const maxErrText = 2000

// vmOutcome is how runVM left a VM, for the brakes.
type vmOutcome struct {
	acted       bool // fixed, failed, or flagged after at least one step
	bad         bool // failed, or flagged after at least one step
	interrupted bool // ctx ended (or the run stopped) before a final status
}

// stepKind classifies how a step (after its retries) ended.
type stepKind int

const (
	kOK stepKind = iota
	kHealthy
	kNeedsPerson
	kFailed
	kInterrupted
)

type stepEnd struct {
	kind stepKind
	msg  string // the journal-accepted error text
	// noRepair: kFailed because the step reported the strategy cannot
	// repair the VM (step.ErrStrategyFailed), an expected end.
	noRepair bool
	// unverified: kNeedsPerson because the repair could not be verified
	// (step.ErrUnverifiable).
	unverified bool
}

// vmState is what the journal knows of one VM's steps.
type vmState struct {
	ok       map[string]bool // strategy+"\x00"+step ended ok in some attempt
	began    map[string]bool // strategy that has at least one step journaled
	attempts map[string]int  // highest attempt per strategy+"\x00"+step
	touched  bool            // a non-read-only step ended ok, or may have acted (see mayHaveActed)
	readOnly map[string]bool // skeys of the read-only steps (step.Step.ReadOnly)
	unsure   map[string]bool // skeys of steps an attempt of which may have acted unrecorded (step.FactRerun)
	// facts are the VM's merged facts as the journal holds them: read
	// once when the VM starts, then kept up to date with what each step
	// recorded (only this VM's runVM writes its facts in this process,
	// and the apply lock keeps other processes out; its early run's are
	// read back by awaitEarly).
	facts map[string]string
}

func skey(s policy.Strategy, name string) string { return string(s) + "\x00" + name }

// strategyEnd is how a strategy ended on a VM in an earlier attempt.
type strategyEnd struct {
	msg      string // "<strategy>: <reason>"
	noRepair bool   // it reported it cannot repair the VM (expected)
}

func (r *runner) loadVMState(ctx context.Context, vm *plan.VMPlan) (*vmState, map[policy.Strategy]strategyEnd, error) {
	key := vm.Key
	steps, err := r.j.ListSteps(ctx, r.runID, key)
	if err != nil {
		return nil, nil, err
	}
	facts, err := r.j.Facts(ctx, r.runID, key)
	if err != nil {
		return nil, nil, err
	}
	vs := &vmState{ok: map[string]bool{}, began: map[string]bool{}, attempts: map[string]int{}, readOnly: r.readOnlySteps(vm),
		unsure: map[string]bool{}, facts: facts}
	for _, s := range steps {
		vs.note(policy.Strategy(s.Strategy), s.Step, s.Attempt, s.Status)
		if s.Status == journal.StepBegun {
			vs.mayHaveActed(policy.Strategy(s.Strategy), s.Step) // a process died while it ran
		}
	}
	failed := map[policy.Strategy]strategyEnd{}
	for _, e := range r.strategyEnds[key] {
		failed[policy.Strategy(e.Strategy)] = strategyEnd{msg: e.Message, noRepair: e.Kind == EvStrategyNoRepair}
	}
	return vs, failed, nil
}

// readOnlySteps lists, by skey, the steps of vm's strategies marked
// read-only (step.Step.ReadOnly). A strategy's Abort is never read-only.
func (r *runner) readOnlySteps(vm *plan.VMPlan) map[string]bool {
	out := map[string]bool{}
	t := vm.Target()
	for _, s := range append([]policy.Strategy{vm.Strategy}, vm.Fallbacks...) {
		if strat := r.o.Strategies[s]; strat != nil {
			for _, st := range strat.Steps(t, r.p.Policy) {
				if st.ReadOnly {
					out[skey(s, st.Name)] = true
				}
			}
		}
	}
	return out
}

func (vs *vmState) note(s policy.Strategy, name string, attempt int, st journal.StepStatus) {
	k := skey(s, name)
	vs.began[string(s)] = true
	vs.attempts[k] = max(vs.attempts[k], attempt)
	if st == journal.StepOK {
		vs.ok[k] = true
		if !vs.readOnly[k] {
			vs.touched = true
		}
	}
}

// mayHaveActed records an attempt of step name whose effect is unknown
// (begun and never ended, or failed with a retryable error such as a
// reply lost after the cloud applied the change): if the step is not
// read-only, the VM may have been changed, and a VM found healthy later
// is not reported untouched. The step's next attempt is told
// (step.FactRerun).
func (vs *vmState) mayHaveActed(s policy.Strategy, name string) {
	vs.unsure[skey(s, name)] = true
	if !vs.readOnly[skey(s, name)] {
		vs.touched = true
	}
}

// runVM takes one VM through its strategy chain to a final status.
func (r *runner) runVM(ctx context.Context, vm *plan.VMPlan) vmOutcome {
	acct := plan.AccountKey(vm.Tenant, vm.Account)
	env := r.envs[acct]
	if env == nil {
		r.final(vm, vm.Strategy, StatusFlagged, ReasonAccountNotConfigured, fmt.Sprintf("account not configured: fixfleet has no credentials or provider for account %s; "+
			"add it to the configuration and run apply again", acct))
		return vmOutcome{}
	}
	vs, failed, err := r.loadVMState(ctx, vm)
	if err != nil {
		r.fail(err)
		return vmOutcome{interrupted: true}
	}
	started := EvVMStarted
	if r.resumed(vm, vs) {
		started = EvVMResumed
	}
	r.emit(Event{Kind: started, VMKey: vm.Key, Strategy: vm.Strategy, Message: fmt.Sprintf("%s: %s (wave %d)", started, vm.Key, vm.Wave)})

	chain := append([]policy.Strategy{vm.Strategy}, vm.Fallbacks...)
	var reasons []string
	surprise := false // some strategy ended other than by reporting it cannot repair the VM
	done := func(s policy.Strategy, status journal.VMStatus, code Reason, reason string) vmOutcome {
		if !r.final(vm, s, status, code, reason) {
			return vmOutcome{interrupted: true}
		}
		// The brakes count surprises only: an expected end (no path
		// left, as the plan foresaw) is neither a success nor a failure.
		acted := status == StatusFixed || status == StatusFailed || (status == StatusFlagged && len(vs.began) > 0)
		acted = acted && code.Outcome() != OutcomeNoPath
		return vmOutcome{acted: acted, bad: acted && code.Outcome() == OutcomeFailed}
	}
	healthy := func(s policy.Strategy) vmOutcome {
		if vs.touched {
			return done(s, StatusFixed, ReasonHealthyAfter, "healthy after "+string(s))
		}
		return done(s, StatusSkippedHealthy, ReasonFoundHealthy, "found healthy on re-check before anything was changed: left untouched")
	}
	for _, s := range chain {
		strat := r.o.Strategies[s]
		if e, ok := failed[s]; ok {
			reasons = append(reasons, e.msg)
			surprise = surprise || !e.noRepair
			if strat != nil && vs.began[string(s)] && !vs.ok[skey(s, StepAbort)] {
				if out, stop := r.abort(ctx, env, vm, vs, strat, s, done, healthy); stop {
					return out
				}
			}
			continue
		}
		if strat == nil {
			reason := "not available in this fixfleet"
			reasons = append(reasons, string(s)+": "+reason)
			surprise = true
			if !r.strategyFailed(vm, s, reason, false) {
				return vmOutcome{interrupted: true}
			}
			continue
		}
		if err := r.upsert(context.WithoutCancel(ctx), journal.VM{RunID: r.runID, VMKey: vm.Key, Name: vm.Name, Strategy: string(s),
			Status: StatusRunning, Code: string(ReasonRunning), Reason: "running " + string(s), UpdatedAt: r.now()}); err != nil {
			r.fail(err)
			return vmOutcome{interrupted: true}
		}
		end := stepEnd{kind: kOK}
		for _, st := range strat.Steps(vm.Target(), r.p.Policy) {
			if st.Early && !r.awaitEarly(ctx, vm, vs, s, st.Name) {
				return vmOutcome{interrupted: true}
			}
			if vs.ok[skey(s, st.Name)] {
				continue
			}
			end = r.runStep(ctx, env, vm, vs, s, st.Name, st.Run, false)
			if end.kind != kOK {
				break
			}
		}
		switch end.kind {
		case kOK:
			switch step.Ending(vs.facts[string(step.FactEnding)]) {
			case step.EndRepairedStopped:
				return done(s, StatusFixed, ReasonRepairedStopped, "repaired offline by "+string(s)+" and left powered off (policy.stopped_vms): it boots normally at its next start")
			case step.EndFoundClean:
				return done(s, StatusSkippedHealthy, ReasonFoundClean, "powered off; its disk, read offline by "+string(s)+", carries no bad file and no safe-boot flag: put back unchanged")
			}
			return done(s, StatusFixed, ReasonFixed, "fixed by "+string(s))
		case kHealthy:
			return healthy(s)
		case kNeedsPerson:
			code := ReasonNeedsPerson
			if end.unverified {
				code = ReasonUnverified
			}
			return done(s, StatusFlagged, code, string(s)+": "+end.msg)
		case kInterrupted:
			return vmOutcome{interrupted: true}
		}
		reasons = append(reasons, string(s)+": "+end.msg)
		surprise = surprise || !end.noRepair
		if !r.strategyFailed(vm, s, end.msg, end.noRepair) {
			return vmOutcome{interrupted: true}
		}
		if vm.Wave == 1 && s == vm.Strategy && end.noRepair {
			r.passCanaryEarly(ctx) // its strategy ran as designed: its group may go
		}
		if vs.began[string(s)] {
			if out, stop := r.abort(ctx, env, vm, vs, strat, s, done, healthy); stop {
				return out
			}
		}
	}
	if !surprise {
		return done(vm.Strategy, StatusFlagged, ReasonNoPath, "no path left: every planned strategy found it cannot repair this VM; a person must act: "+strings.Join(reasons, "; "))
	}
	return done(vm.Strategy, StatusFlagged, ReasonNoStrategyLeft, "no strategy left; a person must act: "+strings.Join(reasons, "; "))
}

// abort runs strategy s's Abort as the journaled step "abort". stop is
// true when the VM reached a final status (or the run is interrupted).
func (r *runner) abort(ctx context.Context, env *step.Env, vm *plan.VMPlan, vs *vmState, strat step.Strategy, s policy.Strategy,
	done func(policy.Strategy, journal.VMStatus, Reason, string) vmOutcome, healthy func(policy.Strategy) vmOutcome) (vmOutcome, bool) {
	end := r.runStep(ctx, env, vm, vs, s, StepAbort, strat.Abort, false)
	switch end.kind {
	case kOK:
		r.emit(Event{Kind: EvStrategyAborted, VMKey: vm.Key, Strategy: s, Message: fmt.Sprintf("%s aborted cleanly; the VM is back in a safe state", s)})
		return vmOutcome{}, false
	case kHealthy:
		return healthy(s), true
	case kNeedsPerson:
		return done(s, StatusFlagged, ReasonAbortNeedsPerson, string(s)+" could not be undone: "+end.msg), true
	case kInterrupted:
		return vmOutcome{interrupted: true}, true
	}
	return done(s, StatusFailed, ReasonAbortFailed, string(s)+" failed and its abort failed too; the VM may not be in a safe state, a person must check it: "+end.msg), true
}

// strategyFailed journals that strategy s failed on vm (noRepair: it
// reported it cannot repair the VM), so that a resume passes over it.
// False if the journal could not record it.
func (r *runner) strategyFailed(vm *plan.VMPlan, s policy.Strategy, reason string, noRepair bool) bool {
	kind := EvStrategyFailed
	if noRepair {
		kind = EvStrategyNoRepair
	}
	return r.emit(Event{Kind: kind, VMKey: vm.Key, Strategy: s, Message: string(s) + ": " + reason})
}

// final records a VM's final status. False if the journal could not.
func (r *runner) final(vm *plan.VMPlan, s policy.Strategy, status journal.VMStatus, code Reason, reason string) bool {
	rec := journal.VM{RunID: r.runID, VMKey: vm.Key, Name: vm.Name, Strategy: string(s), Status: status, Code: string(code), Reason: reason, UpdatedAt: r.now()}
	if err := r.upsert(context.Background(), rec); err != nil {
		r.fail(err)
		return false
	}
	kind := map[journal.VMStatus]string{StatusFixed: EvVMFixed, StatusSkippedHealthy: EvVMSkippedHealthy, StatusFlagged: EvVMFlagged, StatusFailed: EvVMFailed}[status]
	return r.emit(Event{Kind: kind, VMKey: vm.Key, Strategy: s, Message: vm.Key + " " + string(status) + ": " + reason})
}

// stepFunc is a step's Run or a strategy's Abort.
type stepFunc func(ctx context.Context, env *step.Env, vm *step.Target, facts step.Facts) (step.Facts, error)

// retryable reports whether waiting and trying again may help.
func retryable(err error) bool {
	return providers.Retryable(err) || guest.Transient(err) || errors.Is(err, pace.ErrStale)
}

// charges reports whether a retryable failure uses up one of the step's
// attempts. An API error that opened the breaker, or arrived while it was
// not closed (after: its state then), is the outage's, not the step's; a
// throttle is the cloud asking to slow down (the account's window shrank),
// a busy guest (its WinRM quota, often shells of a killed process
// until they time out) asks to wait, and a stop or restart whose turn in
// the account's pacing came after its re-check went stale was not made
// (the step runs again and re-checks): none says anything of the step.
// Retry.MaxTime still bounds all three.
func charges(serr error, after brake.State) bool {
	switch {
	case brake.Classify(serr) == brake.APIError && after != brake.Closed:
		return false
	case errors.Is(serr, providers.ErrThrottled), errors.Is(serr, guest.ErrBusy), errors.Is(serr, pace.ErrStale):
		return false
	}
	return true
}

// runStep runs one step with its retries, journaling every attempt. A
// background attempt (an early step) waits for a closed breaker instead
// of taking a ticket (see ticket).
func (r *runner) runStep(ctx context.Context, env *step.Env, vm *plan.VMPlan, vs *vmState, s policy.Strategy, name string, fn stepFunc, background bool) stepEnd {
	bg := context.WithoutCancel(ctx)
	start := r.now()
	var waited time.Duration // breaker waits, not charged to MaxTime
	charged := 0
	for {
		if ctx.Err() != nil {
			return stepEnd{kind: kInterrupted}
		}
		t0 := r.now()
		tk, err := r.ticket(ctx, vm.Key, background)
		waited += r.now().Sub(t0)
		if err != nil {
			return stepEnd{kind: kInterrupted}
		}
		k := skey(s, name)
		attempt := vs.attempts[k] + 1
		intent, _ := json.Marshal(struct {
			Strategy policy.Strategy `json:"strategy"`
			Step     string          `json:"step"`
			Attempt  int             `json:"attempt"`
			Wave     int             `json:"wave"`
		}{s, name, attempt, vm.Wave})
		r.at(vm.Key, s, name, attempt, PointBeforeBegin)
		id, err := r.j.BeginStep(ctx, journal.StepIntent{RunID: r.runID, VMKey: vm.Key, Strategy: string(s), Step: name,
			Attempt: attempt, Intent: intent, At: r.now()})
		if err != nil {
			if tk != nil {
				tk.Done(context.Canceled) // nothing was called
			}
			if ctx.Err() == nil {
				r.fail(err)
			}
			return stepEnd{kind: kInterrupted}
		}
		r.at(vm.Key, s, name, attempt, PointBegun)
		vs.attempts[k] = attempt
		vs.began[string(s)] = true
		r.emitSink(Event{Kind: EvStepBegun, VMKey: vm.Key, Strategy: s, Step: name, Attempt: attempt,
			Message: fmt.Sprintf("%s %s/%s attempt %d", vm.Key, s, name, attempt)})

		in := step.FactsOf(vs.facts)
		if vs.unsure[k] {
			in = in.Merge(step.Facts{step.FactRerun: "true"})
		}
		out, serr := fn(ctx, env, vm.Target(), in)
		r.at(vm.Key, s, name, attempt, PointAfterEffect)
		after := brake.Closed
		if tk != nil {
			after = tk.Done(serr)
		}
		if a := plan.AccountKey(vm.Tenant, vm.Account); r.accounts[a].Observe(r.now(), serr) {
			r.emit(Event{Kind: EvWindowShrank, Message: fmt.Sprintf("the cloud throttled account %s: at most %d of its VMs at once from now (the window grows back as calls are answered; policy ceiling %d)",
				a, r.accounts[a].Limit(), r.p.Policy.Concurrency.PerAccount)})
		}
		interrupted := serr != nil && ctx.Err() != nil
		res := journal.StepResult{Facts: out.Strings(), At: r.now()}
		switch {
		case serr == nil:
			res.Status = journal.StepOK
		case errors.Is(serr, step.ErrHealthy):
			res.Status, res.Error = journal.StepSkipped, errText(serr)
		case interrupted:
			res.Status, res.Error = journal.StepFailed, "interrupted: "+errText(serr)
		default:
			res.Status, res.Error = journal.StepFailed, errText(serr)
		}
		leak := false
		if err := r.j.EndStep(bg, id, res); err != nil {
			if !errors.Is(err, journal.ErrSecret) {
				r.fail(err)
				return stepEnd{kind: kInterrupted}
			}
			// A step put a secret in its error or facts: record that
			// much, and stop trusting the strategy on this VM.
			leak = true
			res = journal.StepResult{Status: journal.StepFailed, Error: withheld, At: res.At}
			if err := r.j.EndStep(bg, id, res); err != nil {
				r.fail(err)
				return stepEnd{kind: kInterrupted}
			}
		}
		for k, v := range res.Facts { // journaled with the step (none after a leak)
			vs.facts[k] = v
		}
		r.at(vm.Key, s, name, attempt, PointEnded)
		vs.note(s, name, attempt, res.Status)
		if serr != nil && (interrupted || retryable(serr)) {
			vs.mayHaveActed(s, name)
		}
		r.emitSink(Event{Kind: EvStepEnded, VMKey: vm.Key, Strategy: s, Step: name, Attempt: attempt,
			Message: fmt.Sprintf("%s %s/%s attempt %d: %s %s", vm.Key, s, name, attempt, res.Status, res.Error)})
		switch {
		case leak:
			return stepEnd{kind: kFailed, msg: fmt.Sprintf("step %s: %s (a bug in the step: report it)", name, withheld)}
		case serr == nil:
			return stepEnd{kind: kOK}
		case interrupted:
			return stepEnd{kind: kInterrupted}
		case errors.Is(serr, step.ErrHealthy):
			return stepEnd{kind: kHealthy, msg: res.Error}
		case errors.Is(serr, step.ErrNeedsPerson):
			return stepEnd{kind: kNeedsPerson, msg: fmt.Sprintf("step %s: %s", name, res.Error), unverified: errors.Is(serr, step.ErrUnverifiable)}
		case errors.Is(serr, step.ErrStrategyFailed) || !retryable(serr):
			return stepEnd{kind: kFailed, msg: fmt.Sprintf("step %s: %s", name, res.Error), noRepair: errors.Is(serr, step.ErrStrategyFailed)}
		}
		if charges(serr, after) {
			charged++
		}
		spent := r.now().Sub(start) - waited
		if charged >= r.o.Retry.MaxAttempts || spent >= r.o.Retry.MaxTime {
			return stepEnd{kind: kFailed, msg: fmt.Sprintf("step %s: gave up after %d attempts over %s: %s",
				name, charged, spent.Round(time.Second), res.Error)}
		}
		delay := r.o.Retry.Backoff.Delay(vm.Key+"/"+string(s)+"/"+name, max(charged, 1), providers.RetryAfter(serr))
		r.emit(Event{Kind: EvStepRetry, VMKey: vm.Key, Strategy: s, Step: name, Attempt: attempt,
			Message: fmt.Sprintf("%s/%s attempt %d failed (%s); retrying in %s", s, name, attempt, res.Error, delay.Round(time.Millisecond))})
		if err := r.o.Clock.Sleep(ctx, delay); err != nil {
			return stepEnd{kind: kInterrupted}
		}
	}
}

// ticket lets a step attempt start under the control-plane breaker: a
// ticket whose Done records the outcome, or, for a background attempt (an
// early step), nil once the breaker is closed (brake.Breaker.AwaitClosed:
// it never becomes the probe, and its outcome is not recorded).
func (r *runner) ticket(ctx context.Context, key string, background bool) (*brake.Ticket, error) {
	if background {
		return nil, r.breaker.AwaitClosed(ctx)
	}
	return r.breaker.Acquire(ctx, key)
}

// errText is an error's text, bounded.
func errText(err error) string {
	s := err.Error()
	if len(s) > maxErrText {
		s = s[:maxErrText] + "…(truncated)"
	}
	return s
}

func (r *runner) now() time.Time { return r.o.Clock.Now() }

// upsert writes a VM record; a reason the journal refuses as secret is
// replaced by the withheld text.
func (r *runner) upsert(ctx context.Context, rec journal.VM) error {
	err := r.j.UpsertVM(ctx, rec)
	if errors.Is(err, journal.ErrSecret) {
		rec.Reason = withheld
		err = r.j.UpsertVM(ctx, rec)
	}
	return err
}

// emit journals e (filling its time) and passes it to the sink. A message
// the journal refuses as secret is replaced by the withheld text. It
// reports false (and stops the run) if the journal cannot record it.
func (r *runner) emit(e Event) bool {
	if e.At.IsZero() {
		e.At = r.now()
	}
	je := journal.Event{RunID: r.runID, VMKey: e.VMKey, Kind: e.Kind, Strategy: string(e.Strategy), Message: e.Message, At: e.At}
	err := r.j.Event(context.Background(), je)
	if errors.Is(err, journal.ErrSecret) {
		e.Message, je.Message = withheld, withheld
		err = r.j.Event(context.Background(), je)
	}
	if err != nil {
		r.fail(err)
		return false
	}
	r.emitSink(e)
	return true
}

// emitSink passes e to the sink only (not journaled).
func (r *runner) emitSink(e Event) {
	if r.o.Events == nil {
		return
	}
	if e.At.IsZero() {
		e.At = r.now()
	}
	r.o.Events(e)
}
