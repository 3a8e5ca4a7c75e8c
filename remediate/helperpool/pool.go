// Package helperpool leases slots on helper VMs to the helper-mount
// strategy: it implements step.HelperPool over a provider's
// providers.Helpers.
//
// Helpers are grouped by zone and Windows release. Each helper serves up to
// Options.PerHelper disks at once and is reused across VMs; a group grows by
// one helper when every helper in it is full. Every helper the pool creates
// carries the tags {providers.TagRun: run ID, providers.TagRole: "helper",
// TagPoolIndex: "<zone>/<release>/<n>"}, so that Helpers.Acquire, which is
// idempotent by tags, finds helper n of a group again instead of creating
// another one (also in a later process of the same run).
//
// Concurrency: a Pool is safe for concurrent use. Leases in one zone ×
// release group are serialised (so that two VMs leasing at once never make
// two helpers when one has room, and the second waits for a helper the
// first is creating); different groups never wait for each other. VMs
// leasing at one instant of the clock take their turns in order of VM
// key, not in the order their goroutines ran (internal/ctxlock.Ordered),
// and a slot returned at an instant is free for the leases decided from
// the next instant on (a lease decided at the very instant of a Return
// would see it or not by goroutine order), so which VM gets which helper
// replays exactly on virtual time.
//
// The pool holds no secret and logs nothing.
package helperpool

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/ctxlock"
	"github.com/fixfleet/fixfleet/internal/retry"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// TagPoolIndex is the tag key that numbers the helpers of one zone ×
// release group: "<zone>/<release>/<n>", n from 0.
const TagPoolIndex = "fixfleet-pool-index"

// RoleHelper is the providers.TagRole value of helpers.
const RoleHelper = "helper"

// DefaultPerHelper is how many disks one helper serves at once by default.
const DefaultPerHelper = 4

// Options configure a Pool.
type Options struct {
	// RunID tags every helper (providers.TagRun). Required.
	RunID string
	// PerHelper is the number of disks one helper serves at once
	// (default DefaultPerHelper).
	PerHelper int
	// Fresh gives every VM a helper of its own, tagged with the VM's key
	// and created without waiting for other VMs' (PerHelper is then 1):
	// the shape of per-VM repair tools (a baseline of the incident
	// benchmark), not a way to repair. A helper whose slot was returned
	// is never leased again; it idles until ReleaseAll.
	Fresh bool
	// Observer, when set, is used to check that a hint helper (a helper ID
	// from an earlier process's facts) still exists before it is adopted.
	// Without it a hint is adopted as given.
	Observer providers.Observer
	// Clock orders leases of one instant (default clock.Real).
	Clock clock.Clock
}

// Pool implements step.HelperPool. Use New.
type Pool struct {
	helpers providers.Helpers
	opts    Options

	mu     sync.Mutex
	groups map[string]*group // by groupKey
	leases map[string]*entry // by vmKey
}

var _ step.HelperPool = (*Pool)(nil)

// group is the helpers of one zone × release. lock serialises leasing in
// the group: it is held while a helper is created (internal/ctxlock: a
// waiter gives up with its context and does not stall virtual time, and
// waiters of one instant take it in order of VM key).
// Pool.mu guards the fields.
type group struct {
	lock    *ctxlock.Ordered
	zone    string
	win     inventory.WindowsVersion
	entries []*entry
}

// entry is one helper and the VMs holding a slot on it.
type entry struct {
	ref    providers.VMRef
	index  int // pool index, -1 when adopted from a hint and not yet known
	leases map[string]bool
	// returned are slots given back, by VM key, with the instant: each
	// still counts as taken for a lease decided at that instant (see
	// busyLocked).
	returned map[string]time.Time
}

func newEntry(ref providers.VMRef, index int) *entry {
	return &entry{ref: ref, index: index, leases: map[string]bool{}, returned: map[string]time.Time{}}
}

// busyLocked counts e's slots taken for a lease decided at now: those
// leased, and those returned at now. Slots returned earlier are forgotten.
// Caller holds p.mu.
func (e *entry) busyLocked(now time.Time) int {
	for k, at := range e.returned {
		if at.Before(now) {
			delete(e.returned, k)
		}
	}
	return len(e.leases) + len(e.returned)
}

// New returns a pool over h. It fails when RunID is empty or h is nil.
func New(h providers.Helpers, opts Options) (*Pool, error) {
	if h == nil {
		return nil, fmt.Errorf("helper pool: the provider has no helpers capability: %w", providers.ErrUnsupported)
	}
	if strings.TrimSpace(opts.RunID) == "" {
		return nil, errors.New("helper pool: a run ID is required")
	}
	if opts.PerHelper <= 0 {
		opts.PerHelper = DefaultPerHelper
	}
	if opts.Clock == nil {
		opts.Clock = clock.Real{}
	}
	return &Pool{helpers: h, opts: opts, groups: map[string]*group{}, leases: map[string]*entry{}}, nil
}

func groupKey(zone string, win inventory.WindowsVersion) string { return zone + "/" + win.Release }

func (p *Pool) group(zone string, win inventory.WindowsVersion) *group {
	p.mu.Lock()
	defer p.mu.Unlock()
	k := groupKey(zone, win)
	g := p.groups[k]
	if g == nil {
		g = &group{lock: ctxlock.NewOrdered(p.opts.Clock), zone: zone, win: win}
		p.groups[k] = g
	}
	return g
}

// Lease implements step.HelperPool. It returns a running helper of release
// win in zone with a slot reserved for vmKey:
//   - the helper vmKey already leases, if any (idempotent per vmKey);
//   - else the helper named by hint (an earlier process's lease: the VM's
//     disk may be attached to it), adopted even when it is full;
//   - else the first helper of the group with a free slot;
//   - else a new helper (Helpers.Acquire with the next pool index, which
//     finds an earlier process's helper of that index instead of creating
//     one when it exists).
//
// Errors: providers.ErrNotFound when the zone has no image of the release;
// retryable provider errors as Helpers.Acquire returns them (nothing is
// reserved then, so calling again is safe).
func (p *Pool) Lease(ctx context.Context, zone string, win inventory.WindowsVersion, vmKey, hint string) (providers.VMRef, error) {
	if vmKey == "" {
		return providers.VMRef{}, errors.New("helper pool: empty VM key")
	}
	g := p.group(zone, win)
	if p.opts.Fresh {
		return p.leaseFresh(ctx, g, vmKey)
	}
	if err := g.lock.Lock(ctx, vmKey); err != nil {
		return providers.VMRef{}, err
	}
	defer g.lock.Unlock()

	p.mu.Lock()
	if e := p.leases[vmKey]; e != nil {
		p.mu.Unlock()
		return e.ref, nil
	}
	if hint != "" {
		if e := p.findLocked(g, hint); e != nil {
			p.takeLocked(e, vmKey)
			p.mu.Unlock()
			return e.ref, nil
		}
	}
	p.mu.Unlock()

	if hint != "" {
		ok, err := p.exists(ctx, zone, hint)
		if err != nil {
			return providers.VMRef{}, err
		}
		if ok {
			p.mu.Lock()
			e := p.findLocked(g, hint)
			if e == nil {
				e = newEntry(providers.VMRef{ID: hint, Zone: zone}, -1)
				g.entries = append(g.entries, e)
			}
			p.takeLocked(e, vmKey)
			p.mu.Unlock()
			return e.ref, nil
		}
	}

	p.mu.Lock()
	now := p.opts.Clock.Now()
	for _, e := range g.entries {
		if e.busyLocked(now) < p.opts.PerHelper {
			p.takeLocked(e, vmKey)
			p.mu.Unlock()
			return e.ref, nil
		}
	}
	p.mu.Unlock()

	// Every known helper is full: acquire the next index. Acquire may hand
	// back a helper this process adopted from a hint without knowing its
	// index (or one an earlier process made): learn it and try the next.
	for idx := 0; ; idx++ {
		p.mu.Lock()
		used := false
		for _, e := range g.entries {
			if e.index == idx {
				used = true
			}
		}
		p.mu.Unlock()
		if used {
			continue
		}
		ref, err := p.helpers.Acquire(ctx, zone, win, p.tags(zone, win, idx))
		if err != nil {
			return providers.VMRef{}, fmt.Errorf("helper pool: helper %d of Windows Server %s in %s: %w", idx, win.Release, zone, err)
		}
		p.mu.Lock()
		e := p.findLocked(g, ref.ID)
		if e == nil {
			e = newEntry(ref, idx)
			g.entries = append(g.entries, e)
		} else {
			e.index, e.ref = idx, ref
		}
		if e.busyLocked(p.opts.Clock.Now()) < p.opts.PerHelper {
			p.takeLocked(e, vmKey)
			p.mu.Unlock()
			return e.ref, nil
		}
		p.mu.Unlock()
	}
}

// prewarmAttempts bounds Prewarm's calls of Acquire per helper.
const prewarmAttempts = 6

// Prewarm makes ready, ahead of their leases, the helpers that vms VMs of
// release win in zone will lease: the group's first ceil(vms/PerHelper)
// helpers, those not known yet created together (Helpers.Acquire with
// their pool indexes and tags, as Lease would: Acquire finds one an
// earlier process made, and a later process finds these). It holds the
// group's lease lock meanwhile, so that a lease waits for them instead of
// making another. It changes nothing on any VM, and does nothing with
// Options.Fresh (each VM's helper is its own) or vms <= 0. A retryable
// Acquire error is retried (prewarmAttempts calls). Helpers it made stay
// in the pool whatever else fails; it returns the Acquire errors joined
// (Lease makes a missing helper on demand) or ctx's error.
func (p *Pool) Prewarm(ctx context.Context, zone string, win inventory.WindowsVersion, vms int) error {
	if p.opts.Fresh || vms <= 0 {
		return nil
	}
	g := p.group(zone, win)
	// The empty key takes the lock before the leases of its instant.
	if err := g.lock.Lock(ctx, ""); err != nil {
		return err
	}
	defer g.lock.Unlock()
	want := (vms + p.opts.PerHelper - 1) / p.opts.PerHelper
	p.mu.Lock()
	used := map[int]bool{}
	for _, e := range g.entries {
		used[e.index] = true
	}
	var idxs []int
	for idx := 0; len(g.entries)+len(idxs) < want; idx++ {
		if !used[idx] {
			idxs = append(idxs, idx)
		}
	}
	p.mu.Unlock()
	refs := make([]providers.VMRef, len(idxs))
	errs := make([]error, len(idxs))
	var wg sync.WaitGroup
	for i, idx := range idxs {
		wg.Go(func() {
			// Acquire is idempotent by tags: a retry after a lost reply
			// finds the helper the first call made, which would otherwise
			// exist without the pool knowing it.
			key := "prewarm/" + zone + "/" + win.Release + "/" + strconv.Itoa(idx)
			errs[i] = retry.Do(ctx, p.opts.Clock, retry.Policy{Attempts: prewarmAttempts, Key: key}, func() (err error) {
				refs[i], err = p.helpers.Acquire(ctx, zone, win, p.tags(zone, win, idx))
				return err
			})
			if errs[i] != nil {
				errs[i] = fmt.Errorf("helper pool: helper %d of Windows Server %s in %s: %w", idx, win.Release, zone, errs[i])
			}
		})
	}
	wg.Wait()
	// In index order, whatever order the helpers came up in: the order in
	// which leases find free slots.
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, idx := range idxs {
		if errs[i] != nil {
			continue
		}
		if e := p.findLocked(g, refs[i].ID); e != nil {
			e.index, e.ref = idx, refs[i]
			continue
		}
		g.entries = append(g.entries, newEntry(refs[i], idx))
	}
	return errors.Join(errs...)
}

// leaseFresh is Lease with Options.Fresh: a helper of vmKey's own, tagged
// with it (so that Acquire finds it again after a crash), created without
// waiting for other VMs' helpers.
func (p *Pool) leaseFresh(ctx context.Context, g *group, vmKey string) (providers.VMRef, error) {
	p.mu.Lock()
	if e := p.leases[vmKey]; e != nil {
		p.mu.Unlock()
		return e.ref, nil
	}
	p.mu.Unlock()
	tags := p.tags(g.zone, g.win, 0)
	tags[TagPoolIndex] = g.zone + "/" + g.win.Release + "/vm:" + vmKey
	ref, err := p.helpers.Acquire(ctx, g.zone, g.win, tags)
	if err != nil {
		return providers.VMRef{}, fmt.Errorf("helper pool: a helper of Windows Server %s in %s for %s: %w", g.win.Release, g.zone, vmKey, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.findLocked(g, ref.ID)
	if e == nil {
		e = newEntry(ref, -1)
		g.entries = append(g.entries, e)
	}
	p.takeLocked(e, vmKey)
	return e.ref, nil
}

// tags are the tags of helper idx of a group.
func (p *Pool) tags(zone string, win inventory.WindowsVersion, idx int) providers.Tags {
	return providers.Tags{
		providers.TagRun:  p.opts.RunID,
		providers.TagRole: RoleHelper,
		TagPoolIndex:      zone + "/" + win.Release + "/" + strconv.Itoa(idx),
	}
}

// exists reports whether helper id still exists (true without an
// Observer).
func (p *Pool) exists(ctx context.Context, zone, id string) (bool, error) {
	if p.opts.Observer == nil {
		return true, nil
	}
	m, err := p.opts.Observer.Observe(ctx, []providers.VMRef{{ID: id, Zone: zone}})
	if err != nil {
		return false, fmt.Errorf("helper pool: checking helper %s: %w", id, err)
	}
	_, ok := m[id]
	return ok, nil
}

// findLocked returns the entry of helper id in g. Caller holds p.mu.
func (p *Pool) findLocked(g *group, id string) *entry {
	for _, e := range g.entries {
		if e.ref.ID == id {
			return e
		}
	}
	return nil
}

// takeLocked reserves a slot of e for vmKey (taking back its own slot if
// vmKey returned one to e at this instant). Caller holds p.mu.
func (p *Pool) takeLocked(e *entry, vmKey string) {
	delete(e.returned, vmKey)
	e.leases[vmKey] = true
	p.leases[vmKey] = e
}

// Return implements step.HelperPool: it frees vmKey's slot, for the
// leases decided from the next instant of the clock on (a lease decided
// at this very instant still finds it taken, whichever of the two
// goroutines ran first). Idempotent: returning a slot not held (or on a
// helper the pool does not know) is fine. It never touches the cloud.
func (p *Pool) Return(_ context.Context, helper providers.VMRef, vmKey string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e := p.leases[vmKey]; e != nil && (helper.ID == "" || e.ref.ID == helper.ID) {
		delete(e.leases, vmKey)
		delete(p.leases, vmKey)
		e.returned[vmKey] = p.opts.Clock.Now()
	}
	return nil
}

// Lease is a helper and the VM keys holding a slot on it.
type Lease struct {
	Helper providers.VMRef `json:"helper"`
	VMs    []string        `json:"vms"`
}

// Leases lists the pool's helpers, busiest first, with their leases.
func (p *Pool) Leases() []Lease {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Lease
	for _, g := range p.groups {
		for _, e := range g.entries {
			l := Lease{Helper: e.ref, VMs: make([]string, 0, len(e.leases))}
			for k := range e.leases {
				l.VMs = append(l.VMs, k)
			}
			sort.Strings(l.VMs)
			out = append(out, l)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if len(out[i].VMs) != len(out[j].VMs) {
			return len(out[i].VMs) > len(out[j].VMs)
		}
		return out[i].Helper.ID < out[j].Helper.ID
	})
	return out
}

// Kept is a helper ReleaseAll left in place, and why.
type Kept struct {
	Helper providers.VMRef `json:"helper"`
	Reason string          `json:"reason"`
}

// Report says what ReleaseAll did.
type Report struct {
	Released []providers.VMRef `json:"released,omitempty"`
	Kept     []Kept            `json:"kept,omitempty"`
}

// ReleaseAll ends the pool's part in a run. With keep set it deletes
// nothing and lists every helper as kept. Otherwise it deletes every idle
// helper (no slot leased) with Helpers.Release, and keeps, with the reason:
// helpers still leased by a VM, and helpers the cloud refuses to delete
// (ErrConflict: a disk that is not the helper's own is still attached —
// a person must look at it). Released helpers are forgotten; kept ones
// stay in the pool. Then, with a provider that lists helpers by tag, it
// releases the run's helpers the pool does not know (see sweep).
// Idempotent. The error joins the failures other than
// conflicts (e.g. a control-plane outage): call again later.
func (p *Pool) ReleaseAll(ctx context.Context, keep bool) (Report, error) {
	var rep Report
	p.mu.Lock()
	keys := make([]string, 0, len(p.groups))
	for k := range p.groups {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	groups := make([]*group, len(keys))
	for i, k := range keys {
		groups[i] = p.groups[k]
	}
	p.mu.Unlock()

	var errs []error
	for _, g := range groups {
		errs = append(errs, p.releaseGroup(ctx, g, keep, &rep))
	}
	if !keep {
		errs = append(errs, p.sweep(ctx, &rep))
	}
	return rep, errors.Join(errs...)
}

// ReleaseIdle deletes the idle helpers (no slot leased) of release win in
// zone, as ReleaseAll does for every group, while the run goes on: the
// caller knows that no VM will lease there again (a later Lease makes a
// new helper, as for a group never used). Helpers still leased, and those
// the cloud refuses to delete, stay. Idempotent;
// nothing happens with Options.Fresh (the baselines' helpers idle until
// ReleaseAll) or for a group the pool never made. What stays is for
// ReleaseAll to report.
func (p *Pool) ReleaseIdle(ctx context.Context, zone string, win inventory.WindowsVersion) error {
	if p.opts.Fresh {
		return nil
	}
	p.mu.Lock()
	g := p.groups[groupKey(zone, win)]
	p.mu.Unlock()
	if g == nil {
		return nil
	}
	return p.releaseGroup(ctx, g, false, &Report{})
}

// releaseGroup deletes g's idle helpers (with keep, none: each is listed as
// kept), adding to rep what it released and kept, and returns the errors
// other than conflicts.
func (p *Pool) releaseGroup(ctx context.Context, g *group, keep bool, rep *Report) error {
	// Holding the group's lease lock: no helper of the group is leased
	// while it is being deleted.
	if err := g.lock.Lock(ctx, ""); err != nil {
		return fmt.Errorf("releasing the helpers of zone %s, Windows %s: %w", g.zone, g.win.Release, err)
	}
	defer g.lock.Unlock()
	var idle []*entry
	p.mu.Lock()
	for _, e := range g.entries {
		switch {
		case keep:
			rep.Kept = append(rep.Kept, Kept{Helper: e.ref, Reason: "kept on request"})
		case len(e.leases) > 0:
			vms := make([]string, 0, len(e.leases))
			for v := range e.leases {
				vms = append(vms, v)
			}
			sort.Strings(vms)
			rep.Kept = append(rep.Kept, Kept{Helper: e.ref, Reason: "still leased by " + strings.Join(vms, ", ")})
		default:
			idle = append(idle, e)
		}
	}
	p.mu.Unlock()
	var errs []error
	for _, e := range idle {
		err := p.helpers.Release(ctx, e.ref)
		switch {
		case err == nil:
			rep.Released = append(rep.Released, e.ref)
			p.forget(g, e)
		case errors.Is(err, providers.ErrConflict):
			rep.Kept = append(rep.Kept, Kept{Helper: e.ref, Reason: "the cloud refused to delete it (a disk that is not its own is still attached): " + err.Error()})
		default:
			errs = append(errs, fmt.Errorf("releasing helper %s: %w", e.ref, err))
		}
	}
	return errors.Join(errs...)
}

// helperFinder is implemented by providers that list helpers by tag.
type helperFinder interface {
	FindHelpers(ctx context.Context, tags providers.Tags) ([]providers.VMRef, error)
}

// sweep releases the run's helpers the pool does not know: one whose
// create succeeded although its reply was lost and that no later Lease
// asked for again, or one an earlier, killed process of the run made. Only
// with a provider that can list helpers by tag; one the cloud refuses to
// delete is kept, with the reason.
func (p *Pool) sweep(ctx context.Context, rep *Report) error {
	f, ok := p.helpers.(helperFinder)
	if !ok {
		return nil
	}
	refs, err := f.FindHelpers(ctx, providers.Tags{providers.TagRun: p.opts.RunID, providers.TagRole: RoleHelper})
	if err != nil {
		return fmt.Errorf("listing the run's helpers: %w", err)
	}
	known := map[string]bool{}
	p.mu.Lock()
	for _, g := range p.groups {
		for _, e := range g.entries {
			known[e.ref.ID] = true
		}
	}
	p.mu.Unlock()
	var errs []error
	for _, ref := range refs {
		if known[ref.ID] {
			continue
		}
		err := p.helpers.Release(ctx, ref)
		switch {
		case err == nil:
			rep.Released = append(rep.Released, ref)
		case errors.Is(err, providers.ErrConflict):
			rep.Kept = append(rep.Kept, Kept{Helper: ref, Reason: "a helper of this run the pool did not know; the cloud refused to delete it (a disk that is not its own is still attached): " + err.Error()})
		default:
			errs = append(errs, fmt.Errorf("releasing helper %s: %w", ref, err))
		}
	}
	return errors.Join(errs...)
}

// forget drops e from g. Caller holds g.lock.
func (p *Pool) forget(g *group, e *entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range g.entries {
		if x == e {
			g.entries = append(g.entries[:i:i], g.entries[i+1:]...)
			return
		}
	}
}
