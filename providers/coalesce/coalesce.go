// Package coalesce merges concurrent provider calls into batched calls.
//
// During apply every VM in flight re-checks itself by observing the control
// plane, one VM per call. At fleet scale that is hundreds of calls a
// minute against one account's request bucket, which then throttles
// everything else. Observer merges the VMs that concurrent callers ask
// about within a short window into one Observe call (the provider contract
// takes many VMs per call, and clouds whose API batches answer it with one
// request), and hands each caller its own VMs' signals. Disks does the same
// for the steps' disk reads, over a provider that reads many disks in one
// call (ManyDescriber); Batcher is the mechanism, for any call that takes
// many items (the simulated cloud's face merges its power calls with it).
//
// Which batch a caller joins and the order of the merged call's items never
// depend on the order concurrent callers ran in (on virtual time, callers
// woken at one instant run in any order): a window takes the callers that
// arrive before it ends, by the clock; when they ask about more than
// MaxBatch items, the window waits clock.Settle (so that every caller of
// the instant has arrived) and cuts full batches from the callers that
// asked before then, ordered by the instant they asked at and the items
// they asked about; each merged call names its items in a fixed order (VMs
// and disks by zone and ID).
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

// Batcher merges the calls of concurrent callers, each about a few items
// (VMs, disks) of type R named by key, into batched calls of fetch, which
// answers many items in one call (an item it does not know is absent from
// its result). Safe for concurrent use. Errors of a merged call go to every
// caller in it. Which batch a caller joins and the order of a merged call's
// items never depend on the order concurrent callers ran in (see the
// package doc).
type Batcher[R, V any] struct {
	fetch  func(ctx context.Context, items []R) (map[string]V, error)
	key    func(R) string
	order  func(a, b R) int
	clk    clock.Clock
	window time.Duration

	mu      sync.Mutex
	pending *window[R, V] // the open window, nil when none; guarded by mu
	seq     uint64        // callers so far; guarded by mu
}

// window is the callers gathered until ends (those not yet sent in a full
// batch). mu guards calls, items and full.
type window[R, V any] struct {
	ends  time.Time
	calls []*call[R, V]
	items map[string]bool // the distinct items of calls, by key
	full  chan struct{}   // closed when items reaches MaxBatch
}

// call is one caller's request, answered by the merged call of its batch.
type call[R, V any] struct {
	at    time.Time // when it asked
	seq   uint64    // order asked: only among equal instants and items
	items []R
	done  chan struct{} // closed once got and err are set
	got   map[string]V
	err   error
}

// NewBatcher merges calls to fetch; key names an item, order sorts a
// merged call's items; window <= 0 means DefaultWindow.
func NewBatcher[R, V any](fetch func(ctx context.Context, items []R) (map[string]V, error), key func(R) string, order func(a, b R) int, clk clock.Clock, window time.Duration) *Batcher[R, V] {
	if window <= 0 {
		window = DefaultWindow
	}
	return &Batcher[R, V]{fetch: fetch, key: key, order: order, clk: clk, window: window}
}

// Observer is a providers.Observer that batches concurrent calls. Safe for
// concurrent use. Errors of a merged call go to every caller in it.
type Observer struct {
	next providers.Observer
	b    *Batcher[providers.VMRef, inventory.Signals]
}

// NewVMBatcher is NewBatcher for calls about VMs: named by ID, ordered by
// zone and ID.
func NewVMBatcher[V any](fetch func(ctx context.Context, vms []providers.VMRef) (map[string]V, error), clk clock.Clock, window time.Duration) *Batcher[providers.VMRef, V] {
	return NewBatcher(fetch, func(r providers.VMRef) string { return r.ID }, compareRefs, clk, window)
}

// NewObserver wraps next; window <= 0 means DefaultWindow.
func NewObserver(next providers.Observer, clk clock.Clock, window time.Duration) *Observer {
	return &Observer{next: next, b: NewVMBatcher(next.Observe, clk, window)}
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
	return o.b.Get(ctx, vms)
}

// Get joins (or opens) the current window and returns what the merged call
// of its batch answered about items (an item it did not answer is absent).
// ctx ends only this caller's wait.
func (b *Batcher[R, V]) Get(ctx context.Context, items []R) (map[string]V, error) {
	b.mu.Lock()
	now := b.clk.Now()
	w := b.pending
	if w == nil || !now.Before(w.ends) {
		// No window, or its window is over (whether or not send has
		// taken it yet): open the next.
		w = &window[R, V]{ends: now.Add(b.window), items: map[string]bool{}, full: make(chan struct{})}
		b.pending = w
		go b.send(w)
	}
	b.seq++
	c := &call[R, V]{at: now, seq: b.seq, items: slices.Clone(items), done: make(chan struct{})}
	w.calls = append(w.calls, c)
	for _, r := range items {
		w.items[b.key(r)] = true
	}
	if len(w.items) >= MaxBatch {
		closeOnce(w.full)
	}
	b.mu.Unlock()
	select {
	case <-c.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if c.err != nil {
		return nil, c.err
	}
	out := make(map[string]V, len(items))
	for _, r := range items {
		if v, ok := c.got[b.key(r)]; ok {
			out[b.key(r)] = v
		}
	}
	return out, nil
}

// send serves window w: whenever its callers ask about MaxBatch items or
// more, it waits clock.Settle and sends the full batches cut from the
// callers that asked before then (see cutLocked); when w ends, it sends
// every caller left. Each merged call goes out under its own context, so
// that a caller giving up does not fail the others.
func (b *Batcher[R, V]) send(w *window[R, V]) {
	for {
		b.mu.Lock()
		full := w.full
		b.mu.Unlock()
		wctx, cancel := context.WithCancel(context.Background())
		go func() {
			select {
			case <-full:
				cancel()
			case <-wctx.Done():
			}
		}()
		_ = clock.SleepUntil(wctx, b.clk, w.ends)
		cancel()
		if b.clk.Now().Before(w.ends) {
			// Full before its end: let every caller of this instant
			// arrive (uncancellable: the cut must happen).
			_ = b.clk.Sleep(context.Background(), clock.Settle)
		}
		b.mu.Lock()
		now := b.clk.Now()
		last := !now.Before(w.ends)
		if last && b.pending == w {
			b.pending = nil // callers from now on open the next window
		}
		batches := b.cutLocked(w, now, last)
		b.mu.Unlock()
		for _, batch := range batches {
			go b.call(batch)
		}
		if last {
			return
		}
	}
}

// cutLocked takes the batches to send now out of w. Callers that asked
// before now are ordered by the instant they asked at, then by the items
// they asked about, and packed in that order into batches of at most
// MaxBatch distinct items (a caller's items never straddle two batches).
// With last set every batch is taken; otherwise the last one stays in w
// unless it is full, with the callers that asked at now. Caller holds b.mu.
func (b *Batcher[R, V]) cutLocked(w *window[R, V], now time.Time, last bool) [][]*call[R, V] {
	var due, later []*call[R, V]
	for _, c := range w.calls {
		if last || c.at.Before(now) {
			due = append(due, c)
		} else {
			later = append(later, c)
		}
	}
	slices.SortFunc(due, func(x, y *call[R, V]) int {
		return cmp.Or(x.at.Compare(y.at), slices.CompareFunc(x.items, y.items, b.order), cmp.Compare(x.seq, y.seq))
	})
	var batches [][]*call[R, V]
	var cur []*call[R, V]
	seen := map[string]bool{}
	for _, c := range due {
		n := 0
		for _, r := range c.items {
			if !seen[b.key(r)] {
				n++
			}
		}
		if len(cur) > 0 && len(seen)+n > MaxBatch {
			batches = append(batches, cur)
			cur, seen = nil, map[string]bool{}
		}
		cur = append(cur, c)
		for _, r := range c.items {
			seen[b.key(r)] = true
		}
	}
	if len(cur) > 0 {
		if last || len(seen) >= MaxBatch {
			batches = append(batches, cur)
		} else {
			later = append(cur, later...)
		}
	}
	w.calls, w.items, w.full = later, map[string]bool{}, make(chan struct{})
	for _, c := range later {
		for _, r := range c.items {
			w.items[b.key(r)] = true
		}
	}
	if len(w.items) >= MaxBatch {
		close(w.full)
	}
	return batches
}

// call makes the merged call of batch, its items sorted by b.order, and
// answers each of its callers.
func (b *Batcher[R, V]) call(batch []*call[R, V]) {
	var items []R
	seen := map[string]bool{}
	for _, c := range batch {
		for _, r := range c.items {
			if k := b.key(r); !seen[k] {
				seen[k] = true
				items = append(items, r)
			}
		}
	}
	slices.SortFunc(items, b.order)
	ctx, stop := context.WithTimeout(context.Background(), 5*time.Minute)
	defer stop()
	got, err := b.fetch(ctx, items)
	for _, c := range batch {
		c.got, c.err = got, err
		close(c.done)
	}
}

func compareRefs(a, b providers.VMRef) int {
	return cmp.Or(cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.ID, b.ID))
}

// closeOnce closes ch unless it is closed. Caller holds the batcher's mu
// (ch is only closed under it).
func closeOnce(ch chan struct{}) {
	select {
	case <-ch:
	default:
		close(ch)
	}
}

// ManyDescriber is a providers.Disks that also reads many disks in one
// call; a disk that does not exist is absent from its result.
type ManyDescriber interface {
	DescribeMany(ctx context.Context, refs []providers.DiskRef) (map[string]providers.DiskState, error)
}

// Disks reads disks as providers.Disks.Describe does, merging concurrent
// reads into DescribeMany calls. Safe for concurrent use.
type Disks struct {
	b *Batcher[providers.DiskRef, providers.DiskState]
}

// NewDisks merges reads into next's DescribeMany; window <= 0 means
// DefaultWindow.
func NewDisks(next ManyDescriber, clk clock.Clock, window time.Duration) *Disks {
	key := func(r providers.DiskRef) string { return r.ID }
	order := func(a, b providers.DiskRef) int { return cmp.Or(cmp.Compare(a.Zone, b.Zone), cmp.Compare(a.ID, b.ID)) }
	return &Disks{b: NewBatcher(next.DescribeMany, key, order, clk, window)}
}

// Describe has the contract of providers.Disks.Describe: a disk the merged
// call does not find is ErrNotFound; the merged call's error goes to every
// caller in it. ctx ends only this caller's wait.
func (d *Disks) Describe(ctx context.Context, ref providers.DiskRef) (providers.DiskState, error) {
	got, err := d.b.Get(ctx, []providers.DiskRef{ref})
	if err != nil {
		return providers.DiskState{}, err
	}
	s, ok := got[ref.ID]
	if !ok {
		return providers.DiskState{}, providers.Errorf(providers.ErrNotFound, "Describe", "disk "+ref.ID, "no such disk")
	}
	return s, nil
}
