package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory"
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

// inventoryDoc is the JSON document of `fixfleet inventory`.
type inventoryDoc struct {
	GeneratedAt time.Time                 `json:"generated_at"`
	Incident    string                    `json:"incident"`
	ByState     map[inventory.State]int   `json:"by_state"`
	VMs         []inventoryVM             `json:"vms"`
	Skipped     []classify.SkippedAccount `json:"skipped_accounts,omitempty"`
}

type inventoryVM struct {
	ID    string          `json:"id"`
	State inventory.State `json:"state"`
	inventory.VM
	Reasons  []string             `json:"reasons"`
	BadFiles []inventory.FileFact `json:"bad_files,omitempty"`
	Evidence inventory.Evidence   `json:"evidence"`
}

func runInventory(ctx context.Context, o inventoryOpts, stdout, stderr io.Writer) error {
	format, _, err := outputOf(&o.out, stderr)
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
	doc := inventoryDoc{GeneratedAt: f.Clock.Now(), Incident: f.Incident.Name, ByState: map[inventory.State]int{}, Skipped: a.Skipped}
	t := render.Table{Title: "Fleet", Headers: []string{"VM", "Name", "Tenant", "Account", "Zone", "Windows", "Power", "State", "Why"}}
	for _, x := range a.VMs {
		c := x.Classification
		doc.ByState[c.State]++
		doc.VMs = append(doc.VMs, inventoryVM{ID: x.VM.ID, State: c.State, VM: x.VM, Reasons: c.Reasons, BadFiles: c.BadFiles, Evidence: c.Evidence})
		t.Rows = append(t.Rows, []string{x.VM.ID, x.VM.Name, x.VM.Tenant, x.VM.Account, x.VM.Zone,
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
