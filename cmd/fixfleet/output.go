package main

import (
	"fmt"
	"io"
	"os"
	"strings"

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

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so an interrupted write never leaves a truncated file.
func writeFileAtomic(path string, data []byte) error {
	dir := "."
	if i := strings.LastIndexAny(path, `/\`); i >= 0 {
		dir = path[:i+1]
	}
	tmp, err := os.CreateTemp(dir, ".fixfleet-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
