package main

import (
	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/internal/config"
	"github.com/fixfleet/fixfleet/notify"
)

// notifyOpts is --notify (repeatable).
type notifyOpts struct {
	flags []string
}

func (o *notifyOpts) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.flags, "notify", nil, "tell a chat channel how the run goes: slack=URL or teams=URL, an incoming webhook (repeatable; for drills: fleet.yaml's notify reads URLs from the environment)")
}

// open starts the notifier for fleet.yaml's webhooks (hooks) and the
// --notify ones (nil when there is none). Its warnings are printed by its
// Finish (stderr may not take concurrent writes).
func (o *notifyOpts) open(hooks []config.Webhook) (*notify.Notifier, error) {
	n, err := notify.Open(hooks, o.flags)
	if err != nil {
		return nil, clihelp.BadInput(err)
	}
	return n, nil
}
