package coalesce

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// countingObserver answers every VM it is asked about except "missing",
// counting calls.
type countingObserver struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (c *countingObserver) Observe(_ context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	c.mu.Lock()
	c.calls++
	c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	out := map[string]inventory.Signals{}
	for _, v := range vms {
		if v.ID != "missing" {
			out[v.ID] = inventory.Signals{Power: inventory.PowerRunning, Console: v.ID}
		}
	}
	return out, nil
}

func TestObserverMergesAndSplits(t *testing.T) {
	tests := []struct {
		name    string
		callers int
		err     error
	}{
		{name: "merged", callers: 50},
		{name: "error goes to every caller", callers: 20, err: providers.Errorf(providers.ErrThrottled, "Observe", "account a", "429")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			next := &countingObserver{err: tt.err}
			o := NewObserver(next, clock.NewScaled(time.Now(), 100), 0) // 20 ms window
			var wg sync.WaitGroup
			errs := make([]error, tt.callers)
			got := make([]map[string]inventory.Signals, tt.callers)
			for i := range tt.callers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got[i], errs[i] = o.Observe(context.Background(), []providers.VMRef{{ID: fmt.Sprintf("vm-%d", i)}, {ID: "missing"}})
				}()
			}
			wg.Wait()
			if next.calls > 3 {
				t.Errorf("%d callers made %d calls, want them merged", tt.callers, next.calls)
			}
			for i := range tt.callers {
				if tt.err != nil {
					if !errors.Is(errs[i], providers.ErrThrottled) {
						t.Errorf("caller %d: err %v, want the merged call's", i, errs[i])
					}
					continue
				}
				id := fmt.Sprintf("vm-%d", i)
				if errs[i] != nil || len(got[i]) != 1 || got[i][id].Console != id {
					t.Errorf("caller %d got %v, %v: want only its own VM", i, got[i], errs[i])
				}
			}
		})
	}
}

func TestObserverCallerGivesUp(t *testing.T) {
	next := &countingObserver{}
	o := NewObserver(next, clock.NewScaled(time.Now(), 1), time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := o.Observe(ctx, []providers.VMRef{{ID: "vm-1"}}); !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want context.Canceled", err)
	}
}

// recordingObserver records the VMs of each call it gets.
type recordingObserver struct {
	mu    sync.Mutex
	calls [][]string
}

func (r *recordingObserver) Observe(_ context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	var ids []string
	out := map[string]inventory.Signals{}
	for _, v := range vms {
		ids = append(ids, v.Zone+"/"+v.ID)
		out[v.ID] = inventory.Signals{Power: inventory.PowerRunning}
	}
	r.mu.Lock()
	r.calls = append(r.calls, ids)
	r.mu.Unlock()
	return out, nil
}

// TestObserverCanonicalBatches: on virtual time, the merged call names its
// VMs by zone and ID whatever order the callers of an instant ran in, and
// a caller arriving as the window ends opens the next batch.
func TestObserverCanonicalBatches(t *testing.T) {
	refs := []providers.VMRef{{ID: "vm-3", Zone: "b"}, {ID: "vm-1", Zone: "b"}, {ID: "vm-2", Zone: "a"}, {ID: "vm-4", Zone: "a"}}
	want := [][]string{{"a/vm-2", "a/vm-4", "b/vm-1", "b/vm-3"}, {"a/vm-9"}}
	for _, order := range [][]int{{0, 1, 2, 3}, {3, 2, 1, 0}, {2, 0, 3, 1}} {
		synctest.Test(t, func(t *testing.T) {
			next := &recordingObserver{}
			o := NewObserver(next, clock.Real{}, 0) // inside the bubble: virtual time
			var wg sync.WaitGroup
			for _, i := range order {
				wg.Go(func() {
					if _, err := o.Observe(context.Background(), []providers.VMRef{refs[i]}); err != nil {
						t.Error(err)
					}
				})
			}
			wg.Go(func() {
				time.Sleep(DefaultWindow) // as the first batch's window ends
				if _, err := o.Observe(context.Background(), []providers.VMRef{{ID: "vm-9", Zone: "a"}}); err != nil {
					t.Error(err)
				}
			})
			wg.Wait()
			if len(next.calls) != len(want) || !slices.Equal(next.calls[0], want[0]) || !slices.Equal(next.calls[1], want[1]) {
				t.Errorf("callers in order %v: calls %v, want %v", order, next.calls, want)
			}
		})
	}
}

// timedCall is a merged call's VMs and the virtual instant it was made at.
type timedCall struct {
	at  time.Duration // since the test began
	ids []string
}

// TestObserverCanonicalOverflow: on virtual time, when the callers of one
// instant ask about more than MaxBatch VMs, which VMs go in which merged
// call, and when, does not depend on the order the callers ran in: full
// batches are cut at once from the callers ordered by instant and VM, the
// rest waits for the window's end with the callers that came later.
func TestObserverCanonicalOverflow(t *testing.T) {
	const burst = 2*MaxBatch + 50 // callers at the first instant, one VM each
	id := func(i int) string { return fmt.Sprintf("vm-%04d", i) }
	ids := func(from, to int) []string {
		var out []string
		for i := from; i < to; i++ {
			out = append(out, "a/"+id(i))
		}
		return out
	}
	// A caller one second later asks about a VM that sorts first: it
	// joins the remainder, after the burst's callers.
	rest := append([]string{"a/" + id(-1)}, ids(2*MaxBatch, burst)...)
	slices.Sort(rest)
	want := []timedCall{
		{at: clock.Settle, ids: ids(0, MaxBatch)},
		{at: clock.Settle, ids: ids(MaxBatch, 2*MaxBatch)},
		{at: DefaultWindow, ids: rest},
	}
	for _, seed := range []uint64{1, 2, 3, 4} {
		t.Run(fmt.Sprintf("order %d", seed), func(t *testing.T) {
			order := rand.New(rand.NewPCG(seed, 0)).Perm(burst)
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				var mu sync.Mutex
				var got []timedCall
				next := observerFunc(func(vms []providers.VMRef) map[string]inventory.Signals {
					c := timedCall{at: time.Since(start)}
					out := map[string]inventory.Signals{}
					for _, v := range vms {
						c.ids = append(c.ids, v.Zone+"/"+v.ID)
						out[v.ID] = inventory.Signals{Console: v.ID}
					}
					mu.Lock()
					got = append(got, c)
					mu.Unlock()
					return out
				})
				o := NewObserver(next, clock.Real{}, 0) // inside the bubble: virtual time
				var wg sync.WaitGroup
				ask := func(vm string) {
					s, err := o.Observe(context.Background(), []providers.VMRef{{ID: vm, Zone: "a"}})
					if err != nil || s[vm].Console != vm {
						t.Errorf("%s: got %v, %v", vm, s, err)
					}
				}
				for _, i := range order {
					wg.Go(func() { ask(id(i)) })
				}
				wg.Go(func() {
					time.Sleep(time.Second)
					ask(id(-1))
				})
				wg.Wait()
				slices.SortFunc(got, func(a, b timedCall) int {
					return cmp.Or(cmp.Compare(a.at, b.at), slices.Compare(a.ids, b.ids))
				})
				if len(got) != len(want) {
					t.Fatalf("%d calls, want %d", len(got), len(want))
				}
				for i := range want {
					if got[i].at != want[i].at || !slices.Equal(got[i].ids, want[i].ids) {
						t.Errorf("call %d: at %v with %d VMs (%v…), want at %v with %d VMs (%v…)",
							i, got[i].at, len(got[i].ids), got[i].ids[0], want[i].at, len(want[i].ids), want[i].ids[0])
					}
				}
			})
		})
	}
}

// observerFunc is a providers.Observer that answers with a function.
type observerFunc func([]providers.VMRef) map[string]inventory.Signals

func (f observerFunc) Observe(_ context.Context, vms []providers.VMRef) (map[string]inventory.Signals, error) {
	return f(vms), nil
}

// screenObserver is a countingObserver that also reads screens.
type screenObserver struct{ countingObserver }

func (*screenObserver) Screenshot(_ context.Context, vm providers.VMRef) ([]byte, error) {
	return []byte("screen of " + vm.ID), nil
}

// TestWrapKeepsScreens: a wrapped observer reads screens where the one it
// wraps does (the strategies' re-check finds the capability by type
// assertion), and does not where it does not.
func TestWrapKeepsScreens(t *testing.T) {
	tests := []struct {
		name string
		next providers.Observer
		want bool
	}{
		{name: "screens", next: &screenObserver{}, want: true},
		{name: "no screens", next: &countingObserver{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := Wrap(tt.next, clock.Real{}, 0)
			sc, ok := o.(providers.Screens)
			if ok != tt.want {
				t.Fatalf("wrapped observer reads screens: %v, want %v", ok, tt.want)
			}
			if ok {
				img, err := sc.Screenshot(context.Background(), providers.VMRef{ID: "vm-1"})
				if err != nil || string(img) != "screen of vm-1" {
					t.Errorf("screenshot %q, %v", img, err)
				}
			}
		})
	}
}

// manyDisks answers the disks it knows, counting its calls.
type manyDisks struct {
	mu    sync.Mutex
	calls [][]string
	err   error
}

func (m *manyDisks) DescribeMany(_ context.Context, refs []providers.DiskRef) (map[string]providers.DiskState, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ids []string
	out := map[string]providers.DiskState{}
	for _, r := range refs {
		ids = append(ids, r.Zone+"/"+r.ID)
		if r.ID != "gone" {
			out[r.ID] = providers.DiskState{Ref: r, AttachedTo: "vm-" + r.ID}
		}
	}
	m.calls = append(m.calls, ids)
	return out, m.err
}

// TestDisksMerged: concurrent reads of disks go out as one call, sorted by
// zone and ID; each caller gets its own disk, a disk the cloud does not
// know is ErrNotFound, and the merged call's error reaches every caller.
func TestDisksMerged(t *testing.T) {
	refs := []providers.DiskRef{{ID: "d3", Zone: "b"}, {ID: "gone", Zone: "a"}, {ID: "d1", Zone: "a"}}
	tests := []struct {
		name string
		err  error
	}{
		{"answers", nil},
		{"error goes to every caller", providers.Errorf(providers.ErrThrottled, "DescribeMany", "account a", "429")},
	}
	for _, tt := range tests {
		synctest.Test(t, func(t *testing.T) {
			next := &manyDisks{err: tt.err}
			d := NewDisks(next, clock.Real{}, 0) // inside the bubble: virtual time
			var wg sync.WaitGroup
			for _, r := range refs {
				wg.Go(func() {
					s, err := d.Describe(context.Background(), r)
					switch {
					case tt.err != nil:
						if !errors.Is(err, providers.ErrThrottled) {
							t.Errorf("%s: err = %v, want the merged call's", r.ID, err)
						}
					case r.ID == "gone":
						if !errors.Is(err, providers.ErrNotFound) {
							t.Errorf("gone: err = %v, want ErrNotFound", err)
						}
					case err != nil || s.Ref.ID != r.ID || s.AttachedTo != "vm-"+r.ID:
						t.Errorf("%s: %+v, %v", r.ID, s, err)
					}
				})
			}
			wg.Wait()
			if want := [][]string{{"a/d1", "a/gone", "b/d3"}}; fmt.Sprint(next.calls) != fmt.Sprint(want) {
				t.Errorf("%s: calls %v, want %v", tt.name, next.calls, want)
			}
		})
	}
}
