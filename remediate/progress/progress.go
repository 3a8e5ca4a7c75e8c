// Package progress shows what a long command is doing on a terminal: one
// status line redrawn in place (fitted to the terminal's width), and a full
// line for what an operator must notice. Display follows an apply from the
// executor's events; Assess follows an assessment.
package progress

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// DefaultWidth is the width assumed when the terminal's is unknown.
const DefaultWidth = 80

// Options describe the run a Display follows.
type Options struct {
	// Total is the number of VMs in the plan; Manual those the plan left
	// to a person (never started, but a person must look at them).
	Total, Manual int
	// Estimate is the plan's estimated duration (0: none), for the ETA
	// until the first VM finishes.
	Estimate time.Duration
	// Width returns the terminal's columns (nil or <= 0: DefaultWidth).
	Width func() int
}

// ForPlan are the Options of an apply of p.
func ForPlan(p *plan.Plan, width func() int) Options {
	return Options{Total: len(p.VMs), Manual: p.Summary.ManualN,
		Estimate: time.Duration(p.Estimate.DurationSeconds) * time.Second, Width: width}
}

// Display shows an apply's progress. With a nil writer it shows nothing.
// Times are the events' own (the run's clock), so a simulated run shows
// simulated time.
type Display struct {
	w io.Writer
	o Options

	mu                             sync.Mutex
	start, now                     time.Time
	fixed, healthy, flagged, fails int
	inFlight                       int
	wave                           string
	// accounts counts each account's VMs started and finished.
	accounts map[string]*[2]int
	// breakerUntil is when an open breaker tries the API again (zero:
	// closed).
	breakerUntil time.Time
	retry        string
}

// New returns a display on w (nil: none).
func New(w io.Writer, o Options) *Display {
	return &Display{w: w, o: o, accounts: map[string]*[2]int{}}
}

// Event implements apply.Options.Events; safe for concurrent use.
func (p *Display) Event(e apply.Event) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	line := p.apply(e)
	if line != "" {
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	}
	fmt.Fprint(p.w, Redraw(p.Line(), width(p.o.Width)))
}

// apply counts e and returns the full line it deserves ("" for none).
func (p *Display) apply(e apply.Event) string {
	if p.start.IsZero() {
		p.start = e.At
	}
	if e.At.After(p.now) {
		p.now = e.At
	}
	acct := accountOf(e.VMKey)
	finished := func() {
		p.inFlight--
		if a := p.accounts[acct]; a != nil {
			a[1]++
		}
	}
	switch e.Kind {
	case apply.EvVMStarted, apply.EvVMResumed:
		p.inFlight++
		if p.accounts[acct] == nil {
			p.accounts[acct] = &[2]int{}
		}
		p.accounts[acct][0]++
	case apply.EvVMFixed:
		p.fixed++
		finished()
	case apply.EvVMSkippedHealthy:
		p.healthy++
		finished()
	case apply.EvVMFlagged:
		p.flagged++
		finished()
		return "left to a person: " + e.VMKey + ": " + e.Message
	case apply.EvVMFailed:
		p.fails++
		finished()
		return "FAILED " + e.VMKey + ": " + e.Message
	case apply.EvWaveStarted:
		p.wave = "rollout"
		if strings.HasPrefix(e.Message, "canary") {
			p.wave = "canary"
		}
	case apply.EvStepRetry:
		p.retry = fmt.Sprintf("%s: %s, retry %d", e.VMKey, e.Step, e.Attempt)
	case apply.EvBreakerOpen:
		p.breakerUntil = e.At.Add(e.Wait)
		return "cloud API failing: no new step starts for now (" + e.Message + ")"
	case apply.EvBreakerClosed:
		p.breakerUntil = time.Time{}
		return "cloud API answers again: resuming"
	case apply.EvBrakeTripped, apply.EvCanaryFailed, apply.EvPausedCanary, apply.EvPausedBrake:
		return "BRAKE: " + e.Message
	}
	return ""
}

// Line is the status line, unfitted, most important first (a narrow
// terminal cuts the end): the phase, the VMs done of the total, elapsed
// time and ETA, the API's state in plain words, the outcomes (VMs for a
// person: flagged by the run and left to a person by the plan), VMs in
// flight, the last retry and each account's VMs finished of those started.
func (p *Display) Line() string {
	done := p.fixed + p.healthy + p.flagged + p.fails
	elapsed := p.now.Sub(p.start)
	parts := []string{
		strings.TrimSpace(fmt.Sprintf("%s %d/%d done", p.wave, done, p.o.Total)),
		timing.Format(elapsed) + " elapsed" + p.eta(done),
		p.api(),
		fmt.Sprintf("fixed %d", p.fixed),
		fmt.Sprintf("for a person %d", p.flagged+p.o.Manual),
		fmt.Sprintf("failed %d", p.fails),
		fmt.Sprintf("in flight %d", p.inFlight),
		fmt.Sprintf("healthy on re-check %d", p.healthy),
	}
	if p.retry != "" {
		parts = append(parts, p.retry)
	}
	accts := make([]string, 0, len(p.accounts))
	for a := range p.accounts {
		accts = append(accts, a)
	}
	sort.Strings(accts)
	for _, a := range accts {
		parts = append(parts, fmt.Sprintf("%s %d/%d", a, p.accounts[a][1], p.accounts[a][0]))
	}
	return strings.Join(parts, " · ")
}

// eta is ", ETA ~D": the plan's estimate scaled to the share of its VMs
// still to do (a run's early pace, held back by the canary, misleads);
// "" without an estimate or when all is done.
func (p *Display) eta(done int) string {
	todo := p.o.Total - p.o.Manual
	if p.o.Estimate <= 0 || todo <= done {
		return ""
	}
	return ", ETA ~" + timing.Format(p.o.Estimate*time.Duration(todo-done)/time.Duration(todo))
}

// api says the control plane's state in plain words.
func (p *Display) api() string {
	if p.breakerUntil.IsZero() {
		return "API ok"
	}
	if wait := p.breakerUntil.Sub(p.now); wait > 0 {
		return "API paused: errors, retrying in " + timing.Format(wait)
	}
	return "API paused: errors, trying again"
}

// Done ends the status line.
func (p *Display) Done() {
	if p.w != nil {
		fmt.Fprintln(p.w)
	}
}

// accountOf is the tenant/account of a VM key tenant/account/id.
func accountOf(key string) string {
	if i := strings.LastIndex(key, "/"); i > 0 {
		return key[:i]
	}
	return key
}

func width(f func() int) int {
	if f != nil {
		if w := f(); w > 0 {
			return w
		}
	}
	return DefaultWidth
}
