// Package coalesce merges concurrent provider reads into batched calls.
//
// During apply every VM in flight re-checks itself by observing the control
// plane, one VM per call. At fleet scale that is hundreds of calls a
// minute against one account's request bucket, which then throttles
// everything else. Observer merges the VMs that concurrent callers ask
// about within a short window into one Observe call (the provider contract
// takes many VMs per call, and clouds whose API batches answer it with one
// request), and hands each caller its own VMs' signals.
//
// Which batch a caller joins and the order of the merged call's VMs never
// depend on the order concurrent callers ran in (on virtual time, callers
// woken at one instant run in any order): a batch takes the callers that
// arrive before its window ends, by the clock, and names its VMs sorted by
// zone and ID. Only a batch overflowing MaxBatch at one instant splits its
// callers in arrival order.
package coalesce

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// DefaultWindow is how long (clock time) a batch waits for more callers:
// short against the tens of seconds between a VM's re-checks.
const DefaultWindow = 2 * time.Second

// MaxBatch is the most VMs one merged call asks about.
const MaxBatch = 200

// Observer is a providers.Observer that batches concurrent calls. Safe for
// concurrent use. Errors of a merged call go to every caller in it.
type Observer struct {
	next   providers.Observer
	clk    clock.Clock
	window time.Duration

	mu      sync.Mutex
	pending *batch
}

type batch struct {
	ends time.Time // callers arriving from then on open another batch
	refs []providers.VMRef
	seen map[string]bool
	full chan struct{} // closed when the batch reaches MaxBatch
	done chan struct{}
	got  map[string]inventory.Signals
	err  error
}

// NewObserver wraps next; window <= 0 means DefaultWindow.
func NewObserver(next providers.Observer, clk clock.Clock, window time.Duration) *Observer {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Observer{next: next, clk: clk, window: window}
}

// Wrap is NewObserver(next, clk, window) as a providers.Observer that
// keeps next's optional capabilities visible: where next also reads
// screens (providers.Screens), so does the result, straight through
// (screenshots are per VM and never merged). Callers that find
// capabilities by type assertion, such as the strategies' re-check, see
// the same cloud through it.
func Wrap(next providers.Observer, clk clock.Clock, window time.Duration) providers.Observer {
	o := NewObserver(next, clk, window)
	if sc, ok := next.(providers.Screens); ok {
		return screensObserver{o, sc}
	}
	return o
}

// screensObserver is a coalescing Observer that also reads screens.
type screensObserver struct {
	*Observer
	providers.Screens
}

// Observe implements providers.Observer: it joins (or opens) the current
// batch and returns the signals of vms from the merged call. ctx ends only
// this caller's wait.
func (o *Observer) Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	if len(vms) >= MaxBatch {
		return o.next.Observe(ctx, vms) // already a batch
	}
	o.mu.Lock()
	now := o.clk.Now()
	b := o.pending
	if b != nil && !now.Before(b.ends) {
		b = nil // its window is over, whether or not send has taken it yet
	}
	if b == nil || len(b.refs)+len(vms) > MaxBatch {
		if b != nil {
			close(b.full)
		}
		b = &batch{ends: now.Add(o.window), seen: map[string]bool{}, full: make(chan struct{}), done: make(chan struct{})}
		o.pending = b
		go o.send(b)
	}
	for _, r := range vms {
		if !b.seen[r.ID] {
			b.seen[r.ID] = true
			b.refs = append(b.refs, r)
		}
	}
	o.mu.Unlock()
	select {
	case <-b.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if b.err != nil {
		return nil, b.err
	}
	out := make(map[string]inventory.Signals, len(vms))
	for _, r := range vms {
		if s, ok := b.got[r.ID]; ok {
			out[r.ID] = s
		}
	}
	return out, nil
}

// send waits for the window (or a full batch), closes the batch to
// newcomers and makes the merged call, its VMs sorted by zone and ID,
// under its own context, so that a caller giving up does not fail the
// others.
func (o *Observer) send(b *batch) {
	wctx, cancel := context.WithCancel(context.Background())
	go func() {
		select {
		case <-b.full:
			cancel()
		case <-wctx.Done():
		}
	}()
	_ = o.clk.Sleep(wctx, o.window)
	cancel()
	o.mu.Lock()
	if o.pending == b {
		o.pending = nil
	}
	refs := slices.Clone(b.refs)
	o.mu.Unlock()
	slices.SortFunc(refs, func(a, b providers.VMRef) int {
		return cmp.Or(cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.ID, b.ID))
	})
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Minute)
	defer stop()
	b.got, b.err = o.next.Observe(ctx, refs)
	close(b.done)
}
