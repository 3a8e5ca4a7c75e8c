package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/inventory/journal"
)

type unlockOpts struct {
	journal string
	reason  string
	yes     bool
}

func newUnlockCmd(stdout io.Writer) *cobra.Command {
	var o unlockOpts
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Break a journal's apply lock whose holder is certainly gone (its host was lost)",
		Long: `unlock removes the apply lock of a journal. Only do this when the apply holding
it can no longer run: its host was lost or powered off. (A holder on this host whose
process has died is taken over by the next apply automatically.) Breaking the lock of
a live apply would let two run at once. The journal records who held the lock and why
it was broken.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runUnlock(cmd.Context(), o, stdout) },
	}
	cmd.Flags().StringVar(&o.journal, "journal", journal.DefaultPath, "journal (SQLite) whose lock to break")
	cmd.Flags().StringVar(&o.reason, "reason", "", "why the holder is gone (recorded in the journal); required")
	cmd.Flags().BoolVar(&o.yes, "yes", false, "confirm that the holder can no longer run")
	return cmd
}

func runUnlock(ctx context.Context, o unlockOpts, stdout io.Writer) error {
	if o.reason == "" || !o.yes {
		return clihelp.BadInput(errors.New("unlock needs --reason TEXT and --yes: make sure the apply holding the lock can no longer run"))
	}
	j, err := journal.Open(ctx, o.journal)
	if err != nil {
		return clihelp.BadInput(err)
	}
	defer j.Close()
	holder, ok, err := j.BreakLock(ctx, o.reason, time.Now())
	if err != nil {
		return err
	}
	if !ok {
		fmt.Fprintf(stdout, "journal %s was not locked\n", o.journal)
		return nil
	}
	fmt.Fprintf(stdout, "broke the lock of %s pid %d (%s) on journal %s\n", holder.Host, holder.PID, holder.Command, o.journal)
	return nil
}
