package main

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"

	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/classify"
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

// withSkipped appends to ts a table of the skipped accounts, if any.
func withSkipped(ts []render.Table, s []classify.SkippedAccount) []render.Table {
	if len(s) == 0 {
		return ts
	}
	t := render.Table{Title: "Skipped accounts", Headers: []string{"Tenant", "Account", "Provider", "Why"}}
	for _, a := range s {
		t.Rows = append(t.Rows, []string{a.Tenant, a.Account, a.Provider, a.Reason})
	}
	return append(ts, t)
}

// outputOf resolves a command's output flags, bad values as usage errors.
func outputOf(f *outflag.Flags, warn io.Writer) (render.Format, string, error) {
	format, file, err := f.Resolve(warn)
	return format, file, badInput(err)
}
