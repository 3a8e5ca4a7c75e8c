package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/progress"
	"github.com/fixfleet/fixfleet/remediate/report"
)

type statusOpts struct {
	journal string
	run     string
	out     outflag.Flags
}

func (o *statusOpts) addFlags(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.journal, "journal", journal.DefaultPath, "journal (SQLite) of the runs")
	cmd.Flags().StringVar(&o.run, "run", "", "run ID (default: the latest run)")
	o.out.Add(cmd.Flags(), "")
}

func newStatusCmd(stdout io.Writer) *cobra.Command {
	var o statusOpts
	var watch time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show where a run stands, from the journal (safe while apply runs)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return watchStatus(cmd.Context(), o, watch, stdout) },
	}
	o.addFlags(cmd)
	o.out.AddTable(cmd.Flags(), "summary", "for-a-person", "original-disks-kept")
	cmd.Flags().DurationVar(&watch, "watch", 0, "show the status again every so often (e.g. 10s) until the run is no longer running")
	cmd.Flags().Lookup("watch").NoOptDefVal = "5s"
	return cmd
}

// watchStatus shows the status, and with every > 0 again after each
// interval while the run is running.
func watchStatus(ctx context.Context, o statusOpts, every time.Duration, stdout io.Writer) error {
	return clihelp.Every(ctx, every, progress.IsTerminal(stdout), stdout, func() (bool, error) {
		return runStatus(ctx, o, stdout)
	})
}

// runStatus prints a run's state from the journal and reports whether the
// run it printed is still running.
func runStatus(ctx context.Context, o statusOpts, stdout io.Writer) (running bool, err error) {
	format, _, err := o.out.Resolve(nil)
	if err != nil {
		return false, err
	}
	j, res, err := openRun(ctx, o)
	if err != nil {
		return false, err
	}
	defer j.Close()
	doc, tables, err := report.Status(ctx, j, res)
	if err != nil {
		return false, err
	}
	if tables, err = o.out.Tables(format, tables); err != nil {
		return false, err
	}
	return res.Status == apply.RunRunning, render.Render(stdout, format, doc, tables...)
}

// openRun opens the journal and rebuilds the run o names.
func openRun(ctx context.Context, o statusOpts) (*journal.Journal, *apply.Result, error) {
	if _, err := os.Stat(o.journal); err != nil {
		return nil, nil, clihelp.BadInput(fmt.Errorf("journal %s: %w (apply writes it; pass --journal FILE)", o.journal, err))
	}
	j, err := journal.Open(ctx, o.journal)
	if err != nil {
		return nil, nil, clihelp.BadInput(err)
	}
	res, err := apply.Status(ctx, j, o.run)
	if errors.Is(err, journal.ErrNotFound) {
		err = clihelp.BadInput(fmt.Errorf("journal %s: no such run %q", o.journal, o.run))
	}
	if err != nil {
		j.Close()
		return nil, nil, err
	}
	return j, res, nil
}
