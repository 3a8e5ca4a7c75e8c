package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/apply"
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
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show where a run stands, from the journal (safe while apply runs)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runStatus(cmd.Context(), o, stdout) },
	}
	o.addFlags(cmd)
	return cmd
}

// statusDoc is `fixfleet status --format json`.
type statusDoc struct {
	*apply.Result
	ElapsedSeconds float64        `json:"elapsed_seconds"`
	Holder         *journal.Owner `json:"lock_holder,omitempty"`
	HolderGone     bool           `json:"lock_holder_gone,omitempty"`
}

// runStatus prints a run's state from the journal.
func runStatus(ctx context.Context, o statusOpts, stdout io.Writer) error {
	format, _, err := outputOf(&o.out, nil)
	if err != nil {
		return err
	}
	j, res, err := openRun(ctx, o)
	if err != nil {
		return err
	}
	defer j.Close()
	doc := statusDoc{Result: res, ElapsedSeconds: res.Elapsed.Seconds()}
	if h, _, ok, err := j.LockHolder(ctx); err == nil && ok {
		doc.Holder = &h
	}
	tables := resultTables(res)
	if doc.Holder != nil {
		running := fmt.Sprintf("%s pid %d", doc.Holder.Host, doc.Holder.PID)
		if gone, err := j.LockStale(ctx); err == nil && gone {
			doc.HolderGone = true
			running += " — that process is gone: the next apply takes the lock over and resumes"
		}
		tables[0].Rows = append(tables[0].Rows, []string{"apply lock", running})
	}
	return render.Render(stdout, format, doc, tables...)
}

// openRun opens the journal and rebuilds the run o names.
func openRun(ctx context.Context, o statusOpts) (*journal.Journal, *apply.Result, error) {
	if _, err := os.Stat(o.journal); err != nil {
		return nil, nil, badInput(fmt.Errorf("journal %s: %w (apply writes it; pass --journal FILE)", o.journal, err))
	}
	j, err := journal.Open(ctx, o.journal)
	if err != nil {
		return nil, nil, badInput(err)
	}
	res, err := apply.Status(ctx, j, o.run)
	if errors.Is(err, journal.ErrNotFound) {
		err = badInput(fmt.Errorf("journal %s: no such run %q", o.journal, o.run))
	}
	if err != nil {
		j.Close()
		return nil, nil, err
	}
	return j, res, nil
}
