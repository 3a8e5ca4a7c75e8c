package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/atomicfile"
	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

type planOpts struct {
	source    sourceOpts
	out       outflag.Flags
	overrides policyOverrides
}

// policyOverrides are the policy settings a planner most often tries
// another value of, without editing fleet.yaml.
type policyOverrides struct {
	allowDataLoss bool
	concurrency   int
	perAccount    int
}

func (o *policyOverrides) addFlags(fs *pflag.FlagSet, allowDataLoss bool) {
	fs.BoolVar(&o.allowDataLoss, "allow-data-loss", allowDataLoss, "allow restore-backup (overrides the policy's allow_data_loss)")
	fs.IntVar(&o.concurrency, "concurrency", 0, "VMs in flight at most (overrides the policy's concurrency.total)")
	fs.IntVar(&o.perAccount, "per-account", 0, "VMs in flight per account at most (overrides the policy's concurrency.per_account)")
}

// apply returns pol with the overrides set, validated.
func (o policyOverrides) apply(pol policy.Policy) (policy.Policy, error) {
	if o.allowDataLoss {
		pol.AllowDataLoss = true
	}
	if o.concurrency != 0 {
		pol.Concurrency.Total = o.concurrency
	}
	if o.perAccount != 0 {
		pol.Concurrency.PerAccount = o.perAccount
	}
	if err := pol.Validate(); err != nil {
		return pol, badInput(err)
	}
	return pol, nil
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
	o.overrides.addFlags(cmd.Flags(), false)
	return cmd
}

func runPlan(ctx context.Context, o planOpts, stdout, stderr io.Writer) error {
	format, outFile, err := outputOf(&o.out, stderr)
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
	pol, err := o.overrides.apply(f.Policy)
	if err != nil {
		return err
	}
	p, err := f.Plan(ctx, pol, ao)
	if err != nil {
		return err
	}
	if outFile != "" {
		var buf bytes.Buffer
		if err := plan.Write(&buf, p); err != nil {
			return err
		}
		if err := atomicfile.Write(outFile, buf.Bytes()); err != nil {
			return err
		}
	}
	if err := render.Render(stdout, format, p, withSkipped(planTables(p), p.Skipped)...); err != nil {
		return err
	}
	return skippedAccounts(stderr, p.Skipped)
}

// planTables renders a plan for people: one row per VM, then the estimate.
func planTables(p *plan.Plan) []render.Table {
	vms := render.Table{Title: "Plan " + p.ID, Headers: []string{"VM", "Name", "Zone", "State", "Strategy", "Fallbacks", "Wave", "Risks", "Why"}}
	for _, v := range p.VMs {
		var fb []string
		for _, s := range v.Fallbacks {
			fb = append(fb, string(s))
		}
		wave := ""
		if v.Wave > 0 {
			wave = fmt.Sprint(v.Wave)
		}
		vms.Rows = append(vms.Rows, []string{v.ID, v.Name, v.Zone, string(v.State), string(v.Strategy),
			strings.Join(fb, ", "), wave, strings.Join(v.Risks, "; "), strings.Join(v.Reasons, "; ")})
	}
	est := render.Table{Title: "Estimate", Headers: []string{"", ""}}
	est.Rows = append(est.Rows,
		[]string{"duration", p.Estimate.Duration},
		[]string{"canary wave ends after", fmt.Sprintf("%ds", p.Estimate.CanarySeconds)},
		[]string{"API calls", fmt.Sprint(p.Estimate.APICallsTotal)},
	)
	for _, s := range plan.AllStrategies {
		if n := p.Estimate.ByStrategy[s]; n > 0 {
			est.Rows = append(est.Rows, []string{"VMs " + string(s), fmt.Sprint(n)})
		}
	}
	summary := render.Table{Title: "Summary", Headers: []string{"What to know first"}}
	for _, l := range p.Summary.Lines {
		summary.Rows = append(summary.Rows, []string{l})
	}
	return []render.Table{vms, est, summary}
}
