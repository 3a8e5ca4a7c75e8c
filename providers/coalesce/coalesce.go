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
// woken at one instant run in any order): a window takes the callers that
// arrive before it ends, by the clock; when they ask about more than
// MaxBatch VMs, the window waits clock.Settle (so that every caller of the
// instant has arrived) and cuts full batches from the callers that asked
// before then, ordered by the instant they asked at and the VMs they asked
// about; each merged call names its VMs sorted by zone and ID.
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
	pending *window // the open window, nil when none; guarded by mu
	seq     uint64  // callers so far; guarded by mu
}

// window is the callers gathered until ends (those not yet sent in a full
// batch). mu guards calls, vms and full.
type window struct {
	ends  time.Time
	calls []*call
	vms   map[string]bool // the distinct VMs of calls, by ID
	full  chan struct{}   // closed when vms reaches MaxBatch
}

// call is one caller's request, answered by the merged call of its batch.
type call struct {
	at   time.Time // when it asked
	seq  uint64    // order asked: only among equal instants and VMs
	refs []providers.VMRef
	done chan struct{} // closed once got and err are set
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
// window and returns the signals of vms from the merged call of its batch.
// ctx ends only this caller's wait.
func (o *Observer) Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	if len(vms) >= MaxBatch {
		return o.next.Observe(ctx, vms) // already a batch
	}
	o.mu.Lock()
	now := o.clk.Now()
	w := o.pending
	if w == nil || !now.Before(w.ends) {
		// No window, or its window is over (whether or not send has
		// taken it yet): open the next.
		w = &window{ends: now.Add(o.window), vms: map[string]bool{}, full: make(chan struct{})}
		o.pending = w
		go o.send(w)
	}
	o.seq++
	c := &call{at: now, seq: o.seq, refs: slices.Clone(vms), done: make(chan struct{})}
	w.calls = append(w.calls, c)
	for _, r := range vms {
		w.vms[r.ID] = true
	}
	if len(w.vms) >= MaxBatch {
		closeOnce(w.full)
	}
	o.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.err != nil {
		return nil, c.err
	}
	out := make(map[string]inventory.Signals, len(vms))
	for _, r := range vms {
		if s, ok := c.got[r.ID]; ok {
			out[r.ID] = s
		}
	}
	return out, nil
}

// send serves window w: whenever its callers ask about MaxBatch VMs or
// more, it waits clock.Settle and sends the full batches cut from the
// callers that asked before then (see cut); when w ends, it sends every
// caller left. Each merged call goes out under its own context, so that a
// caller giving up does not fail the others.
func (o *Observer) send(w *window) {
	for {
		o.mu.Lock()
		full := w.full
		o.mu.Unlock()
		wctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-full:
				cancel()
			case <-wctx.Done():
			}
		}()
		_ = clock.SleepUntil(wctx, o.clk, w.ends)
		cancel()
		if o.clk.Now().Before(w.ends) {
			// Full before its end: let every caller of this instant
			// arrive (uncancellable: the cut must happen).
			_ = o.clk.Sleep(context.Background(), clock.Settle)
		}
		o.mu.Lock()
		now := o.clk.Now()
		last := !now.Before(w.ends)
		if last && o.pending == w {
			o.pending = nil // callers from now on open the next window
		}
		batches := o.cutLocked(w, now, last)
		o.mu.Unlock()
		for _, b := range batches {
			go o.call(b)
		}
		if last {
			return
		}
	}
}

// cutLocked takes the batches to send now out of w. Callers that asked
// before now are ordered by the instant they asked at, then by the VMs
// they asked about, and packed in that order into batches of at most
// MaxBatch distinct VMs (a caller's VMs never straddle two batches). With
// last set every batch is taken; otherwise the last one stays in w unless
// it is full, with the callers that asked at now. Caller holds o.mu.
func (o *Observer) cutLocked(w *window, now time.Time, last bool) [][]*call {
	var due, later []*call
	for _, c := range w.calls {
		if last || c.at.Before(now) {
			due = append(due, c)
		} else {
			later = append(later, c)
		}
	}
	slices.SortFunc(due, func(a, b *call) int {
		return cmp.Or(a.at.Compare(b.at), slices.CompareFunc(a.refs, b.refs, compareRefs), cmp.Compare(a.seq, b.seq))
	})
	var batches [][]*call
	var cur []*call
	seen := map[string]bool{}
	for _, c := range due {
		n := 0
		for _, r := range c.refs {
			if !seen[r.ID] {
				n++
			}
		}
		if len(cur) > 0 && len(seen)+n > MaxBatch {
			batches = append(batches, cur)
			cur, seen = nil, map[string]bool{}
		}
		cur = append(cur, c)
		for _, r := range c.refs {
			seen[r.ID] = true
		}
	}
	if len(cur) > 0 {
		if last || len(seen) >= MaxBatch {
			batches = append(batches, cur)
		} else {
			later = append(cur, later...)
		}
	}
	w.calls, w.vms, w.full = later, map[string]bool{}, make(chan struct{})
	for _, c := range later {
		for _, r := range c.refs {
			w.vms[r.ID] = true
		}
	}
	if len(w.vms) >= MaxBatch {
		close(w.full)
	}
	return batches
}

// call makes the merged call of batch b, its VMs sorted by zone and ID,
// and answers each of its callers.
func (o *Observer) call(b []*call) {
	var refs []providers.VMRef
	seen := map[string]bool{}
	for _, c := range b {
		for _, r := range c.refs {
			if !seen[r.ID] {
				seen[r.ID] = true
				refs = append(refs, r)
			}
		}
	}
	slices.SortFunc(refs, compareRefs)
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Minute)
	defer stop()
	got, err := o.next.Observe(ctx, refs)
	for _, c := range b {
		c.got, c.err = got, err
		close(c.done)
	}
}

func compareRefs(a, b providers.VMRef) int {
	return cmp.Or(cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.ID, b.ID))
}

// closeOnce closes ch unless it is closed. Caller holds o.mu (ch is only
// closed under it).
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}
