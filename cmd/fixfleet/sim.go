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
  --vms N, --seed N, --mix SPEC, --no-console, --time-scale X   the generated world
  --scenario FILE       load the world from a scenario file (implies --sim)`,
	}
	cmd.AddCommand(newSimExportCmd(stdout), newSimServeCmd(stdout), newSimAuditCmd(stdout))
	return cmd
}

func newSimExportCmd(stdout io.Writer) *cobra.Command {
	var o worldOpts
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
	o.addFlags(cmd.Flags(), 600)
	return cmd
}

func runSimExport(_ context.Context, o worldOpts, stdout io.Writer) error {
	w, err := simulation.NewWorld(o.WorldOptions, simulation.Frozen)
	if err != nil {
		return simInput(err, "--face")
	}
	b, err := world.MarshalScenario(w.Export())
	if err != nil {
		return err
	}
	_, err = stdout.Write(append(b, '\n'))
	return err
}
