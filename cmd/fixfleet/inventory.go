package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/invdoc"
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
	format, _, err := outputOf(&o.out, stderr)
	if err != nil {
		return err
	}
	ao, err := o.source.assessOptions(progressTo(stderr))
	if err != nil {
		return err
	}
	f, closeFleet, err := openFleet(ctx, &o.source)
	if err != nil {
		return err
	}
	defer closeFleet()
	ao.AllBackups = true // the export lists every VM's backups (a drill copy restores from them)
	a, err := f.Assess(ctx, ao)
	if err != nil {
		return err
	}
	doc := invdoc.Build(a, f.Clock.Now(), f.Incident.Name, f.Keys())
	t := render.Table{Title: "Fleet", Headers: []string{"VM", "Name", "Account", "Zone", "Windows", "Power", "State", "Why"}}
	for _, x := range a.VMs {
		c := x.Classification
		t.Rows = append(t.Rows, []string{x.VM.ID, x.VM.Name, x.VM.Tenant + "/" + x.VM.Account, x.VM.Zone,
			x.VM.Windows.Release, string(x.VM.Power), string(c.State), strings.Join(c.Reasons, "; ")})
	}
	counts := render.Table{Title: "By state", Headers: []string{"State", "VMs"}}
	for _, s := range inventory.States {
		counts.Rows = append(counts.Rows, []string{string(s), fmt.Sprint(doc.ByState[s])})
	}
	if err := render.Render(stdout, format, doc, withSkipped([]render.Table{t, counts}, a.Skipped)...); err != nil {
		return err
	}
	return skippedAccounts(stderr, a.Skipped)
}
