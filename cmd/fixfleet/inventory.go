package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/classify"
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
	return cmd
}

func runInventory(ctx context.Context, o inventoryOpts, stdout, stderr io.Writer) error {
	format, _, err := o.out.Resolve(stderr)
	if err != nil {
		return err
	}
	ao, err := o.source.assessOptions()
	if err != nil {
		return err
	}
	f, closeFleet, err := openFleet(ctx, &o.source)
	if err != nil {
		return err
	}
	defer closeFleet()
	stop := watchAssess(ctx, f, &ao, stderr)
	a, err := f.Assess(ctx, ao)
	stop()
	if err != nil {
		return err
	}
	doc := a.Doc(f.Clock.Now(), f.Incident.Name)
	if err := render.Render(stdout, format, doc, a.Tables()...); err != nil {
		return err
	}
	return classify.Partial(a.Skipped)
}
