package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/simulation"
)

// addFaultFlags binds a simulated world's faults to flags.
func addFaultFlags(fs *pflag.FlagSet, o *simulation.Faults) {
	fs.Float64Var(&o.ErrorRate, "fault-rate", 0, "share of API calls answered with a 5xx")
	fs.Float64Var(&o.DropBefore, "drop-before", 0, "share of API calls whose connection drops before the change is applied")
	fs.Float64Var(&o.DropAfter, "drop-after", 0, "share of API calls whose connection drops after the change was applied")
	fs.StringVar(&o.Throttle, "throttle", "simple", "API throttling model: off, simple or ec2")
	fs.Float64Var(&o.Latency, "latency", 1, "API latency scale (0 none, 1 calibrated)")
	fs.Float64Var(&o.GuestError, "guest-error", 0, "share of guest scripts that fail in the guest before their effect")
	fs.Float64Var(&o.GuestDropBefore, "guest-drop-before", 0, "share of guest scripts whose WinRM connection drops before they run")
	fs.Float64Var(&o.GuestDropAfter, "guest-drop-after", 0, "share of guest scripts whose reply is lost after their effect")
	fs.Float64Var(&o.GuestSlow, "guest-slow", 0, "share of guest scripts that run several times slower")
	fs.Float64Var(&o.AsyncFail, "async-fail", 0, "share of accepted attaches and detaches that fail when they complete")
	fs.DurationVar(&o.OutageAt, "outage-at", 0, "start a control-plane outage this long (simulated) after start (demo: after apply starts)")
	fs.DurationVar(&o.OutageFor, "outage-for", 0, "length of that outage (simulated)")
}

type simServeOpts struct {
	world    simulation.Options
	faults   simulation.Faults
	listen   string
	drillDir string
}

func newSimServeCmd(stdout io.Writer) *cobra.Command {
	var o simServeOpts
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve a simulated world until stopped, for other fixfleet processes (--sim-endpoint)",
		Long: `serve runs a simulated world in this process and serves its control plane as
JSON over HTTP on --listen, and its guests' WinRM behind a CONNECT gateway, both on
loopback. Other commands use it with --sim-endpoint URL, so an orchestrator can be
stopped (or killed) and started again against the same world. It prints the URL on
the first line of its output and runs until interrupted.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runSimServe(cmd.Context(), o, stdout) },
	}
	addWorldFlags(cmd.Flags(), &o.world, 600)
	addFaultFlags(cmd.Flags(), &o.faults)
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:0", "address to serve on (loopback)")
	cmd.Flags().StringVar(&o.world.Face, "face", "sim", "also serve the world as this cloud's API, for a fleet.yaml drill: sim (none), sakura, aws or azure")
	cmd.Flags().StringVar(&o.drillDir, "drill-dir", "", "write a drill's fleet.yaml, keys.csv, WinRM password file and env file to this directory")
	return cmd
}

func runSimServe(ctx context.Context, o simServeOpts, stdout io.Writer) error {
	so := o.world
	so.Faults = &o.faults
	srv, err := simulation.Serve(so, o.listen)
	if err != nil {
		return simInput(err, "--face")
	}
	defer srv.Close()
	w := srv.World()
	fmt.Fprintf(stdout, "%s\n", srv.URL())
	fmt.Fprintf(stdout, "fixfleet sim: %d VMs in %s; use --sim-endpoint %s; stop with Ctrl-C\n",
		len(w.Export().VMs), strings.Join(w.Zones(), ", "), srv.URL())
	if o.drillDir != "" {
		if err := srv.WriteDrill(o.drillDir); err != nil {
			return simInput(err, "--face")
		}
		fmt.Fprintf(stdout, "drill written to %s: source %s, then fixfleet plan --config %s --drill-clock %s\n",
			o.drillDir, filepath.Join(o.drillDir, "env"), filepath.Join(o.drillDir, "fleet.yaml"), srv.URL())
	}
	<-ctx.Done()
	return nil
}

type simAuditOpts struct {
	endpoint string
	out      outflag.Flags
}

func newSimAuditCmd(stdout io.Writer) *cobra.Command {
	var o simAuditOpts
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Print the simulated world's own account: true condition of each VM and invariant counters",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return runSimAudit(cmd.Context(), o, stdout) },
	}
	cmd.Flags().StringVar(&o.endpoint, "sim-endpoint", "", "URL of the world (fixfleet sim serve); required")
	o.out.Add(cmd.Flags(), "")
	return cmd
}

func runSimAudit(ctx context.Context, o simAuditOpts, stdout io.Writer) error {
	format, _, err := o.out.Resolve(nil)
	if err != nil {
		return err
	}
	if o.endpoint == "" {
		return clihelp.BadInput(fmt.Errorf("--sim-endpoint is required: the URL `fixfleet sim serve` printed"))
	}
	doc, err := simulation.AuditAt(ctx, o.endpoint)
	if errors.As(err, new(*simulation.DialError)) {
		return fmt.Errorf("--sim-endpoint %w", err)
	}
	if err != nil {
		return err
	}
	return render.Render(stdout, format, doc, doc.Tables()...)
}
