package progress

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
)

// Assess shows an assessment's progress (inventory, plan): the phase, the
// accounts done, elapsed time and the ETA of the sampling window, each
// account's state, and retries in plain words. A full line is written for
// each account assessed or skipped. With a nil writer it shows nothing.
type Assess struct {
	w      io.Writer
	width  func() int
	clk    clock.Clock
	window time.Duration

	mu       sync.Mutex
	start    time.Time
	sampling time.Time // first account's sampling start
	order    []string
	state    map[string]string
	done     int
}

// NewAssess returns an assessment display on w (nil: none) for accounts,
// timed on clk, whose sampling takes window.
func NewAssess(w io.Writer, width func() int, clk clock.Clock, window time.Duration, accounts []providers.Account) *Assess {
	a := &Assess{w: w, width: width, clk: clk, window: window, start: clk.Now(), state: map[string]string{}}
	for _, x := range accounts {
		k := x.Tenant + "/" + x.Name
		a.order = append(a.order, k)
		a.state[k] = "waiting"
	}
	return a
}

// Event implements classify.FleetOptions.OnProgress.
func (a *Assess) Event(p classify.AccountProgress) {
	if a.w == nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := p.Account.Tenant + "/" + p.Account.Name
	line := ""
	switch p.Phase {
	case classify.Listing:
		a.state[k] = "listing"
	case classify.Sampling:
		if a.sampling.IsZero() {
			a.sampling = a.clk.Now()
		}
		a.state[k] = fmt.Sprintf("%d VMs sampling", p.VMs)
	case classify.Retrying:
		a.state[k] = fmt.Sprintf("%s, retry %d/%d in %s", Why(p.Err), p.Attempt, p.Attempts-1, timing.Format(p.Wait))
	case classify.Done:
		a.done++
		a.state[k] = fmt.Sprintf("%d VMs done", p.VMs)
		line = fmt.Sprintf("assessed %s: %d Windows VMs", k, p.VMs)
	case classify.Skipped:
		a.done++
		a.state[k] = "skipped"
		line = fmt.Sprintf("skipped %s: %s", k, Why(p.Err))
	}
	if line != "" {
		fmt.Fprintf(a.w, "\r\033[K%s\n", line)
	}
	fmt.Fprint(a.w, Redraw(a.line(), width(a.width)))
}

// Line is the status line, unfitted.
func (a *Assess) Line() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.line()
}

func (a *Assess) line() string {
	now := a.clk.Now()
	phase, eta := "listing", ""
	if !a.sampling.IsZero() {
		phase = "sampling"
		if left := a.window - now.Sub(a.sampling); left > 0 {
			eta = ", ETA " + timing.Format(left)
		}
	}
	parts := []string{
		fmt.Sprintf("%s %d/%d accounts", phase, a.done, len(a.order)),
		timing.Format(now.Sub(a.start)) + " elapsed" + eta,
	}
	for _, k := range a.order {
		parts = append(parts, k+" "+a.state[k])
	}
	return strings.Join(parts, " · ")
}

// Start redraws the line every second (elapsed time moves between
// events) until the returned stop is called, which ends the line.
func (a *Assess) Start(ctx context.Context) (stop func()) {
	if a.w == nil {
		return func() {}
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				a.mu.Lock()
				fmt.Fprint(a.w, Redraw(a.line(), width(a.width)))
				a.mu.Unlock()
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
		fmt.Fprint(a.w, "\r\033[K")
	}
}

// Why says in a few plain words what kind of failure err is.
func Why(err error) string {
	var dns *net.DNSError
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &dns):
		return "DNS failure"
	case errors.Is(err, providers.ErrThrottled):
		return "throttled"
	case errors.Is(err, providers.ErrUnavailable):
		return "API unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	}
	return err.Error()
}
