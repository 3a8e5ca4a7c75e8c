package main

import (
	_ "embed"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/internal/version"
)

// newRootCmd builds the command tree. Nothing global: every command gets
// its writers from here.
func newRootCmd(stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "fixfleet",
		Short: "Repair a fleet of Windows VMs left boot-looping by a bad endpoint-security update",
		Long: `fixfleet enumerates Windows VMs across Sakura Cloud, AWS and Azure (or the
embedded simulated cloud), classifies each as healthy, safe-mode reachable,
boot-looping or unknown, and plans a repair per VM.

Start with the simulator:  fixfleet plan --sim --vms 300 --seed 1

` + exitCodesHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return clihelp.BadInput(err) })
	root.AddCommand(
		newInventoryCmd(stdout, stderr),
		newReadinessCmd(stdout, stderr),
		newPlanCmd(stdout, stderr),
		newApplyCmd(stdin, stdout, stderr),
		newStatusCmd(stdout),
		newReportCmd(stdout),
		newUnlockCmd(stdout),
		newDemoCmd(stdout, stderr),
		newSimCmd(stdout, stderr),
		&cobra.Command{Use: "version", Short: "Print the version and commit of this build", Args: cobra.NoArgs,
			Run: func(*cobra.Command, []string) { fmt.Fprintln(stdout, version.Read()) }},
	)
	root.Args, root.RunE = cobra.NoArgs, func(c *cobra.Command, _ []string) error { return c.Help() }
	clihelp.Apply(root, clihelp.Examples(examplesText), exitCodesHelp, clihelp.BadInput)
	return root
}

//go:embed examples.txt
var examplesText string

//go:embed exitcodes.txt
var exitCodesHelp string
