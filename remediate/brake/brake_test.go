package brake

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
	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
)

// stepClock is a deterministic clock: Sleep advances it at once.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *stepClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if d > 0 {
		c.t = c.t.Add(d)
	}
	return nil
}

func TestBackoffDelay(t *testing.T) {
	one := func() float64 { return 0.999999 }
	zero := func() float64 { return 0 }
	tests := []struct {
		name string
		b    Backoff
		n    int
		hint time.Duration
		want time.Duration // upper bound (rounded) when Rand is ~1
	}{
		{"first", Backoff{Base: time.Second, Max: time.Minute, Rand: one}, 1, 0, time.Second},
		{"third doubles twice", Backoff{Base: time.Second, Max: time.Minute, Rand: one}, 3, 0, 4 * time.Second},
		{"capped", Backoff{Base: time.Second, Max: 10 * time.Second, Rand: one}, 30, 0, 10 * time.Second},
		{"jitter to zero", Backoff{Base: time.Second, Max: time.Minute, Rand: zero}, 5, 0, 0},
		{"retry-after wins", Backoff{Base: time.Second, Max: time.Minute, Rand: zero}, 1, 7 * time.Second, 7 * time.Second},
		{"defaults", Backoff{Rand: one}, 1, 0, time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.b.Delay("vm/step", tc.n, tc.hint)
			if got.Round(time.Millisecond) != tc.want {
				t.Errorf("Delay(%d, %v) = %v, want %v", tc.n, tc.hint, got, tc.want)
			}
		})
	}
	// The keyed draw stays within the cap, is the same for the same key
	// and number, and spreads different keys apart.
	b := Backoff{Base: time.Second, Max: 8 * time.Second}
	seen := map[time.Duration]bool{}
	for i := 0; i < 1000; i++ {
		key := fmt.Sprintf("vm-%d/step", i)
		d := b.Delay(key, 10, 0)
		if d < 0 || d > 8*time.Second {
			t.Fatalf("Delay out of [0, 8s]: %v", d)
		}
		if again := b.Delay(key, 10, 0); again != d {
			t.Fatalf("Delay(%q) gave %v then %v", key, d, again)
		}
		seen[d] = true
	}
	if len(seen) < 990 {
		t.Errorf("1000 keys drew only %d distinct delays", len(seen))
	}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want Outcome
	}{
		{nil, Success},
		{providers.Errorf(providers.ErrUnavailable, "Stop", "vm a", "503"), APIError},
		{fmt.Errorf("wrapped: %w", providers.ErrThrottled), APIError},
		{providers.Errorf(providers.ErrNotFound, "Stop", "vm a", "gone"), Success},
		{errors.New("strategy failed"), Success},
		{guest.ErrUnreachable, Neutral},
		{fmt.Errorf("script: %w", guest.ErrBusy), Neutral},
		{fmt.Errorf("Restart vm a: %w", pace.ErrStale), Neutral},
		{context.Canceled, Neutral},
	}
	for _, tc := range tests {
		if got := Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

func TestBreakerOpensProbesAndCloses(t *testing.T) {
	clk := &stepClock{t: time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)}
	var changes []Change
	var mu sync.Mutex
	b := NewBreaker(BreakerConfig{Consecutive: 3, CoolDown: 30 * time.Second, MaxCoolDown: 100 * time.Second, Clock: clk,
		OnChange: func(c Change) { mu.Lock(); changes = append(changes, c); mu.Unlock() }})
	ctx := context.Background()
	unavail := providers.Errorf(providers.ErrUnavailable, "Start", "vm a", "503")

	for i := 0; i < 3; i++ {
		tk, err := b.Acquire(ctx, "vm-1")
		if err != nil || tk.Probe() {
			t.Fatalf("Acquire %d: probe=%v err=%v", i, tk != nil && tk.Probe(), err)
		}
		st := tk.Done(unavail)
		if want := map[bool]State{true: Open, false: Closed}[i == 2]; st != want {
			t.Fatalf("after %d errors state %v, want %v", i+1, st, want)
		}
	}
	start := clk.Now()
	tk, err := b.Acquire(ctx, "vm-1") // waits out the cool-down, gets the probe
	if err != nil || !tk.Probe() {
		t.Fatalf("want probe, got %v %v", tk, err)
	}
	if waited := clk.Now().Sub(start); waited < 30*time.Second {
		t.Fatalf("probe after %v, want >= 30s", waited)
	}
	if st := tk.Done(unavail); st != Open { // failed probe: cool-down doubles
		t.Fatalf("after failed probe: %v", st)
	}
	start = clk.Now()
	tk, _ = b.Acquire(ctx, "vm-1")
	if waited := clk.Now().Sub(start); waited < 60*time.Second || !tk.Probe() {
		t.Fatalf("second probe after %v (probe %v), want >= 60s", waited, tk.Probe())
	}
	if st := tk.Done(nil); st != Closed {
		t.Fatalf("after good probe: %v", st)
	}
	if got := b.Openings(); got != 2 {
		t.Errorf("Openings = %d, want 2", got)
	}
	tk, _ = b.Acquire(ctx, "vm-1")
	if tk.Probe() {
		t.Errorf("closed breaker handed out a probe")
	}
	tk.Done(nil)
	tk.Done(unavail) // ignored: Done is once
	if b.State() != Closed {
		t.Errorf("second Done counted")
	}
	mu.Lock()
	defer mu.Unlock()
	var seq []State
	for _, c := range changes {
		seq = append(seq, c.To)
	}
	want := []State{Open, HalfOpen, Open, HalfOpen, Closed}
	if fmt.Sprint(seq) != fmt.Sprint(want) {
		t.Errorf("changes %v, want %v", seq, want)
	}
}

func TestBreakerRate(t *testing.T) {
	tests := []struct {
		name     string
		pattern  string // e = API error, o = ok, n = neutral
		open     bool
		minCalls int
	}{
		{"below min calls", "eoeoeoe", false, 10},
		{"rate above threshold", "eoeoeoeoee", true, 10},
		{"rate at threshold", "eoeoeoeoeo", false, 10},
		{"neutral ignored", "ennnnnnnnnnnnnnnno", false, 2},
		{"window slides", "eeeeoooooooooooooooooooooeo", false, 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := NewBreaker(BreakerConfig{Threshold: 0.5, Window: 10, MinCalls: tc.minCalls, Consecutive: 100,
				Clock: &stepClock{t: time.Unix(0, 0)}})
			for _, c := range tc.pattern {
				tk, _ := b.Acquire(context.Background(), "vm-1")
				switch c {
				case 'e':
					tk.Done(providers.ErrThrottled)
				case 'o':
					tk.Done(nil)
				case 'n':
					tk.Done(guest.ErrUnreachable)
				}
				if b.State() != Closed {
					break
				}
			}
			if got := b.State() == Open; got != tc.open {
				t.Errorf("open = %v, want %v", got, tc.open)
			}
		})
	}
}

func TestBreakerOneProbeAtATime(t *testing.T) {
	clk := &stepClock{t: time.Unix(0, 0)}
	b := NewBreaker(BreakerConfig{Consecutive: 1, CoolDown: time.Second, Poll: time.Second, Clock: clk})
	tk, _ := b.Acquire(context.Background(), "vm-1")
	tk.Done(providers.ErrUnavailable)
	probe, _ := b.Acquire(context.Background(), "vm-1")
	if !probe.Probe() {
		t.Fatal("want probe")
	}
	// While the probe is out, another caller waits (and gives up on ctx).
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Acquire(ctx, "vm-1"); !errors.Is(err, context.Canceled) {
		t.Fatalf("second caller during probe: %v, want context.Canceled", err)
	}
	probe.Done(nil)
	if b.State() != Closed {
		t.Fatalf("state %v", b.State())
	}
}

func TestRate(t *testing.T) {
	tests := []struct {
		name     string
		records  string // g = good, b = bad, s = not acted
		min      int
		trips    bool
		tripAtIx int
	}{
		{"below sample", "bbbb", 5, false, -1},
		{"trips at sample", "bbbbb", 5, true, 4},
		{"not acted ignored", "sssssbg", 2, true, 6},
		{"at threshold holds", "bgggg", 5, false, -1},
		{"above threshold", "bggggb", 5, true, 5},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRate(0.2, tc.min)
			at := -1
			for i, c := range tc.records {
				if r.Record(c != 's', c == 'b') {
					if at >= 0 {
						t.Fatalf("tripped twice")
					}
					at = i
				}
			}
			if r.Tripped() != tc.trips || at != tc.tripAtIx {
				t.Errorf("tripped %v at %d, want %v at %d", r.Tripped(), at, tc.trips, tc.tripAtIx)
			}
		})
	}
}

// TestBreakerProbeGoesByKey: on virtual time, the callers waiting out a
// cool-down all look again at its end; the probe goes to the least key
// whatever order their goroutines run in, and once it succeeds the others
// go through.
func TestBreakerProbeGoesByKey(t *testing.T) {
	keys := []string{"vm-07", "vm-03", "vm-11", "vm-01", "vm-05"}
	for run := range 4 {
		order := slices.Concat(keys[run:], keys[:run])
		synctest.Test(t, func(t *testing.T) {
			b := NewBreaker(BreakerConfig{Consecutive: 1, CoolDown: 30 * time.Second, Clock: clock.Real{}}) // virtual time
			tk, _ := b.Acquire(context.Background(), "vm-00")
			tk.Done(providers.Errorf(providers.ErrUnavailable, "Start", "vm a", "503"))
			var mu sync.Mutex
			var probes []string
			var wg sync.WaitGroup
			for _, k := range order {
				wg.Go(func() {
					tk, err := b.Acquire(context.Background(), k)
					if err != nil {
						t.Error(err)
						return
					}
					if tk.Probe() {
						mu.Lock()
						probes = append(probes, k)
						mu.Unlock()
						time.Sleep(time.Second) // the probe's call
					}
					tk.Done(nil)
				})
			}
			wg.Wait()
			if !slices.Equal(probes, []string{"vm-01"}) {
				t.Errorf("callers in order %v: probes went to %v, want vm-01 alone", order, probes)
			}
		})
	}
}

// TestBreakerResultsOfAnInstantByKey: on virtual time, the results of one
// instant count in key order whatever order their goroutines report them
// in: an error, a success and an error (by key) make no run of two errors
// in a row, so the breaker stays closed and every caller is told so.
func TestBreakerResultsOfAnInstantByKey(t *testing.T) {
	unavail := providers.Errorf(providers.ErrUnavailable, "Start", "vm a", "503")
	results := map[string]error{"vm-a": unavail, "vm-b": nil, "vm-c": unavail}
	for _, order := range [][]string{{"vm-a", "vm-b", "vm-c"}, {"vm-a", "vm-c", "vm-b"}, {"vm-c", "vm-a", "vm-b"}, {"vm-b", "vm-c", "vm-a"}} {
		synctest.Test(t, func(t *testing.T) {
			b := NewBreaker(BreakerConfig{Consecutive: 2, Clock: clock.Real{}}) // virtual time
			tickets := map[string]*Ticket{}
			for _, k := range order {
				tickets[k], _ = b.Acquire(context.Background(), k)
			}
			after := map[string]State{}
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, k := range order {
				wg.Go(func() {
					st := tickets[k].Done(results[k])
					mu.Lock()
					after[k] = st
					mu.Unlock()
				})
			}
			wg.Wait()
			want := map[string]State{"vm-a": Closed, "vm-b": Closed, "vm-c": Closed}
			if !maps.Equal(after, want) || b.State() != Closed {
				t.Errorf("results reported in order %v: told %v, breaker %v; want all closed", order, after, b.State())
			}
		})
	}
}
