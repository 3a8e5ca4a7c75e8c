package apply

import (
	"context"
	"sort"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// prewarmer is a helper pool that makes helpers ready ahead of the leases
// (helperpool.Pool.Prewarm).
type prewarmer interface {
	Prewarm(ctx context.Context, zone string, win inventory.WindowsVersion, vms int) error
}

// startPrewarm asks each account's helper pool, as the run starts, for the
// helpers the VMs of todo may lease (those whose chain has a strategy that
// needs one: the plan's VMPlan.Helper), group by zone and release, all
// groups at once (prewarmFor says for how many VMs). Making a helper
// changes nothing on any VM, so it runs
// while the canary holds the fleet, and a VM that reaches its lease later
// finds a helper up instead of waiting minutes for one. It runs in early's
// wait group: stopEarly waits for it, so that every helper it made is in
// its pool before the pools are released. It is not cancelled when the
// run ends: a helper whose creation is cut short may exist without the
// pool knowing it, and only a provider that finds helpers by tag would
// release it. Its errors are not the run's: a lease makes a missing
// helper. Call it after startEarly.
func (r *runner) startPrewarm(ctx context.Context, todo []*plan.VMPlan) {
	demand := helperDemand(todo)
	r.demand = demand
	acting := map[string]int{} // account -> VMs acted on
	for _, vm := range todo {
		if vm.Acts() {
			acting[plan.AccountKey(vm.Tenant, vm.Account)]++
		}
	}
	groups := make([]helperGroup, 0, len(demand))
	for g := range demand {
		groups = append(groups, g)
	}
	sort.Slice(groups, func(i, j int) bool {
		a, b := groups[i], groups[j]
		if a.acct != b.acct {
			return a.acct < b.acct
		}
		if a.zone != b.zone {
			return a.zone < b.zone
		}
		return a.win.Release < b.win.Release
	})
	for _, g := range groups {
		env := r.envs[g.acct]
		if env == nil {
			continue
		}
		p, ok := env.Helpers.(prewarmer)
		if !ok {
			continue
		}
		n := prewarmFor(demand[g], acting[g.acct], r.slots())
		r.early.wg.Go(func() { _ = p.Prewarm(ctx, g.zone, g.win, n) })
	}
}

// prewarmFor is how many of a group's demand VMs to make helpers ready
// for, when acting VMs of its account are to be worked on with at most
// slots of them in flight at once: the group's share of the slots, as if
// every VM in flight held a lease at once (rounded up, at most demand).
// Each VM holds at most one lease, and only for a part of its repair
// (410 leases at once at the peak of a 10,000-VM run with 1,000 slots,
// where helpers were made for all 4,400 VMs that might lease): the rest
// would be created, and deleted, unused. A lease beyond them makes its
// helper then.
func prewarmFor(demand, acting, slots int) int {
	if acting <= slots {
		return demand
	}
	return min(demand, (demand*slots+acting-1)/acting)
}

// slots is how many VMs of one account may be in flight at once.
func (r *runner) slots() int {
	c := r.p.Policy.Concurrency
	return max(1, min(c.Total, c.PerAccount))
}

// helperGroup is where a VM's helper comes from: its account, and the
// helper's zone and release (the plan's VMPlan.Helper).
type helperGroup struct {
	acct, zone string
	win        inventory.WindowsVersion
}

func groupOf(vm *plan.VMPlan) (helperGroup, bool) {
	if vm.Helper == nil || !vm.Acts() {
		return helperGroup{}, false
	}
	return helperGroup{plan.AccountKey(vm.Tenant, vm.Account), vm.Helper.Zone, vm.Helper.Windows}, true
}

// helperDemand counts, per group, the VMs of todo that may lease a helper.
func helperDemand(todo []*plan.VMPlan) map[helperGroup]int {
	demand := map[helperGroup]int{}
	for _, vm := range todo {
		if g, ok := groupOf(vm); ok {
			demand[g]++
		}
	}
	return demand
}

// idleReleaser is a helper pool that deletes a group's idle helpers while
// the run goes on (helperpool.Pool.ReleaseIdle).
type idleReleaser interface {
	ReleaseIdle(ctx context.Context, zone string, win inventory.WindowsVersion) error
}

// helperDone notes that vm, which reached its final status, will lease no
// helper again. Once no VM of the run is left that may lease in its
// group, the group's idle helpers are deleted, in early's wait group (as
// startPrewarm's work), instead of idling, paid for, until the run ends:
// the fleet's last VMs are often of other groups (a restore needs no
// helper). Not with KeepHelpers. Errors are not the run's: ReleaseAll, at
// the end, deletes what is left and reports it.
func (r *runner) helperDone(ctx context.Context, vm *plan.VMPlan) {
	g, ok := groupOf(vm)
	if !ok || r.o.KeepHelpers {
		return
	}
	r.mu.Lock()
	r.demand[g]--
	last := r.demand[g] == 0
	r.mu.Unlock()
	env := r.envs[g.acct]
	if !last || env == nil {
		return
	}
	p, ok := env.Helpers.(idleReleaser)
	if !ok {
		return
	}
	r.early.wg.Go(func() { _ = p.ReleaseIdle(ctx, g.zone, g.win) })
}
