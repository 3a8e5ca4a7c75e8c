package apply

import (
	"context"
	"sync"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/brake"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// strategyGate holds the VMs after the canary: those of a canary group
// (plan.CanaryGroup: first strategy and account) start once every canary
// VM of that group is proven (canaryVM: its first strategy ran without a
// surprise), the rest once the canary as a whole has passed (openAll, also
// called to let the dispatchers see a stop). A strategy proven on its own
// canary VMs does not wait for a slower strategy's. Opening is
// idempotent; onFirst runs once, at the first opening.
type strategyGate struct {
	mu      sync.Mutex
	open    map[string]bool
	all     bool
	next    chan struct{} // closed at the next opening
	onFirst func()
}

func newStrategyGate(onFirst func()) *strategyGate {
	return &strategyGate{open: map[string]bool{}, next: make(chan struct{}), onFirst: onFirst}
}

// isOpen reports whether group's VMs may start.
func (g *strategyGate) isOpen(group string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.all || g.open[group]
}

// changed returns a channel closed at the next opening.
func (g *strategyGate) changed() <-chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.next
}

// openGroup lets group's VMs start.
func (g *strategyGate) openGroup(group string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.all || g.open[group] {
		return
	}
	g.open[group] = true
	g.openedLocked()
}

// openAll lets every group start.
func (g *strategyGate) openAll() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.all {
		return
	}
	g.all = true
	g.openedLocked()
}

// openedLocked wakes the dispatchers, and runs onFirst at the first
// opening. Caller holds mu.
func (g *strategyGate) openedLocked() {
	close(g.next)
	g.next = make(chan struct{})
	if g.onFirst != nil {
		g.onFirst()
		g.onFirst = nil
	}
}

// canaryVM is how one canary VM stands, from the journal: proven when
// its first strategy ended without a surprise (the VM ended well, or the
// strategy reported, as designed, that it cannot repair the VM and the
// VM went on to its fallbacks).
type canaryVM struct{ open, acted, bad, proven bool }

// canaryState reads each canary VM's standing from the journal (so VMs
// finished by an earlier process count), keyed by VM key.
func (r *runner) canaryState(ctx context.Context, w plan.Wave) (map[string]canaryVM, error) {
	out := make(map[string]canaryVM, len(w.VMs))
	for _, k := range w.VMs {
		rec, err := r.j.GetVM(ctx, r.runID, k)
		if err != nil {
			return nil, err
		}
		var s canaryVM
		if rec.Status == StatusPending || rec.Status == StatusRunning {
			evs, err := r.j.Events(ctx, r.runID, journal.EventFilter{VMKey: k, Kinds: []string{EvStrategyNoRepair}})
			if err != nil {
				return nil, err
			}
			first := r.byKey[k].Strategy
			for _, e := range evs {
				s.proven = s.proven || policy.Strategy(e.Strategy) == first
			}
		}
		switch rec.Status {
		case StatusPending, StatusRunning:
			s.open = true
		case StatusFixed:
			s.acted = true
		case StatusFailed:
			s.acted, s.bad = true, true
		case StatusFlagged:
			if Reason(rec.Code).Outcome() == OutcomeNoPath {
				break // an expected end, as the plan foresaw: not a failure
			}
			steps, err := r.j.ListSteps(ctx, r.runID, k)
			if err != nil {
				return nil, err
			}
			s.acted, s.bad = len(steps) > 0, len(steps) > 0
		}
		s.proven = s.proven || (!s.open && !s.bad)
		out[k] = s
	}
	return out, nil
}

// canaryCounts sums st: the canary VMs acted on, those that went badly,
// and those not finished.
func canaryCounts(st map[string]canaryVM) (bad, acted, open int) {
	for _, s := range st {
		if s.open {
			open++
		}
		if s.acted {
			acted++
		}
		if s.bad {
			bad++
		}
	}
	return bad, acted, open
}

// passCanaryEarly opens the strategy gate to each canary group whose
// canary VMs are all proven (canaryVM), and lets every other wave start before
// the canary's last VMs finish once the canary can no longer fail: even
// if every canary VM not finished yet failed, the bad share would stay
// within the threshold (the share only grows as failures are added, so
// the canary's verdict at its end is then a pass whatever they do). It is
// called as each canary VM ends or its first strategy reports that it
// cannot repair it, and once before the canary runs (a
// resumed run's canary VMs may have ended in an earlier process); the
// release happens once.
func (r *runner) passCanaryEarly(ctx context.Context) {
	w := r.p.Waves[0]
	st, err := r.canaryState(ctx, w)
	if err != nil {
		return // errors surface at the canary's end
	}
	proven := map[string]bool{} // canary group -> all its canary VMs proven
	for k, s := range st {
		g := plan.CanaryGroup(*r.byKey[k])
		p, seen := proven[g]
		proven[g] = (p || !seen) && s.proven
	}
	for g, ok := range proven {
		if ok {
			r.strategies.openGroup(g)
		}
	}
	bad, acted, open := canaryCounts(st)
	if open == 0 || brake.Exceeds(bad+open, acted+open, r.p.Policy.FailureThreshold) {
		return // nothing to gain, or still undecided
	}
	r.passOnce.Do(func() { close(r.canaryPassed) })
}
