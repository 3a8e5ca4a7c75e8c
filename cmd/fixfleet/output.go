package main

import (
	"context"
	"io"
	"os"

	"github.com/mattn/go-isatty"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/progress"
)

// isTerminal reports whether w is a terminal (progress goes only there).
func isTerminal(w any) bool {
	f, ok := w.(*os.File)
	return ok && (isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd()))
}

// progressTo returns where progress lines go: stderr on a terminal, nowhere
// otherwise.
func progressTo(stderr io.Writer) io.Writer {
	if isTerminal(stderr) {
		return stderr
	}
	return nil
}

// watchAssess shows the assessment of f on a terminal stderr, through
// ao's progress hook; call stop when it ends.
func watchAssess(ctx context.Context, f *fleet.Fleet, ao *fleet.AssessOptions, stderr io.Writer) (stop func()) {
	var accts []providers.Account
	for _, a := range f.Accounts {
		accts = append(accts, a.Account)
	}
	d := progress.NewAssess(progressTo(stderr), progress.Width(stderr), f.Clock, ao.Window, accts)
	ao.OnProgress = d.Event
	return d.Start(ctx)
}
