package helperpool

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

var win = inventory.WindowsVersion{Release: "2019"}

// fakeHelpers is an in-memory providers.Helpers: idempotent by tags, and
// optionally blocking Acquire in one zone until released.
type fakeHelpers struct {
	mu       sync.Mutex
	helpers  map[string]providers.Tags // id -> tags
	zoneOf   map[string]string
	attached map[string]bool // helpers with a foreign disk
	acquires int
	block    map[string]chan struct{} // zone -> closed to let Acquire finish
	failNext error
	loseNext error // returned by the next Acquire after it made its helper (a lost reply)
}

func newFake() *fakeHelpers {
	return &fakeHelpers{helpers: map[string]providers.Tags{}, zoneOf: map[string]string{}, attached: map[string]bool{}, block: map[string]chan struct{}{}}
}

func (f *fakeHelpers) Images(context.Context) ([]providers.HelperImage, error) { return nil, nil }

func (f *fakeHelpers) Acquire(ctx context.Context, zone string, w inventory.WindowsVersion, tags providers.Tags) (providers.VMRef, error) {
	f.mu.Lock()
	ch := f.block[zone]
	f.acquires++
	if err := f.failNext; err != nil {
		f.failNext = nil
		f.mu.Unlock()
		return providers.VMRef{}, err
	}
	f.mu.Unlock()
	if ch != nil {
		select {
		case <-ch:
		case <-ctx.Done():
			return providers.VMRef{}, ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if zone == "nozone" {
		return providers.VMRef{}, providers.Errorf(providers.ErrNotFound, "Acquire", "helper", "no image")
	}
	for id, t := range f.helpers {
		if f.zoneOf[id] == zone && fmt.Sprint(t) == fmt.Sprint(tags) {
			return providers.VMRef{ID: id, Zone: zone}, nil
		}
	}
	id := fmt.Sprintf("helper-%d", len(f.helpers)+1)
	f.helpers[id], f.zoneOf[id] = tags, zone
	if err := f.loseNext; err != nil {
		f.loseNext = nil
		return providers.VMRef{}, err
	}
	return providers.VMRef{ID: id, Zone: zone}, nil
}

func (f *fakeHelpers) Release(_ context.Context, h providers.VMRef) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.attached[h.ID] {
		return providers.Errorf(providers.ErrConflict, "Release", "vm "+h.ID, "disks still attached")
	}
	delete(f.helpers, h.ID)
	return nil
}

func (f *fakeHelpers) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.helpers)
}

// fakeObserver knows the fake's helpers.
type fakeObserver struct{ f *fakeHelpers }

func (o fakeObserver) Observe(_ context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	o.f.mu.Lock()
	defer o.f.mu.Unlock()
	out := map[string]inventory.Signals{}
	for _, v := range vms {
		if _, ok := o.f.helpers[v.ID]; ok {
			out[v.ID] = inventory.Signals{Power: inventory.PowerRunning}
		}
	}
	return out, nil
}

func newPool(t *testing.T, f *fakeHelpers, per int) *Pool {
	t.Helper()
	p, err := New(f, Options{RunID: "run-1", PerHelper: per, Observer: fakeObserver{f}})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestNew(t *testing.T) {
	for _, c := range []struct {
		name string
		h    providers.Helpers
		opts Options
	}{
		{"nil helpers", nil, Options{RunID: "r"}},
		{"no run", newFake(), Options{}},
	} {
		if _, err := New(c.h, c.opts); err == nil {
			t.Errorf("%s: New succeeded", c.name)
		}
	}
	p, err := New(newFake(), Options{RunID: "r"})
	if err != nil || p.opts.PerHelper != DefaultPerHelper {
		t.Errorf("defaults: %v, %v", p, err)
	}
}

func TestLeaseFillsThenGrows(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		per, vms, helpers int
	}{
		{4, 1, 1}, {4, 4, 1}, {4, 5, 2}, {2, 7, 4}, {1, 3, 3},
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("per%d-vms%d", c.per, c.vms), func(t *testing.T) {
			f := newFake()
			p := newPool(t, f, c.per)
			for i := range c.vms {
				if _, err := p.Lease(ctx, "is1a", win, fmt.Sprintf("vm-%d", i), ""); err != nil {
					t.Fatal(err)
				}
			}
			if n := f.count(); n != c.helpers {
				t.Errorf("%d helpers, want %d", n, c.helpers)
			}
		})
	}
}

func TestLeaseIdempotentAndReturn(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	p := newPool(t, f, 1)
	a, err := p.Lease(ctx, "is1a", win, "vm-1", "")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := p.Lease(ctx, "is1a", win, "vm-1", "")
	if a != b || f.count() != 1 {
		t.Fatalf("second lease %v != %v or %d helpers", b, a, f.count())
	}
	// The slot is taken: another VM gets a second helper.
	c, _ := p.Lease(ctx, "is1a", win, "vm-2", "")
	if c.ID == a.ID {
		t.Fatal("full helper leased twice")
	}
	for range 2 {
		if err := p.Return(ctx, a, "vm-1"); err != nil {
			t.Fatal(err)
		}
	}
	// The freed slot is reused.
	d, _ := p.Lease(ctx, "is1a", win, "vm-3", "")
	if d.ID != a.ID || f.count() != 2 {
		t.Errorf("freed slot not reused: %v, %d helpers", d, f.count())
	}
}

func TestHintAdoptedByANewProcess(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	p1 := newPool(t, f, 4)
	h, _ := p1.Lease(ctx, "is1a", win, "vm-1", "")
	// A new process knows only the fact helper_id.
	p2 := newPool(t, f, 4)
	got, err := p2.Lease(ctx, "is1a", win, "vm-1", h.ID)
	if err != nil || got.ID != h.ID {
		t.Fatalf("hint: %v, %v; want %s", got, err, h.ID)
	}
	// More VMs fill the adopted helper, learning its index from Acquire,
	// without a duplicate.
	for i := 2; i <= 4; i++ {
		if g, _ := p2.Lease(ctx, "is1a", win, fmt.Sprintf("vm-%d", i), ""); g.ID != h.ID {
			t.Errorf("vm-%d got %s, want the adopted %s", i, g.ID, h.ID)
		}
	}
	if g, _ := p2.Lease(ctx, "is1a", win, "vm-5", ""); g.ID == h.ID || f.count() != 2 {
		t.Errorf("vm-5 got %s with %d helpers", g.ID, f.count())
	}
	// A hint naming a helper that is gone is ignored.
	p3 := newPool(t, f, 4)
	if g, err := p3.Lease(ctx, "is1a", win, "vm-9", "helper-gone"); err != nil || g.ID == "helper-gone" {
		t.Errorf("gone hint: %v, %v", g, err)
	}
}

func TestConcurrentLeasesShareAHelper(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	p := newPool(t, f, 4)
	var wg sync.WaitGroup
	ids := make([]string, 8)
	for i := range 8 {
		wg.Go(func() {
			h, err := p.Lease(ctx, "is1a", win, fmt.Sprintf("vm-%d", i), "")
			if err != nil {
				t.Error(err)
			}
			ids[i] = h.ID
		})
	}
	wg.Wait()
	if n := f.count(); n != 2 {
		t.Errorf("%d helpers for 8 VMs at 4 each, want 2", n)
	}
	per := map[string]int{}
	for _, id := range ids {
		per[id]++
	}
	for id, n := range per {
		if n != 4 {
			t.Errorf("helper %s serves %d", id, n)
		}
	}
}

func TestZonesDoNotWaitForEachOther(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := newFake()
	release := make(chan struct{})
	f.block["slow"] = release
	p := newPool(t, f, 4)
	done := make(chan error, 1)
	go func() {
		_, err := p.Lease(ctx, "slow", win, "vm-slow", "")
		done <- err
	}()
	// While a helper in zone "slow" is being created, zone "fast" leases.
	if _, err := p.Lease(ctx, "fast", win, "vm-fast", ""); err != nil {
		t.Fatal(err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLeaseErrors(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	p := newPool(t, f, 4)
	if _, err := p.Lease(ctx, "nozone", win, "vm-1", ""); !errors.Is(err, providers.ErrNotFound) {
		t.Errorf("no image: %v", err)
	}
	f.failNext = providers.Errorf(providers.ErrThrottled, "Acquire", "helper", "slow down")
	if _, err := p.Lease(ctx, "is1a", win, "vm-1", ""); !providers.Retryable(err) {
		t.Errorf("throttled: %v", err)
	}
	// Nothing was reserved: the retry succeeds with one helper.
	if _, err := p.Lease(ctx, "is1a", win, "vm-1", ""); err != nil || f.count() != 1 {
		t.Errorf("retry: %v, %d helpers", err, f.count())
	}
	if _, err := p.Lease(ctx, "is1a", win, "", ""); err == nil {
		t.Error("empty VM key accepted")
	}
}

// threeHelpers returns a pool of one disk per helper with three helpers:
// a (is1a, returned), b (is1a, leased by vm-2) and c (is1b, returned).
func threeHelpers(t *testing.T) (f *fakeHelpers, p *Pool, a, b, c providers.VMRef) {
	ctx := context.Background()
	f = newFake()
	p = newPool(t, f, 1)
	a, _ = p.Lease(ctx, "is1a", win, "vm-1", "")
	b, _ = p.Lease(ctx, "is1a", win, "vm-2", "")
	c, _ = p.Lease(ctx, "is1b", win, "vm-3", "")
	_ = p.Return(ctx, a, "vm-1")
	_ = p.Return(ctx, c, "vm-3")
	return f, p, a, b, c
}

func TestReleaseAll(t *testing.T) {
	ctx := context.Background()
	f, p, a, b, c := threeHelpers(t)
	f.attached[c.ID] = true // a foreign disk still attached

	rep, err := p.ReleaseAll(ctx, true)
	if err != nil || len(rep.Released) != 0 || len(rep.Kept) != 3 || f.count() != 3 {
		t.Fatalf("keep: %+v, %v", rep, err)
	}
	rep, err = p.ReleaseAll(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Released) != 1 || rep.Released[0].ID != a.ID {
		t.Errorf("released %v, want only %s", rep.Released, a.ID)
	}
	kept := map[string]bool{}
	for _, k := range rep.Kept {
		kept[k.Helper.ID] = true
	}
	if !kept[b.ID] || !kept[c.ID] || len(kept) != 2 {
		t.Errorf("kept %+v, want %s (leased) and %s (disk attached)", rep.Kept, b.ID, c.ID)
	}
	// Idempotent, and a later release works once the disk is gone.
	f.attached[c.ID] = false
	_ = p.Return(ctx, b, "vm-2")
	rep, err = p.ReleaseAll(ctx, false)
	if err != nil || len(rep.Released) != 2 || f.count() != 0 || len(p.Leases()) != 0 {
		t.Errorf("second release: %+v, %v, %d left", rep, err, f.count())
	}
}

// TestReleaseIdle: a group's idle helpers go while the run goes on; its
// leased ones, and other groups', stay; a later lease makes a new one.
func TestReleaseIdle(t *testing.T) {
	ctx := context.Background()
	f, p, a, b, c := threeHelpers(t)
	if err := p.ReleaseIdle(ctx, "is1a", win); err != nil {
		t.Fatal(err)
	}
	alive := func(ref providers.VMRef) bool {
		f.mu.Lock()
		defer f.mu.Unlock()
		_, ok := f.helpers[ref.ID]
		return ok
	}
	if alive(a) || !alive(b) || !alive(c) {
		t.Fatalf("after ReleaseIdle(is1a): %s alive %v (idle, want gone), %s %v (leased, want kept), %s %v (another zone, want kept)",
			a.ID, alive(a), b.ID, alive(b), c.ID, alive(c))
	}
	if err := p.ReleaseIdle(ctx, "is9z", win); err != nil {
		t.Errorf("a group never used: %v", err)
	}
	d, err := p.Lease(ctx, "is1a", win, "vm-4", "")
	if err != nil || d.ID == a.ID || !alive(d) {
		t.Errorf("a lease after the release got %v (%v), want a new helper", d, err)
	}
	fresh, err := New(f, Options{RunID: "run-1", Fresh: true})
	if err != nil {
		t.Fatal(err)
	}
	e, _ := fresh.Lease(ctx, "is1a", win, "vm-5", "")
	_ = fresh.Return(ctx, e, "vm-5")
	if err := fresh.ReleaseIdle(ctx, "is1a", win); err != nil || !alive(e) {
		t.Errorf("Fresh: ReleaseIdle deleted %s (%v): the baselines' helpers idle until ReleaseAll", e.ID, err)
	}
}

// finderHelpers adds listing by tag to the fake.
type finderHelpers struct{ *fakeHelpers }

func (f finderHelpers) FindHelpers(_ context.Context, tags providers.Tags) ([]providers.VMRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []providers.VMRef
	for id, t := range f.helpers {
		match := true
		for k, v := range tags {
			match = match && t[k] == v
		}
		if match {
			out = append(out, providers.VMRef{ID: id, Zone: f.zoneOf[id]})
		}
	}
	return out, nil
}

// TestReleaseAllSweepsUnknownHelpers: a helper of the run the pool never
// learnt of (an earlier, killed process made it; a create's reply was lost)
// is released when the provider can list helpers by tag; another run's is
// left alone.
func TestReleaseAllSweepsUnknownHelpers(t *testing.T) {
	f := newFake()
	f.helpers["helper-old"], f.zoneOf["helper-old"] = providers.Tags{providers.TagRun: "run-1", providers.TagRole: RoleHelper}, "is1a"
	f.helpers["helper-other"], f.zoneOf["helper-other"] = providers.Tags{providers.TagRun: "run-2", providers.TagRole: RoleHelper}, "is1a"
	for _, finder := range []bool{false, true} {
		var h providers.Helpers = f
		if finder {
			h = finderHelpers{f}
		}
		p, err := New(h, Options{RunID: "run-1"})
		if err != nil {
			t.Fatal(err)
		}
		rep, err := p.ReleaseAll(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		_, old := f.helpers["helper-old"]
		_, other := f.helpers["helper-other"]
		f.mu.Unlock()
		if old == finder || !other || len(rep.Released) != map[bool]int{true: 1, false: 0}[finder] {
			t.Errorf("finder %v: report %+v; run-1's helper left %v, run-2's left %v", finder, rep, old, other)
		}
	}
}

// TestFresh: with Fresh, a helper whose slot was returned is never leased
// again (a new helper per VM, one after another); without it, it is reused.
func TestFresh(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		fresh   bool
		helpers int
	}{{fresh: false, helpers: 1}, {fresh: true, helpers: 3}} {
		t.Run(fmt.Sprintf("fresh=%v", tc.fresh), func(t *testing.T) {
			f := newFake()
			p, err := New(f, Options{RunID: "run-1", PerHelper: 1, Fresh: tc.fresh})
			if err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				vm := fmt.Sprintf("vm-%d", i)
				ref, err := p.Lease(ctx, "is1a", win, vm, "")
				if err != nil {
					t.Fatal(err)
				}
				if err := p.Return(ctx, ref, vm); err != nil {
					t.Fatal(err)
				}
			}
			if n := f.count(); n != tc.helpers {
				t.Errorf("%d helpers for 3 VMs one after another, want %d", n, tc.helpers)
			}
		})
	}
}

// slowHelpers takes five minutes (of the bubble's clock) to make a helper.
type slowHelpers struct{ *fakeHelpers }

func (s slowHelpers) Acquire(ctx context.Context, zone string, w inventory.WindowsVersion, tags providers.Tags) (providers.VMRef, error) {
	time.Sleep(5 * time.Minute)
	return s.fakeHelpers.Acquire(ctx, zone, w, tags)
}

// TestSameInstantLeasesByKey: on virtual time, VMs leasing at one instant
// get their helpers in order of VM key, whatever order their goroutines
// run in: the first two keys share the first helper, the next two the
// second.
func TestSameInstantLeasesByKey(t *testing.T) {
	keys := []string{"vm-c", "vm-a", "vm-d", "vm-b"}
	want := map[string]string{"vm-a": "helper-1", "vm-b": "helper-1", "vm-c": "helper-2", "vm-d": "helper-2"}
	for run := range len(keys) {
		order := slices.Concat(keys[run:], keys[:run])
		synctest.Test(t, func(t *testing.T) {
			f := newFake()
			p, err := New(slowHelpers{f}, Options{RunID: "run-1", PerHelper: 2, Clock: clock.Real{}}) // virtual time
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, k := range order {
				wg.Go(func() {
					h, err := p.Lease(context.Background(), "z1", win, k, "")
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					got[k] = h.ID
					mu.Unlock()
				})
			}
			wg.Wait()
			if !maps.Equal(got, want) {
				t.Errorf("leases in order %v: %v, want %v", order, got, want)
			}
		})
	}
}

// TestReturnSeenFromTheNextInstant: on virtual time, a slot returned at
// the instant a lease is decided is not leased to it (whether the Return's
// goroutine ran before the decision or after), and is leased from the next
// instant on. Here the Return runs first, deterministically: vm-b waits
// for the group's lock while vm-c creates a helper, and vm-c's helper is
// answered only after vm-a returned its slot, at the same instant.
func TestReturnSeenFromTheNextInstant(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newFake()
		p, err := New(f, Options{RunID: "run-1", PerHelper: 1, Clock: clock.Real{}}) // virtual time
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		ha, err := p.Lease(ctx, "z1", win, "vm-a", "")
		if err != nil {
			t.Fatal(err)
		}
		block := make(chan struct{})
		f.mu.Lock()
		f.block["z1"] = block
		f.mu.Unlock()
		got := map[string]string{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		lease := func(k string) {
			h, err := p.Lease(ctx, "z1", win, k, "")
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			got[k] = h.ID
			mu.Unlock()
		}
		wg.Go(func() { lease("vm-c") }) // holds the lock, creating helper 2
		time.Sleep(time.Second)
		wg.Go(func() { lease("vm-b") }) // waits for the lock
		time.Sleep(time.Second)
		synctest.Wait()
		if err := p.Return(ctx, ha, "vm-a"); err != nil {
			t.Fatal(err)
		}
		close(block) // vm-c's helper is made; vm-b's lease is decided now
		wg.Wait()
		time.Sleep(time.Second)
		lease("vm-d") // the next instants: vm-a's slot is free
		want := map[string]string{"vm-c": "helper-2", "vm-b": "helper-3", "vm-d": ha.ID}
		if !maps.Equal(got, want) {
			t.Errorf("leases %v, want %v", got, want)
		}
	})
}

// TestPrewarm: Prewarm makes the helpers that vms VMs will lease, counting
// those the group has, and the leases that follow make none; Fresh pools
// make none ahead.
func TestPrewarm(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name              string
		per, before, vms  int
		fresh             bool
		want, wantAcquire int
	}{
		{name: "none yet", per: 4, vms: 9, want: 3, wantAcquire: 3},
		{name: "one VM", per: 4, vms: 1, want: 1, wantAcquire: 1},
		{name: "some made by leases", per: 2, before: 3, vms: 7, want: 4, wantAcquire: 4},
		{name: "enough already", per: 4, before: 8, vms: 5, want: 2, wantAcquire: 2},
		{name: "no VMs", per: 4, vms: 0},
		{name: "fresh", per: 1, vms: 3, fresh: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			p, err := New(f, Options{RunID: "run-1", PerHelper: c.per, Fresh: c.fresh, Observer: fakeObserver{f}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range c.before {
				if _, err := p.Lease(ctx, "is1a", win, fmt.Sprintf("early-%d", i), ""); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Prewarm(ctx, "is1a", win, c.vms); err != nil {
				t.Fatal(err)
			}
			if n := f.count(); n != c.want || f.acquires != c.wantAcquire {
				t.Fatalf("after Prewarm: %d helpers, %d Acquire calls; want %d, %d", n, f.acquires, c.want, c.wantAcquire)
			}
			if c.fresh {
				return
			}
			for i := range c.vms - c.before {
				if _, err := p.Lease(ctx, "is1a", win, fmt.Sprintf("vm-%d", i), ""); err != nil {
					t.Fatal(err)
				}
			}
			if n := f.count(); n != c.want {
				t.Errorf("after the leases: %d helpers, want the %d made ahead", n, c.want)
			}
		})
	}
}

// TestPrewarmHoldsLeases: a lease while Prewarm's helpers are being made
// waits for them and takes one, rather than making its own; a failed
// Acquire is returned and the others stay in the pool.
func TestPrewarmHoldsLeases(t *testing.T) {
	ctx := context.Background()
	f := newFake()
	p := newPool(t, f, 1)
	release := make(chan struct{})
	f.block["is1a"] = release
	done := make(chan error, 1)
	go func() { done <- p.Prewarm(ctx, "is1a", win, 3) }()
	for func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.acquires < 3 }() {
		time.Sleep(time.Millisecond) // until the three Acquire calls wait
	}
	leased := make(chan providers.VMRef, 1)
	go func() {
		h, err := p.Lease(ctx, "is1a", win, "vm-1", "")
		if err != nil {
			t.Error(err)
		}
		leased <- h
	}()
	time.Sleep(20 * time.Millisecond)
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h := <-leased; h.ID != "helper-1" && h.ID != "helper-2" && h.ID != "helper-3" {
		t.Errorf("the lease got %q, want one of the helpers made ahead", h.ID)
	}
	if n := f.count(); n != 3 {
		t.Errorf("%d helpers, want 3", n)
	}

	f2 := newFake()
	p2 := newPool(t, f2, 1)
	f2.failNext = errors.New("quota exceeded")
	if err := p2.Prewarm(ctx, "is1a", win, 3); err == nil || f2.count() != 2 {
		t.Errorf("Prewarm with one failing Acquire: %v, %d helpers; want the error and 2 helpers", err, f2.count())
	}
	if _, err := p2.Lease(ctx, "is1a", win, "vm-1", ""); err != nil || f2.count() != 2 {
		t.Errorf("lease after a partial Prewarm: %v, %d helpers; want a made helper", err, f2.count())
	}

	// A lost reply: the helper was made; the retry finds it, and the pool
	// knows it (ReleaseAll releases it).
	f3 := newFake()
	p3, err := New(f3, Options{RunID: "run-1", PerHelper: 1, Clock: clock.NewScaled(time.Now(), 1e6)})
	if err != nil {
		t.Fatal(err)
	}
	f3.loseNext = providers.Errorf(providers.ErrUnavailable, "Acquire", "helper", "connection reset (the request may have been applied)")
	if err := p3.Prewarm(ctx, "is1a", win, 1); err != nil || f3.count() != 1 || f3.acquires != 2 {
		t.Fatalf("Prewarm after a lost reply: %v, %d helpers, %d Acquire calls; want nil, 1, 2", err, f3.count(), f3.acquires)
	}
	if _, err := p3.ReleaseAll(ctx, false); err != nil || f3.count() != 0 {
		t.Errorf("ReleaseAll: %v, %d helpers left; want none", err, f3.count())
	}
}
