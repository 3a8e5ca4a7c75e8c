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
// groups at once. Making a helper changes nothing on any VM, so it runs
// while the canary holds the fleet, and a VM that reaches its lease later
// finds a helper up instead of waiting minutes for one. It runs in early's
// wait group: stopEarly waits for it, so that every helper it made is in
// its pool before the pools are released. It is not cancelled when the
// run ends: a helper whose creation is cut short may exist without the
// pool knowing it, and only a provider that finds helpers by tag would
// release it. Its errors are not the run's: a lease makes a missing
// helper. Call it after startEarly.
func (r *runner) startPrewarm(ctx context.Context, todo []*plan.VMPlan) {
	type group struct {
		acct, zone string
		win        inventory.WindowsVersion
	}
	demand := map[group]int{}
	for _, vm := range todo {
		if vm.Helper == nil || !vm.Acts() {
			continue
		}
		demand[group{plan.AccountKey(vm.Tenant, vm.Account), vm.Helper.Zone, vm.Helper.Windows}]++
	}
	groups := make([]group, 0, len(demand))
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
		r.early.wg.Go(func() { _ = p.Prewarm(ctx, g.zone, g.win, demand[g]) })
	}
}
