package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/remediate/report"
)

type reportOpts struct {
	statusOpts
	table, csvDir, tenant, perTenant string
}

func newReportCmd(stdout io.Writer) *cobra.Command {
	var o reportOpts
	cmd := &cobra.Command{
		Use:   "report",
		Short: "Report a run from the journal: outcomes per tenant, healthy VMs over time, VMs for a person by reason, every VM and the run's events",
		Long: `report reads a run from the journal (safe while apply runs). html is one self-contained
page (inline chart, no external files) to mail or open offline; markdown is for a ticket;
csv holds one table (--table, default vms) or, with --csv-dir, one file per table.
Tables: ` + strings.Join(report.TableNames(), ", ") + ` (columns in docs/reports.md).`,
		Example: `  fixfleet report -o html > report.html
  fixfleet report -o csv --table for-a-person > for-a-person.csv
  fixfleet report --csv-dir report-csv/
  fixfleet report --tenant acme -o markdown
  fixfleet report --per-tenant reports/ -o html`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runReport(cmd.Context(), o, stdout) },
	}
	o.addFlags(cmd)
	fs := cmd.Flags()
	fs.StringVar(&o.table, "table", "", "only this table: "+strings.Join(report.TableNames(), ", "))
	fs.StringVar(&o.csvDir, "csv-dir", "", "write every table as DIR/<table>.csv")
	fs.StringVar(&o.tenant, "tenant", "", "report on this tenant only")
	fs.StringVar(&o.perTenant, "per-tenant", "", "write one report per tenant into DIR (in -o)")
	return cmd
}

func runReport(ctx context.Context, o reportOpts, stdout io.Writer) error {
	format, _, err := o.out.Resolve(nil)
	if err != nil {
		return err
	}
	if err := report.CheckTable(format, o.table); err != nil {
		return clihelp.BadInput(fmt.Errorf("--table: %w", err))
	}
	if o.perTenant != "" && (o.tenant != "" || o.csvDir != "") {
		return clihelp.BadInput(fmt.Errorf("--per-tenant writes every tenant's report: it does not go with --tenant or --csv-dir"))
	}
	j, res, err := openRun(ctx, o.statusOpts)
	if err != nil {
		return err
	}
	defer j.Close()
	load, err := report.FromJournal(ctx, j, res)
	if err != nil {
		return err
	}
	if o.perTenant != "" {
		files, err := report.WritePerTenant(o.perTenant, report.Tenants(res), load, format, o.table)
		for _, p := range slices.Sorted(maps.Keys(files)) {
			fmt.Fprintf(stdout, "%s\t%s\n", files[p], p)
		}
		return err
	}
	rep, err := load(o.tenant)
	if err != nil {
		return clihelp.BadInput(fmt.Errorf("--tenant: %w", err))
	}
	if o.csvDir != "" {
		files, err := rep.WriteCSVDir(o.csvDir)
		for _, p := range files {
			fmt.Fprintln(stdout, p)
		}
		return err
	}
	return rep.Write(stdout, format, o.table)
}
