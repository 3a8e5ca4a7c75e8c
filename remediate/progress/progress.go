// Package progress shows an apply's progress on a terminal, from the
// executor's events.
package progress

import (
	"fmt"
	"io"
	"sync"

	"github.com/fixfleet/fixfleet/remediate/apply"
)

// Display shows an apply's progress on a terminal: one status line,
// redrawn, and a full line for what an operator must notice (a VM flagged,
// the breaker opening, a brake). With a nil writer it shows nothing.
type Display struct {
	w     io.Writer
	total int

	mu                             sync.Mutex
	fixed, healthy, flagged, fails int
	inFlight                       int
	wave, breaker                  string
}

// New returns a display on w (nil: none) of a run of total VMs.
func New(w io.Writer, total int) *Display {
	return &Display{w: w, total: total, breaker: "closed"}
}

// Event implements apply.Options.Events; safe for concurrent use.
func (p *Display) Event(e apply.Event) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var line string
	switch e.Kind {
	case apply.EvVMStarted, apply.EvVMResumed:
		p.inFlight++
	case apply.EvVMFixed:
		p.fixed++
		p.inFlight--
	case apply.EvVMSkippedHealthy:
		p.healthy++
		p.inFlight--
	case apply.EvVMFlagged:
		p.flagged++
		p.inFlight--
		line = "flagged " + e.VMKey + ": " + e.Message
	case apply.EvVMFailed:
		p.fails++
		p.inFlight--
		line = "FAILED " + e.VMKey + ": " + e.Message
	case apply.EvWaveStarted:
		p.wave = e.Message
	case apply.EvBreakerOpen:
		p.breaker = "OPEN"
		line = "control plane failing: pausing new work (" + e.Message + ")"
	case apply.EvBreakerClosed:
		p.breaker = "closed"
		line = "control plane answers again: resuming"
	case apply.EvBrakeTripped, apply.EvPausedCanary, apply.EvPausedBrake:
		line = "BRAKE: " + e.Message
	default:
		return
	}
	if line != "" {
		fmt.Fprintf(p.w, "\r\033[K%s\n", line)
	}
	fmt.Fprintf(p.w, "\r\033[K%s  fixed %d · healthy on re-check %d · flagged %d · failed %d · in flight %d / %d VMs · API %s",
		p.wave, p.fixed, p.healthy, p.flagged, p.fails, p.inFlight, p.total, p.breaker)
}

// Done ends the status line.
func (p *Display) Done() {
	if p.w != nil {
		fmt.Fprintln(p.w)
	}
}
