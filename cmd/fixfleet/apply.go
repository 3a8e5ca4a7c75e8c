package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/eventlog"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/progress"
	"github.com/fixfleet/fixfleet/remediate/report"
	"github.com/fixfleet/fixfleet/remediate/target"
)

type applyOpts struct {
	source      sourceOpts
	journal     string
	yes         bool
	keepHelpers bool
	resume      bool
	out         outflag.Flags
	notify      notifyOpts
	target      target.Flags
	logFormat   eventlog.Format
	allowStale  bool
}

func newApplyCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	var o applyOpts
	cmd := &cobra.Command{
		Use:   "apply PLAN",
		Short: "Carry out a plan made by `fixfleet plan --out-file PLAN`",
		Long: `apply executes a plan, VM by VM, wave by wave (the canary wave first), recording
every step before and after its side effect in the journal. It re-checks each VM right
before acting on it and leaves alone a VM that has become healthy. Running apply again
on the same plan and journal continues where it stopped (after a crash, an interrupt or
a brake). Only one apply runs on a journal at a time.

It asks for confirmation unless --yes is given.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd.Context(), args[0], o, stdin, stdout, stderr)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&o.source.src.Config, "config", "fleet.yaml", "fleet configuration file")
	fs.StringVar(&o.source.src.SimEndpoint, "sim-endpoint", "", "act on the simulated world served at this URL (fixfleet sim serve)")
	fs.StringVar(&o.source.src.DrillClock, "drill-clock", "", "with --config: run on the clock of the world served at this URL (a drill against fixfleet sim serve --face)")
	_ = fs.MarkHidden("sim-endpoint")
	_ = fs.MarkHidden("drill-clock")
	fs.StringVar(&o.journal, "journal", journal.DefaultPath, "journal (SQLite) recording the run")
	fs.BoolVar(&o.yes, "yes", false, "do not ask for confirmation (for scripts)")
	fs.BoolVar(&o.keepHelpers, "keep-helpers", false, "keep the helper VMs, during the run and at its end")
	fs.BoolVar(&o.resume, "continue", false, "resume a run that a brake (canary or failure rate) paused")
	o.out.Add(fs, "")
	o.notify.addFlags(fs)
	o.target.Add(fs)
	fs.BoolVar(&o.allowStale, "allow-stale", false, "apply a plan older than the policy's plan_max_age_minutes, or one the live fleet has drifted from")
	o.logFormat = eventlog.Text
	fs.Var(&o.logFormat, "log-format", "format of the log lines written when stderr is not a terminal: text or json")
	return cmd
}

// selectPlan narrows p to the VMs the targeting flags select (p itself
// when they select everything): the others are not in the plan applied,
// so apply never touches them.
func selectPlan(p *plan.Plan, raw []byte, f *target.Flags, stderr io.Writer) (*plan.Plan, []byte, error) {
	sel, err := f.Selector()
	if err != nil || sel.Empty() {
		return p, raw, err
	}
	sub, err := sel.Plan(p)
	if err == nil {
		fmt.Fprintf(stderr, "applying %d of the %d VMs of plan %s (%s) as run %s\n", len(sub.VMs), len(p.VMs), p.ID, sel, sub.ID)
	}
	return sub, nil, err
}

// confirm asks the operator to approve the plan (clihelp.Confirm).
func confirm(p *plan.Plan, stdin io.Reader, stderr io.Writer) error {
	return clihelp.BadInput(clihelp.Confirm(stdin, progress.IsTerminal(stdin), stderr, plan.Confirmation(p, 5), "Apply it?"))
}

func runApply(ctx context.Context, planFile string, o applyOpts, stdin io.Reader, stdout, stderr io.Writer) error {
	format, _, err := o.out.Resolve(stderr)
	if err != nil {
		return err
	}
	p, raw, err := plan.ReadFile(planFile)
	if err != nil {
		return clihelp.BadInput(err)
	}
	if p, raw, err = selectPlan(p, raw, &o.target, stderr); err != nil {
		return err
	}
	if !o.yes {
		if err := confirm(p, stdin, stderr); err != nil {
			return err
		}
	}
	f, err := openFleet(ctx, &o.source)
	if err != nil {
		return err
	}
	defer f.Close()
	rn, err := o.notify.open(f.Notify)
	if err != nil {
		return err
	}
	j, err := f.OpenJournal(ctx, o.journal)
	if err != nil {
		return clihelp.BadInput(err)
	}
	defer j.Close()
	if !o.allowStale {
		if err := f.CheckFresh(ctx, j, p); err != nil {
			return err
		}
	}
	events, done := progress.ForApply(stderr, progress.IsTerminal(stderr), p, o.logFormat)
	res, err := f.Apply(ctx, p, j, fleet.ApplyOptions{PlanJSON: raw, Continue: o.resume, KeepHelpers: o.keepHelpers, Events: rn.Tee(p, events)})
	done()
	rn.Finish(stderr)
	if res != nil {
		if rerr := render.Render(stdout, format, res, report.Brief(res)...); rerr != nil && err == nil {
			err = rerr
		}
	}
	if err != nil {
		return err
	}
	return res.Err()
}
