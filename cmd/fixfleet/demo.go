package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/progress"
	"github.com/fixfleet/fixfleet/simulation"
)

type demoOpts struct {
	run       simulation.RunOptions // Face, World, TimeScale and Journal from flags
	faults    simulation.Faults
	out       outflag.Flags
	overrides policy.Overrides
	notify    notifyOpts
}

func newDemoCmd(stdout, stderr io.Writer) *cobra.Command {
	var o demoOpts
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run a whole incident on a simulated world: inventory, plan, apply, audit",
		Long: `demo generates (or loads) a simulated world, classifies it, plans, applies the plan
with the progress display, and ends with a summary and the world's own invariant
counters (computed by the world, not by fixfleet). No account, no network.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runDemo(cmd.Context(), o, stdout, stderr) },
	}
	cmd.Flags().StringVar(&o.run.Face, "provider", "sim", "face of the simulated cloud the incident runs through: sim (in-process), sakura, aws or azure (the real cloud client against an emulator of its API on loopback)")
	addWorldFlags(cmd.Flags(), &o.run.Options, 3000)
	addFaultFlags(cmd.Flags(), &o.faults)
	cmd.Flags().StringVar(&o.run.Journal, "journal", "", "journal file (default: a temporary one, removed at the end)")
	o.out.Add(cmd.Flags(), "")
	o.out.AddTable(cmd.Flags(), "summary", "invariants", "flagged", "original-disks-kept")
	o.overrides.AddFlags(cmd.Flags(), true)
	o.notify.addFlags(cmd.Flags())
	return cmd
}

func runDemo(ctx context.Context, o demoOpts, stdout, stderr io.Writer) error {
	format, _, err := o.out.Resolve(stderr)
	if err != nil {
		return err
	}
	rn, err := o.notify.open(nil)
	if err != nil {
		return err
	}
	out := progress.To(stderr)
	var pr *progress.Display
	ro := o.run
	ro.Policy, ro.Progress, ro.Faults = o.overrides.Apply, out, &o.faults
	ro.Watch = func(p *plan.Plan) func(apply.Event) {
		if out != nil {
			fmt.Fprintf(out, "plan %s: %s\n", p.ID, strings.Join(p.Summary.Lines, "; "))
		}
		pr = progress.New(out, progress.ForPlan(p, progress.Width(stderr)))
		return rn.Tee(p, pr.Event)
	}
	s, err := simulation.Run(ctx, ro)
	if pr != nil {
		pr.Done()
	}
	rn.Finish(stderr)
	if err != nil {
		return simInput(err, "--provider")
	}
	tables, err := o.out.Tables(format, s.Tables())
	if err != nil {
		return err
	}
	if err := render.Render(stdout, format, s, tables...); err != nil {
		return err
	}
	return s.Err()
}
