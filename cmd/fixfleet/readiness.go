package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/remediate/progress"
	"github.com/fixfleet/fixfleet/remediate/readiness"
)

type readinessOpts struct {
	source sourceOpts
	out    outflag.Flags
	opts   readiness.Options // MaxBackupAge, RoleTag and RoleGroups from flags
}

func newReadinessCmd(stdout, stderr io.Writer) *cobra.Command {
	var o readinessOpts
	cmd := &cobra.Command{
		Use:   "readiness",
		Short: "Before an incident: what fixfleet could not do if every VM boot-looped now (read-only)",
		Long: `readiness assesses a healthy fleet, read-only, VM by VM: backups (and role
groups such as domain controllers), BitLocker keys in no key source, helper images,
guest access and WinRM in Safe Mode, consoles, the cloud permissions fixfleet needs
(checked without effect where the cloud allows) and helper quotas, and the planner's
estimate of time to a healthy fleet if every VM failed at once. It prints a score per
tenant and a ranked list of fixes, and exits 6 while gaps remain.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReadiness(cmd.Context(), o, stdout, stderr)
		},
	}
	o.source.addFlags(cmd.Flags())
	o.out.Add(cmd.Flags(), "")
	cmd.Flags().DurationVar(&o.opts.MaxBackupAge, "max-backup-age", 24*time.Hour, "data-loss limit: a backup older than this is stale")
	cmd.Flags().StringVar(&o.opts.RoleTag, "role-tag", "role", "the tag whose value is a VM's role")
	cmd.Flags().StringSliceVar(&o.opts.RoleGroups, "role-group", []string{"dc"}, "roles whose VMs must all have a backup within --max-backup-age")
	return cmd
}

func runReadiness(ctx context.Context, o readinessOpts, stdout, stderr io.Writer) error {
	format, _, err := o.out.Resolve(stderr)
	if err != nil {
		return err
	}
	if o.opts.MaxBackupAge <= 0 {
		return clihelp.BadInput(fmt.Errorf("--max-backup-age: %s must be above 0", o.opts.MaxBackupAge))
	}
	f, ao, err := openAssessed(ctx, &o.source)
	if err != nil {
		return err
	}
	defer f.Close()
	stop := progress.WatchAssess(ctx, stderr, f.Clock, &ao, f.OpenedAccounts())
	r, err := readiness.Run(ctx, f.Fleet, f.Policy, ao, o.opts)
	stop()
	if err != nil {
		return err
	}
	if err := render.Render(stdout, format, r, r.Tables()...); err != nil {
		return err
	}
	return r.Err()
}
