package plan

import (
	"fmt"
	"sort"

	"github.com/fixfleet/fixfleet/remediate/policy"
)

// # Tiers
//
// With policy tiers, every VM gets the tier of the first policy tier
// whose selector its tags match, or the last tier, "rest". Waves never
// span tiers: the canary is drawn from the first tier with VMs to act on
// (as without tiers, round-robin over (strategy, account) groups), then
// each tier's remaining VMs make waves of policy.wave_size, tier after
// tier. The executor starts a tier's VMs once every VM of the tiers
// before it has finished (fixed, healthy, or left to a person), or
// policy.tier_timeout_minutes after the tier before it started.

// Tier is one tier of the plan, with its VM counts.
type Tier struct {
	Number   int    `json:"number"` // 1-based, in policy order; the last is "rest"
	Name     string `json:"name"`
	Selector string `json:"selector,omitempty"` // "" for rest
	VMs      int    `json:"vms"`                // every VM of the tier
	Act      int    `json:"act"`                // of VMs, those apply acts on
}

// assignTiers fills VMPlan.Tier and returns the plan's tiers (nil when the
// policy has none).
func assignTiers(vms []VMPlan, pol policy.Policy) []Tier {
	names := pol.TierNames()
	if len(names) == 0 {
		return nil
	}
	for i := range vms {
		vms[i].Tier = pol.TierOf(vms[i].Tags)
	}
	tiers := make([]Tier, len(names))
	for i, n := range names {
		tiers[i] = Tier{Number: i + 1, Name: n}
		if i < len(pol.Tiers) {
			tiers[i].Selector = pol.Tiers[i].Selector
		}
	}
	countTiers(tiers, vms)
	return tiers
}

// countTiers sets each tier's counts from the VMs.
func countTiers(tiers []Tier, vms []VMPlan) {
	for i := range tiers {
		tiers[i].VMs, tiers[i].Act = 0, 0
	}
	for _, v := range vms {
		if v.Tier < 1 || v.Tier > len(tiers) {
			continue
		}
		tiers[v.Tier-1].VMs++
		if v.Acts() {
			tiers[v.Tier-1].Act++
		}
	}
}

// byTier splits the indexes of VMs acted on by tier, in tier order,
// keeping fleet order within a tier (one group when there are no tiers).
func byTier(vms []VMPlan, act []int) [][]int {
	groups := map[int][]int{}
	var order []int
	for _, i := range act {
		t := vms[i].Tier
		if groups[t] == nil {
			order = append(order, t)
		}
		groups[t] = append(groups[t], i)
	}
	sort.Ints(order)
	out := make([][]int, len(order))
	for j, t := range order {
		out[j] = groups[t]
	}
	return out
}

// TierName names a VM's tier in p ("" when p has no tiers).
func (p *Plan) TierName(tier int) string {
	if tier < 1 || tier > len(p.Tiers) {
		return ""
	}
	return p.Tiers[tier-1].Name
}

// validateTiers checks the VMs' and waves' tiers against the plan's.
func (p *Plan) validateTiers(add func(format string, args ...any)) {
	if names := p.Policy.TierNames(); len(names) != len(p.Tiers) {
		add("tiers: %d, but the policy names %d (%v)", len(p.Tiers), len(names), names)
	} else {
		for i, t := range p.Tiers {
			if t.Name != names[i] || t.Number != i+1 {
				add("tiers[%d]: %d %q, but the policy's tier %d is %q", i, t.Number, t.Name, i+1, names[i])
			}
		}
	}
	for i, v := range p.VMs {
		if len(p.Tiers) == 0 && v.Tier != 0 || len(p.Tiers) > 0 && (v.Tier < 1 || v.Tier > len(p.Tiers)) {
			add("vms[%d] (%s): tier %d, but the plan has %d tiers", i, v.Key, v.Tier, len(p.Tiers))
		}
	}
	tierOf := make(map[string]int, len(p.VMs))
	for _, v := range p.VMs {
		tierOf[v.Key] = v.Tier
	}
	last := 0
	for wi, w := range p.Waves {
		if w.Tier < last {
			add("waves[%d]: tier %d after a wave of tier %d: tiers run in order", wi, w.Tier, last)
		}
		last = w.Tier
		for _, k := range w.VMs {
			if t, ok := tierOf[k]; ok && t != w.Tier {
				add("waves[%d]: VM %s is of tier %d, the wave of tier %d", wi, k, t, w.Tier)
			}
		}
	}
}

// tierLine is the summary's line about the tiers ("" without tiers).
func tierLine(p *Plan) string {
	if len(p.Tiers) == 0 {
		return ""
	}
	s := "tiers, in order:"
	for i, t := range p.Tiers {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf(" %s (%d VMs, %d acted on)", t.Name, t.VMs, t.Act)
	}
	return s + fmt.Sprintf("; a tier starts when the one before it is done, or after %s", tierTimeout(p.Policy))
}

func tierTimeout(pol policy.Policy) string {
	if pol.TierTimeoutMinutes == 0 {
		return "no timeout (tier_timeout_minutes 0)"
	}
	return fmt.Sprintf("%d minutes", pol.TierTimeoutMinutes)
}
