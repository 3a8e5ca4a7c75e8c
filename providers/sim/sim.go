// Package sim is the simulated cloud's in-process provider face: every
// provider capability implemented over a world.World, with the world's
// faults, latency and asynchronous operations, on the world's clock.
//
// It is fixfleet's embedded default (fixfleet demo) and what the
// orchestrator's tests stand on.
package sim

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
	"golang.org/x/time/rate"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/coalesce"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Name is the provider name to register the simulator under.
const Name = "sim"

// Options scope a provider on a world.
type Options struct {
	// Account is the world account to act as (default "sim"). Resources of
	// other accounts are not found.
	Account string
	// Zones limits enumeration to these zones (default: all).
	Zones []string
	// Rate and Burst pace this provider's calls on the client side, as a
	// real provider paces to its cloud's documented request limit: a
	// bucket of Burst refilled at Rate calls a second per account, paced a
	// little under it (pace.ForCloud; same-instant callers go in key
	// order). Rate 0 takes the world's
	// documented per-account limit (World.APILimit); negative: no pacing.
	Rate  float64
	Burst int
}

// New returns a provider with every capability, over w. Each call passes
// through w's fault gate and latency and waits, on w's clock, for the
// operations it starts to complete.
func New(w *world.World, opts Options) *providers.Provider {
	if opts.Account == "" {
		opts.Account = world.DefaultAccount
	}
	c := &core{w: w, acct: opts.Account, zones: append([]string(nil), opts.Zones...), clk: w.Clock()}
	if opts.Rate == 0 {
		if b, ok := w.APILimit(); ok {
			opts.Rate, opts.Burst = b.Refill, b.Size
		}
	}
	if opts.Rate > 0 {
		c.lim = pace.ForCloud(c.clk, rate.Limit(opts.Rate), opts.Burst)
	}
	c.stops = map[bool]*coalesce.Batcher[providers.VMRef, time.Time]{}
	for _, force := range []bool{false, true} {
		c.stops[force] = coalesce.NewVMBatcher(func(ctx context.Context, vms []providers.VMRef) (map[string]time.Time, error) {
			return c.stopVMs(ctx, vms, force)
		}, c.clk, 0)
	}
	c.starts = coalesce.NewVMBatcher(c.startVMs, c.clk, 0)
	return &providers.Provider{
		Name:       Name,
		Enumerator: enumerator{c},
		Observer:   observer{c},
		Guests:     guests{c},
		Power:      power{c},
		Disks:      disks{c},
		Backups:    backups{c},
		Helpers:    helpers{c},
		Preflight:  preflight{c},
	}
}

type core struct {
	w     *world.World
	acct  string
	zones []string
	clk   clock.Clock
	lim   *pace.Limiter // nil: no client-side pacing
	// stops (by force) and starts merge concurrent callers' power calls
	// into one StopVMs or StartVMs (power).
	stops  map[bool]*coalesce.Batcher[providers.VMRef, time.Time]
	starts *coalesce.Batcher[providers.VMRef, time.Time]
}

// pace waits for the turn of the call op on res (see Options.Rate). res
// tells one call from another (a VM, a disk, a batch's VMs, a search's
// tags): calls with equal keys at one instant go together (internal/pace),
// which the world's bucket may refuse beyond its burst.
func (c *core) pace(ctx context.Context, op, res string) error {
	if c.lim == nil {
		return nil
	}
	return c.lim.Wait(ctx, op+" "+res)
}

// until waits on the world's clock until t.
func (c *core) until(ctx context.Context, t time.Time) error { return clock.SleepUntil(ctx, c.clk, t) }

// busy runs f again after the wait a conflict asks for (a VM still
// stopping, a disk still attaching or being created).
func (c *core) busy(ctx context.Context, f func() error) error {
	return providers.RetryWhileBusy(ctx, c.clk, f)
}

// tagKey is a search's tags as one string, sorted, for pace's key.
func tagKey(tags providers.Tags) string {
	kv := make([]string, 0, len(tags))
	for k, v := range tags {
		kv = append(kv, k+"="+v)
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}

func ids(vms []providers.VMRef) []string {
	out := make([]string, len(vms))
	for i, v := range vms {
		out[i] = v.ID
	}
	return out
}

type enumerator struct{ *core }

// List implements providers.Enumerator. Helpers are left out.
func (e enumerator) List(ctx context.Context) ([]inventory.VM, error) {
	if err := e.pace(ctx, "ListVMs", ""); err != nil {
		return nil, err
	}
	return e.w.ListVMs(ctx, e.acct, e.zones)
}

type observer struct{ *core }

// Backlog is how long a call made now would wait for its turn in this
// provider's pacing (pace.Limiter.Backlog); 0 without pacing.
func (o observer) Backlog() time.Duration {
	if o.lim == nil {
		return 0
	}
	return o.lim.Backlog()
}

// Observe implements providers.Observer.
func (o observer) Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	if err := o.pace(ctx, "Observe", strings.Join(ids(vms), ",")); err != nil {
		return nil, err
	}
	return o.w.Observe(ctx, o.acct, ids(vms))
}

type guests struct{ *core }

// GuestEndpoint implements providers.Guests.
func (g guests) GuestEndpoint(ctx context.Context, vm providers.VMRef) (providers.Endpoint, error) {
	if err := g.pace(ctx, "GuestEndpoint", vm.ID); err != nil {
		return providers.Endpoint{}, err
	}
	return g.w.GuestEndpoint(ctx, g.acct, vm.ID)
}

// ListedEndpoint implements endpointcache.Listed: the world lists each VM
// with the private address GuestEndpoint answers.
func (guests) ListedEndpoint(vm inventory.VM) (providers.Endpoint, bool) {
	return providers.ListedPrivateEndpoint(vm)
}

type power struct{ *core }

// Stop implements providers.Power: the VMs of concurrent Stops (of the
// same force) go out in one StopVMs call; then it waits until its own VMs
// are stopped. If that call is refused (another caller's VM may be the
// cause: alone), it stops its own VMs alone.
func (p power) Stop(ctx context.Context, vms []providers.VMRef, force bool) error {
	if len(vms) == 0 {
		return nil
	}
	got, err := p.stops[force].Get(ctx, vms)
	if alone(ctx, err) {
		got, err = p.stopVMs(ctx, vms, force)
	}
	if err != nil {
		return err
	}
	return p.untilAll(ctx, vms, got)
}

// stopVMs is one StopVMs call; it returns when each VM will be stopped.
func (c *core) stopVMs(ctx context.Context, vms []providers.VMRef, force bool) (map[string]time.Time, error) {
	if err := c.pace(ctx, "StopVMs", strings.Join(ids(vms), ",")); err != nil {
		return nil, err
	}
	pend, err := c.w.StopVMs(ctx, c.acct, ids(vms), force)
	return pend.Each, err
}

// Start implements providers.Power: the VMs of concurrent Starts go out in
// one StartVMs call; then it waits until its own VMs report running. If
// that call is refused (one VM still stopping refuses it whole: alone), it
// starts its own VMs alone, waiting for those still stopping.
func (p power) Start(ctx context.Context, vms []providers.VMRef) error {
	if len(vms) == 0 {
		return nil
	}
	got, err := p.starts.Get(ctx, vms)
	if alone(ctx, err) {
		err = p.busy(ctx, func() (err error) {
			got, err = p.startVMs(ctx, vms)
			return err
		})
	}
	if err != nil {
		return err
	}
	return p.untilAll(ctx, vms, got)
}

// startVMs is one StartVMs call; it returns when each VM will be running.
func (c *core) startVMs(ctx context.Context, vms []providers.VMRef) (map[string]time.Time, error) {
	if err := c.pace(ctx, "StartVMs", strings.Join(ids(vms), ",")); err != nil {
		return nil, err
	}
	pend, err := c.w.StartVMs(ctx, c.acct, ids(vms))
	return pend.Each, err
}

// alone reports whether a batched power call's error may be another
// caller's VM's doing (refused: not found, conflict), so that the caller
// should try its own VMs alone. A retryable error (a fault, a throttle) is
// the caller's to retry as it is.
func alone(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && !providers.Retryable(err)
}

// untilAll waits until the latest of vms' times in each.
func (c *core) untilAll(ctx context.Context, vms []providers.VMRef, each map[string]time.Time) error {
	var last time.Time
	for _, v := range vms {
		if t := each[v.ID]; t.After(last) {
			last = t
		}
	}
	return c.until(ctx, last)
}

// Restart implements providers.Power.
func (p power) Restart(ctx context.Context, vm providers.VMRef) error {
	if err := p.pace(ctx, "RestartVM", vm.ID); err != nil {
		return err
	}
	pend, err := p.w.RestartVM(ctx, p.acct, vm.ID)
	if err != nil {
		return err
	}
	return p.until(ctx, pend.Until)
}

type disks struct{ *core }

var _ providers.CopyDeleter = disks{}

// Describe implements providers.Disks.
func (d disks) Describe(ctx context.Context, ref providers.DiskRef) (providers.DiskState, error) {
	if err := d.pace(ctx, "DescribeDisk", ref.ID); err != nil {
		return providers.DiskState{}, err
	}
	info, err := d.w.DescribeDisk(ctx, d.acct, ref.ID)
	return info.DiskState, err
}

// DescribeMany reads many disks in one call (coalesce.ManyDescriber): a
// disk that does not exist is absent from the result.
func (d disks) DescribeMany(ctx context.Context, refs []providers.DiskRef) (map[string]providers.DiskState, error) {
	ids := make([]string, len(refs))
	for i, r := range refs {
		ids[i] = r.ID
	}
	if err := d.pace(ctx, "DescribeDisks", strings.Join(ids, ",")); err != nil {
		return nil, err
	}
	infos, err := d.w.DescribeDisks(ctx, d.acct, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]providers.DiskState, len(infos))
	for id, x := range infos {
		out[id] = x.DiskState
	}
	return out, nil
}

// FindDisks returns the disks carrying all tags: the way to find a disk an
// earlier FromSnapshot or Restore made before its outcome was known. (Not
// part of providers.Disks.)
func (d disks) FindDisks(ctx context.Context, tags providers.Tags) ([]providers.DiskState, error) {
	if err := d.pace(ctx, "FindDisks", tagKey(tags)); err != nil {
		return nil, err
	}
	infos, err := d.w.FindDisks(ctx, d.acct, tags)
	if err != nil {
		return nil, err
	}
	out := make([]providers.DiskState, len(infos))
	for i, x := range infos {
		out[i] = x.DiskState
	}
	return out, nil
}

// Snapshot implements providers.Disks: it waits until the snapshot is ready.
func (d disks) Snapshot(ctx context.Context, ref providers.DiskRef, tags providers.Tags) (providers.SnapshotRef, error) {
	var s world.SnapshotInfo
	err := d.busy(ctx, func() (err error) {
		if err := d.pace(ctx, "Snapshot", ref.ID); err != nil {
			return err
		}
		s, err = d.w.Snapshot(ctx, d.acct, ref.ID, tags)
		return err
	})
	if err != nil {
		return providers.SnapshotRef{}, err
	}
	return s.Ref, d.until(ctx, s.ReadyAt)
}

// FindSnapshots implements providers.Disks.
func (d disks) FindSnapshots(ctx context.Context, tags providers.Tags) ([]providers.SnapshotState, error) {
	if err := d.pace(ctx, "FindSnapshots", tagKey(tags)); err != nil {
		return nil, err
	}
	infos, err := d.w.FindSnapshots(ctx, d.acct, tags)
	if err != nil {
		return nil, err
	}
	out := make([]providers.SnapshotState, len(infos))
	for i, x := range infos {
		out[i] = x.SnapshotState
	}
	return out, nil
}

// Detach implements providers.Disks.
func (d disks) Detach(ctx context.Context, vm providers.VMRef, ref providers.DiskRef) error {
	var pend world.Pending
	err := d.busy(ctx, func() (err error) {
		if err := d.pace(ctx, "DetachDisk", ref.ID); err != nil {
			return err
		}
		pend, err = d.w.DetachDisk(ctx, d.acct, vm.ID, ref.ID)
		return err
	})
	if err != nil {
		return err
	}
	return d.until(ctx, pend.Until)
}

// Attach implements providers.Disks.
func (d disks) Attach(ctx context.Context, vm providers.VMRef, ref providers.DiskRef, boot bool) error {
	var pend world.Pending
	err := d.busy(ctx, func() (err error) {
		if err := d.pace(ctx, "AttachDisk", ref.ID); err != nil {
			return err
		}
		pend, err = d.w.AttachDisk(ctx, d.acct, vm.ID, ref.ID, boot)
		return err
	})
	if err != nil {
		return err
	}
	return d.until(ctx, pend.Until)
}

// FromSnapshot implements providers.Disks: it waits for the snapshot to be
// ready, then for the disk.
func (d disks) FromSnapshot(ctx context.Context, s providers.SnapshotRef, zone string, tags providers.Tags) (providers.DiskRef, error) {
	var info world.DiskInfo
	err := d.busy(ctx, func() (err error) {
		if err := d.pace(ctx, "DiskFromSnapshot", s.ID); err != nil {
			return err
		}
		info, err = d.w.DiskFromSnapshot(ctx, d.acct, s.ID, zone, tags)
		return err
	})
	if err != nil {
		return providers.DiskRef{}, err
	}
	return info.Ref, d.until(ctx, info.ReadyAt)
}

// DeleteCopy implements providers.CopyDeleter: it reads the disk, and
// deletes it only if it is a detached copy carrying tags.
func (d disks) DeleteCopy(ctx context.Context, ref providers.DiskRef, tags providers.Tags) error {
	return providers.DeleteCopyWith(ctx, ref, tags, d.Describe, func(ctx context.Context) error {
		return d.busy(ctx, func() error {
			if err := d.pace(ctx, "DeleteDisk", ref.ID); err != nil {
				return err
			}
			return d.w.DeleteDisk(ctx, d.acct, ref.ID)
		})
	})
}

type backups struct{ *core }

// List implements providers.Backups.
func (b backups) List(ctx context.Context, vm providers.VMRef) ([]inventory.Backup, error) {
	if err := b.pace(ctx, "ListBackups", vm.ID); err != nil {
		return nil, err
	}
	return b.w.ListBackups(ctx, b.acct, vm.ID)
}

// ListMany lists the backups of many VMs in one call (the assessment's
// batched listing): a VM that does not exist is absent from the result.
func (b backups) ListMany(ctx context.Context, vms []providers.VMRef) (map[string][]inventory.Backup, error) {
	if err := b.pace(ctx, "ListBackups", strings.Join(ids(vms), ",")); err != nil {
		return nil, err
	}
	return b.w.ListBackupsOf(ctx, b.acct, ids(vms))
}

// Restore implements providers.Backups.
func (b backups) Restore(ctx context.Context, bk inventory.Backup, zone string, tags providers.Tags) (providers.DiskRef, error) {
	if err := b.pace(ctx, "RestoreBackup", bk.ID); err != nil {
		return providers.DiskRef{}, err
	}
	info, err := b.w.RestoreBackup(ctx, b.acct, bk.ID, zone, tags)
	if err != nil {
		return providers.DiskRef{}, err
	}
	return info.Ref, b.until(ctx, info.ReadyAt)
}

type helpers struct{ *core }

// Images implements providers.Helpers.
func (h helpers) Images(ctx context.Context) ([]providers.HelperImage, error) {
	if err := h.pace(ctx, "HelperImages", ""); err != nil {
		return nil, err
	}
	return h.w.HelperImages(ctx, h.acct)
}

// Acquire implements providers.Helpers: it waits until the helper reports
// running (its WinRM answers a few minutes later: probe it).
func (h helpers) Acquire(ctx context.Context, zone string, win inventory.WindowsVersion, tags providers.Tags) (providers.VMRef, error) {
	var info world.HelperInfo
	res := zone + " " + win.Release + " " + tagKey(tags)
	err := h.busy(ctx, func() (err error) {
		// The world's find, start and create are calls of their own: each
		// takes its turn.
		info, err = h.w.AcquireHelper(ctx, h.acct, zone, win, tags, func(op string) error { return h.pace(ctx, op, res) })
		return err
	})
	if err != nil {
		return providers.VMRef{}, err
	}
	return info.Ref, h.until(ctx, info.ReadyAt)
}

// FindHelpers returns the account's helpers carrying all tags, in any
// zone. Read-only.
func (h helpers) FindHelpers(ctx context.Context, tags providers.Tags) ([]providers.VMRef, error) {
	if err := h.pace(ctx, "FindHelpers", tagKey(tags)); err != nil {
		return nil, err
	}
	hs, err := h.w.FindHelpers(ctx, h.acct, tags)
	out := make([]providers.VMRef, len(hs))
	for i, x := range hs {
		out[i] = x.Ref
	}
	return out, err
}

// Release implements providers.Helpers.
func (h helpers) Release(ctx context.Context, vm providers.VMRef) error {
	if err := h.pace(ctx, "ReleaseHelper", vm.ID); err != nil {
		return err
	}
	return h.w.ReleaseHelper(ctx, h.acct, vm.ID)
}

// optionKeys are the account options the simulator accepts.
var optionKeys = []string{"account"}

// parseOptions decodes an account's options strictly.
func parseOptions(n *yaml.Node) (Options, error) {
	var o Options
	if n == nil || n.Kind == 0 {
		return o, nil
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return o, fmt.Errorf("options: must be a mapping with keys %s", strings.Join(optionKeys, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "account":
			if v.Kind != yaml.ScalarNode || v.Value == "" {
				return o, fmt.Errorf("options.account: must be a non-empty string")
			}
			o.Account = v.Value
		default:
			return o, fmt.Errorf("options: unknown key %q; valid keys are %s", k.Value, strings.Join(optionKeys, ", "))
		}
	}
	return o, nil
}

// Spec returns the registry entry of a provider over w. Validate checks
// that the account's zones are w's zones and its options known; Open
// scopes a provider to the account's zones (all if none). The world's own
// clock is used, not env.Clock.
func Spec(w *world.World) providers.Spec {
	validate := func(a providers.Account) error {
		if err := providers.CheckZones(a, w.Zones()); err != nil {
			return err
		}
		if len(a.Regions) > 0 {
			return fmt.Errorf("regions: the simulator has no regions; give zones (%s)", strings.Join(w.Zones(), ", "))
		}
		o, err := parseOptions(a.Options)
		if err != nil {
			return err
		}
		if o.Account != "" {
			if accts := w.Accounts(); !slices.Contains(accts, o.Account) {
				return fmt.Errorf("options.account: the world has no account %q; accounts are %s", o.Account, strings.Join(accts, ", "))
			}
		}
		return nil
	}
	return providers.Spec{
		Validate: validate,
		Open: func(_ context.Context, a providers.Account, _ providers.Env) (*providers.Provider, error) {
			if err := validate(a); err != nil {
				return nil, err
			}
			o, _ := parseOptions(a.Options)
			o.Zones = a.Zones
			return New(w, o), nil
		},
	}
}

type preflight struct{ *core }

// Permissions implements providers.Preflight with the world's dry run.
func (p preflight) Permissions(ctx context.Context, _ inventory.VM, acts []providers.Action) ([]providers.Permission, error) {
	if err := p.pace(ctx, "DryRun", ""); err != nil {
		return nil, err
	}
	ok, err := p.w.DryRun(ctx, p.acct, acts)
	if err != nil {
		return nil, err
	}
	out := make([]providers.Permission, len(acts))
	for i, a := range acts {
		out[i] = providers.Permission{Action: a, Allowed: providers.AllowedNo, How: "simulator dry run"}
		if ok[i] {
			out[i].Allowed = providers.AllowedYes
		}
	}
	return out, nil
}

// HelperQuota implements providers.Preflight with the world's helper quota.
func (p preflight) HelperQuota(ctx context.Context) (providers.Quota, error) {
	if err := p.pace(ctx, "HelperQuota", ""); err != nil {
		return providers.Quota{}, err
	}
	limit, inUse, err := p.w.HelperQuota(ctx, p.acct)
	if err != nil {
		return providers.Quota{}, err
	}
	if limit == 0 {
		return providers.Quota{Known: true, Unlimited: true, InUse: inUse, How: "simulator helper quota (none set)"}, nil
	}
	return providers.Quota{Known: true, Limit: limit, InUse: inUse, Room: max(0, limit-inUse), How: "simulator helper quota"}, nil
}
