package aws

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// quietGap and maxWindow decide when a batch is sent: once no caller has
// joined it for quietGap (clock time), and at the latest maxWindow after
// it opened. They let the VMs a run stops or starts (restarts included)
// together share one StopInstances / StartInstances call — at fleet scale
// the API rate, not the CPU, is the limit (StartInstances: 5 requests,
// refilled 2/s) — without making a lone caller wait: a wave's callers
// arrive within seconds of each other, so a gap of a few seconds means
// they have all arrived. (A fixed window of 3 minutes made every stop
// and start wait 3 minutes, a restart at least 6.)
const (
	quietGap  = 5 * time.Second
	maxWindow = 30 * time.Second
)

// batcher merges the instance IDs that concurrent callers hand it within
// one batch (quietGap, maxWindow) into one call of send (which splits at the API's limit
// itself). Every caller of a batch gets that call's error. Safe for
// concurrent use; one batcher per region and action.
type batcher struct {
	clk  clock.Clock
	send func(ctx context.Context, ids []string) error

	mu      sync.Mutex
	pending *batch
}

// batch is one call in the making.
type batch struct {
	ids    []string
	seen   map[string]bool
	opened time.Time // when the first caller came
	last   time.Time // when the last caller came
	done   chan struct{}
	err    error
}

// due is when bt is sent: quietGap after its last caller, at the latest
// maxWindow after its first. Caller holds the batcher's mu.
func (bt *batch) due() time.Time {
	due := bt.last.Add(quietGap)
	if limit := bt.opened.Add(maxWindow); limit.Before(due) {
		return limit
	}
	return due
}

// do adds ids to the open batch (opening one if none) and waits until that
// batch has been sent, returning the call's error. ctx ends only the wait:
// the batch is still sent for the other callers.
func (b *batcher) do(ctx context.Context, ids []string) error {
	b.mu.Lock()
	now := b.clk.Now()
	bt := b.pending
	if bt == nil || !now.Before(bt.due()) {
		// None open, or its time is up whether or not flushWhenQuiet has
		// taken it yet: a caller of the instant it is due never joins it,
		// so that on virtual time which batch a caller joins does not
		// depend on the order of the instant's goroutines.
		bt = &batch{seen: map[string]bool{}, done: make(chan struct{}), opened: now}
		b.pending = bt
		go b.flushWhenQuiet(bt)
	}
	bt.last = now
	for _, id := range ids {
		if !bt.seen[id] {
			bt.seen[id] = true
			bt.ids = append(bt.ids, id)
		}
	}
	b.mu.Unlock()
	select {
	case <-bt.done:
		return bt.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flushWhenQuiet closes bt to newcomers once none joined it for
// quietGap, or maxWindow after it opened, and sends it. The call runs
// under its own context: callers that gave up must not cancel it for the
// others.
func (b *batcher) flushWhenQuiet(bt *batch) {
	for {
		b.mu.Lock()
		now, due := b.clk.Now(), bt.due()
		if !now.Before(due) {
			if b.pending == bt {
				b.pending = nil
			}
			b.mu.Unlock()
			break
		}
		b.mu.Unlock()
		_ = b.clk.Sleep(context.Background(), due.Sub(now))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// The call names its instances in a fixed order, whatever order their
	// callers came in.
	slices.Sort(bt.ids)
	bt.err = b.send(ctx, bt.ids)
	close(bt.done)
}
