package clihelp

import (
	"errors"
	"strings"
	"testing"

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
