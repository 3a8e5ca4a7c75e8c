package apply

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// EvTierStarted is the gate event of a plan with tiers: the Nth
// tier.started event of a run opens tier N (tiers open in order, and each
// opens once per run, across resumes). Its message says why: the tier
// before it was done, or its timeout passed.
const EvTierStarted = "tier.started"

// gates holds the VMs of each tier of a plan with tiers until the tier
// before it has no VM left to do (each is fixed, healthy, or left to a
// person) or policy.tier_timeout_minutes have passed since that tier
// started. A nil *gates holds nothing (a plan without tiers).
type gates struct {
	r       *runner
	ctx     context.Context // ends the timeout waits
	timeout time.Duration   // 0: none
	mu      sync.Mutex
	left    []int           // per tier (index tier-1): VMs this process must still finish
	open    []chan struct{} // per tier: closed once it opens
	opened  []bool
}

// newGates makes the gates of r's plan for the VMs todo (those this
// process must finish), opening at once the tiers an earlier process of
// the run opened (their tier.started events) and then, in order, every
// tier whose predecessors have nothing left to do. Nil when the plan has
// no tiers.
func (r *runner) newGates(ctx context.Context, todo []*plan.VMPlan) (*gates, error) {
	n := len(r.p.Tiers)
	if n == 0 {
		return nil, nil
	}
	g := &gates{r: r, ctx: ctx, timeout: time.Duration(r.p.Policy.TierTimeoutMinutes) * time.Minute,
		left: make([]int, n), open: make([]chan struct{}, n), opened: make([]bool, n)}
	for i := range g.open {
		g.open[i] = make(chan struct{})
	}
	for _, vm := range todo {
		g.left[vm.Tier-1]++
	}
	evs, err := r.j.Events(ctx, r.runID, journal.EventFilter{Kinds: []string{EvTierStarted}})
	if err != nil {
		return nil, err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i := 0; i < min(len(evs), n); i++ {
		g.opened[i] = true
		close(g.open[i])
	}
	if len(evs) == 0 {
		g.openLocked(0, "the first tier")
		return g, nil
	}
	last := min(len(evs), n) - 1
	if !g.advanceLocked(last) {
		g.timer(last, evs[last].At)
	}
	return g, nil
}

// openLocked opens tier i (0-based), journals it, and either opens the
// next at once (nothing left to do in tier i) or starts its timeout.
func (g *gates) openLocked(i int, why string) {
	if g.opened[i] {
		return
	}
	g.opened[i] = true
	at := g.r.now()
	// Journaled before the gate opens: no VM of the tier starts before
	// its tier.started event.
	g.r.emit(Event{At: at, Kind: EvTierStarted, Message: fmt.Sprintf("tier %d of %d, %s, started: %s (%d VMs to do)",
		i+1, len(g.open), g.r.p.Tiers[i].Name, why, g.left[i])})
	close(g.open[i])
	if !g.advanceLocked(i) {
		g.timer(i, at)
	}
}

// advanceLocked opens the tier after open tier i when tier i has nothing
// left to do; it reports whether it did (or there is no next tier).
func (g *gates) advanceLocked(i int) bool {
	if i+1 >= len(g.open) {
		return true
	}
	if g.left[i] > 0 {
		return false
	}
	g.openLocked(i+1, fmt.Sprintf("tier %s is done", g.r.p.Tiers[i].Name))
	return true
}

// timer opens tier i+1 once the timeout has passed since tier i started
// at at, unless it opened before; it stops with g.ctx.
func (g *gates) timer(i int, at time.Time) {
	if g.timeout == 0 || i+1 >= len(g.open) {
		return
	}
	go func() {
		if clock.SleepUntil(g.ctx, g.r.o.Clock, at.Add(g.timeout)) != nil {
			return
		}
		g.mu.Lock()
		defer g.mu.Unlock()
		g.openLocked(i+1, fmt.Sprintf("tier %s still has %d VMs not finished after the %s timeout (policy.tier_timeout_minutes)",
			g.r.p.Tiers[i].Name, g.left[i], g.timeout))
	}()
}

// wait blocks until vm's tier is open; false when ctx ended or the run is
// stopping (see release).
func (g *gates) wait(ctx context.Context, vm *plan.VMPlan) bool {
	if g == nil {
		return true
	}
	select {
	case <-g.open[vm.Tier-1]:
		return !g.r.stopped()
	case <-ctx.Done():
		return false
	}
}

// done records that vm finished in this process.
func (g *gates) done(vm *plan.VMPlan) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	i := vm.Tier - 1
	g.left[i]--
	if g.opened[i] {
		g.advanceLocked(i)
	}
}

// release wakes every VM held, without opening a tier, when the run stops
// starting VMs (the failure brake): they see the stop and do not start.
func (g *gates) release() {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for i, ch := range g.open {
		if !g.opened[i] {
			g.opened[i] = true // not journaled: the tier did not start
			close(ch)
		}
	}
}
