package report

import (
	"fmt"
	"time"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

var t0 = time.Date(2024, 7, 19, 6, 0, 0, 0, time.UTC)

// fixture is a finished run over three tenants: acme (10 VMs: 2 planned
// healthy, 6 fixed one a minute, 2 flagged needs-person), globex (60
// VMs: 49 planned manual with one text, 1 failed, 10 fixed) and a hostile
// tenant name (2 VMs: 1 skipped healthy, 1 running).
func fixture() (*apply.Result, []journal.Event) {
	res := &apply.Result{RunID: "run-1", PlanID: "plan-1", Status: apply.RunDone, Elapsed: 42 * time.Minute}
	evs := []journal.Event{{Kind: apply.EvRunStarted, At: t0, Message: "started"}}
	at := t0
	add := func(tenant string, i int, status journal.VMStatus, code apply.Reason, reason string) {
		v := apply.VMResult{Key: fmt.Sprintf("%s/acct-%s/vm-%02d", tenant, tenant[:1], i), Tenant: tenant, Account: "acct-" + tenant[:1],
			Name: fmt.Sprintf("%s-vm-%02d", tenant, i), Wave: 1, Strategy: policy.Strategy("reboot-retry"), Status: status, Code: code, Reason: reason}
		res.VMs = append(res.VMs, v)
		kind := ""
		switch status {
		case apply.StatusFixed:
			kind = apply.EvVMFixed
		case apply.StatusSkippedHealthy:
			kind = apply.EvVMSkippedHealthy
		case apply.StatusFlagged:
			if code != apply.ReasonPlannedManual {
				kind = apply.EvVMFlagged
			}
		case apply.StatusFailed:
			kind = apply.EvVMFailed
		}
		if kind != "" {
			at = at.Add(time.Minute)
			evs = append(evs, journal.Event{Kind: kind, VMKey: v.Key, At: at, Message: reason})
		}
	}
	for i := range 10 {
		switch {
		case i < 2:
			add("acme", i, apply.StatusUntouchedHealthy, apply.ReasonPlannedHealthy, "healthy in the plan")
		case i < 8:
			add("acme", i, apply.StatusFixed, apply.ReasonFixed, "fixed by reboot-retry")
		default:
			add("acme", i, apply.StatusFlagged, apply.ReasonNeedsPerson, fmt.Sprintf("console shows BitLocker recovery (%d)", i))
		}
	}
	for i := range 60 {
		switch {
		case i < 49:
			add("globex", i, apply.StatusFlagged, apply.ReasonPlannedManual, "no strategy is allowed: encrypted disk without a recovery key")
		case i == 49:
			add("globex", i, apply.StatusFailed, apply.ReasonAbortFailed, "helper-mount: abort failed: disk left on helper")
		default:
			add("globex", i, apply.StatusFixed, apply.ReasonFixed, "fixed by helper-mount")
		}
	}
	hostile := `<script>alert("x")</script>../../etc`
	add(hostile, 0, apply.StatusSkippedHealthy, apply.ReasonFoundHealthy, "healthy on re-check")
	add(hostile, 1, apply.StatusRunning, apply.ReasonRunning, "running")
	evs = append(evs, journal.Event{Kind: apply.EvBreakerOpen, At: at.Add(time.Second), Message: "API errors"},
		journal.Event{Kind: apply.EvRunDone, At: at.Add(2 * time.Minute), Message: "done"})
	return res, evs
}

// fixtureKept: globex's fixed VMs 50..52 were repaired by copy-and-swap,
// which kept their original OS disks.
func fixtureKept(res *apply.Result) []KeptDisk {
	var out []KeptDisk
	for _, v := range res.VMs {
		if v.Tenant == "globex" && v.Status == apply.StatusFixed && len(out) < 3 {
			out = append(out, KeptDisk{Tenant: v.Tenant, Account: v.Account, VM: v.Key, Name: v.Name, Strategy: "copy-and-swap",
				Disk: fmt.Sprintf("disk-globex-%d-orig", 50+len(out))})
		}
	}
	return out
}
