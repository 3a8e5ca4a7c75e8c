// Package simulation is the simulated incident as one piece: a simulated
// world, the face it is reached through (the simulator's own provider, or a
// real cloud provider against an emulator of that cloud's API) and the
// orchestrator (remediate/fleet) wired together. `fixfleet demo` and
// `fixfleet sim serve` use it, and so do the end-to-end tests.
//
// It imports providers/aws (and so the EC2 SDK) because the aws face opens
// the world's accounts with the real AWS provider: this package is wiring,
// like the CLI's.
package simulation

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/rusage"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// RunOptions describe one simulated incident.
type RunOptions struct {
	Options
	// Policy adjusts the default policy before planning (nil: the
	// default). Its error is returned as is.
	Policy func(policy.Policy) (policy.Policy, error)
	// Journal is the journal file ("": a temporary one, removed at the
	// end).
	Journal string
	// JournalDir is where the temporary journal is made when Journal is
	// "" ("": the system's temporary directory). The journal is the
	// product's either way (WAL, synchronous=FULL): the directory only
	// decides what its fsyncs cost.
	JournalDir string
	// Progress receives assessment progress lines (nil: none).
	Progress io.Writer
	// Watch, when set, is called once the plan is made and returns the
	// sink of the run's progress events (nil: none).
	Watch func(p *plan.Plan) func(apply.Event)
	// Apply are the apply's options (its Events come from Watch).
	Apply fleet.ApplyOptions
	// ApplyFor, when > 0, interrupts the apply after that much of the
	// world's clock time (the VMs not finished then are Summary.Pending):
	// the benchmark's serial baseline runs a sample this way.
	ApplyFor time.Duration
}

// Run runs a whole incident: it opens the world behind its face, assesses
// and plans the fleet, starts the control-plane outage if any, applies the
// plan, and summarises the outcome with the world's own audit. The error
// is for an incident that could not be run; one that ran but broke a
// promise says so in Summary.Problems.
func Run(ctx context.Context, o RunOptions) (Summary, error) {
	wallStart := time.Now()
	b, err := Open(o.Options)
	if err != nil {
		return Summary{}, err
	}
	defer b.Close()
	s, err := b.Run(ctx, o)
	s.WallSec = time.Since(wallStart).Seconds()
	return s, err
}

// Run plays the incident o describes on b, opened by Open (o.Options are
// not read again): see the package function Run. Summary.WallSec is 0: the
// caller knows which clock is the wall's (inside a testing/synctest bubble
// the time package's is not).
func (b *Backend) Run(ctx context.Context, o RunOptions) (Summary, error) {
	f, err := b.OpenFleet(ctx)
	if err != nil {
		return Summary{}, err
	}
	defer f.Close()
	simStart := f.Clock.Now()
	pol := f.Policy
	if o.Policy != nil {
		if pol, err = o.Policy(pol); err != nil {
			return Summary{}, err
		}
	}
	p, err := f.Plan(ctx, pol, fleet.AssessOptions{Progress: o.Progress})
	if err != nil {
		return Summary{}, err
	}
	assessed := f.Clock.Now().Sub(simStart)
	journalPath := o.Journal
	if journalPath == "" {
		dir, err := os.MkdirTemp(o.JournalDir, "fixfleet-demo-")
		if err != nil {
			return Summary{}, err
		}
		defer os.RemoveAll(dir)
		journalPath = filepath.Join(dir, "fixfleet.db")
	}
	var events func(apply.Event)
	if o.Watch != nil {
		events = o.Watch(p)
	}
	if err := b.ScheduleOutage(); err != nil {
		return Summary{}, err
	}
	j, err := f.OpenJournal(ctx, journalPath)
	if err != nil {
		return Summary{}, badOption("journal", err)
	}
	defer j.Close()
	actx := ctx
	if o.ApplyFor > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			if f.Clock.Sleep(actx, o.ApplyFor) == nil {
				cancel()
			}
		}()
	}
	ao := o.Apply
	ao.Events = events
	res, err := f.Apply(actx, p, j, ao)
	if err != nil && !(o.ApplyFor > 0 && res != nil && ctx.Err() == nil && errors.Is(err, context.Canceled)) {
		return Summary{}, err
	}
	audit, err := b.Audit(ctx)
	if err != nil {
		return Summary{}, err
	}
	s := summarize(p, res, audit.Truth, b.worldID)
	s.Provider, s.API = b.provider, apiStatsOf(b, audit)
	elapsed := f.Clock.Now().Sub(simStart)
	s.ElapsedSec, s.ElapsedSim, s.AssessSec = elapsed.Seconds(), elapsed.Round(time.Second).String(), assessed.Seconds()
	s.Invariants, s.Violations, s.TruthAfter = InvariantsOf(audit), Violations(audit), audit.TruthCounts
	s.PeakMemoryMB = rusage.PeakRSSMB()
	if s.KeptOriginals, err = b.keptDisks(ctx, j, res.RunID, p); err != nil {
		return Summary{}, err
	}
	if _, scaled := b.clock.(*clock.Scaled); scaled {
		s.DurationsNote = ScaledNote
	}
	return s, nil
}
