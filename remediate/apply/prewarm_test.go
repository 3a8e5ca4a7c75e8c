package apply

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
)

// idlePool is a step.HelperPool that records ReleaseIdle calls.
type idlePool struct {
	clk clock.Clock

	mu       sync.Mutex
	released []time.Time
	zones    []string
}

func (p *idlePool) Lease(context.Context, string, inventory.WindowsVersion, string, string) (providers.VMRef, error) {
	return providers.VMRef{ID: "helper-1"}, nil
}

func (p *idlePool) Return(context.Context, providers.VMRef, string) error { return nil }

func (p *idlePool) ReleaseIdle(_ context.Context, zone string, _ inventory.WindowsVersion) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.released = append(p.released, p.clk.Now())
	p.zones = append(p.zones, zone)
	return nil
}

func (p *idlePool) calls() []time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Time(nil), p.released...)
}

// TestHelpersReleasedWhenNoVMLeft: a helper group's idle helpers are
// released once the last VM that may lease there has finished (not when
// the first does), while other groups' VMs still run; never with
// KeepHelpers.
func TestHelpersReleasedWhenNoVMLeft(t *testing.T) {
	for _, keep := range []bool{false, true} {
		t.Run(map[bool]string{false: "release", true: "keep-helpers"}[keep], func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newVirtualHarness(t)
				p := fleet{id: "idle", acts: 6, accounts: 2, canary: 1, waveSize: 10, total: 6, perAccount: 6}.build(t)
				// Account a0's VMs (vm00, vm02, vm04) restart in 0, 20 and
				// 40 minutes, a1's in an hour.
				slow := func(vm, name string, n int, facts step.Facts) (step.Facts, error) {
					if name == "restart-1" {
						d := time.Hour
						if i := strings.LastIndex(vm, "/vm"); strings.Contains(vm, "/a0/") {
							k, _ := strconv.Atoi(vm[i+3:])
							d = time.Duration(k) * 10 * time.Minute
						}
						time.Sleep(d)
					}
					return okStep(vm, name, n, facts)
				}
				rr := newFake(policy.RebootRetry, slow, "recheck", "restart-1")
				o := h.opts(p, rr, newFake(policy.HelperMount, nil, "snapshot"))
				o.Helpers, o.KeepHelpers = &releaser{}, keep
				pools := map[string]*idlePool{}
				for a, env := range o.Envs {
					pools[a] = &idlePool{clk: h.clk}
					env.Helpers = pools[a]
				}
				start := h.clk.Now()
				res, err := Run(context.Background(), p, o)
				if err != nil || res.Fixed != 6 {
					t.Fatalf("run: %+v, %v", res, err)
				}
				fast, late := pools["t/a0"].calls(), pools["t/a1"].calls()
				if keep {
					if len(fast)+len(late) != 0 {
						t.Fatalf("KeepHelpers, yet ReleaseIdle was called: %v, %v", fast, late)
					}
					return
				}
				if len(fast) != 1 || len(late) != 1 {
					t.Fatalf("ReleaseIdle calls: account a0 %v, a1 %v; want one each", fast, late)
				}
				if d := fast[0].Sub(start); d < 40*time.Minute || d >= time.Hour {
					t.Errorf("account a0's helpers released %s after the start: want once its last VM ended (40 min), before a1's (1 h)", d)
				}
				if z := pools["t/a0"].zones; z[0] != "is1a" {
					t.Errorf("released zone %q, want the VMs' helper zone is1a", z[0])
				}
				if d := late[0].Sub(start); d < time.Hour {
					t.Errorf("account a1's helpers released %s after the start, before its VMs ended", d)
				}
			})
		})
	}
}

func TestPrewarmFor(t *testing.T) {
	for _, c := range []struct{ demand, acting, slots, want int }{
		{demand: 40, acting: 100, slots: 1000, want: 40},      // all in flight at once
		{demand: 40, acting: 1000, slots: 1000, want: 40},     // still all
		{demand: 400, acting: 4000, slots: 1000, want: 100},   // the group's share of the slots
		{demand: 3, acting: 4000, slots: 1000, want: 1},       // rounded up
		{demand: 4000, acting: 4000, slots: 1000, want: 1000}, // every VM may lease
		{demand: 0, acting: 10, slots: 1, want: 0},
	} {
		if got := prewarmFor(c.demand, c.acting, c.slots); got != c.want {
			t.Errorf("prewarmFor(%d, %d, %d) = %d, want %d", c.demand, c.acting, c.slots, got, c.want)
		}
	}
}
