package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/remediate/progress"
)

type inventoryOpts struct {
	source sourceOpts
	out    outflag.Flags
}

func newInventoryCmd(stdout, stderr io.Writer) *cobra.Command {
	var o inventoryOpts
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "List the fleet's Windows VMs and classify each one, with the evidence",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runInventory(cmd.Context(), o, stdout, stderr)
		},
	}
	o.source.addFlags(cmd.Flags())
	o.out.Add(cmd.Flags(), "")
	o.out.AddTable(cmd.Flags(), "fleet", "by-state", "skipped-accounts")
	return cmd
}

func runInventory(ctx context.Context, o inventoryOpts, stdout, stderr io.Writer) error {
	format, _, err := o.out.Resolve(stderr)
	if err != nil {
		return err
	}
	f, ao, err := openAssessed(ctx, &o.source)
	if err != nil {
		return err
	}
	defer f.Close()
	stop := progress.WatchAssess(ctx, stderr, f.Clock, &ao, f.OpenedAccounts())
	a, doc, err := f.Inventory(ctx, ao)
	stop()
	if err != nil {
		return err
	}
	tables, err := o.out.Tables(format, a.Tables())
	if err != nil {
		return err
	}
	if err := render.Render(stdout, format, doc, tables...); err != nil {
		return err
	}
	return classify.Partial(a.Skipped)
}
