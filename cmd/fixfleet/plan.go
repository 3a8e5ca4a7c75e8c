package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/progress"
)

type planOpts struct {
	source    sourceOpts
	out       outflag.Flags
	overrides policy.Overrides
}

func newPlanCmd(stdout, stderr io.Writer) *cobra.Command {
	var o planOpts
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Plan a repair per VM (a dry run: nothing is changed)",
		Long: `plan classifies the fleet and chooses a strategy per VM, with the reasons,
the fallbacks, the risks, the waves and an estimate of duration and API calls.
Nothing in any cloud is changed. With --out-file FILE the plan document (JSON) is
written to FILE for a later apply, which consumes it unchanged; -o json prints it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runPlan(cmd.Context(), o, stdout, stderr)
		},
	}
	o.source.addFlags(cmd.Flags())
	o.out.Add(cmd.Flags(), "also write the plan document (JSON) to this file, for apply")
	o.out.AddTable(cmd.Flags(), "vms", "estimate", "summary", "tiers", "skipped-accounts")
	o.overrides.AddFlags(cmd.Flags(), false)
	return cmd
}

func runPlan(ctx context.Context, o planOpts, stdout, stderr io.Writer) error {
	format, outFile, err := o.out.Resolve(stderr)
	if err != nil {
		return err
	}
	f, ao, err := openAssessed(ctx, &o.source)
	if err != nil {
		return err
	}
	defer f.Close()
	pol, err := o.overrides.Apply(f.Policy)
	if err != nil {
		return err
	}
	stop := progress.WatchAssess(ctx, stderr, f.Clock, &ao, f.OpenedAccounts())
	p, err := f.Plan(ctx, pol, ao)
	stop()
	if err != nil {
		return err
	}
	if outFile != "" {
		if err := plan.WriteFile(outFile, p); err != nil {
			return err
		}
	}
	tables, err := o.out.Tables(format, plan.Tables(p))
	if err != nil {
		return err
	}
	if err := render.Render(stdout, format, p, tables...); err != nil {
		return err
	}
	return classify.Partial(p.Skipped)
}
