package main

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"

	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
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

// outputOf resolves a command's output flags, bad values as usage errors.
func outputOf(f *outflag.Flags, warn io.Writer) (render.Format, string, error) {
	format, file, err := f.Resolve(warn)
	return format, file, badInput(err)
}
