package aws

import (
	"context"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// batchWindow is how long (clock time) a batch waits for more callers
// before it is sent. It lets the VMs a run stops or starts (restarts
// included) within it share one StopInstances / StartInstances call: at
// fleet scale the API rate, not the CPU, is the limit (StartInstances: 5
// requests, refilled 2/s). The VMs a wave starts together stop and restart
// in bursts a few minutes wide (each first waits to see its crash), so the
// window matches that. Measured on the 200-VM demo: 3 minutes cut
// StopInstances to about a third of the VMs stopped, for ~8% more
// makespan; 2 minutes saved about half as much.
const batchWindow = 3 * time.Minute

// batcher merges the instance IDs that concurrent callers hand it within
// batchWindow into one call of send (which splits at the API's limit
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
	ids  []string
	seen map[string]bool
	done chan struct{}
	err  error
}

// do adds ids to the open batch (opening one if none) and waits until that
// batch has been sent, returning the call's error. ctx ends only the wait:
// the batch is still sent for the other callers.
func (b *batcher) do(ctx context.Context, ids []string) error {
	b.mu.Lock()
	bt := b.pending
	if bt == nil {
		bt = &batch{seen: map[string]bool{}, done: make(chan struct{})}
		b.pending = bt
		go b.flushAfterWindow(bt)
	}
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

// flushAfterWindow closes bt to newcomers after batchWindow and sends it.
// The call runs under its own context: callers that gave up must not
// cancel it for the others.
func (b *batcher) flushAfterWindow(bt *batch) {
	_ = b.clk.Sleep(context.Background(), batchWindow)
	b.mu.Lock()
	if b.pending == bt {
		b.pending = nil
	}
	b.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bt.err = b.send(ctx, bt.ids)
	close(bt.done)
}
