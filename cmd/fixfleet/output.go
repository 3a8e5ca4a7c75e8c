package main

import (
	"fmt"
	"io"
	"os"

	"github.com/mattn/go-isatty"

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

// parseFormat wraps render.ParseFormat as a usage error.
func parseFormat(s string) (render.Format, error) {
	f, err := render.ParseFormat(s)
	if err != nil {
		return "", badInput(fmt.Errorf("--format: %w", err))
	}
	return f, nil
}
