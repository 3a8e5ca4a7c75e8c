package simapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/simapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

var (
	ctx     = context.Background()
	t0      = world.DefaultOrigin
	win2019 = inventory.WindowsVersion{Release: "2019"}
	inc     = inventory.BuiltinIncidents()[inventory.CrowdStrike20240719]
)

func vmSpec(n string, power inventory.PowerState) world.VMSpec {
	return world.VMSpec{
		ID: "vm-" + n, Zone: "is1a", Windows: win2019, Power: power, LastBootAt: t0.Add(-time.Hour),
		PrivateIP: "10.0.0." + n,
		OSDisk: &world.DiskSpec{ID: "disk-" + n, ContentSpec: world.ContentSpec{SizeGB: 40,
			Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "0000000" + n},
			Files:    []world.FileSpec{{Name: "C-00000291-00000000-00000032.sys", Size: 1, ModTime: inc.BadFrom, Header: inc.Header}}}},
		Condition: world.ConditionSpec{WinRM: world.WinRMOpen},
		Backups:   []world.BackupSpec{{ID: "bk-" + n, Kind: "archive", TakenAt: t0.Add(-6 * time.Hour), SizeGB: 40}},
	}
}

// fixture is a world served over httptest, and a provider on it that
// shares the world's manual clock (deterministic waits, no wall time).
type fixture struct {
	w   *world.World
	srv *httptest.Server
	p   *providers.Provider
	r   *simapi.Remote
}

func newFixture(t *testing.T, opts simapi.ServerOptions, vms ...world.VMSpec) *fixture {
	t.Helper()
	clk := world.NewManualClock(t0)
	sc := world.Scenario{
		Version: world.ScenarioVersion, Seed: 1, Incident: inventory.CrowdStrike20240719, Now: t0,
		Zones:       []string{"is1a", "is1b"},
		Images:      []world.ImageSpec{{Zone: "is1a", Release: "2019", ImageID: "img-1", Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "0A62F411"}}},
		GuestAccess: world.GuestAccessSpec{Username: "Administrator", Password: "pw-s3cr3t-value"}, ConsoleAvailable: true,
		Faults: world.DefaultFaults(),
		VMs:    vms,
	}
	w, err := world.Load(sc, clk)
	must(t, err)
	return serve(t, w, clk, opts)
}

func serve(t *testing.T, w *world.World, clk clock.Clock, opts simapi.ServerOptions) *fixture {
	t.Helper()
	srv := httptest.NewServer(simapi.NewServer(w, "127.0.0.1:5986", opts))
	t.Cleanup(srv.Close)
	p, err := simapi.NewProvider(srv.URL, "", simapi.ClientOptions{Clock: clk})
	must(t, err)
	r, err := simapi.Dial(ctx, srv.URL)
	must(t, err)
	t.Cleanup(r.Close)
	return &fixture{w: w, srv: srv, p: p, r: r}
}

func ref(n string) providers.VMRef { return providers.VMRef{ID: "vm-" + n, Zone: "is1a"} }
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
func is(t *testing.T, err, class error) {
	t.Helper()
	if !errors.Is(err, class) {
		t.Fatalf("error %v, want %v", err, class)
	}
}

// post sends a raw control-plane call and returns status, headers and the
// decoded error body (if any).
func post(t *testing.T, url, body string) (int, http.Header, simapi.ErrorBody) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	must(t, err)
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var eb simapi.ErrorBody
	if resp.StatusCode != http.StatusOK {
		must(t, json.Unmarshal(data, &eb))
	}
	return resp.StatusCode, resp.Header, eb
}

// TestErrorClassesOverWire checks each class's status, body and the
// error the provider rebuilds from it.
func TestErrorClassesOverWire(t *testing.T) {
	f := newFixture(t, simapi.ServerOptions{}, vmSpec("1", inventory.PowerStopped))
	acct := f.srv.URL + "/v1/accounts/sim/"
	for _, tc := range []struct {
		name, path, body string
		status           int
		class            string
		contains         string
	}{
		{"not found", "stop", `{"ids":["vm-404"]}`, 404, "not_found", "vm-404"},
		{"conflict", "restart", `{"vm":"vm-1"}`, 409, "conflict", "not running"},
		{"permanent zone", "list-vms", `{"zones":["mars-1"]}`, 400, "permanent", "mars-1"},
		{"unknown field", "stop", `{"idz":["vm-1"]}`, 400, "permanent", "idz"},
		{"unknown op", "reboot-everything", `{}`, 501, "unsupported", "list-vms"},
		{"other account", "restart", `{"vm":"vm-1"}`, 404, "not_found", "vm-1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url := acct + tc.path
			if tc.name == "other account" {
				url = f.srv.URL + "/v1/accounts/acme/" + tc.path
			}
			status, h, eb := post(t, url, tc.body)
			if status != tc.status || eb.Class != tc.class || !strings.Contains(eb.Op+" "+eb.Resource+" "+eb.Message, tc.contains) {
				t.Fatalf("got %d %+v, want %d %s containing %q", status, eb, tc.status, tc.class, tc.contains)
			}
			if h.Get(simapi.NowHeader) == "" {
				t.Fatal("no clock header")
			}
		})
	}
	// The provider's errors read as the in-process provider's do.
	err := f.p.Power.Restart(ctx, ref("1"))
	is(t, err, providers.ErrConflict)
	if want := "RestartVM vm vm-1: conflict: VM is stopped, not running"; err.Error() != want {
		t.Fatalf("error %q, want %q", err, want)
	}
	p, err := simapi.NewProvider(f.srv.URL, "", simapi.ClientOptions{Clock: f.w.Clock(), Zones: []string{"mars-1"}})
	must(t, err)
	_, err = p.Enumerator.List(ctx)
	is(t, err, providers.ErrPermanent)
}

func TestThrottledWithRetryAfter(t *testing.T) {
	f := newFixture(t, simapi.ServerOptions{}, vmSpec("1", inventory.PowerRunning))
	// No latency: an unpaced burst, a millisecond apart (calls of one
	// instant all pass while the bucket holds a token at its start:
	// providers/sim/bucket), empties the bucket.
	must(t, f.r.SetFaults(ctx, world.Faults{Throttle: world.ThrottleSimple}))
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		f.w.Clock().(*world.ManualClock).Advance(time.Millisecond)
		_, err = f.p.Observer.Observe(ctx, []providers.VMRef{ref("1")})
	}
	is(t, err, providers.ErrThrottled)
	if !providers.Retryable(err) || providers.RetryAfter(err) <= 0 {
		t.Fatalf("no retry hint: %v (%v)", err, providers.RetryAfter(err))
	}
	status, h, eb := post(t, f.srv.URL+"/v1/accounts/sim/observe", `{"ids":["vm-1"]}`)
	if status != http.StatusTooManyRequests || eb.Class != "throttled" || eb.RetryAfterMS <= 0 || h.Get("Retry-After") == "" {
		t.Fatalf("raw throttle: %d %+v %q", status, eb, h.Get("Retry-After"))
	}
	f.w.Clock().(*world.ManualClock).Advance(providers.RetryAfter(err) + time.Second)
	_, err = f.p.Observer.Observe(ctx, []providers.VMRef{ref("1")})
	must(t, err)
	st, err := f.r.Stats(ctx)
	must(t, err)
	if st.World.Throttled < 2 || st.Requests == 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestOutage(t *testing.T) {
	f := newFixture(t, simapi.ServerOptions{}, vmSpec("1", inventory.PowerRunning))
	must(t, f.r.SetOutage(ctx, true))
	_, err := f.p.Enumerator.List(ctx)
	is(t, err, providers.ErrUnavailable)
	if status, _, eb := post(t, f.srv.URL+"/v1/accounts/sim/list-vms", `{}`); status != 503 || eb.Class != "unavailable" {
		t.Fatalf("raw outage: %d %+v", status, eb)
	}
	must(t, f.r.SetOutage(ctx, false))
	_, err = f.p.Enumerator.List(ctx)
	must(t, err)
}

// TestDroppedConnection: a drop is ErrUnavailable; the change is applied
// or not as the fault says; the retry converges.
func TestDroppedConnection(t *testing.T) {
	for _, tc := range []struct {
		name      string
		faults    world.Faults
		simulated bool
		applied   bool
	}{
		{"before, on the wire", world.Faults{Throttle: world.ThrottleOff, DropBeforeRate: 1}, false, false},
		{"after, on the wire", world.Faults{Throttle: world.ThrottleOff, DropAfterRate: 1}, false, true},
		{"before, simulated", world.Faults{Throttle: world.ThrottleOff, DropBeforeRate: 1}, true, false},
		{"after, simulated", world.Faults{Throttle: world.ThrottleOff, DropAfterRate: 1}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, simapi.ServerOptions{SimulatedDrops: tc.simulated}, vmSpec("1", inventory.PowerRunning))
			must(t, f.r.SetFaults(ctx, tc.faults))
			err := f.p.Power.Stop(ctx, []providers.VMRef{ref("1")}, true)
			is(t, err, providers.ErrUnavailable)
			if !strings.Contains(err.Error(), "StopVMs vm vm-1") {
				t.Fatalf("error does not name the call: %v", err)
			}
			st, err := f.r.Stats(ctx)
			must(t, err)
			if wantDropped := int64(1); tc.simulated {
				if st.Dropped != 0 {
					t.Fatalf("simulated drop closed the connection: %+v", st)
				}
			} else if st.Dropped != wantDropped {
				t.Fatalf("dropped %d, want %d", st.Dropped, wantDropped)
			}
			must(t, f.r.SetFaults(ctx, world.DefaultFaults()))
			sigs, err := f.p.Observer.Observe(ctx, []providers.VMRef{ref("1")})
			must(t, err)
			if got := sigs["vm-1"].Power != inventory.PowerRunning; got != tc.applied {
				t.Fatalf("power %s after the drop, applied=%v", sigs["vm-1"].Power, tc.applied)
			}
			must(t, f.p.Power.Stop(ctx, []providers.VMRef{ref("1")}, true)) // the retry converges
			sigs, err = f.p.Observer.Observe(ctx, []providers.VMRef{ref("1")})
			must(t, err)
			if sigs["vm-1"].Power != inventory.PowerStopped {
				t.Fatalf("power %s", sigs["vm-1"].Power)
			}
		})
	}
}

func TestServerGoneIsUnavailable(t *testing.T) {
	f := newFixture(t, simapi.ServerOptions{}, vmSpec("1", inventory.PowerRunning))
	f.srv.Close()
	_, err := f.p.Enumerator.List(ctx)
	is(t, err, providers.ErrUnavailable)
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = f.p.Enumerator.List(cctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

func TestAuditAndFaultsRoundTrip(t *testing.T) {
	clk := world.NewManualClock(t0)
	w, err := world.Generate(world.GenOptions{VMs: 30, Seed: 4, Clock: clk})
	must(t, err)
	f := serve(t, w, clk, simapi.ServerOptions{})
	vms, err := f.p.Enumerator.List(ctx)
	must(t, err)
	// Stop a few VMs without looking first: some are healthy, so the
	// referee has something to count.
	for _, v := range vms[:5] {
		_ = f.p.Power.Stop(ctx, []providers.VMRef{providers.Ref(v)}, true)
	}
	got, err := f.r.Audit(ctx)
	must(t, err)
	want := w.Audit()
	got.At, want.At = time.Time{}, time.Time{}
	gj, _ := json.Marshal(got)
	wj, _ := json.Marshal(want)
	if !bytes.Equal(gj, wj) {
		t.Fatalf("audit over the wire\n%s\nin process\n%s", gj, wj)
	}
	if len(got.Truth) != 30 {
		t.Fatalf("truth of %d VMs", len(got.Truth))
	}

	fl := world.Faults{Throttle: world.ThrottleEC2, Latency: 0.5, ErrorRate: 0.1,
		Outages: []world.Outage{{From: t0.Add(time.Hour), Until: t0.Add(2 * time.Hour)}}}
	must(t, f.r.SetFaults(ctx, fl))
	back, err := f.r.Faults(ctx)
	must(t, err)
	if fmt.Sprint(back) != fmt.Sprint(w.Faults()) || back.Throttle != world.ThrottleEC2 || len(back.Outages) != 1 {
		t.Fatalf("faults %+v, world %+v", back, w.Faults())
	}
	err = f.r.SetFaults(ctx, world.Faults{ErrorRate: 2})
	is(t, err, providers.ErrPermanent)
	if w.Faults().Throttle != world.ThrottleEC2 {
		t.Fatal("an invalid configuration changed the faults")
	}
}

// TestCredentials: the keys and password arrive as secrets and never show
// in the Remote's formatting nor in any error.
func TestCredentials(t *testing.T) {
	clk := world.NewManualClock(t0)
	w, err := world.Generate(world.GenOptions{VMs: 60, Seed: 5, Clock: clk})
	must(t, err)
	f := serve(t, w, clk, simapi.ServerOptions{})
	r := f.r
	wantKeys := w.EscrowedKeys()
	if len(wantKeys) == 0 {
		t.Fatal("the generated world escrows no keys; pick another seed")
	}
	if len(r.Keys) != len(wantKeys) || !r.GuestPassword.Equal(w.GuestPassword()) || r.GuestUser != w.GuestUser() {
		t.Fatalf("credentials: %d keys, want %d; user %q", len(r.Keys), len(wantKeys), r.GuestUser)
	}
	for id, k := range wantKeys {
		if !r.Keys[id].Equal(k) {
			t.Fatalf("key %s differs", id)
		}
	}
	if c := r.GuestCredentials(); c.User != w.GuestUser() || c.Password != w.GuestPassword().Reveal() {
		t.Fatal("guest credentials")
	}
	if r.Info.Gateway != "127.0.0.1:5986" || r.Info.GuestUser != w.GuestUser() || len(r.Info.Zones) == 0 || r.Info.Incident.Name == "" {
		t.Fatalf("info %+v", r.Info)
	}

	secrets := []string{w.GuestPassword().Reveal()}
	for _, k := range wantKeys {
		secrets = append(secrets, k.Reveal())
	}
	var texts []string
	texts = append(texts, fmt.Sprintf("%+v", r), fmt.Sprintf("%#v", r), fmt.Sprintf("%v", r.Keys))
	collect := func(err error) {
		if err != nil {
			texts = append(texts, err.Error(), fmt.Sprintf("%+v", err))
		}
	}
	p := f.p
	collect(p.Power.Stop(ctx, []providers.VMRef{{ID: "vm-nope"}}, false))
	collect(p.Power.Restart(ctx, providers.VMRef{ID: "vm-nope"}))
	_, err = p.Disks.Describe(ctx, providers.DiskRef{ID: "disk-nope"})
	collect(err)
	collect(r.SetFaults(ctx, world.Faults{ErrorRate: -1}))
	must(t, r.SetOutage(ctx, true))
	_, err = p.Enumerator.List(ctx)
	collect(err)
	must(t, r.SetOutage(ctx, false))
	must(t, r.SetFaults(ctx, world.Faults{Throttle: world.ThrottleOff, DropAfterRate: 1}))
	_, err = p.Enumerator.List(ctx)
	collect(err)
	must(t, r.SetFaults(ctx, world.Faults{Throttle: world.ThrottleSimple}))
	for range 50 {
		_, err = p.Helpers.Images(ctx)
		collect(err)
	}
	if len(texts) < 10 {
		t.Fatalf("only %d texts collected", len(texts))
	}
	for _, txt := range texts {
		for _, s := range secrets {
			if strings.Contains(txt, s) {
				t.Fatalf("a secret appears in %q", txt)
			}
		}
	}
}

func TestCredentialsLoopbackOnly(t *testing.T) {
	clk := world.NewManualClock(t0)
	w, err := world.Generate(world.GenOptions{VMs: 5, Seed: 6, Clock: clk})
	must(t, err)
	h := simapi.NewServer(w, "", simapi.ServerOptions{})
	req := httptest.NewRequest(http.MethodGet, "/v1/credentials", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusBadRequest || strings.Contains(rec.Body.String(), w.GuestPassword().Reveal()) {
		t.Fatalf("non-loopback credentials: %d", rec.Code)
	}
}

func TestLoopbackOnly(t *testing.T) {
	clk := world.NewManualClock(t0)
	w, err := world.Generate(world.GenOptions{VMs: 5, Seed: 6, Clock: clk})
	must(t, err)
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:8780", ":0", "nonsense"} {
		if s, err := simapi.Start(w, "", addr, simapi.ServerOptions{}); err == nil {
			s.Close()
			t.Fatalf("Start(%q) accepted", addr)
		}
	}
	for _, u := range []string{"http://192.0.2.1:8780", "https://127.0.0.1:8780", "127.0.0.1:8780", "http://127.0.0.1:8780/x"} {
		if _, err := simapi.NewProvider(u, "", simapi.ClientOptions{Clock: clk}); err == nil {
			t.Fatalf("NewProvider(%q) accepted", u)
		}
	}
	s, err := simapi.Start(w, "", "127.0.0.1:0", simapi.ServerOptions{})
	must(t, err)
	r, err := simapi.Dial(ctx, s.URL())
	must(t, err)
	if len(r.Info.Accounts) != 1 || r.Info.Accounts[0] != world.DefaultAccount {
		t.Fatalf("accounts %v", r.Info.Accounts)
	}
	must(t, s.Close())
	must(t, s.Close())
	if _, err := simapi.Dial(ctx, s.URL()); !errors.Is(err, providers.ErrUnavailable) {
		t.Fatalf("dial a closed server: %v", err)
	}
}

// TestScaledClockSync runs the world on a fast scaled clock: the dialled
// clock reads the world's time within a few simulated minutes, and a
// provider that synced its own clock waits long enough for the world to
// report what it waited for.
func TestScaledClockSync(t *testing.T) {
	const scale = 2000
	wclk := clock.NewScaled(t0, scale)
	w, err := world.Generate(world.GenOptions{VMs: 40, Seed: 7, Clock: wclk,
		Faults: &world.Faults{Throttle: world.ThrottleOff, Latency: 1}})
	must(t, err)
	srv := httptest.NewServer(simapi.NewServer(w, "", simapi.ServerOptions{}))
	t.Cleanup(srv.Close)
	r, err := simapi.Dial(ctx, srv.URL)
	must(t, err)
	if r.Info.Scale != scale || r.Clock.Factor() != scale {
		t.Fatalf("scale %v / %v", r.Info.Scale, r.Clock.Factor())
	}
	if d := r.Clock.Now().Sub(wclk.Now()).Abs(); d > 5*time.Minute {
		t.Fatalf("clocks differ by %v of simulated time", d)
	}
	p, err := simapi.NewProvider(srv.URL, "", simapi.ClientOptions{}) // syncs its own clock
	must(t, err)
	vms, err := p.Enumerator.List(ctx)
	must(t, err)
	var running, stopped []providers.VMRef
	for _, v := range vms {
		switch v.Power {
		case inventory.PowerRunning:
			running = append(running, providers.Ref(v))
		case inventory.PowerStopped:
			stopped = append(stopped, providers.Ref(v))
		}
	}
	if len(running) == 0 {
		t.Fatal("no running VM")
	}
	must(t, p.Power.Stop(ctx, running[:1], true))
	sigs, err := p.Observer.Observe(ctx, running[:1])
	must(t, err)
	if sigs[running[0].ID].Power != inventory.PowerStopped {
		t.Fatalf("after Stop returned the world says %s", sigs[running[0].ID].Power)
	}
	// Many callers at once, for the race detector; no durations asserted.
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := g; i < len(vms); i += 4 {
				rf := providers.Ref(vms[i])
				_, _ = p.Observer.Observe(ctx, []providers.VMRef{rf})
				_, _ = p.Backups.List(ctx, rf)
			}
		})
	}
	if len(stopped) > 0 {
		wg.Go(func() { _ = p.Power.Start(ctx, stopped[:1]) })
	}
	wg.Wait()
}

func TestSpec(t *testing.T) {
	f := newFixture(t, simapi.ServerOptions{}, vmSpec("1", inventory.PowerRunning))
	reg := providers.NewRegistry()
	must(t, reg.Register(simapi.Name, simapi.Spec(f.r)))
	opts := func(s string) *yaml.Node {
		var n yaml.Node
		must(t, yaml.Unmarshal([]byte(s), &n))
		return &n
	}
	for _, tc := range []struct {
		name string
		a    providers.Account
		want string
	}{
		{"ok", providers.Account{Provider: "sim", Zones: []string{"is1a"}}, ""},
		{"ok with account", providers.Account{Provider: "sim", Options: opts("account: sim")}, ""},
		{"bad zone", providers.Account{Provider: "sim", Zones: []string{"us-east-1a"}}, "is1a, is1b"},
		{"regions", providers.Account{Provider: "sim", Regions: []string{"eu"}}, "no regions"},
		{"unknown key", providers.Account{Provider: "sim", Options: opts("acount: sim")}, "valid keys are account"},
		{"unknown account", providers.Account{Provider: "sim", Options: opts("account: acme")}, "accounts are sim"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := reg.Validate(tc.a)
			if tc.want == "" {
				must(t, err)
				p, err := reg.Open(ctx, tc.a, providers.Env{})
				must(t, err)
				vms, err := p.Enumerator.List(ctx)
				must(t, err)
				if len(vms) != 1 {
					t.Fatalf("list %+v", vms)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
