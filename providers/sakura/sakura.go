// Package sakura is fixfleet's Sakura Cloud provider, on the official client
// github.com/sacloud/iaas-api-go (v1): every providers.Provider capability
// over servers, power, disks and archives.
//
// Facts of this cloud the provider relies on (see docs/providers/sakura.md):
//   - The API is zonal; an account scope is a set of zones.
//   - A server's boot disk is its first connected disk (ConnectionOrder 1).
//   - Snapshots and backups are archives made from a disk; a new disk made
//     from an archive is how a snapshot or backup is restored.
//   - A server's Windows version is found by walking its boot disk's source
//     archive lineage up to the archive it started from (a public archive
//     named "Windows Server 2019 ..." or tagged os-windows/distro-ver-2019).
//   - Tags are plain strings: fixfleet's key/value tags travel as "key=value".
//   - The control plane shows a server's instance status (up, cleaning,
//     down) and when it last changed. A guest that crashes and restarts by
//     itself does not change it: Sakura shows no boot counter, no
//     reachability check and no console text (the VNC console is a
//     picture), so classification rests on the guest probe over WinRM.
//
// Every call passes fixfleet's per-account rate limit (on the run's clock),
// and its errors are classified (404 ErrNotFound, 409 ErrConflict, 429
// ErrThrottled, 5xx and dropped connections ErrUnavailable, other 4xx
// ErrPermanent) and name the resource. Credentials never appear in errors.
package sakura

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"

	client "github.com/sacloud/api-client-go"
	"github.com/sacloud/iaas-api-go"
	"github.com/sacloud/saclient-go"
	"golang.org/x/time/rate"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/ctxlock"
	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/providers"
)

// Spec returns the registry entry of the Sakura Cloud provider.
func Spec() providers.Spec {
	return providers.Spec{
		Validate: validate,
		Open:     Open,
	}
}

// Open builds the provider of an account: credentials from options.profile
// or the environment, zones from the account (all production zones if none).
// It does not call the API.
func Open(ctx context.Context, a providers.Account, env providers.Env) (*providers.Provider, error) {
	return open(ctx, a, env, nil)
}

// OpenVia is Open with every request sent through srv.Client(), an emulator
// served by httptest (possibly on an in-memory network inside a
// testing/synctest bubble: set the client transport's Dial). It is the API
// client library's own test-server mode, which keeps its whole stack
// (authentication, retries of 503 and 423, rate limit); requests still go
// to the account's api_root_url, which should name srv.
func OpenVia(ctx context.Context, a providers.Account, env providers.Env, srv *httptest.Server) (*providers.Provider, error) {
	if srv == nil {
		return nil, errors.New("sakura: OpenVia needs a started httptest.Server")
	}
	return open(ctx, a, env, srv)
}

func open(_ context.Context, a providers.Account, env providers.Env, srv *httptest.Server) (*providers.Provider, error) {
	if err := validate(a); err != nil {
		return nil, err
	}
	o, _ := ParseOptions(a.Options)
	token, secret, profRoot, err := credentials(o, env)
	if err != nil {
		return nil, err
	}
	root := o.APIRootURL
	if root == "" {
		root = strings.TrimRight(profRoot, "/")
	}
	if root == "" {
		root = DefaultAPIRoot
	}
	caller, err := newCaller(token, secret, root, o, srv)
	if err != nil {
		return nil, err
	}
	zones := a.Zones
	if len(zones) == 0 {
		zones = []string{"is1a", "is1b", "is1c", "tk1a", "tk1b"}
	}
	return newProvider(apis{
		server:  iaas.NewServerOp(caller),
		disk:    iaas.NewDiskOp(caller),
		archive: iaas.NewArchiveOp(caller),
		caller:  caller,
		auth:    iaas.NewAuthStatusOp(caller),
	}, scope{tenant: a.Tenant, account: a.Name, zones: zones}, o, env.Clock), nil
}

// apis are the iaas-api-go operations the provider uses (over HTTP, or the
// library's in-process fake driver in tests).
type apis struct {
	server  iaas.ServerAPI
	disk    iaas.DiskAPI
	archive iaas.ArchiveAPI
	// caller is the HTTP layer, for the endpoints iaas-api-go does not
	// wrap (the VNC snapshot); nil with the fake driver.
	caller iaas.APICaller
	auth   iaas.AuthStatusAPI // nil: no preflight
}

type scope struct {
	tenant, account string
	zones           []string
}

// rootCaller sends iaas-api-go's requests to another API root without
// touching the library's package-level root (other accounts may use the
// real one in the same process).
type rootCaller struct {
	c    *iaas.Client
	root string
}

func (r rootCaller) Do(ctx context.Context, method, uri string, body interface{}) ([]byte, error) {
	if rest, ok := strings.CutPrefix(uri, iaas.SakuraCloudAPIRoot); ok {
		uri = r.root + rest
	}
	return r.c.Do(ctx, method, uri, body)
}

// newCaller builds the HTTP client: the key given here only (no
// environment, no usacloud profile read behind fixfleet's back), the
// library's retry of 503/423 ClientRetries times, never of a dropped
// connection. srv, when not nil, carries the requests (see OpenVia).
func newCaller(token, secret, root string, o Options, srv *httptest.Server) (iaas.APICaller, error) {
	var sa saclient.Client
	// The library's own request limiter must never bind: fixfleet's
	// per-account limiter paces calls on the run's clock, while the
	// library's spaces concurrent requests on the time package's clock in
	// whatever order they arrive (at 1000/s, 1 ms apart), which makes a run
	// on virtual time depend on goroutine order. At this rate its spacing
	// rounds to zero.
	opts := &client.Options{HttpRequestRateLimit: math.MaxInt32, HttpRequestTimeout: 300, RetryMax: max(o.ClientRetries, 1),
		RetryWaitMin: 1, RetryWaitMax: 10, UserAgent: "fixfleet " + iaas.DefaultUserAgent}
	if err := sa.CompatSettingsFromAPIClientParams(root, client.WithApiKeys(token, secret),
		client.WithDisableProfile(true), client.WithDisableEnv(true), client.WithOptions(opts)); err != nil {
		return nil, fmt.Errorf("sakura: configuring the API client: %v", err)
	}
	retries := o.ClientRetries
	policy := func(ctx context.Context, res *http.Response, err error) (bool, error) {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		if err != nil || res == nil || retries == 0 {
			return false, nil
		}
		return res.StatusCode == http.StatusServiceUnavailable || res.StatusCode == http.StatusLocked, nil
	}
	if err := sa.SetWith(saclient.WithCheckRetryFunc(policy), saclient.WithFavouringBasicAuthentication()); err != nil {
		return nil, fmt.Errorf("sakura: configuring the API client: %v", err)
	}
	if srv != nil {
		if err := sa.SetWith(saclient.WithTestServer(srv)); err != nil {
			return nil, fmt.Errorf("sakura: configuring the API client: %v", err)
		}
	}
	return rootCaller{c: iaas.NewClientFromSaclient(&sa), root: root}, nil
}

// core is what every capability shares.
type core struct {
	api   apis
	scope scope
	opts  Options
	clk   clock.Clock
	lim   *pace.Limiter

	mu       sync.Mutex
	archives map[string]archiveFacts // zone/id -> lineage facts (immutable)

	// power serialises server Boot, Shutdown and Reset, which iaas-api-go
	// serialises anyway on a process-wide sync.Mutex ("GlobalLock") held
	// for the whole request: waiting here instead keeps a waiter durably
	// blocked on virtual time and honours its context, and waiters of one
	// instant take it in the order of their servers, not goroutine order
	// (internal/ctxlock.Ordered).
	power *ctxlock.Ordered
}

// powerCall runs f, one of the server power calls iaas-api-go holds its
// global lock for, while holding c.power in res's turn (res names the
// server).
func (c *core) powerCall(res string, f func(ctx context.Context) error) func(ctx context.Context) error {
	return func(ctx context.Context) error {
		if err := c.power.Lock(ctx, res); err != nil {
			return err
		}
		defer c.power.Unlock()
		return f(ctx)
	}
}

func newProvider(api apis, sc scope, o Options, clk clock.Clock) *providers.Provider {
	if clk == nil {
		clk = clock.Real{}
	}
	c := &core{api: api, scope: sc, opts: o, clk: clk, lim: pace.New(clk, rate.Limit(o.Rate), o.Burst),
		archives: map[string]archiveFacts{}, power: ctxlock.NewOrdered(clk)}
	p := &providers.Provider{
		Name:       Name,
		Enumerator: enumerator{c},
		Observer:   observer{c},
		Guests:     guests{c},
		Power:      power{c},
		Disks:      disks{c},
		Backups:    backups{c},
		Helpers:    helpers{c},
	}
	if api.auth != nil {
		p.Preflight = preflight{c}
	}
	return p
}

// call runs one API call after the rate limit, and classifies its error.
// The limiter serves the calls of one instant in the order of their
// operation and resource (see internal/pace), not in goroutine order.
func (c *core) call(ctx context.Context, op, res string, f func(ctx context.Context) error) error {
	if err := c.lim.Wait(ctx, op+" "+res); err != nil {
		return fmt.Errorf("%s %s: %w", op, res, err)
	}
	return classify(op, res, f(ctx))
}

// classify turns an iaas-api-go error into a *providers.Error.
func classify(op, res string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s %s: %w", op, res, err)
	}
	var ae iaas.APIError
	if errors.As(err, &ae) {
		class := providers.ErrPermanent
		var hint time.Duration
		switch code := ae.ResponseCode(); {
		case code == http.StatusNotFound:
			class = providers.ErrNotFound
		case code == http.StatusConflict:
			class = providers.ErrConflict
		case code == http.StatusTooManyRequests:
			class, hint = providers.ErrThrottled, time.Second
		case code == http.StatusLocked, code >= 500:
			class = providers.ErrUnavailable
		}
		e := providers.Errorf(class, op, res, "HTTP %d %s: %s", ae.ResponseCode(), ae.Code(), ae.Message())
		e.RetryAfter = hint
		return e
	}
	// No API answer: a dropped connection, a refused one, or retries of
	// 503 exhausted. The request may or may not have been applied.
	return providers.Errorf(providers.ErrUnavailable, op, res, "%v", scrub(err))
}

// scrub keeps an underlying error's text short and free of URLs' query
// strings (find conditions) — there are no credentials in them, but they
// are noise.
func scrub(err error) string {
	s := err.Error()
	if i := strings.Index(s, "?{"); i >= 0 {
		if j := strings.IndexAny(s[i:], " \""); j > 0 {
			s = s[:i] + s[i+j:]
		} else {
			s = s[:i]
		}
	}
	return s
}

// poll calls check every Poll on the clock until it reports done, fails,
// or ctx ends.
func (c *core) poll(ctx context.Context, what string, check func() (bool, error)) error {
	for {
		done, err := check()
		if err != nil || done {
			return err
		}
		if err := c.clk.Sleep(ctx, c.opts.Poll); err != nil {
			return fmt.Errorf("waiting for %s: %w", what, err)
		}
	}
}

func (c *core) zoneOK(zone string) bool {
	for _, z := range c.scope.zones {
		if z == zone {
			return true
		}
	}
	return false
}

// zonesFor is the zone of a reference, or every zone of the scope.
func (c *core) zonesFor(zone string) []string {
	if zone != "" {
		return []string{zone}
	}
	return c.scope.zones
}
