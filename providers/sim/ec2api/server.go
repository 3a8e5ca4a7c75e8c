// Package ec2api is the simulated world's AWS face: a loopback HTTP
// emulator of the parts of the EC2 API (Query protocol, XML responses, API
// version 2016-11-15), the SSM API (JSON 1.1, X-Amz-Target) and the STS API
// (GetCallerIdentity, AssumeRole) that fixfleet's AWS provider calls,
// answered from a world.World.
//
// One world, many faces: the same world the in-process sim provider acts on
// is served here, so that providers/aws, with the real aws-sdk-go-v2
// clients, is tested over HTTP against it.
//
// Mapping:
//   - The caller's access key ID (from the SigV4 Authorization header, whose
//     signature is not verified) names a world account: through
//     Options.Keys, or, when absent there, the access key ID is the account
//     name itself. AssumeRole on a role ARN of a world account's AWS
//     account ID (AccountID) returns temporary keys of that account.
//   - The SigV4 credential scope's region selects the world zones whose name
//     starts with it (generate the world with AWS zone names such as
//     ap-northeast-1a via world.GenOptions.Zones).
//   - Images are regional: the world's images are made so (RegionalImages),
//     and each region has one AMI per Windows release (AMI), named as
//     Amazon names its Windows AMIs. DescribeAvailabilityZones lists the
//     world's zones of the region.
//   - World VMs and helpers, disks, snapshots and backups show under IDs in
//     EC2's formats (ID: i-, vol-, snap- and 17 hex digits); world backups
//     appear as completed snapshots of their VM's first-seen root volume.
//   - Every EC2 request takes a token from the published bucket of its
//     action, per account+region, on the world's clock (Options.Throttle);
//     an empty bucket answers HTTP 503 RequestLimitExceeded as EC2 does. The
//     world's own fault gate still applies to each world call (its throttle
//     model, latency, 5xx, dropped connections before or after the change,
//     outages) and its call counters still count.
package ec2api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/bucket"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// APIVersion is the EC2 API version the emulator speaks.
const APIVersion = "2016-11-15"

// Options tune the emulator.
type Options struct {
	// Keys maps access key IDs to world accounts. A key not listed is taken
	// as the account name itself (static credentials "sim"/anything act as
	// world account "sim").
	Keys map[string]string
	// NoThrottle turns the emulator's own EC2 token buckets off (the world's
	// throttle model still applies).
	NoThrottle bool
	// ExternalID, when set, is required by AssumeRole (as an MSP's customer
	// role trust policy requires it).
	ExternalID string
	// SSMUnavailable answers every SSM call HTTP 500 InternalServerError,
	// as during an SSM outage (EC2 and STS still answer).
	SSMUnavailable bool
}

// Stats are the emulator's counters.
type Stats struct {
	// Calls counts requests per action (EC2, SSM and STS), including
	// refused ones.
	Calls map[string]int `json:"calls"`
	// Throttled counts requests answered RequestLimitExceeded (the
	// emulator's buckets or the world's throttle model).
	Throttled int `json:"throttled"`
	// Errors counts other error responses; Dropped counts connections
	// reset without a response (the world's drop faults).
	Errors  int `json:"errors"`
	Dropped int `json:"dropped"`
	// Instances counts, per action that takes many instance IDs
	// (StopInstances, StartInstances), the instances its requests named:
	// against Calls it shows how much batching saved.
	Instances map[string]int `json:"instances"`
}

// Total is the number of requests served.
func (s Stats) Total() int {
	n := 0
	for _, c := range s.Calls {
		n += c
	}
	return n
}

// Server is a running emulator on a loopback address.
type Server struct {
	w    *world.World
	opts Options
	ln   net.Listener
	srv  *http.Server
	once sync.Once

	mu         sync.Mutex
	stats      Stats
	buckets    map[string]*bucket.Bucket
	tempKeys   map[string]string // AssumeRole keys -> account
	acctIDs    map[string]string // AWS account ID -> world account
	helpers    map[string]*helperRec
	tokens     map[string]string // "terminated:"+instance -> instance (client tokens live in the world)
	devices    map[string]string // volume -> device of its data attachment
	detaching  map[string]string // volume -> instance it is detaching from
	rootOf     map[string]string // fleet instance -> first-seen root volume
	backupVol  map[string]string // backup (snapshot) ID -> volume
	amiRelease map[string]string // AMI ID shown -> Windows release
	ids        *idMap
}

type helperRec struct {
	id, zone, release, imageID, name string
	tags                             map[string]string
	rootVol, ip                      string
	launched                         time.Time
}

// Start serves the emulator of w on listen, which must be a loopback
// address ("127.0.0.1:0", "[::1]:8781", "localhost:8781"), until Close.
func Start(w *world.World, listen string, opts Options) (*Server, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("ec2api: listen address %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); !strings.EqualFold(host, "localhost") && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("ec2api: listen address %q: the emulator serves loopback only (127.0.0.1, ::1, localhost)", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("ec2api: %w", err)
	}
	return Serve(w, ln, opts), nil
}

// Serve serves the emulator of w on ln (any listener, e.g. an in-memory
// network's inside a testing/synctest bubble) until Close, which closes
// ln.
func Serve(w *world.World, ln net.Listener, opts Options) *Server {
	s := New(w, opts)
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

// New returns an emulator of w that is not listening: serve it as an
// http.Handler (Start does). URL and Close need Start.
func New(w *world.World, opts Options) *Server {
	s := &Server{w: w, opts: opts, buckets: map[string]*bucket.Bucket{}, tempKeys: map[string]string{},
		acctIDs: map[string]string{}, helpers: map[string]*helperRec{}, tokens: map[string]string{},
		devices: map[string]string{}, detaching: map[string]string{}, rootOf: map[string]string{},
		backupVol: map[string]string{}, amiRelease: map[string]string{}, stats: Stats{Calls: map[string]int{}}}
	// An AMI launches in every zone of its region: so must the world's
	// images.
	w.RegionalImages(RegionOf)
	s.ids = newIDMap(w)
	// A guest sees an EBS volume under its volume ID.
	w.UseDiskSerials(func(id string) string { return ec2ID(kindVolume, id) })
	for _, a := range w.Accounts() {
		s.acctIDs[AccountID(a)] = a
	}
	return s
}

// WorldID returns the world ID behind an EC2 instance, volume or snapshot
// ID the emulator showed.
func (s *Server) WorldID(id string) (string, bool) {
	w := s.ids.in(id)
	return w, w != id
}

// AMI is the ID of a region's AMI of a Windows release ("ami-" and 17 hex
// digits, derived from both).
func AMI(region, release string) string { return "ami-" + hex17("ami|"+region+"|"+release) }

// hex17 is 17 lowercase hex digits derived from key (the length of
// today's EC2 resource IDs).
func hex17(key string) string {
	h := sha256.Sum256([]byte(key))
	return hex.EncodeToString(h[:9])[:17]
}

// AccountID is the 12-digit AWS account ID the emulator gives world account
// a (stable: derived from its name).
func AccountID(a string) string {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(a); i++ {
		h ^= uint64(a[i])
		h *= 1099511628211
	}
	return fmt.Sprintf("%012d", h%1_000_000_000_000)
}

// URL is the endpoint to give the SDK clients (BaseEndpoint).
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() }

// Close stops the server at once. Idempotent.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		if s.srv != nil {
			err = s.srv.Close()
		}
	})
	return err
}

// Stats returns a copy of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.stats
	out.Calls = maps.Clone(s.stats.Calls)
	out.Instances = maps.Clone(s.stats.Instances)
	if out.Instances == nil {
		out.Instances = map[string]int{}
	}
	return out
}

// countInstances records that a request of action named n instances.
func (s *Server) countInstances(action string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stats.Instances == nil {
		s.stats.Instances = map[string]int{}
	}
	s.stats.Instances[action] += n
}

// Regions are the AWS regions of the world's zones, sorted.
func Regions(w *world.World) []string {
	seen := map[string]bool{}
	var out []string
	for _, z := range w.Zones() {
		r := RegionOf(z)
		if !seen[r] {
			seen[r] = true
			out = append(out, r)
		}
	}
	sort.Strings(out)
	return out
}

// RegionOf is the region of an AWS availability zone name (the zone without
// its last letter: ap-northeast-1a -> ap-northeast-1).
func RegionOf(zone string) string {
	if n := len(zone); n > 1 && zone[n-1] >= 'a' && zone[n-1] <= 'z' {
		return zone[:n-1]
	}
	return zone
}

// request is one parsed call.
type request struct {
	account, region, service, key string
	action                        string
	form                          url.Values
	body                          []byte
	id                            string
	zones                         []string // world zones in region
}

// apiError is an error response in EC2's terms.
type apiError struct {
	status  int
	code    string
	message string
	drop    bool
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	q := &request{id: newRequestID()}
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return
	}
	q.body = body
	target := r.Header.Get("X-Amz-Target")
	if target == "" {
		form, err := url.ParseQuery(string(body))
		if err != nil {
			s.fail(rw, q, errf(400, "MalformedQueryString", "cannot parse the request body"))
			return
		}
		for k, v := range r.URL.Query() {
			form[k] = v
		}
		q.form = form
		q.action = form.Get("Action")
	} else {
		_, q.action, _ = strings.Cut(target, ".")
	}
	s.count(q.action)
	if aerr := s.authenticate(r, q); aerr != nil {
		s.fail(rw, q, aerr)
		return
	}
	if q.form != nil {
		s.ids.importForm(q.form)
	}
	var out any
	var aerr *apiError
	switch {
	case target != "":
		if !strings.HasPrefix(target, "AmazonSSM.") {
			aerr = errf(400, "UnknownOperationException", "unknown target %q", target)
			break
		}
		s.serveSSM(rw, world.OneRequest(r.Context()), q)
		return
	case q.service == "sts" || q.form.Get("Version") == "2011-06-15":
		out, aerr = s.sts(q)
	default:
		if v := q.form.Get("Version"); v != APIVersion {
			aerr = errf(400, "InvalidParameterValue", "API version %q is not supported; this emulator speaks %s", v, APIVersion)
			break
		}
		out, aerr = s.ec2(world.OneRequest(r.Context()), q)
	}
	if aerr != nil {
		s.fail(rw, q, aerr)
		return
	}
	rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	rw.Header().Set("X-Amzn-Requestid", q.id)
	_, _ = io.WriteString(rw, xml.Header)
	enc := xml.NewEncoder(rw)
	_ = enc.Encode(s.ids.exported(out))
}

func (s *Server) count(action string) {
	if action == "" {
		action = "(none)"
	}
	s.mu.Lock()
	s.stats.Calls[action]++
	s.mu.Unlock()
}

// authenticate reads the SigV4 credential scope: access key, region,
// service; and maps the key to a world account.
func (s *Server) authenticate(r *http.Request, q *request) *apiError {
	auth := r.Header.Get("Authorization")
	_, cred, ok := strings.Cut(auth, "Credential=")
	if !ok {
		return errf(401, "AuthFailure", "the request is not signed (no SigV4 Authorization header)")
	}
	cred, _, _ = strings.Cut(cred, ",")
	parts := strings.Split(cred, "/")
	if len(parts) != 5 || parts[4] != "aws4_request" {
		return errf(401, "AuthFailure", "malformed SigV4 credential scope")
	}
	q.key, q.region, q.service = parts[0], parts[2], parts[3]
	s.mu.Lock()
	acct, ok := s.tempKeys[q.key]
	s.mu.Unlock()
	if !ok {
		acct, ok = s.opts.Keys[q.key]
	}
	if !ok {
		acct = q.key
	}
	known := false
	for _, a := range s.w.Accounts() {
		if a == acct {
			known = true
		}
	}
	if !known {
		return errf(401, "AuthFailure", "AWS was not able to validate the provided access credentials")
	}
	q.account = acct
	for _, z := range s.w.Zones() {
		if RegionOf(z) == q.region {
			q.zones = append(q.zones, z)
		}
	}
	if len(q.zones) == 0 && q.service != "sts" {
		return errf(401, "AuthFailure", "region %q is not served here; regions are %s", q.region, strings.Join(Regions(s.w), ", "))
	}
	return nil
}

// throttle takes a token from q's bucket; false when it is empty (see
// package bucket for the calls of one instant).
func (s *Server) throttle(q *request, name string, b timing.Bucket) bool {
	if s.opts.NoThrottle {
		return true
	}
	key := q.account + "|" + q.region + "|" + name
	s.mu.Lock()
	defer s.mu.Unlock()
	lim := s.buckets[key]
	if lim == nil {
		lim = bucket.New(b.Size, b.Refill)
		s.buckets[key] = lim
	}
	_, ok := lim.Take(s.w.Clock().Now())
	return ok
}

// ec2Error is EC2's error document.
type ec2Error struct {
	XMLName xml.Name `xml:"Response"`
	Errors  []struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	} `xml:"Errors>Error"`
	RequestID string `xml:"RequestID"`
}

// fail answers an error, or drops the connection for a drop fault.
func (s *Server) fail(rw http.ResponseWriter, q *request, e *apiError) {
	e.message = s.ids.text(e.message)
	s.mu.Lock()
	switch {
	case e.drop:
		s.stats.Dropped++
	case e.code == "RequestLimitExceeded" || e.code == "ThrottlingException" || e.code == "Throttling":
		s.stats.Throttled++
	default:
		s.stats.Errors++
	}
	s.mu.Unlock()
	if e.drop {
		if conn, _, err := http.NewResponseController(rw).Hijack(); err == nil {
			if tc, ok := conn.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
	}
	rw.Header().Set("X-Amzn-Requestid", q.id)
	if q.form == nil { // SSM: JSON 1.1 errors
		rw.Header().Set("Content-Type", "application/x-amz-json-1.1")
		rw.Header().Set("X-Amzn-Errortype", e.code)
		rw.WriteHeader(e.status)
		_, _ = fmt.Fprintf(rw, `{"__type":%q,"message":%q}`, e.code, e.message)
		return
	}
	rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	rw.WriteHeader(e.status)
	if q.service == "sts" {
		_, _ = fmt.Fprintf(rw, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>%s</Code><Message>%s</Message></Error><RequestId>%s</RequestId></ErrorResponse>`,
			xmlEscape(e.code), xmlEscape(e.message), q.id)
		return
	}
	doc := ec2Error{RequestID: q.id}
	doc.Errors = append(doc.Errors, struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}{e.code, e.message})
	_, _ = io.WriteString(rw, xml.Header)
	_ = xml.NewEncoder(rw).Encode(doc)
}

func xmlEscape(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// fromWorld maps a world error to EC2's answer. kind names the resource
// type the NotFound code speaks of ("Instance", "Volume", "Snapshot",
// "AMI"); conflict is the code for a state conflict.
func fromWorld(err error, kind, conflict string) *apiError {
	if err == nil {
		return nil
	}
	if errors.Is(err, world.ErrDenied) {
		return errf(403, "UnauthorizedOperation", "You are not authorized to perform this operation.")
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &apiError{drop: true, status: 500, code: "InternalError", message: err.Error()}
		}
		return errf(500, "InternalError", "%v", err)
	}
	msg := pe.Resource + ": "
	if pe.Err != nil {
		msg += pe.Err.Error()
	}
	switch pe.Class {
	case providers.ErrThrottled:
		return errf(503, "RequestLimitExceeded", "Request limit exceeded.")
	case providers.ErrUnavailable:
		if errors.Is(err, world.ErrConnReset) {
			return &apiError{drop: true, status: 500, code: "InternalError", message: msg}
		}
		if errors.Is(err, world.ErrOutage) {
			return errf(503, "Unavailable", "The service is unavailable. Please try again shortly.")
		}
		return errf(500, "InternalError", "An internal error has occurred.")
	case providers.ErrNotFound:
		res := pe.Resource
		switch {
		case strings.HasPrefix(res, "vm "), strings.HasPrefix(res, "helper"):
			kind = "InstanceID"
		case strings.HasPrefix(res, "disk "):
			kind = "Volume"
		case strings.HasPrefix(res, "snapshot "), strings.HasPrefix(res, "backup "):
			kind = "Snapshot"
		}
		if kind == "Instance" {
			kind = "InstanceID"
		}
		return errf(400, "Invalid"+kind+".NotFound", "%s", msg)
	case providers.ErrConflict:
		return errf(400, conflict, "%s", msg)
	}
	return errf(400, "InvalidParameterValue", "%s", msg)
}
