package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/simulation"
)

func newSimCmd(stdout, stderr io.Writer) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "The embedded simulated cloud",
		Long: `The embedded simulated cloud: a world of VMs to drill on.

inventory and plan also take these simulator flags (left out of their help):
  --sim                 use a simulated world generated here instead of --config
  --sim-endpoint URL    use the world served by fixfleet sim serve (apply takes it too)
  --drill-clock URL     with --config: a drill (sim serve --face F --drill-dir D) on the
                        clock of the world served at URL, so that its waits pass at the
                        world's pace (apply takes it too)
  --vms N, --seed N, --mix SPEC, --no-console, --time-scale X   the generated world
  --scenario FILE       load the world from a scenario file (implies --sim)`,
	}
	cmd.AddCommand(newSimExportCmd(stdout), newSimServeCmd(stdout), newSimAuditCmd(stdout), newSimFromInventoryCmd(stdout))
	return cmd
}

func newSimExportCmd(stdout io.Writer) *cobra.Command {
	var o simulation.Options
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Print a simulated world as JSON, with each VM's true condition",
		Long: `export prints the world as a scenario file: every VM with its true condition
("truth": healthy, safe-mode or boot-loop) and everything needed to rebuild it.
Load it back with --scenario FILE (inventory, plan); edit it by hand to write a
world of your own.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimExport(cmd.Context(), o, stdout) },
	}
	addWorldFlags(cmd.Flags(), &o, 600)
	return cmd
}

func runSimExport(_ context.Context, o simulation.Options, stdout io.Writer) error {
	b, err := simulation.ExportScenario(o.World)
	if err != nil {
		return simInput(err, "--face")
	}
	_, err = stdout.Write(b)
	return err
}

func newSimFromInventoryCmd(stdout io.Writer) *cobra.Command {
	var o world.InventoryOptions
	cmd := &cobra.Command{
		Use:   "from-inventory FILE",
		Short: "Turn an inventory export into a scenario: a copy of your fleet for drills",
		Long: `from-inventory reads FILE, written by ` + "`fixfleet inventory -o json`" + ` (format
fixfleet.inventory/v1, docs/inventory-format.md), and prints a scenario of the same
fleet: VMs, names, tags, zones, releases, disk sizes and identities as far as known,
BitLocker status, backups with their dates, helper images, accounts and API
throttling. No secret is read or written from the inventory: the world gets its own
credentials. --incident decides which VMs fail: all (default: every VM boot-loops),
as-is (as the inventory found them), or shares such as boot-loop=60,safe-mode=20,healthy=20.
Rehearse on it with --scenario FILE (plan, demo, sim serve --face X).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runSimFromInventory(args[0], o, stdout) },
	}
	cmd.Flags().Int64Var(&o.Seed, "seed", 1, "seed of what the inventory does not say (timings, identities) and of the world's own credentials")
	cmd.Flags().StringVar(&o.Profile, "incident", world.ProfileAll, "which VMs fail: all, as-is, or shares (boot-loop=60,safe-mode=20,healthy=20)")
	return cmd
}

func runSimFromInventory(path string, o world.InventoryOptions, stdout io.Writer) error {
	b, err := simulation.ScenarioFromInventory(path, o)
	if err != nil {
		return simInput(err, "--face")
	}
	_, err = stdout.Write(b)
	return err
}
