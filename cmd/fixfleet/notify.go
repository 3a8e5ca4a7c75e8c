package main

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/notify"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// notifyFlush bounds the delivery of the messages still queued when a run
// ends.
const notifyFlush = 15 * time.Second

// notifyOpts is --notify (repeatable) plus fleet.yaml's notify targets.
type notifyOpts struct {
	flags  []string
	config []notify.Target // set by openConfigFleet
}

func (o *notifyOpts) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.flags, "notify", nil, "tell a chat channel how the run goes: slack=URL or teams=URL, an incoming webhook (repeatable; for drills: fleet.yaml's notify reads URLs from the environment)")
}

// runNotifier delivers a run's notifications; its warnings are kept and
// printed when it closes (stderr may not take concurrent writes).
type runNotifier struct {
	n     *notify.Notifier
	mu    sync.Mutex
	warns []string
}

// open starts the notifier (nil when no webhook is configured).
func (o *notifyOpts) open() (*runNotifier, error) {
	targets := append([]notify.Target(nil), o.config...)
	for _, f := range o.flags {
		t, err := notify.ParseFlag(f)
		if err != nil {
			return nil, badInput(err)
		}
		targets = append(targets, t)
	}
	if len(targets) == 0 {
		return nil, nil
	}
	rn := &runNotifier{}
	rn.n = notify.New(targets, notify.Options{Warn: func(s string) { rn.mu.Lock(); rn.warns = append(rn.warns, s); rn.mu.Unlock() }})
	return rn, nil
}

// watch tees a run's events to the progress display and the notifier.
func (rn *runNotifier) watch(p *plan.Plan, display func(apply.Event)) func(apply.Event) {
	if rn == nil {
		return display
	}
	send := rn.n.Watch(p)
	return func(e apply.Event) {
		display(e)
		send(e)
	}
}

// close flushes, then prints the first warnings and the counts if any
// message was lost.
func (rn *runNotifier) close(stderr io.Writer) {
	if rn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), notifyFlush)
	defer cancel()
	st := rn.n.Close(ctx)
	rn.mu.Lock()
	defer rn.mu.Unlock()
	for i, w := range rn.warns {
		if i == 5 {
			fmt.Fprintf(stderr, "notify: … and %d more warnings\n", len(rn.warns)-i)
			break
		}
		fmt.Fprintln(stderr, w)
	}
	if st.Dropped+st.Failed > 0 {
		fmt.Fprintf(stderr, "notify: %d messages delivered, %d dropped, %d not delivered\n", st.Delivered, st.Dropped, st.Failed)
	}
}
