package main

import (
	"context"
	"fmt"
	"io"
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

// open starts the notifier (nil when no webhook is configured). Its
// warnings are printed by closeNotifier (stderr may not take concurrent
// writes).
func (o *notifyOpts) open() (*notify.Notifier, error) {
	targets := append([]notify.Target(nil), o.config...)
	for _, f := range o.flags {
		t, err := notify.ParseFlag(f)
		if err != nil {
			return nil, badInput(err)
		}
		targets = append(targets, t)
	}
	return notify.New(targets, notify.Options{}), nil
}

// teeNotify sends a run's events to the progress display and the notifier.
func teeNotify(n *notify.Notifier, p *plan.Plan, display func(apply.Event)) func(apply.Event) {
	send := n.Watch(p)
	if send == nil {
		return display
	}
	return func(e apply.Event) {
		display(e)
		send(e)
	}
}

// closeNotifier flushes, then prints the first warnings and the counts
// when a message was lost.
func closeNotifier(n *notify.Notifier, stderr io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), notifyFlush)
	defer cancel()
	st := n.Close(ctx)
	for _, w := range st.Warnings {
		fmt.Fprintln(stderr, w)
	}
	if st.Dropped+st.Failed > 0 {
		fmt.Fprintf(stderr, "notify: %d messages delivered, %d dropped, %d not delivered (%d warnings)\n", st.Delivered, st.Dropped, st.Failed, st.Warned)
	}
}
