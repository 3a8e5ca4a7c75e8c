package main

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/providers/sim/simapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// faultOpts set a simulated world's faults from flags.
type faultOpts struct {
	errorRate  float64
	dropBefore float64
	dropAfter  float64
	throttle   string
	latency    float64
	outageAt   time.Duration
	outageFor  time.Duration
	// guest path and completions (world.Faults.Guest*, AsyncFailRate)
	guestError, guestDropBefore, guestDropAfter, guestSlow, asyncFail float64
}

func (o *faultOpts) addFlags(fs *pflag.FlagSet) {
	fs.Float64Var(&o.errorRate, "fault-rate", 0, "share of API calls answered with a 5xx")
	fs.Float64Var(&o.dropBefore, "drop-before", 0, "share of API calls whose connection drops before the change is applied")
	fs.Float64Var(&o.dropAfter, "drop-after", 0, "share of API calls whose connection drops after the change was applied")
	fs.StringVar(&o.throttle, "throttle", "simple", "API throttling model: off, simple or ec2")
	fs.Float64Var(&o.latency, "latency", 1, "API latency scale (0 none, 1 calibrated)")
	fs.Float64Var(&o.guestError, "guest-error", 0, "share of guest scripts that fail in the guest before their effect")
	fs.Float64Var(&o.guestDropBefore, "guest-drop-before", 0, "share of guest scripts whose WinRM connection drops before they run")
	fs.Float64Var(&o.guestDropAfter, "guest-drop-after", 0, "share of guest scripts whose reply is lost after their effect")
	fs.Float64Var(&o.guestSlow, "guest-slow", 0, "share of guest scripts that run several times slower")
	fs.Float64Var(&o.asyncFail, "async-fail", 0, "share of accepted attaches and detaches that fail when they complete")
	fs.DurationVar(&o.outageAt, "outage-at", 0, "start a control-plane outage this long (simulated) after start (demo: after apply starts)")
	fs.DurationVar(&o.outageFor, "outage-for", 0, "length of that outage (simulated)")
}

// apply sets the fault rates on w (not the outage: see scheduleOutage).
func (o *faultOpts) apply(w *world.World) error {
	f := w.Faults()
	f.ErrorRate, f.DropBeforeRate, f.DropAfterRate, f.Throttle, f.Latency = o.errorRate, o.dropBefore, o.dropAfter, o.throttle, o.latency
	f.GuestErrorRate, f.GuestDropBeforeRate, f.GuestDropAfterRate, f.GuestSlowRate = o.guestError, o.guestDropBefore, o.guestDropAfter, o.guestSlow
	f.AsyncFailRate = o.asyncFail
	return o.set(w, f)
}

// scheduleOutage adds the outage, if any, starting outageAt from now.
func (o *faultOpts) scheduleOutage(w *world.World) error {
	if o.outageFor <= 0 {
		return nil
	}
	f := w.Faults()
	start := w.Clock().Now().Add(o.outageAt)
	f.Outages = append(f.Outages, world.Outage{From: start, Until: start.Add(o.outageFor)})
	return o.set(w, f)
}

func (o *faultOpts) set(w *world.World, f world.Faults) error {
	if err := w.SetFaults(f); err != nil {
		return badInput(fmt.Errorf("fault options: %w", err))
	}
	return nil
}

type simServeOpts struct {
	world    worldOpts
	faults   faultOpts
	listen   string
	face     string
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
	o.world.addFlags(cmd.Flags(), 600)
	o.faults.addFlags(cmd.Flags())
	cmd.Flags().StringVar(&o.listen, "listen", "127.0.0.1:0", "address to serve on (loopback)")
	cmd.Flags().StringVar(&o.face, "face", "sim", "also serve the world as this cloud's API, for a fleet.yaml drill: sim (none), sakura or aws")
	cmd.Flags().StringVar(&o.drillDir, "drill-dir", "", "write a drill's fleet.yaml, keys.csv, WinRM password file and env file to this directory")
	return cmd
}

func runSimServe(ctx context.Context, o simServeOpts, stdout io.Writer) error {
	if !strings.HasPrefix(o.listen, "127.") && !strings.HasPrefix(o.listen, "localhost:") && !strings.HasPrefix(o.listen, "[::1]:") {
		return badInput(fmt.Errorf("--listen %s: the simulator serves test credentials and must listen on loopback (127.0.0.1:PORT)", o.listen))
	}
	w, b, err := openFace("--face", o.face, &o.world, &o.faults)
	if err != nil {
		return err
	}
	if err := o.faults.scheduleOutage(w); err != nil {
		b.close()
		return err
	}
	defer b.close()
	srv, err := simapi.Start(w, b.gateway, o.listen, simapi.ServerOptions{})
	if err != nil {
		return fmt.Errorf("simulator: serving on %s: %w", o.listen, err)
	}
	defer srv.Close()
	fmt.Fprintf(stdout, "%s\n", srv.URL())
	fmt.Fprintf(stdout, "fixfleet sim: %d VMs in %s; use --sim-endpoint %s; stop with Ctrl-C\n",
		len(w.Export().VMs), strings.Join(w.Zones(), ", "), srv.URL())
	if o.drillDir != "" {
		if err := writeDrill(o.drillDir, b); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "drill written to %s: source %s, then fixfleet plan --config %s --window 1m\n",
			o.drillDir, filepath.Join(o.drillDir, "env"), filepath.Join(o.drillDir, "fleet.yaml"))
	}
	<-ctx.Done()
	return nil
}

type simAuditOpts struct {
	endpoint string
	format   string
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
	cmd.Flags().StringVar(&o.format, "format", "table", "output format: "+strings.Join(render.FormatNames(), ", "))
	return cmd
}

func runSimAudit(ctx context.Context, o simAuditOpts, stdout io.Writer) error {
	format, err := parseFormat(o.format)
	if err != nil {
		return err
	}
	if o.endpoint == "" {
		return badInput(fmt.Errorf("--sim-endpoint is required: the URL `fixfleet sim serve` printed"))
	}
	r, err := simapi.Dial(ctx, o.endpoint)
	if err != nil {
		return fmt.Errorf("--sim-endpoint %s: %w", o.endpoint, err)
	}
	defer r.Close()
	a, err := r.Audit(ctx)
	if err != nil {
		return err
	}
	return render.Render(stdout, format, auditDoc(a), auditTables(a)...)
}

// invariants is the world's referee counters, as every summary prints
// them: the world's own struct, so a new counter shows up everywhere.
type invariants = world.Invariants

func invariantsOf(a world.Audit) invariants { return a.Invariants() }

// violations lists, in words, what the world's referee counted against the
// invariants (empty when all counters are 0).
func violations(a world.Audit) []string { return a.Violations() }

// auditJSON is `sim audit --format json`: the world's Audit with its
// counters also gathered under "invariants".
type auditJSON struct {
	world.Audit
	Invariants invariants `json:"invariants"`
}

func auditDoc(a world.Audit) auditJSON { return auditJSON{Audit: a, Invariants: invariantsOf(a)} }

func auditTables(a world.Audit) []render.Table {
	inv := invariantsOf(a)
	t := render.Table{Title: "Invariants (computed by the world)", Headers: []string{"counter", "value"}}
	for _, c := range inv.Counters() {
		t.Rows = append(t.Rows, []string{c.Name, fmt.Sprint(c.Value)})
	}
	c := render.Table{Title: "True condition now", Headers: []string{"truth", "VMs"}}
	for _, k := range []string{world.TruthHealthy, world.TruthSafeMode, world.TruthBootLoop} {
		c.Rows = append(c.Rows, []string{k, fmt.Sprint(a.TruthCounts[k])})
	}
	return []render.Table{t, c}
}
