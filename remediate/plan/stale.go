package plan

import (
	"fmt"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
)

// StaleError is a plan apply should not carry out as it stands: older
// than the policy allows, or the live fleet has drifted from it. Drift
// lists the differences, one per line ("- KEY: ..." gone, "~ KEY: ..."
// changed).
type StaleError struct {
	PlanID     string
	Age, Limit time.Duration // Age > Limit when too old
	Drift      []string
}

func (e *StaleError) Error() string {
	var why []string
	if e.Limit > 0 && e.Age > e.Limit {
		why = append(why, fmt.Sprintf("it was made %s ago, more than the policy's plan_max_age_minutes (%d)",
			e.Age.Round(time.Minute), int(e.Limit/time.Minute)))
	}
	if len(e.Drift) > 0 {
		why = append(why, fmt.Sprintf("the live fleet has drifted from it (%d VMs):\n  %s", len(e.Drift), strings.Join(e.Drift, "\n  ")))
	}
	return fmt.Sprintf("plan %s is stale: %s\nplan again (fixfleet plan), or pass --allow-stale to apply it anyway", e.PlanID, strings.Join(why, "; "))
}

// CheckFresh returns a *StaleError when p is older at now than its
// policy's plan_max_age_minutes, or when live (the VMs the plan's accounts
// list now) differs from it: a VM the plan acts on is gone, or its OS
// disk is another. VMs new since the plan are not drift: the plan leaves
// them alone. Nil when p is fresh.
func CheckFresh(p *Plan, now time.Time, live []inventory.VM) error {
	e := &StaleError{PlanID: p.ID, Age: now.Sub(p.CreatedAt), Limit: time.Duration(p.Policy.PlanMaxAgeMinutes) * time.Minute}
	byKey := make(map[string]inventory.VM, len(live))
	for _, v := range live {
		byKey[v.Key()] = v
	}
	for _, v := range p.VMs {
		if !v.Acts() {
			continue
		}
		l, ok := byKey[v.Key]
		switch {
		case !ok:
			e.Drift = append(e.Drift, fmt.Sprintf("- %s: no longer in the fleet", v.Key))
		case l.OSDisk.ID != v.OSDisk.ID:
			e.Drift = append(e.Drift, fmt.Sprintf("~ %s: OS disk %s in the plan, %s now", v.Key, v.OSDisk.ID, l.OSDisk.ID))
		}
	}
	if (e.Limit > 0 && e.Age > e.Limit) || len(e.Drift) > 0 {
		return e
	}
	return nil
}
