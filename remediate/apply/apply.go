// Package apply is the executor: it carries out a plan.Plan durably and
// safely, one journaled step at a time.
//
// # Lock and run identity
//
// Run first takes the journal's exclusive apply lock; a second apply on the
// same journal fails at once with the journal's *journal.LockedError,
// returned as-is. The run ID is the plan's ID, so running the same plan
// again resumes it. The plan document is stored in the run record; resuming
// with a plan that differs from the stored one is refused.
//
// # Per VM
//
// Strategy none is recorded "untouched-healthy" and manual "flagged" with
// the plan's reasons; neither is touched. For a VM acted on, the chain is
// the plan's Strategy followed by its Fallbacks. Each strategy's Steps run
// in order; every attempt is journaled before (BeginStep, with a small JSON
// intent: strategy, step, attempt, wave) and after (EndStep, with the facts
// it produced or its error text). A step receives the journal's merged
// facts of the VM. Outcomes:
//
//   - nil: next step; all steps done: "fixed" by that strategy.
//   - retryable (providers.Retryable, or guest.Transient): retried
//     with exponential backoff and full jitter on the clock (at least the
//     cloud's Retry-After), up to Retry.MaxAttempts attempts and
//     Retry.MaxTime of clock time; see Retry for what is not charged.
//   - step.ErrHealthy: the VM is healthy now and nothing more touches it.
//     It is "fixed" (by the current strategy) if any step of this VM in
//     this run ended ok and is not marked read-only (step.Step.ReadOnly;
//     Abort always counts as a change), or may have acted (a mutating
//     step begun and never ended, or failed with a retryable error: its
//     reply may have been lost after the change); otherwise
//     "skipped-healthy". The step is journaled
//     "skipped", so that a resume runs it again rather than going past it.
//   - step.ErrNeedsPerson: "flagged" with the message; stop.
//   - step.ErrStrategyFailed, another error, or retries exhausted: the
//     strategy failed (an event "vm.strategy-failed" records why), its
//     Abort runs as a journaled step "abort" (with the same retries), then
//     the next strategy of the chain. Abort returning ErrNeedsPerson:
//     "flagged"; Abort failing otherwise: "failed" (the VM may not be in a
//     safe state). No strategy left: "flagged" with every strategy's
//     reason.
//
// # Resume
//
// A VM already finished (fixed, flagged, failed, skipped-healthy) is not
// redone, except one flagged "account not configured", which is retried.
// A VM in progress continues: a step that ended "ok" in any attempt is
// skipped (its facts are in the journal); a step begun and never ended, or
// ended otherwise, runs again (steps are idempotent and re-read the real
// state). The strategy the VM was on is recovered from the
// "vm.strategy-failed" events: those strategies are passed over (their
// Abort is run first if it had not ended ok).
//
// # Waves and brakes
//
// Wave 1 is the canary; the other waves' VMs flow in wave order as slots
// free up. A VM after the canary starts once the canary VMs of its canary
// group (plan.CanaryGroup: first strategy and account) are proven: ended
// well, or that strategy reported as designed that it cannot repair them
// (the strategy gate, canary.go); a group without canary VMs waits for the
// canary to pass. When the canary ends, if failed plus flagged-after-action
// VMs exceed policy.failure_threshold of the canary VMs acted on (fixed,
// failed, or flagged after at least one step), the run stops: "paused:
// canary failed" (VMs of proven groups already started finish). Once the
// canary can no longer fail (its unfinished VMs all failing would keep the
// share within the threshold), it passes before its last VMs end. After
// the canary, a running failure rate over the VMs finished
// in this process (waves 2+) trips once it exceeds the threshold with at
// least Options.MinSample acted on: no new VM starts, those in flight
// finish, "paused: failure brake". A run paused by a brake resumes only
// with Options.Continue. At most policy.concurrency.total VMs are in
// flight, and of one account at most its adaptive window (brake.Window:
// halved when the cloud throttles, never above
// policy.concurrency.per_account).
//
// Early steps (step.Step.Early: the snapshot of delete-file, helper-mount
// and race-the-boot) run ahead for every VM as soon as the waves start,
// while the canary holds the fleet and while cheaper strategies try: they
// take no VM slot (at most policy.concurrency.per_account in flight per
// account), stop starting once a brake trips, and are journaled under
// their strategy, which then finds them done (early.go).
//
// With policy tiers (plan.Tier), a tier's VMs are held until every VM of
// the tier before it has finished (fixed, healthy, or left to a person)
// or policy.tier_timeout_minutes have passed since that tier started; each
// opening is journaled (EvTierStarted, tiers.go) and a resume keeps the
// tiers already opened, timing a timeout from the journaled start.
//
// Every step attempt passes a control-plane circuit breaker (brake.Breaker)
// shared by the run; while it is open no attempt starts, and workers wait
// on the clock until a probe succeeds. A VM is never given up on because
// the control plane was down.
package apply

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/semaphore"

	"github.com/fixfleet/fixfleet/internal/ctxlock"
	"github.com/fixfleet/fixfleet/internal/retry"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/brake"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// runner is the state of one Run.
type runner struct {
	p     *plan.Plan
	o     Options
	j     *journal.Journal
	runID string
	envs  map[string]*step.Env
	// strategyEnds are the run's EvStrategyFailed and EvStrategyNoRepair
	// events by VM key, in recording order, as the journal held them
	// when this process started its VMs (each VM runs once per process,
	// and only its own runVM records them): read once, not once per VM.
	strategyEnds map[string][]journal.Event

	breaker *brake.Breaker
	rate    *brake.Rate

	global *semaphore.Weighted
	// accounts hold each account's VMs in flight: a window that adapts
	// to the cloud's throttling, up to policy.concurrency.per_account.
	// Filled before any VM starts, read-only after.
	accounts map[string]*brake.Window
	// turns order the dispatchers that wait for an account's slots (the
	// canary's and the waves' after it, which the strategy gate lets run
	// at once) and globalTurn those that wait for a run-wide slot: served
	// by instant and VM, never in goroutine order (takeSlots).
	turns      map[string]*ctxlock.Ordered
	globalTurn *ctxlock.Ordered

	cancel context.CancelCauseFunc
	hook   Hook // WithHook's, for fault-injection tests; nil otherwise

	mu    sync.Mutex
	fatal error
	// stop is set once the failure brake trips: no new VM starts.
	stop bool
	// gates hold each tier's VMs until the tier before it is done (nil
	// without tiers).
	gates *gates
	// demand counts, per helper group, the VMs not finished that may
	// lease there (guarded by mu; see helperDone).
	demand map[helperGroup]int
	// early runs each VM's Early step ahead of its strategy (nil before
	// the waves start).
	early *early
	// canaryPassed is closed, once (passOnce), when the canary can no
	// longer fail before its end.
	canaryPassed chan struct{}
	passOnce     sync.Once
	// strategies hold the VMs after the canary until their canary group
	// is proven or the canary has passed.
	strategies *strategyGate
	// byKey are the plan's VMs by key (set before the waves start).
	byKey map[string]*plan.VMPlan
}

// Run executes p (see the package documentation). It returns the run's
// Result (rebuilt from the journal, as Status does) and:
//   - nil when the run finished or a brake paused it (Result.Status says
//     which);
//   - the journal's *journal.LockedError, as-is, when another apply holds
//     the journal;
//   - an error wrapping ctx.Err() when ctx ended (the run is paused and
//     resumes with the next Run);
//   - an error for an invalid plan or options, a plan that differs from
//     the run's stored one, a brake-paused run without Options.Continue,
//     or a journal that cannot be written (the run stops: nothing is done
//     that cannot be journaled).
func Run(ctx context.Context, p *plan.Plan, opts Options) (*Result, error) {
	if p == nil {
		return nil, errors.New("apply: no plan")
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("apply: plan %s is not valid: %w", p.ID, err)
	}
	o, err := opts.withDefaults(p)
	if err != nil {
		return nil, err
	}
	j := o.Journal
	release, err := j.Lock(ctx, o.Owner)
	if err != nil {
		return nil, err
	}
	defer func() { _ = release() }()

	r := &runner{p: p, o: o, j: j, runID: p.ID, accounts: map[string]*brake.Window{}, hook: hookOf(ctx),
		canaryPassed: make(chan struct{}), turns: map[string]*ctxlock.Ordered{}, globalTurn: ctxlock.NewOrdered(o.Clock)}
	for _, vm := range p.VMs {
		if a := plan.AccountKey(vm.Tenant, vm.Account); r.accounts[a] == nil {
			r.accounts[a] = brake.NewWindow(p.Policy.Concurrency.PerAccount, windowCoolDown)
			r.turns[a] = ctxlock.NewOrdered(o.Clock)
		}
	}
	if err := r.setupEnvs(); err != nil {
		return nil, err
	}
	resumed, err := r.openRun(ctx)
	if err != nil {
		return nil, err
	}
	r.rate = brake.NewRate(p.Policy.FailureThreshold, o.MinSample)
	bc := o.Breaker
	bc.OnChange = r.breakerChanged
	r.breaker = brake.NewBreaker(bc)
	r.global = semaphore.NewWeighted(int64(p.Policy.Concurrency.Total))

	rctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r.cancel = cancel

	kind := EvRunStarted
	msg := fmt.Sprintf("apply of plan %s started: %d VMs, %d wave(s)", p.ID, len(p.VMs), len(p.Waves))
	if resumed {
		kind = EvRunResumed
		msg = fmt.Sprintf("apply of plan %s resumed", p.ID)
	}
	if err := r.j.SetRunStatus(rctx, r.runID, journal.RunRunning, r.now()); err != nil {
		return nil, err
	}
	r.emit(Event{Kind: kind, Message: msg})
	recs, err := r.recordPlanned(rctx)
	if err == nil {
		err = r.loadStrategyEnds(rctx)
	}
	if err != nil {
		r.fail(err)
	}

	endKind, endMsg := r.waves(rctx, recs)
	ctxErr := ctx.Err()
	r.mu.Lock()
	fatal := r.fatal
	r.mu.Unlock()
	if fatal != nil || ctxErr != nil {
		endKind = EvPausedInterrupted
		endMsg = "apply interrupted; run apply again to resume"
		if fatal != nil {
			endMsg = "apply stopped: " + fatal.Error()
		}
	}
	r.finish(endKind, endMsg)
	res, serr := Status(context.WithoutCancel(ctx), j, r.runID)
	switch {
	case fatal != nil:
		return res, fmt.Errorf("apply %s stopped: %w", r.runID, fatal)
	case ctxErr != nil:
		return res, fmt.Errorf("apply %s interrupted (%w); run apply again to resume", r.runID, ctxErr)
	}
	return res, serr
}

// setupEnvs copies the Envs, filling what the run knows.
func (r *runner) setupEnvs() error {
	r.envs = make(map[string]*step.Env, len(r.o.Envs))
	for k, e := range r.o.Envs {
		if e == nil {
			continue
		}
		c := *e
		switch {
		case c.RunID == "":
			c.RunID = r.runID
		case c.RunID != r.runID:
			return fmt.Errorf("apply: the Env of account %s has run ID %q, but this run is %q", k, c.RunID, r.runID)
		}
		if c.Clock == nil {
			c.Clock = r.o.Clock
		}
		if c.Policy.Strategies == nil {
			c.Policy = r.p.Policy
		}
		if c.Incident.Name == "" {
			c.Incident = r.p.Incident
		}
		r.envs[k] = &c
	}
	return nil
}

// openRun creates the run, or checks that an existing one is this plan's
// and may be resumed. It reports whether the run existed.
func (r *runner) openRun(ctx context.Context) (bool, error) {
	var canon bytes.Buffer
	if err := plan.Write(&canon, r.p); err != nil {
		return false, err
	}
	stored := canon.Bytes()
	if r.o.PlanJSON != nil {
		c, err := canonical(r.o.PlanJSON)
		if err != nil || !bytes.Equal(c, stored) {
			return false, fmt.Errorf("apply: Options.PlanJSON is not the plan %s being applied", r.p.ID)
		}
		stored = r.o.PlanJSON
	}
	run, err := r.j.GetRun(ctx, r.runID)
	switch {
	case errors.Is(err, journal.ErrNotFound):
		return false, r.j.CreateRun(ctx, journal.Run{ID: r.runID, PlanID: r.p.ID, PlanJSON: stored, CreatedAt: r.now()})
	case err != nil:
		return false, err
	}
	c, err := canonical(run.PlanJSON)
	if err != nil || !bytes.Equal(c, canon.Bytes()) {
		return false, fmt.Errorf("apply: run %s in journal %s was started with a different plan document; "+
			"a run cannot change its plan: apply the plan it was started with to resume it, or give the new plan a new ID",
			r.runID, r.j.Path())
	}
	switch run.Status {
	case journal.RunAborted:
		return false, fmt.Errorf("apply: run %s was aborted and cannot be resumed; give the plan a new ID to apply it again", r.runID)
	case journal.RunPaused:
		kind, msg, err := lastPause(ctx, r.j, r.runID)
		if err != nil {
			return false, err
		}
		if (kind == EvPausedCanary || kind == EvPausedBrake) && !r.o.Continue {
			return false, fmt.Errorf("apply: run %s %w (%s); look at its flagged and failed VMs first (fixfleet status), "+
				"then apply again with --continue to resume it", r.runID, ErrPausedByBrake, msg)
		}
	}
	return true, nil
}

// ErrPausedByBrake is returned when resuming a run that a brake paused,
// without Options.Continue.
var ErrPausedByBrake = errors.New("was paused by a brake")

// canonical re-encodes a plan document as plan.Write does.
func canonical(doc []byte) ([]byte, error) {
	var p plan.Plan
	if err := json.Unmarshal(doc, &p); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	err := plan.Write(&b, &p)
	return b.Bytes(), err
}

// recordPlanned writes a record for every VM that has none yet (untouched
// healthy, manual, pending) and returns every VM's record by key.
func (r *runner) recordPlanned(ctx context.Context) (map[string]journal.VM, error) {
	have, err := r.j.ListVMs(ctx, r.runID)
	if err != nil {
		return nil, err
	}
	recs := make(map[string]journal.VM, len(r.p.VMs))
	for _, v := range have {
		recs[v.VMKey] = v
	}
	var add []journal.VM
	now := r.now()
	for i := range r.p.VMs {
		v := &r.p.VMs[i]
		if _, ok := recs[v.Key]; ok {
			continue
		}
		rec := journal.VM{RunID: r.runID, VMKey: v.Key, Name: v.Name, Strategy: string(v.Strategy), Status: StatusPending, UpdatedAt: now}
		switch v.Strategy {
		case plan.None:
			rec.Status, rec.Code, rec.Reason = StatusUntouchedHealthy, string(ReasonPlannedHealthy), "healthy when planned: never touched"
		case plan.Manual:
			rec.Status, rec.Code, rec.Reason = StatusFlagged, string(ReasonPlannedManual), "left to a person by the plan: "+strings.Join(v.Reasons, "; ")
		default:
			rec.Code, rec.Reason = string(ReasonWaiting), fmt.Sprintf("waiting for wave %d", v.Wave)
		}
		add = append(add, rec)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(32) // concurrent writes share the journal's group commits
	for _, rec := range add {
		g.Go(func() error { return r.upsert(gctx, rec) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, rec := range add {
		recs[rec.VMKey] = rec
	}
	return recs, nil
}

// loadStrategyEnds fills r.strategyEnds from the journal.
func (r *runner) loadStrategyEnds(ctx context.Context) error {
	evs, err := r.j.Events(ctx, r.runID, journal.EventFilter{Kinds: []string{EvStrategyFailed, EvStrategyNoRepair}})
	if err != nil {
		return err
	}
	r.strategyEnds = map[string][]journal.Event{}
	for _, e := range evs {
		r.strategyEnds[e.VMKey] = append(r.strategyEnds[e.VMKey], e)
	}
	return nil
}

// finished reports whether a VM record needs no more work.
func finished(rec journal.VM, ok bool) bool {
	if !ok {
		return false
	}
	switch rec.Status {
	case StatusFixed, StatusSkippedHealthy, StatusFailed, StatusUntouchedHealthy:
		return true
	case StatusFlagged:
		return Reason(rec.Code) != ReasonAccountNotConfigured
	}
	return false
}

// waves runs the waves and returns the kind and message of the event that
// ends this process's segment.
func (r *runner) waves(ctx context.Context, recs map[string]journal.VM) (string, string) {
	index := make(map[string]*plan.VMPlan, len(r.p.VMs))
	for i := range r.p.VMs {
		index[r.p.VMs[i].Key] = &r.p.VMs[i]
	}
	r.byKey = index
	todoOf := func(w plan.Wave) []*plan.VMPlan {
		var todo []*plan.VMPlan
		for _, k := range w.VMs {
			if rec, ok := recs[k]; !finished(rec, ok) {
				todo = append(todo, index[k])
			}
		}
		return todo
	}
	var all []*plan.VMPlan
	for _, w := range r.p.Waves {
		all = append(all, todoOf(w)...)
	}
	gctx, stopGates := context.WithCancel(ctx)
	defer stopGates()
	g, err := r.newGates(gctx, all)
	if err != nil {
		r.fail(err)
		return EvPausedInterrupted, ""
	}
	r.gates = g // before any worker starts
	if err := r.startEarly(ctx, all); err != nil {
		r.fail(err)
		return EvPausedInterrupted, ""
	}
	r.startPrewarm(ctx, all)
	defer r.stopEarly()
	// The other waves flow: their VMs start in wave order as slots free
	// up, without waiting for a wave's slowest VM, while the failure brake
	// holds (it stops new starts once tripped). Each waits at the strategy
	// gate for its canary group, or for the canary to pass.
	var rest []*plan.VMPlan
	for _, w := range r.p.Waves[min(1, len(r.p.Waves)):] {
		rest = append(rest, todoOf(w)...)
	}
	r.strategies = newStrategyGate(func() {
		if len(rest) > 0 {
			r.emit(Event{Kind: EvWaveStarted, Message: fmt.Sprintf("waves after the canary started: %d VMs to do, in wave order as slots free up, "+
				"each once its strategy has proven itself on the canary VMs of its account, or the canary passed", len(rest))})
		}
	})
	flowDone := make(chan struct{})
	go func() { defer close(flowDone); r.dispatch(ctx, rest, false) }()
	var canaryTodo []*plan.VMPlan
	if len(r.p.Waves) > 0 {
		canaryTodo = todoOf(r.p.Waves[0])
	}
	if len(canaryTodo) > 0 {
		w := r.p.Waves[0]
		r.emit(Event{Kind: EvWaveStarted, Message: fmt.Sprintf("%s started: %d of its %d VMs to do", w.Name, len(canaryTodo), len(w.VMs))})
	}
	canaryDone := make(chan struct{})
	go func() { defer close(canaryDone); r.dispatch(ctx, canaryTodo, true) }()
	kind, msg, early := r.canary(ctx, canaryTodo, canaryDone)
	if kind != "" {
		r.halt()
	}
	r.strategies.openAll()
	<-flowDone
	<-canaryDone
	if early && ctx.Err() == nil {
		r.emit(Event{Kind: EvWaveFinished, Message: r.p.Waves[0].Name + " finished"})
	}
	if kind != "" {
		return kind, msg
	}
	if ctx.Err() != nil {
		return EvPausedInterrupted, ""
	}
	if len(rest) > 0 {
		r.emit(Event{Kind: EvWaveFinished, Message: "waves after the canary finished"})
	}
	if r.stopped() {
		acted, bad := r.rate.Counts()
		msg := fmt.Sprintf("failure brake: %d of the last %d VMs acted on failed or were flagged by surprise (threshold %.0f%%); "+
			"no new VM was started after it tripped: look at them (fixfleet status), then apply again with --continue",
			bad, acted, 100*r.p.Policy.FailureThreshold)
		return EvPausedBrake, msg
	}
	return EvRunDone, fmt.Sprintf("apply of plan %s done", r.p.ID)
}

// canary watches the canary wave's VMs not finished yet (todo, which
// another goroutine runs, after the wave's start event; done is closed
// when they have ended) and judges the wave: EvCanaryDone or
// EvCanaryFailed at its end, EvCanaryPassed once it can no longer fail
// (see passCanaryEarly; it then returns while its last VMs finish, with
// early set). It is judged when this process ran some of it (a resume
// after a canary brake needs --continue, checked earlier). kind and msg
// are the event that ends the segment ("" to go on).
func (r *runner) canary(ctx context.Context, todo []*plan.VMPlan, done <-chan struct{}) (kind, msg string, early bool) {
	if len(r.p.Waves) == 0 {
		return "", "", false
	}
	w := r.p.Waves[0]
	r.passCanaryEarly(ctx) // groups whose canary VMs ended in an earlier process
	if len(todo) > 0 {
		select {
		case <-done:
		case <-r.canaryPassed:
			early = true
		}
		if ctx.Err() != nil {
			return EvPausedInterrupted, "", early
		}
		if !early {
			r.emit(Event{Kind: EvWaveFinished, Message: w.Name + " finished"})
		}
	}
	st, err := r.canaryState(ctx, w)
	if err != nil {
		r.fail(err)
		return EvPausedInterrupted, "", early
	}
	bad, acted, open := canaryCounts(st)
	if early {
		r.emit(Event{Kind: EvCanaryPassed, Message: fmt.Sprintf("%s passed before its end: %d of the %d canary VMs acted on went badly and %d are still running; "+
			"even if they all fail the share stays within the threshold (%.0f%%): the other waves start now",
			w.Name, bad, acted, open, 100*r.p.Policy.FailureThreshold)})
	}
	if len(todo) > 0 && !early && brake.Exceeds(bad, acted, r.p.Policy.FailureThreshold) {
		msg := fmt.Sprintf("canary failed: %d of the %d canary VMs acted on failed or were flagged by surprise (threshold %.0f%%); "+
			"no other VM starts (those of a strategy proven on its own canary VMs may have started, and finish): "+
			"look at them (fixfleet status), then apply again with --continue",
			bad, acted, 100*r.p.Policy.FailureThreshold)
		r.emit(Event{Kind: EvCanaryFailed, Message: msg})
		return EvPausedCanary, msg, early
	}
	if len(todo) > 0 && !early {
		r.emit(Event{Kind: EvCanaryDone, Message: fmt.Sprintf("%s passed: %d of the %d canary VMs acted on went badly (threshold %.0f%%)",
			w.Name, bad, acted, 100*r.p.Policy.FailureThreshold)})
	}
	return "", "", early
}

// halt stops new starts (a brake) and lets every gate's waiters see it.
func (r *runner) halt() {
	r.mu.Lock()
	r.stop = true
	r.mu.Unlock()
	r.gates.release()
	r.strategies.openAll()
}

// windowCoolDown is the least time between two decreases of an account's
// window: the calls in flight when the cloud throttles are throttled
// together, and one decrease answers them all.
const windowCoolDown = 30 * time.Second

// dispatch runs VMs (the canary's, or the waves' after it) and returns
// when they have all finished (or were not started because the run is
// stopping). Each account's VMs start in plan order, one dispatcher per
// account; after the canary, the next one is the first in plan order whose
// canary group the strategy gate lets start (waiting for an opening when
// none may). An account slot is taken first, then a run-wide slot (served
// first come, first served), so that a busy account never holds run-wide
// slots it cannot use.
func (r *runner) dispatch(ctx context.Context, todo []*plan.VMPlan, canary bool) {
	var order []string
	byAcct := map[string]*queue{}
	for i, vm := range todo {
		a := plan.AccountKey(vm.Tenant, vm.Account)
		if byAcct[a] == nil {
			order = append(order, a)
			byAcct[a] = &queue{byGroup: map[string][]int{}}
		}
		g := ""
		if !canary {
			g = plan.CanaryGroup(*vm)
		}
		q := byAcct[a]
		if q.byGroup[g] == nil {
			q.groups = append(q.groups, g)
		}
		q.byGroup[g] = append(q.byGroup[g], i)
	}
	var wg sync.WaitGroup
	for _, a := range order {
		sem, q := r.accounts[a], byAcct[a]
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := q.next(ctx, r.strategies, canary)
				if !ok {
					return
				}
				vm := todo[i]
				if !r.gates.wait(ctx, vm) {
					return
				}
				if r.takeSlots(ctx, a, vm, canary) != nil {
					return
				}
				if ctx.Err() != nil || r.stopped() {
					r.global.Release(1)
					sem.Release()
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer sem.Release()
					defer r.global.Release(1)
					r.work(ctx, vm, canary)
				}()
			}
		}()
	}
	wg.Wait()
}

// takeSlots takes one of account a's slots, then a run-wide one, for vm.
// Dispatchers that wait at one instant are served in a fixed order (the
// canary's VMs first, then by VM key: ctxlock.Ordered), so that which VM
// runs first never depends on which goroutine ran first; a dispatcher
// holds its turn while it waits for a slot. On error (ctx ended) nothing
// is held.
func (r *runner) takeSlots(ctx context.Context, a string, vm *plan.VMPlan, canary bool) error {
	key := fmt.Sprintf("%t %s", !canary, vm.Key)
	sem := r.accounts[a]
	if err := r.turns[a].Lock(ctx, key); err != nil {
		return err
	}
	err := r.admit(ctx, r.envs[a], canary)
	if err == nil {
		err = sem.Acquire(ctx)
	}
	r.turns[a].Unlock()
	if err != nil {
		return err
	}
	if err := r.globalTurn.Lock(ctx, key); err != nil {
		sem.Release()
		return err
	}
	err = r.global.Acquire(ctx, 1)
	r.globalTurn.Unlock()
	if err != nil {
		sem.Release()
	}
	return err
}

// AdmitBacklog is the longest wait of an account's control-plane calls in
// the provider's own pacing (step.Env.Backlog) at which a VM after the
// canary starts: beyond it the VMs in flight already use the account's
// whole request rate, and another would only lengthen every call's wait,
// and the time between each re-check and the stop or restart it guards.
// The canary's VMs are not held.
const AdmitBacklog = 30 * time.Second

// admit waits, unless canary, until env's backlog is at most
// AdmitBacklog. It returns ctx's error if ctx ends first.
func (r *runner) admit(ctx context.Context, env *step.Env, canary bool) error {
	if canary || env == nil || env.Backlog == nil {
		return nil
	}
	for {
		b := env.Backlog()
		if b <= AdmitBacklog {
			return nil
		}
		if err := r.o.Clock.Sleep(ctx, b-AdmitBacklog); err != nil {
			return err
		}
	}
}

// queue is one account's VMs to dispatch: indexes into the todo list, by
// canary group, each group in plan order.
type queue struct {
	groups  []string
	byGroup map[string][]int
}

// next takes the first VM in plan order whose group may start (every
// group, for the canary), waiting for the gate to open one; false when
// none is left or ctx ended.
func (q *queue) next(ctx context.Context, gate *strategyGate, canary bool) (int, bool) {
	for {
		best, bestGroup, left := -1, "", false
		changed := gate.changed()
		for _, g := range q.groups {
			vms := q.byGroup[g]
			if len(vms) == 0 {
				continue
			}
			left = true
			if (canary || gate.isOpen(g)) && (best < 0 || vms[0] < best) {
				best, bestGroup = vms[0], g
			}
		}
		switch {
		case !left:
			return 0, false
		case best >= 0:
			q.byGroup[bestGroup] = q.byGroup[bestGroup][1:]
			return best, true
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return 0, false
		}
	}
}

// work runs one VM and feeds the failure brake (after the canary). It
// runs before the VM's slots are released, so that a tripped brake is
// seen by the next VM's dispatcher.
func (r *runner) work(ctx context.Context, vm *plan.VMPlan, canary bool) {
	out := r.runVM(ctx, vm)
	r.endEarly(vm)
	if out.interrupted {
		return
	}
	r.gates.done(vm)
	r.helperDone(ctx, vm)
	if canary {
		r.passCanaryEarly(ctx)
		return
	}
	if r.rate.Record(out.acted, out.bad) {
		r.halt()
		acted, bad := r.rate.Counts()
		r.emit(Event{Kind: EvBrakeTripped, Message: fmt.Sprintf(
			"failure brake tripped: %d of %d VMs acted on failed or were flagged by surprise (threshold %.0f%%); no new VM starts, those in flight finish",
			bad, acted, 100*r.p.Policy.FailureThreshold)})
	}
}

func (r *runner) stopped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stop
}

// finish records the end of this process's segment, then releases helpers
// unless interrupted.
func (r *runner) finish(kind, msg string) {
	ctx := context.Background()
	status := journal.RunPaused
	if kind == EvRunDone {
		status = journal.RunDone
	}
	if err := r.j.SetRunStatus(ctx, r.runID, status, r.now()); err != nil {
		r.fail(err)
	}
	if kind != EvPausedInterrupted && r.o.Helpers != nil {
		// Idempotent: a transient control-plane error must not leave the
		// run's helpers running.
		release := func() error { return r.o.Helpers.ReleaseAll(ctx, r.o.KeepHelpers) }
		if err := retry.Do(ctx, r.o.Clock, retry.Policy{Key: "release-helpers"}, release); err != nil {
			r.emit(Event{Kind: EvHelpersFailed, Message: "releasing the helper VMs failed: " + err.Error() +
				"; they are tagged with the run ID: release them by hand or run apply again"})
		} else if r.o.KeepHelpers {
			r.emit(Event{Kind: EvHelpersKept, Message: "helper VMs kept (keep-helpers)"})
		} else {
			r.emit(Event{Kind: EvHelpersReleased, Message: "helper VMs released"})
		}
	} else if kind == EvPausedInterrupted && r.o.Helpers != nil {
		r.emit(Event{Kind: EvHelpersKept, Message: "helper VMs kept for the resume"})
	}
	r.emit(Event{Kind: kind, Message: msg})
}

// breakerChanged journals the breaker's state changes.
func (r *runner) breakerChanged(c brake.Change) {
	kind := map[brake.State]string{brake.Open: EvBreakerOpen, brake.HalfOpen: EvBreakerHalfOpen, brake.Closed: EvBreakerClosed}[c.To]
	msg := "control-plane breaker " + c.To.String() + ": " + c.Reason
	if c.To == brake.Open {
		msg += "; no new step starts until the API answers again"
	}
	r.emit(Event{At: c.At, Kind: kind, Message: msg, Wait: c.CoolDown})
}

// fail records the first fatal error and stops the run.
func (r *runner) fail(err error) {
	if err == nil {
		return
	}
	r.mu.Lock()
	if r.fatal == nil {
		r.fatal = err
	}
	r.mu.Unlock()
	if r.cancel != nil {
		r.cancel(err)
	}
}
