package simapi

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Name is the provider name the remote world registers under, as the
// in-process one does.
const Name = "sim"

// ClientOptions scope a provider on a remote world.
type ClientOptions struct {
	// Clock waits for asynchronous operations and conflicts that ask for
	// waiting. It must run at the world's scale (Remote.Clock does). nil:
	// NewProvider fetches the world's info and builds a synced clock.
	Clock clock.Clock
	// Zones limits enumeration to these zones (default: all).
	Zones []string
	// HTTPClient overrides the HTTP client (tests). nil: one of its own.
	HTTPClient *http.Client
}

// NewProvider returns a provider with every capability, acting as account
// (default "sim") on the world served at baseURL, with the semantics of
// the in-process provider (package sim): each call passes through the
// world's fault gate and latency; a method that starts an asynchronous
// operation waits, on the clock, until the world reports it done; a
// conflict that only needs waiting is retried after the wait it asks for.
// baseURL must be http:// on loopback. Without opts.Clock it contacts the
// server (10 s at most) to sync one.
func NewProvider(baseURL, account string, opts ClientOptions) (*providers.Provider, error) {
	c, err := newClient(baseURL, opts.HTTPClient)
	if err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, clk, err := c.info(ctx)
		if err != nil {
			return nil, err
		}
		opts.Clock = clk
	}
	return newProvider(c, account, opts.Zones, opts.Clock), nil
}

func newProvider(c *client, account string, zones []string, clk clock.Clock) *providers.Provider {
	if account == "" {
		account = world.DefaultAccount
	}
	k := &core{c: c, acct: account, zones: append([]string(nil), zones...), clk: clk}
	return &providers.Provider{
		Name:       Name,
		Enumerator: enumerator{k},
		Observer:   observer{k},
		Guests:     guests{k},
		Power:      power{k},
		Disks:      disks{k},
		Backups:    backups{k},
		Helpers:    helpers{k},
	}
}

type core struct {
	c     *client
	acct  string
	zones []string
	clk   clock.Clock
}

// call runs control-plane op (wire name) as the provider's account. name
// and res name the call in a transport error, as the world would.
func (k *core) call(ctx context.Context, op, name, res string, q Request, out any) (time.Time, error) {
	return k.c.do(ctx, http.MethodPost, "/v1/accounts/"+url.PathEscape(k.acct)+"/"+op, name, res, q, out)
}

// until waits until the world's clock reads t, given that it read now
// (from the response) : t-now of simulated time on the provider's clock,
// so that an offset between the two clocks does not matter. Without now,
// it waits until the provider's own clock reads t.
func (k *core) until(ctx context.Context, t, now time.Time) error {
	if t.IsZero() {
		return nil
	}
	if !now.IsZero() {
		if d := t.Sub(now); d > 0 {
			return k.clk.Sleep(ctx, d)
		}
		return nil
	}
	return clock.SleepUntil(ctx, k.clk, t)
}

// busy runs f again after the wait a conflict asks for.
func (k *core) busy(ctx context.Context, f func() error) error {
	return providers.RetryWhileBusy(ctx, k.clk, f)
}

func ids(vms []providers.VMRef) []string {
	out := make([]string, len(vms))
	for i, v := range vms {
		out[i] = v.ID
	}
	return out
}

func vmRes(id string) string   { return "vm " + id }
func diskRes(id string) string { return "disk " + id }
func acctRes(a string) string  { return "account " + a }

type enumerator struct{ *core }

// List implements providers.Enumerator. Helpers are left out.
func (e enumerator) List(ctx context.Context) ([]inventory.VM, error) {
	var out []inventory.VM
	_, err := e.call(ctx, "list-vms", "ListVMs", acctRes(e.acct), Request{Zones: e.zones}, &out)
	return out, err
}

type observer struct{ *core }

// Observe implements providers.Observer.
func (o observer) Observe(ctx context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	out := map[string]inventory.Signals{}
	_, err := o.call(ctx, "observe", "Observe", fmt.Sprintf("%d VMs", len(vms)), Request{IDs: ids(vms)}, &out)
	if out == nil {
		out = map[string]inventory.Signals{}
	}
	return out, err
}

type guests struct{ *core }

// GuestEndpoint implements providers.Guests.
func (g guests) GuestEndpoint(ctx context.Context, vm providers.VMRef) (providers.Endpoint, error) {
	var out providers.Endpoint
	_, err := g.call(ctx, "guest-endpoint", "GuestEndpoint", vmRes(vm.ID), Request{VM: vm.ID}, &out)
	return out, err
}

// ListedEndpoint implements endpointcache.Listed: the world lists each VM
// with the private address GuestEndpoint answers.
func (guests) ListedEndpoint(vm inventory.VM) (providers.Endpoint, bool) {
	return providers.ListedPrivateEndpoint(vm)
}

type power struct{ *core }

// Stop implements providers.Power: one batched call, then it waits until
// every VM is stopped.
func (p power) Stop(ctx context.Context, vms []providers.VMRef, force bool) error {
	if len(vms) == 0 {
		return nil
	}
	var pend world.Pending
	now, err := p.call(ctx, "stop", "StopVMs", "vm "+strings.Join(ids(vms), ", "), Request{IDs: ids(vms), Force: force}, &pend)
	if err != nil {
		return err
	}
	return p.until(ctx, pend.Until, now)
}

// Start implements providers.Power: it waits for VMs still stopping, starts
// them in one call and waits until all report running.
func (p power) Start(ctx context.Context, vms []providers.VMRef) error {
	if len(vms) == 0 {
		return nil
	}
	var pend world.Pending
	var now time.Time
	err := p.busy(ctx, func() (err error) {
		pend = world.Pending{}
		now, err = p.call(ctx, "start", "StartVMs", "vm "+strings.Join(ids(vms), ", "), Request{IDs: ids(vms)}, &pend)
		return err
	})
	if err != nil {
		return err
	}
	return p.until(ctx, pend.Until, now)
}

// Restart implements providers.Power.
func (p power) Restart(ctx context.Context, vm providers.VMRef) error {
	var pend world.Pending
	now, err := p.call(ctx, "restart", "RestartVM", vmRes(vm.ID), Request{VM: vm.ID}, &pend)
	if err != nil {
		return err
	}
	return p.until(ctx, pend.Until, now)
}

type disks struct{ *core }

var _ providers.CopyDeleter = disks{}

// Describe implements providers.Disks.
func (d disks) Describe(ctx context.Context, ref providers.DiskRef) (providers.DiskState, error) {
	var info world.DiskInfo
	_, err := d.call(ctx, "describe-disk", "DescribeDisk", diskRes(ref.ID), Request{Disk: ref.ID}, &info)
	return info.DiskState, err
}

// FindDisks implements providers.Disks.
func (d disks) FindDisks(ctx context.Context, tags providers.Tags) ([]providers.DiskState, error) {
	var infos []world.DiskInfo
	if _, err := d.call(ctx, "find-disks", "FindDisks", acctRes(d.acct), Request{Tags: tags}, &infos); err != nil {
		return nil, err
	}
	out := make([]providers.DiskState, len(infos))
	for i, x := range infos {
		out[i] = x.DiskState
	}
	return out, nil
}

// DeleteCopy implements providers.CopyDeleter: it reads the disk, and
// deletes it only if it is a detached copy carrying tags.
func (d disks) DeleteCopy(ctx context.Context, ref providers.DiskRef, tags providers.Tags) error {
	return providers.DeleteCopyWith(ctx, ref, tags, d.Describe, func(ctx context.Context) error {
		return d.busy(ctx, func() error {
			_, err := d.call(ctx, "delete-disk", "DeleteDisk", diskRes(ref.ID), Request{Disk: ref.ID}, nil)
			return err
		})
	})
}

// Snapshot implements providers.Disks: it waits until the snapshot is ready.
func (d disks) Snapshot(ctx context.Context, ref providers.DiskRef, tags providers.Tags) (providers.SnapshotRef, error) {
	var s world.SnapshotInfo
	var now time.Time
	err := d.busy(ctx, func() (err error) {
		s = world.SnapshotInfo{}
		now, err = d.call(ctx, "snapshot", "Snapshot", diskRes(ref.ID), Request{Disk: ref.ID, Tags: tags}, &s)
		return err
	})
	if err != nil {
		return providers.SnapshotRef{}, err
	}
	return s.Ref, d.until(ctx, s.ReadyAt, now)
}

// FindSnapshots implements providers.Disks.
func (d disks) FindSnapshots(ctx context.Context, tags providers.Tags) ([]providers.SnapshotState, error) {
	var infos []world.SnapshotInfo
	if _, err := d.call(ctx, "find-snapshots", "FindSnapshots", acctRes(d.acct), Request{Tags: tags}, &infos); err != nil {
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
	var now time.Time
	err := d.busy(ctx, func() (err error) {
		pend = world.Pending{}
		now, err = d.call(ctx, "detach", "DetachDisk", diskRes(ref.ID), Request{VM: vm.ID, Disk: ref.ID}, &pend)
		return err
	})
	if err != nil {
		return err
	}
	return d.until(ctx, pend.Until, now)
}

// Attach implements providers.Disks.
func (d disks) Attach(ctx context.Context, vm providers.VMRef, ref providers.DiskRef, boot bool) error {
	var pend world.Pending
	var now time.Time
	err := d.busy(ctx, func() (err error) {
		pend = world.Pending{}
		now, err = d.call(ctx, "attach", "AttachDisk", diskRes(ref.ID), Request{VM: vm.ID, Disk: ref.ID, Boot: boot}, &pend)
		return err
	})
	if err != nil {
		return err
	}
	return d.until(ctx, pend.Until, now)
}

// FromSnapshot implements providers.Disks: it waits for the snapshot to be
// ready, then for the disk.
func (d disks) FromSnapshot(ctx context.Context, s providers.SnapshotRef, zone string, tags providers.Tags) (providers.DiskRef, error) {
	var info world.DiskInfo
	var now time.Time
	err := d.busy(ctx, func() (err error) {
		info = world.DiskInfo{}
		now, err = d.call(ctx, "disk-from-snapshot", "DiskFromSnapshot", "snapshot "+s.ID, Request{Snapshot: s.ID, Zone: zone, Tags: tags}, &info)
		return err
	})
	if err != nil {
		return providers.DiskRef{}, err
	}
	return info.Ref, d.until(ctx, info.ReadyAt, now)
}

type backups struct{ *core }

// List implements providers.Backups.
func (b backups) List(ctx context.Context, vm providers.VMRef) ([]inventory.Backup, error) {
	var out []inventory.Backup
	_, err := b.call(ctx, "list-backups", "ListBackups", vmRes(vm.ID), Request{VM: vm.ID}, &out)
	return out, err
}

// Restore implements providers.Backups.
func (b backups) Restore(ctx context.Context, bk inventory.Backup, zone string, tags providers.Tags) (providers.DiskRef, error) {
	var info world.DiskInfo
	now, err := b.call(ctx, "restore-backup", "RestoreBackup", "backup "+bk.ID, Request{Backup: bk.ID, Zone: zone, Tags: tags}, &info)
	if err != nil {
		return providers.DiskRef{}, err
	}
	return info.Ref, b.until(ctx, info.ReadyAt, now)
}

type helpers struct{ *core }

// Images implements providers.Helpers.
func (h helpers) Images(ctx context.Context) ([]providers.HelperImage, error) {
	var out []providers.HelperImage
	_, err := h.call(ctx, "helper-images", "HelperImages", acctRes(h.acct), Request{}, &out)
	return out, err
}

// Acquire implements providers.Helpers: it waits until the helper reports
// running (its WinRM answers a few minutes later: probe it).
func (h helpers) Acquire(ctx context.Context, zone string, win inventory.WindowsVersion, tags providers.Tags) (providers.VMRef, error) {
	var info world.HelperInfo
	var now time.Time
	res := fmt.Sprintf("helper (Windows Server %s in %s)", win.Release, zone)
	err := h.busy(ctx, func() (err error) {
		info = world.HelperInfo{}
		now, err = h.call(ctx, "acquire-helper", "AcquireHelper", res, Request{Zone: zone, Windows: win, Tags: tags}, &info)
		return err
	})
	if err != nil {
		return providers.VMRef{}, err
	}
	return info.Ref, h.until(ctx, info.ReadyAt, now)
}

// FindHelpers returns the account's helpers carrying all tags, in any
// zone. Read-only.
func (h helpers) FindHelpers(ctx context.Context, tags providers.Tags) ([]providers.VMRef, error) {
	var hs []world.HelperInfo
	_, err := h.call(ctx, "find-helpers", "FindHelpers", acctRes(h.acct), Request{Tags: tags}, &hs)
	out := make([]providers.VMRef, len(hs))
	for i, x := range hs {
		out[i] = x.Ref
	}
	return out, err
}

// Release implements providers.Helpers.
func (h helpers) Release(ctx context.Context, vm providers.VMRef) error {
	_, err := h.call(ctx, "release-helper", "ReleaseHelper", vmRes(vm.ID), Request{VM: vm.ID}, nil)
	return err
}
