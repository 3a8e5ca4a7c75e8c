package apply

import (
	"context"
	"sync"

	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// early runs, for each VM of the run, the first step of its strategy chain
// marked step.Step.Early (a snapshot that changes nothing on the VM and is
// found again by its own step), as soon as the run starts: while the canary
// holds the fleet and while the VM's cheaper strategies try first. The
// step is journaled under the strategy that owns it, as if that strategy
// had run it; when the strategy reaches it, it waits for the early run and
// skips the step if the early run ended it ok (otherwise it runs it
// itself, and finds what the early run left by tag).
//
// Early runs are background work for the account's client-side pacing
// (pace.Background): their calls yield to those of the VMs' own runs,
// until the VM's own run waits for its early run.
//
// Early runs wait while the control-plane breaker is not closed and never
// become its probe (a snapshot waited for over minutes would hold it
// half-open). They take none of the VMs' slots: at most
// policy.concurrency.per_account of them are in flight per account, so
// their calls and polls stay a bounded share of the account's API budget.
// No early run starts once the failure brake has tripped, and a VM's early
// run is cancelled when the VM reaches a final status without it.
type early struct {
	runs map[string]*earlyRun // by VM key; filled before any VM starts, read-only after
	wg   sync.WaitGroup
}

type earlyRun struct {
	s      policy.Strategy
	name   string
	cancel context.CancelFunc
	// promote ends the run's yielding to the other calls of its account
	// (pace.Background): its VM's own run waits for it.
	promote func()
	done    chan struct{} // closed when the run ended (or never started)
	// Set before done is closed: whether the step ended ok, and the
	// highest attempt journaled (0: it never ran).
	ok       bool
	attempts int
}

// earlyStep is the first Early step of vm's chain, conditional strategies
// (step.Conditional: they would mostly find their condition unmet) left
// out, that the journal does not show ended ok, with its strategy; ok
// is false when there is none.
func (r *runner) earlyStep(vm *plan.VMPlan, vs *vmState) (policy.Strategy, step.Step, bool) {
	t := vm.Target()
	for _, s := range append([]policy.Strategy{vm.Strategy}, vm.Fallbacks...) {
		strat := r.o.Strategies[s]
		if strat == nil {
			continue
		}
		if step.ConditionOf(strat, t) != "" {
			continue
		}
		for _, st := range strat.Steps(t, r.p.Policy) {
			if st.Early {
				if vs.ok[skey(s, st.Name)] {
					return "", step.Step{}, false
				}
				return s, st, true
			}
		}
	}
	return "", step.Step{}, false
}

// startEarly plans an early run for every VM of todo that has an Early
// step left, and starts them account by account in plan order. It returns
// before they end; stopEarly cancels those left and waits for them.
func (r *runner) startEarly(ctx context.Context, todo []*plan.VMPlan) error {
	e := &early{runs: map[string]*earlyRun{}}
	type job struct {
		vm  *plan.VMPlan
		vs  *vmState
		st  step.Step
		er  *earlyRun
		ctx context.Context
	}
	var order []string
	byAcct := map[string][]job{}
	for _, vm := range todo {
		a := plan.AccountKey(vm.Tenant, vm.Account)
		if r.envs[a] == nil {
			continue
		}
		vs, _, err := r.loadVMState(ctx, vm)
		if err != nil {
			return err
		}
		s, st, ok := r.earlyStep(vm, vs)
		if !ok {
			continue
		}
		urgent := pace.NewUrgency()
		jctx, cancel := context.WithCancel(pace.Background(ctx, urgent))
		er := &earlyRun{s: s, name: st.Name, cancel: cancel, promote: func() { urgent.Promote(r.now()) }, done: make(chan struct{})}
		e.runs[vm.Key] = er
		if byAcct[a] == nil {
			order = append(order, a)
		}
		byAcct[a] = append(byAcct[a], job{vm, vs, st, er, jctx})
	}
	r.early = e
	for _, a := range order {
		slots := make(chan struct{}, max(1, r.p.Policy.Concurrency.PerAccount))
		jobs := byAcct[a]
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			for i, j := range jobs {
				select {
				case slots <- struct{}{}:
				case <-ctx.Done():
				}
				if ctx.Err() != nil || r.stopped() {
					for _, rest := range jobs[i:] {
						close(rest.er.done)
					}
					return
				}
				e.wg.Add(1)
				go func() {
					defer e.wg.Done()
					defer func() { <-slots }()
					r.runEarly(j.ctx, j.vm, j.vs, j.st, j.er)
				}()
			}
		}()
	}
	return nil
}

// runEarly runs er's step of vm and records how it ended in er. vs is
// vm's state as startEarly read it: vm's own run never runs this step
// before the early run has ended (awaitEarly), and an Early step reads no
// fact of another, so its attempts and facts are still current.
func (r *runner) runEarly(ctx context.Context, vm *plan.VMPlan, vs *vmState, st step.Step, er *earlyRun) {
	defer close(er.done)
	if ctx.Err() != nil {
		return // the VM finished without it
	}
	k := skey(er.s, er.name)
	r.runStep(ctx, r.envs[plan.AccountKey(vm.Tenant, vm.Account)], vm, vs, er.s, er.name, st.Run, true)
	er.ok, er.attempts = vs.ok[k], vs.attempts[k]
}

// awaitEarly is called by vm's own run before it runs step name of
// strategy s, an Early step: it waits until vm's early run (if any) has
// ended, so that the two never run at once, and tells vs what the early
// run did when it ran this very step, and the facts it recorded. It
// returns false if ctx ended first or the journal cannot be read.
func (r *runner) awaitEarly(ctx context.Context, vm *plan.VMPlan, vs *vmState, s policy.Strategy, name string) bool {
	if r.early == nil {
		return true
	}
	er := r.early.runs[vm.Key]
	if er == nil {
		return true
	}
	er.promote()
	select {
	case <-er.done:
	case <-ctx.Done():
		return false
	}
	if er.attempts == 0 {
		return true
	}
	if er.s == s && er.name == name {
		st := journal.StepFailed
		if er.ok {
			st = journal.StepOK
		}
		vs.note(s, name, er.attempts, st)
	}
	// The early run recorded its facts (the snapshot's ID) in the
	// journal, beside what vm's own steps recorded: read them back.
	facts, err := r.j.Facts(ctx, r.runID, vm.Key)
	if err != nil {
		if ctx.Err() == nil {
			r.fail(err)
		}
		return false
	}
	vs.facts = facts
	return true
}

// resumed reports whether the journal shows steps of vm other than its
// early run's: vm's own run began in an earlier process.
func (r *runner) resumed(vm *plan.VMPlan, vs *vmState) bool {
	var own string
	if r.early != nil {
		if er := r.early.runs[vm.Key]; er != nil {
			own = skey(er.s, er.name)
		}
	}
	for k := range vs.attempts {
		if k != own {
			return true
		}
	}
	return false
}

// endEarly cancels vm's early run, if one is still going: vm reached a
// final status without needing it.
func (r *runner) endEarly(vm *plan.VMPlan) {
	if r.early == nil {
		return
	}
	if er := r.early.runs[vm.Key]; er != nil {
		er.cancel()
	}
}

// stopEarly cancels every early run still going and waits for them all.
func (r *runner) stopEarly() {
	if r.early == nil {
		return
	}
	for _, er := range r.early.runs {
		er.cancel()
	}
	r.early.wg.Wait()
}
