package clihelp

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
)

type usageErr struct{ error }

func TestApply(t *testing.T) {
	root := &cobra.Command{Use: "tool"}
	sub := &cobra.Command{Use: "run", Short: "Run it", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	leaf := &cobra.Command{Use: "deep", Long: "Deep help.", RunE: func(*cobra.Command, []string) error { return nil }}
	sub.AddCommand(leaf)
	root.AddCommand(sub)
	ex := Examples("intro ignored\n### tool run\n  tool run\n  tool run -v\n### tool run deep\n  tool run deep\n")
	Apply(root, ex, "Exit codes: 0 ok", func(err error) error { return usageErr{err} })
	if sub.Example != "  tool run\n  tool run -v" || leaf.Example != "  tool run deep" {
		t.Errorf("examples %q, %q", sub.Example, leaf.Example)
	}
	if sub.Long != "Run it\n\nExit codes: 0 ok" || !strings.HasPrefix(leaf.Long, "Deep help.\n\nExit codes") || strings.Contains(root.Long, "Exit") {
		t.Errorf("long help: %q / %q / %q", sub.Long, leaf.Long, root.Long)
	}
	var ue usageErr
	if err := sub.Args(sub, []string{"x"}); !errors.As(err, &ue) {
		t.Errorf("argument error %v not marked", err)
	}
	if err := sub.Args(sub, nil); err != nil {
		t.Errorf("valid arguments: %v", err)
	}
}

func TestConfirm(t *testing.T) {
	tests := []struct {
		name   string
		term   bool
		typed  string
		errHas string
	}{
		{"yes", true, "yes\n", ""},
		{"anything else", true, "y\n", "nothing was changed"},
		{"no terminal", false, "yes\n", "--yes"},
	}
	for _, tt := range tests {
		var w strings.Builder
		err := Confirm(strings.NewReader(tt.typed), tt.term, &w, []string{"Plan p:", "acme/prod"}, "Apply it?")
		if (tt.errHas == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.errHas)) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.errHas)
		}
		if tt.term && !strings.Contains(w.String(), "Plan p:\n  acme/prod\nApply it? Type yes") {
			t.Errorf("%s: asked %q", tt.name, w.String())
		}
	}
}

func TestEvery(t *testing.T) {
	n := 0
	err := Every(t.Context(), time.Nanosecond, false, io.Discard, func() (bool, error) { n++; return n < 3, nil })
	if err != nil || n != 3 {
		t.Errorf("shown %d times (%v), want 3: until show says there is no more", n, err)
	}
	n = 0
	if err := Every(t.Context(), 0, false, io.Discard, func() (bool, error) { n++; return true, nil }); err != nil || n != 1 {
		t.Errorf("without an interval: shown %d times (%v), want once", n, err)
	}
}

// TestBadInput: nil stays nil; an error becomes a UsageError that still
// unwraps to it.
func TestBadInput(t *testing.T) {
	if BadInput(nil) != nil {
		t.Error("BadInput(nil) is not nil")
	}
	base := errors.New("bad flag")
	err := BadInput(base)
	if !errors.As(err, new(UsageError)) || !errors.Is(err, base) || err.Error() != "bad flag" {
		t.Errorf("BadInput = %#v", err)
	}
}
