package plan

import "fmt"

// Subset returns the plan of the VMs of p that keep selects, for an apply
// limited to them: VMs not kept are not in it at all, so apply never
// touches them. Waves keep their order, emptied ones dropped and the rest
// renumbered (the first remaining wave gates the others, as a canary
// does). Its ID is p's with "+" and label appended, so that it is a run of
// its own in a journal; its estimate is p's (for the whole plan). Nil
// when keep selects nothing.
func Subset(p *Plan, keep func(VMPlan) bool, label string) *Plan {
	sub := *p
	sub.ID = p.ID + "+" + label
	sub.VMs = nil
	kept := map[string]int{} // key -> index in sub.VMs
	for _, v := range p.VMs {
		if keep(v) {
			kept[v.Key] = len(sub.VMs)
			sub.VMs = append(sub.VMs, v)
		}
	}
	if len(sub.VMs) == 0 {
		return nil
	}
	if p.Tiers != nil {
		sub.Tiers = append([]Tier(nil), p.Tiers...)
		countTiers(sub.Tiers, sub.VMs)
	}
	sub.Waves = []Wave{}
	for _, w := range p.Waves {
		var vms []string
		for _, k := range w.VMs {
			if i, ok := kept[k]; ok {
				vms = append(vms, k)
				sub.VMs[i].Wave = len(sub.Waves) + 1
			}
		}
		if len(vms) == 0 {
			continue
		}
		w.Number, w.VMs = len(sub.Waves)+1, vms
		sub.Waves = append(sub.Waves, w)
	}
	sub.Summary = summarize(&sub)
	sub.Summary.Lines = append(sub.Summary.Lines, fmt.Sprintf("selection %s: %d of the %d VMs of plan %s; the estimate is the whole plan's", label, len(sub.VMs), len(p.VMs), p.ID))
	return &sub
}
