package notify

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// outcome counts of some VMs, as this process saw them finish.
type tally struct {
	fixed, healthy, flagged, failed int
}

func (t tally) done() int { return t.fixed + t.healthy + t.flagged + t.failed }

func (t tally) String() string {
	return fmt.Sprintf("fixed %d · found healthy %d · flagged %d · failed %d", t.fixed, t.healthy, t.flagged, t.failed)
}

func (t *tally) add(kind string) bool {
	switch kind {
	case apply.EvVMFixed:
		t.fixed++
	case apply.EvVMSkippedHealthy:
		t.healthy++
	case apply.EvVMFlagged:
		t.flagged++
	case apply.EvVMFailed:
		t.failed++
	default:
		return false
	}
	return true
}

// watcher turns one apply's events into messages.
type watcher struct {
	n       *Notifier
	p       *plan.Plan
	mu      sync.Mutex
	runID   string
	tenant  map[string]string // VM key → tenant
	acted   map[string]int    // tenant → VMs the plan acts on
	seen    map[string]*tally // tenant → VMs finished in this process
	told    map[string]bool   // tenants announced done
	canary  map[string]bool   // VM keys of the canary wave
	canaryT tally
	// canaryTold: "canary passed" was sent (once per process: an early
	// pass, then the canary's end).
	canaryTold bool
	total      tally
}

// Watch returns an apply.Options.Events function that sends, for the run
// of plan p (a run's ID is its plan's): run started (or resumed), the canary's result, brake
// and breaker events, each tenant done (when every VM the plan acts on in
// that tenant has finished in this process, or at the latest with run
// done), and run done or paused. It never blocks (see Send). On a nil
// Notifier it returns nil.
func (n *Notifier) Watch(p *plan.Plan) func(apply.Event) {
	if n == nil {
		return nil
	}
	w := &watcher{n: n, p: p, runID: p.ID, tenant: map[string]string{}, acted: map[string]int{},
		seen: map[string]*tally{}, told: map[string]bool{}, canary: map[string]bool{}}
	for _, v := range p.VMs {
		w.tenant[v.Key] = v.Tenant
		w.seen[v.Tenant] = &tally{}
		if v.Wave > 0 {
			w.acted[v.Tenant]++
		}
	}
	if len(p.Waves) > 0 {
		for _, k := range p.Waves[0].VMs {
			w.canary[k] = true
		}
	}
	return w.event
}

// Tee returns an apply.Options.Events function that gives each event of
// the run of plan p to display, then to Watch's function; display itself
// on a nil Notifier.
func (n *Notifier) Tee(p *plan.Plan, display func(apply.Event)) func(apply.Event) {
	send := n.Watch(p)
	if send == nil {
		return display
	}
	return func(e apply.Event) {
		display(e)
		send(e)
	}
}

func (w *watcher) send(ev Event, lv Level, title, text string) {
	w.n.Send(Message{Event: ev, Level: lv, RunID: w.runID, Title: title, Text: text})
}

func (w *watcher) event(e apply.Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch e.Kind {
	case apply.EvRunStarted, apply.EvRunResumed:
		verb := "started"
		if e.Kind == apply.EvRunResumed {
			verb = "resumed"
		}
		acted := 0
		for _, n := range w.acted {
			acted += n
		}
		w.send(EvRunStarted, Info, fmt.Sprintf("fixfleet run %s %s", w.runID, verb),
			fmt.Sprintf("plan %s: %d VMs in %d tenant(s) (%s), %d to repair, %d wave(s)", w.p.ID, len(w.p.VMs), len(w.seen), strings.Join(w.tenants(), ", "), acted, len(w.p.Waves)))
	case apply.EvCanaryPassed, apply.EvCanaryDone:
		// The canary's verdict, typed: early (it can no longer fail) or
		// at its end. Told once.
		if !w.canaryTold {
			w.canaryTold = true
			label := "\ncanary: "
			if e.Kind == apply.EvCanaryPassed {
				label = "\ncanary so far: "
			}
			w.send(EvCanaryPassed, Good, "fixfleet run "+w.runID+": canary passed", e.Message+label+w.canaryT.String())
		}
	case apply.EvCanaryFailed:
		w.send(EvCanaryFailed, Alert, "fixfleet run "+w.runID+": canary failed", e.Message+"\ncanary: "+w.canaryT.String())
	case apply.EvBrakeTripped:
		w.send(EvBrakeTripped, Alert, "fixfleet run "+w.runID+": failure brake tripped", e.Message)
	case apply.EvBreakerOpen:
		w.send(EvBreakerOpen, Warning, "fixfleet run "+w.runID+": cloud API failing, new work paused", e.Message)
	case apply.EvBreakerClosed:
		w.send(EvBreakerClosed, Good, "fixfleet run "+w.runID+": cloud API answers again, work resumed", e.Message)
	case apply.EvRunDone:
		for _, t := range w.tenants() {
			w.tellTenant(t)
		}
		w.send(EvRunDone, Good, "fixfleet run "+w.runID+" done", "this apply: "+w.total.String())
	case apply.EvPausedCanary, apply.EvPausedBrake, apply.EvPausedInterrupted:
		msg := e.Message
		if msg == "" {
			msg = "interrupted"
		}
		w.send(EvRunPaused, Warning, "fixfleet run "+w.runID+" paused", msg+"\nthis apply: "+w.total.String())
	default:
		t, ok := w.tenant[e.VMKey]
		if !ok || !w.seen[t].add(e.Kind) {
			return
		}
		w.total.add(e.Kind)
		if w.canary[e.VMKey] {
			w.canaryT.add(e.Kind)
		}
		if w.seen[t].done() >= w.acted[t] {
			w.tellTenant(t)
		}
	}
}

func (w *watcher) tellTenant(t string) {
	if w.told[t] {
		return
	}
	w.told[t] = true
	m := Message{Event: EvTenantDone, Level: Good, RunID: w.runID, Tenant: t,
		Title: fmt.Sprintf("fixfleet run %s: tenant %s done", w.runID, t),
		Text:  fmt.Sprintf("%d VMs to repair; this apply: %s", w.acted[t], w.seen[t])}
	if w.seen[t].flagged+w.seen[t].failed > 0 {
		m.Level = Warning
	}
	w.n.Send(m)
}

func (w *watcher) tenants() []string {
	out := make([]string, 0, len(w.seen))
	for t := range w.seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}
