package aws

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/ctxlock"
	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
)

// Limits on one call.
const (
	// maxIDs is how many instance IDs one StopInstances, StartInstances or
	// TerminateInstances call carries.
	maxIDs = 1000
	// maxFilterValues is how many values one Describe* filter carries.
	maxFilterValues = 200
)

// Bucket names: EC2's published request-rate buckets.
const (
	bucketNonMutating = "non-mutating"
	bucketUnfiltered  = "unfiltered-describe"
	bucketMutating    = "mutating"
	bucketSnapVol     = "create-snapshot-volume"
	bucketStartRun    = "start-run-instances"
	bucketSSM         = "ssm"
)

var bucketSizes = map[string]timing.Bucket{
	bucketNonMutating: timing.EC2NonMutating,
	bucketUnfiltered:  timing.EC2UnfilteredDescr,
	bucketMutating:    timing.EC2Mutating,
	bucketSnapVol:     timing.EC2SnapshotVolume,
	bucketStartRun:    timing.EC2StartRunInstance,
	// SSM publishes no per-API bucket; stay in its order of magnitude.
	bucketSSM: {Size: 40, Refill: 10},
}

// limiter holds one account+region's token buckets, on the provider's
// clock. Calls of one instant take their tokens in the order of their keys
// (internal/pace), not in the order their goroutines ran.
type limiter struct {
	buckets map[string]*pace.Limiter
}

func newLimiter(clk clock.Clock) *limiter {
	l := &limiter{buckets: map[string]*pace.Limiter{}}
	for name, b := range bucketSizes {
		l.buckets[name] = pace.ForCloud(clk, rate.Limit(b.Refill), b.Size)
	}
	return l
}

// wait takes one token from bucket for the call named key, sleeping on
// the clock until it may.
func (l *limiter) wait(ctx context.Context, bucket, key string) error {
	return l.buckets[bucket].Wait(ctx, key)
}

// regional is one region's clients.
type regional struct {
	region string
	ec2    *ec2.Client
	ssm    *ssm.Client
	lim    *limiter
	// stop, forceStop and start merge concurrent callers' instances into
	// one StopInstances / StartInstances call (see batcher).
	stop, forceStop, start *batcher
}

// core is the state every capability shares.
type core struct {
	acct    providers.Account
	opts    Options
	clk     clock.Clock
	log     *slog.Logger
	owner   string // AWS account ID
	regions map[string]*regional
	order   []string

	mu      sync.Mutex
	devLock *ctxlock.Keyed      // by instance, in volume order at one instant: picking its free device (held across the attach and its wait)
	azs     map[string][]string // region -> zones
}

// Open connects to the account: it loads credentials (profile, static keys
// from the environment, or the default chain), assumes the role if one is
// given, and checks them with STS GetCallerIdentity.
func Open(ctx context.Context, a providers.Account, env providers.Env) (*providers.Provider, error) {
	return open(ctx, a, env, nil)
}

// OpenVia is Open with every connection opened by dial (an emulator on an
// in-memory network inside a testing/synctest bubble, for instance): the
// SDK keeps its whole stack (its buildable HTTP client and transport,
// signing, retries, endpoint resolution) and only the dialling changes.
// dial must not be nil.
func OpenVia(ctx context.Context, a providers.Account, env providers.Env, dial func(ctx context.Context, network, addr string) (net.Conn, error)) (*providers.Provider, error) {
	if dial == nil {
		return nil, errors.New("aws: OpenVia needs a dial function")
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) { tr.DialContext = dial })
	return open(ctx, a, env, hc)
}

func open(ctx context.Context, a providers.Account, env providers.Env, hc sdk.HTTPClient) (*providers.Provider, error) {
	if err := Validate(a); err != nil {
		return nil, err
	}
	o, _ := ParseOptions(a.Options)
	if o.PollInterval == 0 {
		o.PollInterval = 5 * time.Second
	}
	if o.RetryMaxAttempts == 0 {
		o.RetryMaxAttempts = 5
	}
	if o.RetryMaxBackoff == 0 {
		o.RetryMaxBackoff = 20 * time.Second
	}
	if o.HelperInstanceType == "" {
		o.HelperInstanceType = "m5.large"
	}
	clk := env.Clock
	if clk == nil {
		clk = clock.Real{}
	}
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	log := env.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &core{acct: a, opts: o, clk: clk, log: log, regions: map[string]*regional{}, azs: map[string][]string{}, devLock: ctxlock.NewKeyed(clk)}
	for _, r := range regions(a) {
		cfg, err := loadConfig(ctx, r, o, getenv, hc)
		if err != nil {
			return nil, err
		}
		// options.endpoint, when given, wins; otherwise the SDK's own
		// endpoint settings (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_EC2, a
		// profile's endpoint_url) stand as the SDK resolved them.
		endpoint := func(base **string) {
			if o.Endpoint != "" {
				*base = sdk.String(o.Endpoint)
			}
		}
		rg := &regional{region: r, lim: newLimiter(clk),
			ec2: ec2.NewFromConfig(cfg, func(x *ec2.Options) { endpoint(&x.BaseEndpoint) }),
			ssm: ssm.NewFromConfig(cfg, func(x *ssm.Options) { endpoint(&x.BaseEndpoint) }),
		}
		if c.owner == "" {
			st := sts.NewFromConfig(cfg, func(x *sts.Options) { endpoint(&x.BaseEndpoint) })
			out, err := st.GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
			if err != nil {
				return nil, classify("Open", "account "+a.Name+" (sts:GetCallerIdentity)", err)
			}
			c.owner = sdk.ToString(out.Account)
		}
		c.batchers(rg)
		c.regions[r] = rg
		c.order = append(c.order, r)
	}
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
	}, nil
}

// loadConfig builds the SDK configuration of one region. hc, when not
// nil, carries the requests.
//
// The SDK retries in its standard mode with two changes. Its backoff is
// backoff (exponential, capped at RetryMaxBackoff, jitter keyed by the
// request rather than drawn from crypto/rand), so that retries replay on
// virtual time. Its client-side limits are off: no retry quota
// (ratelimit.None: a quota shared by every request runs out in whichever
// order they fail) and no adaptive mode (its token bucket is another
// first-come-first-served pace, on the wall clock); the provider's own
// token buckets pace every call on the provider's clock.
func loadConfig(ctx context.Context, region string, o Options, getenv func(string) string, hc sdk.HTTPClient) (sdk.Config, error) {
	lo := []func(*config.LoadOptions) error{
		config.WithRegion(region),
		// The SDK's own log lines (connection warnings) stay out of
		// fixfleet's output; nothing it would log is needed.
		config.WithLogger(logging.Nop{}),
		config.WithRetryer(func() sdk.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = o.RetryMaxAttempts
				so.MaxBackoff = o.RetryMaxBackoff
				so.Backoff = backoff{base: time.Second, max: o.RetryMaxBackoff}
				so.RateLimiter = ratelimit.None
			})
		}),
		config.WithAPIOptions([]func(*middleware.Stack) error{addRetryKey}),
	}
	if o.Profile != "" {
		lo = append(lo, config.WithSharedConfigProfile(o.Profile))
	}
	if hc != nil {
		lo = append(lo, config.WithHTTPClient(hc))
	}
	if o.AccessKeyIDEnv != "" {
		id, secret := getenv(o.AccessKeyIDEnv), getenv(o.SecretAccessKeyEnv)
		if id == "" || secret == "" {
			return sdk.Config{}, providers.Errorf(providers.ErrPermanent, "Open", "credentials",
				"environment variables %s and %s must both be set", o.AccessKeyIDEnv, o.SecretAccessKeyEnv)
		}
		token := ""
		if o.SessionTokenEnv != "" {
			token = getenv(o.SessionTokenEnv)
		}
		lo = append(lo, config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, token)))
	}
	cfg, err := config.LoadDefaultConfig(ctx, lo...)
	var noProfile config.SharedConfigProfileNotExistError
	switch {
	case errors.As(err, &noProfile):
		return sdk.Config{}, providers.Errorf(providers.ErrPermanent, "Open", "profile "+o.Profile,
			"options.profile: no AWS profile %q in the shared config and credentials files (~/.aws/config, ~/.aws/credentials, or AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE): "+
				"create it with `aws configure --profile %s`, or name an existing one", o.Profile, o.Profile)
	case err != nil:
		// The SDK's message names the profile or file, never a secret.
		return sdk.Config{}, providers.Errorf(providers.ErrPermanent, "Open", "region "+region, "loading AWS configuration: %v", err)
	}
	if o.RoleARN != "" {
		st := sts.NewFromConfig(cfg, func(x *sts.Options) {
			if o.Endpoint != "" {
				x.BaseEndpoint = sdk.String(o.Endpoint)
			}
		})
		name := o.SessionName
		if name == "" {
			name = "fixfleet"
		}
		cfg.Credentials = sdk.NewCredentialsCache(stscreds.NewAssumeRoleProvider(st, o.RoleARN, func(ao *stscreds.AssumeRoleOptions) {
			ao.RoleSessionName = name
			if o.ExternalID != "" {
				ao.ExternalID = sdk.String(o.ExternalID)
			}
		}))
	}
	return cfg, nil
}

// region returns the clients for a region (or a zone's region; "" means
// the only region).
func (c *core) region(op, res, regionOrZone string) (*regional, error) {
	r := RegionOf(regionOrZone)
	if r == "" && len(c.order) == 1 {
		r = c.order[0]
	}
	rg := c.regions[r]
	if rg == nil {
		return nil, providers.Errorf(providers.ErrNotFound, op, res, "region %q is not in the account's scope (%s)", r, strings.Join(c.order, ", "))
	}
	return rg, nil
}

// call waits on bucket, then runs f, classifying its error. The calls of
// one instant take their tokens in the order of op and res, and f's ctx
// names them as the retry key of its SDK requests (backoff): f must make
// its requests under that ctx.
func (c *core) call(ctx context.Context, rg *regional, bucket, op, res string, f func(ctx context.Context) error) error {
	key := op + " " + res
	if err := rg.lim.wait(ctx, bucket, key); err != nil {
		return err
	}
	if err := f(withCallKey(ctx, key)); err != nil {
		return classify(op, res, err)
	}
	return nil
}

// Error codes by class.
var (
	throttleCodes = []string{"RequestLimitExceeded", "Throttling", "ThrottlingException", "RequestThrottled",
		"RequestThrottledException", "TooManyRequestsException", "SnapshotCreationPerVolumeRateExceeded", "PriorRequestNotComplete"}
	conflictCodes = []string{"IncorrectState", "IncorrectInstanceState", "VolumeInUse", "InvalidVolume.ZoneMismatch",
		"InvalidParameterCombination", "IdempotentParameterMismatch"}
	permanentCodes = []string{"UnauthorizedOperation", "AuthFailure", "AccessDenied", "AccessDeniedException",
		"InvalidClientTokenId", "UnrecognizedClientException", "OptInRequired", "Blocked", "OperationNotPermitted",
		"SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException"}
	unavailableCodes = []string{"InternalError", "InternalFailure", "Unavailable", "ServiceUnavailable", "InsufficientInstanceCapacity"}
)

// classify turns an SDK error into a *providers.Error naming op and res.
// Context errors are returned as they are.
func classify(op, res string, err error) error {
	if err == nil {
		return nil
	}
	var pe *providers.Error
	if errors.As(err, &pe) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	code, status := "", 0
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var after time.Duration
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
		if re.Response != nil {
			after = retryAfter(re.Response.Header)
		}
	}
	class := providers.ErrPermanent
	switch {
	case contains(throttleCodes, code):
		class = providers.ErrThrottled
	case strings.HasSuffix(code, ".NotFound") || code == "InvalidInstanceID" || code == "NotFound":
		class = providers.ErrNotFound
	case contains(conflictCodes, code):
		class = providers.ErrConflict
	case contains(permanentCodes, code):
		class = providers.ErrPermanent
	case contains(unavailableCodes, code) || status >= 500:
		class = providers.ErrUnavailable
	case ae == nil:
		// No API answer: a connection error, a timeout.
		class = providers.ErrUnavailable
	}
	return &providers.Error{Class: class, Op: op, Resource: res, RetryAfter: after, Err: errors.New(message(err, ae))}
}

// message is the cause without the SDK's request dump.
func message(err error, ae smithy.APIError) string {
	if ae != nil {
		return ae.ErrorCode() + ": " + ae.ErrorMessage()
	}
	return err.Error()
}

func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0)
	}
	return 0
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// poll calls check until it reports done, sleeping PollInterval on the
// clock between looks. An error on the first look ends it (nothing was
// waited for yet: the caller sees the control plane's state at once);
// later, up to maxPollFailures retryable errors in a row are waited out
// (the caller's ctx bounds the wait); others end it.
func (c *core) poll(ctx context.Context, check func() (bool, error)) error {
	looked, failures := false, 0
	for {
		done, err := check()
		switch {
		case err == nil && done:
			return nil
		case err == nil:
			looked, failures = true, 0
		case !looked || !providers.Retryable(err):
			return err
		default:
			failures++
			if failures > maxPollFailures {
				return err
			}
		}
		d := c.opts.PollInterval
		if ra := providers.RetryAfter(err); ra > d {
			d = ra
		}
		if serr := c.clk.Sleep(ctx, d); serr != nil {
			if err != nil {
				return fmt.Errorf("%w (gave up waiting: %v)", err, serr)
			}
			return serr
		}
	}
}

// maxPollFailures is how many retryable errors in a row a wait survives.
const maxPollFailures = 5

// chunks splits ids into slices of at most n.
func chunks(ids []string, n int) [][]string {
	var out [][]string
	for len(ids) > n {
		out = append(out, ids[:n])
		ids = ids[n:]
	}
	if len(ids) > 0 {
		out = append(out, ids)
	}
	return out
}

func filter(name string, values ...string) ec2types.Filter {
	return ec2types.Filter{Name: sdk.String(name), Values: values}
}

// tagFilters turns tags into tag:K=V filters.
func tagFilters(tags providers.Tags) []ec2types.Filter {
	var out []ec2types.Filter
	for _, k := range tags.Sorted() {
		out = append(out, filter("tag:"+k, tags[k]))
	}
	return out
}

func tagMap(ts []ec2types.Tag) map[string]string {
	if len(ts) == 0 {
		return nil
	}
	out := make(map[string]string, len(ts))
	for _, t := range ts {
		out[sdk.ToString(t.Key)] = sdk.ToString(t.Value)
	}
	return out
}

func tagSpec(rt ec2types.ResourceType, tags providers.Tags) ec2types.TagSpecification {
	spec := ec2types.TagSpecification{ResourceType: rt}
	for _, k := range tags.Sorted() {
		spec.Tags = append(spec.Tags, ec2types.Tag{Key: sdk.String(k), Value: sdk.String(tags[k])})
	}
	return spec
}

// describeInstances returns the instances matching filters, all pages.
// ids are passed as an instance-id filter (missing ones are simply absent).
func (c *core) describeInstances(ctx context.Context, rg *regional, op, res string, ids []string, fs ...ec2types.Filter) ([]ec2types.Instance, error) {
	var out []ec2types.Instance
	run := func(fs []ec2types.Filter) error {
		in := &ec2.DescribeInstancesInput{Filters: fs, MaxResults: sdk.Int32(1000)}
		bucket := bucketNonMutating
		if len(fs) == 0 {
			bucket = bucketUnfiltered
		}
		for {
			var page *ec2.DescribeInstancesOutput
			err := c.call(ctx, rg, bucket, op, res, func(ctx context.Context) (err error) {
				page, err = rg.ec2.DescribeInstances(ctx, in)
				return err
			})
			if err != nil {
				return err
			}
			for _, r := range page.Reservations {
				out = append(out, r.Instances...)
			}
			if sdk.ToString(page.NextToken) == "" {
				return nil
			}
			in.NextToken = page.NextToken
		}
	}
	if len(ids) == 0 {
		return out, run(fs)
	}
	for _, ch := range chunks(ids, maxFilterValues) {
		if err := run(append([]ec2types.Filter{filter("instance-id", ch...)}, fs...)); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// instance returns one instance; ErrNotFound if it does not exist or is
// terminated.
func (c *core) instance(ctx context.Context, op string, vm providers.VMRef) (*regional, ec2types.Instance, error) {
	res := "vm " + vm.String()
	rg, err := c.region(op, res, firstNonEmpty(vm.Region, vm.Zone))
	if err != nil {
		return nil, ec2types.Instance{}, err
	}
	is, err := c.describeInstances(ctx, rg, op, res, []string{vm.ID})
	if err != nil {
		return rg, ec2types.Instance{}, err
	}
	for _, i := range is {
		if gone(i) {
			continue
		}
		return rg, i, nil
	}
	return rg, ec2types.Instance{}, providers.Errorf(providers.ErrNotFound, op, res, "no such instance in %s", rg.region)
}

func gone(i ec2types.Instance) bool {
	if i.State == nil {
		return false
	}
	return i.State.Name == ec2types.InstanceStateNameTerminated || i.State.Name == ec2types.InstanceStateNameShuttingDown
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}
