package classify

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/retry"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// Observer reads control-plane signals for many VMs at once. It is the
// method of providers.Observer: the result is keyed by VM ID and lacks the
// VMs the cloud did not find.
type Observer interface {
	Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error)
}

// Prober runs the guest probe on one VM over WinRM and reports what it
// found. It never fails: an unreachable guest is a Probe with Reachable
// false and Error saying why (starting with ProbeErrAuth when the
// credentials were rejected). It must honour ctx.
type Prober interface {
	Probe(ctx context.Context, vm inventory.VM) inventory.Probe
}

// Defaults of AssessOptions.
const (
	DefaultWindow           = 10 * time.Minute
	DefaultSamples          = 3
	DefaultBatch            = 100
	DefaultProbeConcurrency = 400
	DefaultRetries          = 5
	DefaultBackoff          = 2 * time.Second
	DefaultScreenEvery      = 30 * time.Second
	maxBackoff              = time.Minute
)

// AssessOptions configure Assess. Zero values take the defaults.
type AssessOptions struct {
	Incident inventory.Incident
	Observer Observer // required
	Prober   Prober   // nil: no guest probe (verdicts rest on signals only)
	Clock    clock.Clock
	// Window is the sampling window (default 10 min). Samples (default 3)
	// are spread evenly over it: at the start, ..., at the end.
	Window  time.Duration
	Samples int
	// Batch is the most VM refs per Observe call (default 100).
	Batch int
	// ProbeConcurrency is the most guest probes at once (default 400: a
	// probe is one WinRM connection and a short script, no control-plane
	// call, and the probes of a large fleet otherwise outlast the
	// sampling window).
	ProbeConcurrency int
	// Attested, when set, returns an operator's console report for a VM
	// (nil for none): evidence the cloud's API may not give.
	Attested func(vm inventory.VM) *inventory.Attestation
	// ScreenEvery is how often over the window a VM's console screen is
	// read, where the Observer also reads screens (providers.Screens) and
	// the cloud shows no console text for the VM (default 30 s; negative:
	// never). See Assess.
	ScreenEvery time.Duration
	// Retries is how many times a retryable Observe error is retried
	// (default 5), waiting Backoff (default 2 s), doubling, up to a minute,
	// or the cloud's RetryAfter hint when longer, with some jitter.
	Retries int
	Backoff time.Duration
}

func (o AssessOptions) withDefaults() AssessOptions {
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Samples <= 0 {
		o.Samples = DefaultSamples
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.ProbeConcurrency <= 0 {
		o.ProbeConcurrency = DefaultProbeConcurrency
	}
	if o.Retries < 0 {
		o.Retries = 0
	} else if o.Retries == 0 {
		o.Retries = DefaultRetries
	}
	if o.Backoff <= 0 {
		o.Backoff = DefaultBackoff
	}
	if o.ScreenEvery == 0 {
		o.ScreenEvery = DefaultScreenEvery
	}
	return o
}

// Assess samples the control plane for all vms together (opts.Samples times
// over opts.Window, at most opts.Batch refs per Observe call), then probes
// every VM still running after the last sample (at most
// opts.ProbeConcurrency at once), observes once more each VM whose guest
// answered while its last sample said the cloud could not reach it
// (resample), and classifies each. The VMs must all lie
// in the Observer's scope (one account) and have distinct IDs. The result is
// in input order.
//
// Where the Observer also reads screens (providers.Screens), Assess takes
// screenshots every opts.ScreenEvery over the window (and at each sample)
// of each VM whose latest sample shows it running, without a passing
// reachability check and without console text (text, where a cloud gives
// it, is cheaper and exact), until the VM has shown the sign-in screen
// (after which no screenshot can make it a boot loop), and once more after
// the probe of each VM whose reachability check passes but whose guest
// could not be probed (a Safe Mode desktop, a firewall or other
// credentials: only the screen tells them apart; wantsScreenAfterProbe). Each is classified
// (package inventory/screen) and kept as Evidence.Screens; a screenshot
// that fails is no evidence. At most opts.ProbeConcurrency are taken at
// once.
//
// A VM missing from an Observe result is unknown ("not found
// by the cloud during sampling"). An Observe error that is not retryable, or
// still failing after the retries, fails the whole call with an error naming
// the account and the VMs of the batch; a cancelled ctx returns ctx's error.
func Assess(ctx context.Context, vms []inventory.VM, opts AssessOptions) ([]inventory.Assessed, error) {
	if opts.Observer == nil {
		return nil, errors.New("classify: AssessOptions.Observer is nil")
	}
	opts = opts.withDefaults()
	if len(vms) == 0 {
		return nil, nil
	}
	index := make(map[string]int, len(vms))
	refs := make([]providers.VMRef, len(vms))
	for i, vm := range vms {
		if j, dup := index[vm.ID]; dup {
			return nil, fmt.Errorf("assess %s: VM ID %q appears twice (%s and %s)", accountOf(vms), vm.ID, vms[j].Key(), vm.Key())
		}
		index[vm.ID] = i
		refs[i] = providers.Ref(vm)
	}

	samples := make([][]inventory.Signals, len(vms))
	shots := make([][]inventory.ScreenSample, len(vms))
	missing := make([]int, len(vms))
	start := opts.Clock.Now()
	for _, t := range schedule(opts) {
		if t.at > 0 {
			if err := opts.Clock.Sleep(ctx, start.Add(t.at).Sub(opts.Clock.Now())); err != nil {
				return nil, err
			}
		}
		if t.sample {
			for lo := 0; lo < len(refs); lo += opts.Batch {
				hi := min(lo+opts.Batch, len(refs))
				got, err := observe(ctx, opts, refs[lo:hi], vms[lo:hi])
				if err != nil {
					return nil, err
				}
				for i := lo; i < hi; i++ {
					if sig, ok := got[vms[i].ID]; ok {
						samples[i] = append(samples[i], sig)
					} else {
						missing[i]++
					}
				}
			}
		}
		if err := screenshots(ctx, opts, refs, samples, shots); err != nil {
			return nil, err
		}
	}

	probes := make([]*inventory.Probe, len(vms))
	if opts.Prober != nil {
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(opts.ProbeConcurrency)
		for i, vm := range vms {
			if missing[i] > 0 || len(samples[i]) == 0 || samples[i][len(samples[i])-1].Power != inventory.PowerRunning {
				continue // nothing to probe: the verdict is unknown anyway
			}
			g.Go(func() error {
				p := probeRetrying(gctx, opts, vm)
				probes[i] = &p
				return nil
			})
		}
		_ = g.Wait() // probes never fail
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := screenshotsOf(ctx, opts, refs, shots, func(i int) bool { return wantsScreenAfterProbe(samples[i], probes[i]) }); err != nil {
			return nil, err
		}
		if err := resample(ctx, opts, refs, vms, samples, probes); err != nil {
			return nil, err
		}
	}

	out := make([]inventory.Assessed, len(vms))
	for i, vm := range vms {
		ev := inventory.Evidence{Samples: samples[i], Screens: shots[i], Probe: probes[i]}
		if opts.Attested != nil {
			ev.Attested = opts.Attested(vm)
		}
		var c inventory.Classification
		if missing[i] > 0 {
			c = inventory.Classification{
				State: inventory.StateUnknown,
				Reasons: []string{fmt.Sprintf(
					"not found by the cloud during sampling (missing from %d of %d samples): check that the VM still exists and that the account's scope covers zone %s",
					missing[i], opts.Samples, vm.Zone)},
				Evidence: ev,
			}
		} else {
			c = Classify(opts.Incident, ev)
		}
		out[i] = inventory.Assessed{VM: vm, Classification: c}
	}
	return out, nil
}

// resample observes once more, after the probes, each VM whose guest
// answered its probe while its latest sample, taken before the probe,
// said the cloud's reachability check failed: a guest that came up
// between the two (a boot loop that recovered during the window) is then
// judged on signals as fresh as its probe, not on a disagreement between
// two moments. A VM missing from the answer keeps its samples.
func resample(ctx context.Context, opts AssessOptions, refs []providers.VMRef, vms []inventory.VM, samples [][]inventory.Signals, probes []*inventory.Probe) error {
	var idx []int
	for i, p := range probes {
		if p == nil || !p.Reachable || len(samples[i]) == 0 {
			continue
		}
		if r := samples[i][len(samples[i])-1].InstanceReachable; r != nil && !*r {
			idx = append(idx, i)
		}
	}
	for lo := 0; lo < len(idx); lo += opts.Batch {
		batch := idx[lo:min(lo+opts.Batch, len(idx))]
		rs, vs := make([]providers.VMRef, len(batch)), make([]inventory.VM, len(batch))
		for j, i := range batch {
			rs[j], vs[j] = refs[i], vms[i]
		}
		got, err := observe(ctx, opts, rs, vs)
		if err != nil {
			return err
		}
		for _, i := range batch {
			if sig, ok := got[vms[i].ID]; ok {
				samples[i] = append(samples[i], sig)
			}
		}
	}
	return nil
}

// probeRetrying probes vm, probing again while the probe could not be attempted
// for a control-plane reason (Probe.Retryable: the cloud failed to say
// where the guest is), as Observe's errors are retried. A probe still not
// attempted after the retries is returned as it is: Classify reads it as
// no guest evidence, never as a guest that does not answer.
func probeRetrying(ctx context.Context, opts AssessOptions, vm inventory.VM) inventory.Probe {
	var p inventory.Probe
	_ = retry.Do(ctx, opts.Clock, retry.Policy{Attempts: opts.Retries + 1, Base: opts.Backoff, Max: maxBackoff, Key: "probe/" + vm.ID}, func() error {
		p = opts.Prober.Probe(ctx, vm)
		if p.Retryable {
			return providers.Errorf(providers.ErrUnavailable, "Probe", "vm "+vm.ID, "%s", p.Error)
		}
		return nil
	})
	return p
}

// observe calls Observe for one batch, retrying retryable errors.
func observe(ctx context.Context, opts AssessOptions, refs []providers.VMRef, vms []inventory.VM) (map[string]inventory.Signals, error) {
	var got map[string]inventory.Signals
	key := "observe"
	if len(refs) > 0 {
		key += "/" + refs[0].ID
	}
	err := retry.Do(ctx, opts.Clock, retry.Policy{Attempts: opts.Retries + 1, Base: opts.Backoff, Max: maxBackoff, Key: key}, func() (err error) {
		got, err = opts.Observer.Observe(ctx, refs)
		return err
	})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("assess %s: observing %s failed: %w", accountOf(vms), vmList(refs), err)
	}
	return got, nil
}

func accountOf(vms []inventory.VM) string {
	seen := map[string]bool{}
	for _, vm := range vms {
		seen[fmt.Sprintf("account %s/%s (%s)", vm.Tenant, vm.Account, vm.Provider)] = true
	}
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// vmList names the VMs of a batch, abbreviated past a few.
func vmList(refs []providers.VMRef) string {
	const show = 5
	names := make([]string, 0, show)
	for i, r := range refs {
		if i == show {
			break
		}
		names = append(names, r.String())
	}
	s := "VM " + strings.Join(names, ", ")
	if len(refs) > show {
		s = fmt.Sprintf("%d VMs (%s and %d more)", len(refs), strings.Join(names, ", "), len(refs)-show)
	}
	return s
}
