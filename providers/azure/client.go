package azure

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v8"
	"golang.org/x/time/rate"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers"
)

// ARM's subscription token buckets (Microsoft Learn, "Understand how Azure
// Resource Manager throttles requests", token bucket algorithm, 2024):
// size and refill per second.
const (
	bucketReads   = "reads"
	bucketWrites  = "writes"
	bucketDeletes = "deletes"
)

var armBuckets = map[string]struct {
	size   int
	refill float64
}{
	bucketReads:   {250, 25},
	bucketWrites:  {200, 10},
	bucketDeletes: {200, 10},
}

// Connection says how the provider reaches Azure. The zero value is
// production: DefaultAzureCredential (environment, workload identity,
// managed identity, Azure CLI), the public cloud, the default transport.
// Tests and drills against an emulator set all three.
type Connection struct {
	Credential azcore.TokenCredential
	Cloud      cloud.Configuration
	Transport  policy.Transporter
}

// limiter is one subscription's ARM token buckets, on the provider's clock.
type limiter struct {
	clk     clock.Clock
	buckets map[string]*rate.Limiter
}

func newLimiter(clk clock.Clock) *limiter {
	l := &limiter{clk: clk, buckets: map[string]*rate.Limiter{}}
	for name, b := range armBuckets {
		l.buckets[name] = rate.NewLimiter(rate.Limit(b.refill), b.size)
	}
	return l
}

// wait takes one token from bucket, sleeping on the clock until it may.
func (l *limiter) wait(ctx context.Context, bucket string) error {
	now := l.clk.Now()
	r := l.buckets[bucket].ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		if err := l.clk.Sleep(ctx, d); err != nil {
			r.CancelAt(l.clk.Now())
			return err
		}
	}
	return nil
}

// subscription is one subscription's clients and buckets.
type subscription struct {
	id    string
	vms   *armcompute.VirtualMachinesClient
	disks *armcompute.DisksClient
	snaps *armcompute.SnapshotsClient
	imgs  *armcompute.ImagesClient
	arm   *arm.Client // plain ARM calls (a NIC's address)
	lim   *limiter
}

// core is the state every capability shares.
type core struct {
	acct   providers.Account
	opts   Options
	clk    clock.Clock
	getenv func(string) string
	subs   map[string]*subscription // by lower-case ID
	order  []string
	blobs  *http.Client // boot diagnostics SAS URIs (no bearer token)
}

// Open connects to the account with DefaultAzureCredential (in
// options.tenant_id when given).
func Open(ctx context.Context, a providers.Account, env providers.Env) (*providers.Provider, error) {
	if err := Validate(a); err != nil {
		return nil, err
	}
	o, _ := ParseOptions(a.Options)
	c, err := o.connection()
	if err != nil {
		return nil, providers.Errorf(providers.ErrPermanent, "Open", "account "+a.String(), "%v", err)
	}
	// Instance discovery asks the public cloud about the authority: not
	// for another cloud's.
	cred, err := azidentity.NewDefaultAzureCredential(&azidentity.DefaultAzureCredentialOptions{TenantID: o.TenantID,
		ClientOptions: policy.ClientOptions{Cloud: c.Cloud, Transport: c.Transport}, DisableInstanceDiscovery: o.AuthorityHost != ""})
	if err != nil {
		return nil, providers.Errorf(providers.ErrPermanent, "Open", "account "+a.String(), "no Azure credential: %v (sign in with `az login`, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and a secret or certificate)", err)
	}
	c.Credential = cred
	return OpenWith(ctx, a, env, c)
}

// connection is the cloud and transport the options name (the zero value:
// the public cloud, the default transport); the credential is the caller's.
func (o Options) connection() (Connection, error) {
	var c Connection
	if o.ResourceManagerEndpoint != "" {
		c.Cloud = cloud.Configuration{ActiveDirectoryAuthorityHost: strings.TrimSuffix(o.AuthorityHost, "/") + "/",
			Services: map[cloud.ServiceName]cloud.ServiceConfiguration{cloud.ResourceManager: {
				Endpoint: o.ResourceManagerEndpoint, Audience: o.ResourceManagerEndpoint}}}
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return c, fmt.Errorf("options.ca_file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return c, fmt.Errorf("options.ca_file %s: no PEM certificate in it", o.CAFile)
		}
		c.Transport = &http.Client{Transport: &http.Transport{Proxy: http.ProxyFromEnvironment,
			TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	}
	return c, nil
}

// OpenWith connects to the account through c. It checks that every
// subscription is readable (one list call each): a subscription the
// identity cannot see fails Open with ErrPermanent naming it.
func OpenWith(ctx context.Context, a providers.Account, env providers.Env, c Connection) (*providers.Provider, error) {
	if err := Validate(a); err != nil {
		return nil, err
	}
	o, _ := ParseOptions(a.Options)
	o = o.withDefaults()
	clk := env.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	if c.Credential == nil {
		return nil, fmt.Errorf("azure: Connection.Credential is nil")
	}
	copts := &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud:     c.Cloud,
		Transport: c.Transport,
		// Retries are the provider's: 429 after Retry-After on its clock;
		// a 5xx or a dropped connection goes back to the caller.
		Retry:     policy.RetryOptions{MaxRetries: -1},
		Telemetry: policy.TelemetryOptions{ApplicationID: "fixfleet"},
	}}
	if copts.Cloud.ActiveDirectoryAuthorityHost == "" && len(copts.Cloud.Services) == 0 {
		copts.Cloud = cloud.AzurePublic
	}
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	k := &core{acct: a, opts: o, clk: clk, getenv: getenv, subs: map[string]*subscription{}, blobs: &http.Client{Timeout: time.Minute}}
	if t, ok := c.Transport.(*http.Client); ok {
		k.blobs = t
	}
	for _, id := range o.Subscriptions {
		f, err := armcompute.NewClientFactory(id, c.Credential, copts)
		if err != nil {
			return nil, fmt.Errorf("azure: subscription %s: %w", id, err)
		}
		ac, err := arm.NewClient("fixfleet/providers/azure", "v1.0.0", c.Credential, copts)
		if err != nil {
			return nil, fmt.Errorf("azure: subscription %s: %w", id, err)
		}
		s := &subscription{id: id, vms: f.NewVirtualMachinesClient(), disks: f.NewDisksClient(), snaps: f.NewSnapshotsClient(),
			imgs: f.NewImagesClient(), arm: ac, lim: newLimiter(clk)}
		k.subs[strings.ToLower(id)] = s
		k.order = append(k.order, id)
	}
	for _, id := range k.order {
		s := k.subs[strings.ToLower(id)]
		err := k.do(ctx, s, bucketReads, "Open", "subscription "+id, func(ctx context.Context) error {
			_, err := s.imgs.NewListPager(nil).NextPage(ctx)
			return err
		})
		if err != nil {
			return nil, err
		}
	}
	d := &disks{k}
	return &providers.Provider{Name: Name, Enumerator: (*enumerator)(k), Observer: (*observer)(k), Guests: (*guests)(k),
		Power: (*power)(k), Disks: d, Helpers: (*helpers)(k)}, nil
}

// resourceID is an ARM resource ID of a top-level resource:
// /subscriptions/S/resourceGroups/G/providers/NS/TYPE/NAME.
type resourceID struct {
	sub, group, kind, name string
}

func parseID(id string) (resourceID, error) {
	seg := strings.Split(strings.Trim(id, "/"), "/")
	if len(seg) < 8 || !strings.EqualFold(seg[0], "subscriptions") || !strings.EqualFold(seg[2], "resourceGroups") || !strings.EqualFold(seg[4], "providers") {
		return resourceID{}, fmt.Errorf("%q is not an Azure resource ID (/subscriptions/…/resourceGroups/…/providers/…)", id)
	}
	return resourceID{sub: seg[1], group: seg[3], kind: seg[6], name: seg[7]}, nil
}

// sameID compares ARM resource IDs (case-insensitive, as ARM does).
func sameID(a, b string) bool { return strings.EqualFold(strings.Trim(a, "/"), strings.Trim(b, "/")) }

// resolve parses an ARM ID of kind and finds its subscription among the
// account's. Errors: ErrNotFound (malformed, another kind, or a
// subscription outside the account), naming the resource.
func (k *core) resolve(op, id, kind string) (resourceID, *subscription, error) {
	r, err := parseID(id)
	if err != nil {
		return r, nil, providers.Errorf(providers.ErrNotFound, op, id, "%v", err)
	}
	if !strings.EqualFold(r.kind, kind) {
		return r, nil, providers.Errorf(providers.ErrNotFound, op, id, "not a %s resource ID", kind)
	}
	s := k.subs[strings.ToLower(r.sub)]
	if s == nil {
		return r, nil, providers.Errorf(providers.ErrNotFound, op, id, "subscription %s is not among the account's (%s)", r.sub, strings.Join(k.order, ", "))
	}
	return r, s, nil
}

// do runs one ARM call: a token from the subscription's bucket first, and
// again after a 429's Retry-After, up to RetryMaxAttempts. The error is
// classified and names op and resource.
func (k *core) do(ctx context.Context, s *subscription, bucket, op, res string, call func(ctx context.Context) error) error {
	for attempt := 1; ; attempt++ {
		if err := s.lim.wait(ctx, bucket); err != nil {
			return classify(err, op, res)
		}
		err := call(ctx)
		if err == nil {
			return nil
		}
		ce := classify(err, op, res)
		if !errors.Is(ce, providers.ErrThrottled) || attempt >= k.opts.RetryMaxAttempts {
			return ce
		}
		wait := providers.RetryAfter(ce)
		if wait <= 0 {
			wait = time.Second
		}
		if serr := k.clk.Sleep(ctx, wait); serr != nil {
			return fmt.Errorf("%w (gave up waiting: %v)", ce, serr)
		}
	}
}

// classify turns an SDK or transport error into a *providers.Error.
func classify(err error, op, res string) error {
	var pe *providers.Error
	if errors.As(err, &pe) {
		return err
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		e := providers.Errorf(providers.ErrPermanent, op, res, "HTTP %d %s: %s", re.StatusCode, re.ErrorCode, responseMessage(re))
		if re.RawResponse != nil {
			e.RetryAfter = retryAfter(re.RawResponse.Header)
		}
		switch {
		case re.StatusCode == http.StatusNotFound:
			e.Class = providers.ErrNotFound
		case re.StatusCode == http.StatusConflict:
			e.Class = providers.ErrConflict
		case re.StatusCode == http.StatusTooManyRequests:
			e.Class = providers.ErrThrottled
		case re.StatusCode >= 500:
			e.Class = providers.ErrUnavailable
		case re.StatusCode == http.StatusUnauthorized || re.StatusCode == http.StatusForbidden:
			e.Err = fmt.Errorf("HTTP %d %s: the identity lacks a permission here; see docs/providers/azure.md for the role", re.StatusCode, re.ErrorCode)
		}
		return e
	}
	// A transport failure (reset, timeout, cancelled): the call may or may
	// not have been applied.
	return &providers.Error{Class: providers.ErrUnavailable, Op: op, Resource: res, Err: err}
}

// responseMessage is the ARM error's message, without the SDK's dump of
// the request (which carries the URL and could carry a SAS token).
func responseMessage(re *azcore.ResponseError) string {
	var body struct {
		Error struct {
			Message string `json:"message"`
		} `json:"error"`
	}
	if re.RawResponse != nil {
		if b, err := runtime.Payload(re.RawResponse); err == nil && json.Unmarshal(b, &body) == nil && body.Error.Message != "" {
			return body.Error.Message
		}
	}
	return http.StatusText(re.StatusCode)
}

// retryAfter reads a Retry-After header in seconds (0 if none).
func retryAfter(h http.Header) time.Duration {
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get("Retry-After"))); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	return 0
}

// await starts a long-running operation and polls it with the SDK's poller
// until done, sleeping between polls on the provider's clock (Azure's
// Retry-After, at most PollInterval). A start refused with a 409 that
// carries a Retry-After (the resource is still being created, attached or
// detached, as after an earlier call whose reply was lost) is tried again
// after that wait (providers.RetryWhileBusy).
func await[T any](ctx context.Context, k *core, s *subscription, bucket, op, res string, begin func(ctx context.Context) (*runtime.Poller[T], error)) (T, error) {
	var zero T
	var p *runtime.Poller[T]
	err := providers.RetryWhileBusy(ctx, k.clk, func() error {
		return k.do(ctx, s, bucket, op, res, func(ctx context.Context) error {
			var err error
			p, err = begin(ctx)
			return err
		})
	})
	if err != nil {
		return zero, err
	}
	wait := k.opts.PollInterval
	for !p.Done() {
		if err := k.clk.Sleep(ctx, wait); err != nil {
			return zero, classify(err, op, res)
		}
		var resp *http.Response
		err := k.do(ctx, s, bucketReads, op, res, func(ctx context.Context) error {
			var err error
			resp, err = p.Poll(ctx)
			return err
		})
		if err != nil {
			return zero, err
		}
		wait = k.opts.PollInterval
		if ra := retryAfter(resp.Header); ra > 0 && ra < wait {
			wait = ra
		}
	}
	var out T
	err = k.do(ctx, s, bucketReads, op, res, func(ctx context.Context) error {
		var err error
		out, err = p.Result(ctx)
		return err
	})
	return out, err
}

// str and flag read optional SDK fields.
func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func flag(p *bool) bool { return p != nil && *p }

// pages pages through pager, each page a call through do (reads bucket),
// and hands every page to each.
func pages[T any](ctx context.Context, k *core, s *subscription, op string, pager *runtime.Pager[T], each func(T) error) error {
	for pager.More() {
		var page T
		err := k.do(ctx, s, bucketReads, op, "subscription "+s.id, func(ctx context.Context) error {
			var err error
			page, err = pager.NextPage(ctx)
			return err
		})
		if err != nil {
			return err
		}
		if err := each(page); err != nil {
			return err
		}
	}
	return nil
}
