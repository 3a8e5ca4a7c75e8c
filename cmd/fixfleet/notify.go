package main

import (
	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/internal/config"
	"github.com/fixfleet/fixfleet/notify"
)

// notifyOpts is --notify (repeatable) plus fleet.yaml's notify webhooks.
type notifyOpts struct {
	flags  []string
	config []config.Webhook // set by openFleet
}

func (o *notifyOpts) addFlags(fs *pflag.FlagSet) {
	fs.StringArrayVar(&o.flags, "notify", nil, "tell a chat channel how the run goes: slack=URL or teams=URL, an incoming webhook (repeatable; for drills: fleet.yaml's notify reads URLs from the environment)")
}

// open starts the notifier (nil when no webhook is configured). Its
// warnings are printed by its Finish (stderr may not take concurrent
// writes).
func (o *notifyOpts) open() (*notify.Notifier, error) {
	n, err := notify.Open(o.config, o.flags)
	if err != nil {
		return nil, clihelp.BadInput(err)
	}
	return n, nil
}
