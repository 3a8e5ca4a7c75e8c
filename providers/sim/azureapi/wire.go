package azureapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// request is one ARM request, parsed.
type request struct {
	rw      http.ResponseWriter
	r       *http.Request
	sub     string // subscription ID
	account string // world account
	kind    string // resource type (virtualMachines, disks, ...)
	name    string // resource name, "" for a list
	action  string // POST action or sub-resource ("deallocate", "instanceView")
}

// apiError is an ARM error answer, or a dropped connection.
type apiError struct {
	status     int
	code, msg  string
	retryAfter time.Duration
	drop       bool
}

func errf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, args...)}
}

// ServeHTTP routes a request.
func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, "/bootdiagnostics/") {
		s.serveBootDiag(rw, r)
		return
	}
	if s.serveEntra(rw, r) {
		return
	}
	seg := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	// Its world calls are throttled as one request.
	q := &request{rw: rw, r: r.WithContext(world.OneRequest(r.Context()))}
	if len(seg) < 2 || !strings.EqualFold(seg[0], "subscriptions") {
		s.fail(q, "Unknown", errf(404, "InvalidResourceType", "no such path %s", r.URL.Path))
		return
	}
	q.sub = seg[1]
	op, bucket, handler := s.route(q, seg)
	s.count(op)
	if a := r.Header.Get("Authorization"); !strings.HasPrefix(a, "Bearer ") || len(a) <= len("Bearer ") {
		s.fail(q, op, errf(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing or is not a bearer token."))
		return
	}
	s.mu.Lock()
	acct, ok := s.subs[q.sub]
	s.mu.Unlock()
	if !ok {
		s.fail(q, op, errf(404, "SubscriptionNotFound", "The subscription '%s' could not be found.", q.sub))
		return
	}
	q.account = acct
	if handler == nil {
		s.fail(q, op, errf(404, "InvalidResourceType", "the emulator does not serve %s %s", r.Method, r.URL.Path))
		return
	}
	if e := s.throttle(q, bucket); e != nil {
		s.fail(q, op, e)
		return
	}
	if e := handler(q); e != nil {
		s.fail(q, op, e)
	}
}

type handlerFunc func(q *request) *apiError

// route finds the operation name, ARM bucket and handler of a request.
func (s *Server) route(q *request, seg []string) (op, bucket string, h handlerFunc) {
	m := q.r.Method
	bucket = "reads"
	switch m {
	case http.MethodPut, http.MethodPatch, http.MethodPost:
		bucket = "writes"
	case http.MethodDelete:
		bucket = "deletes"
	}
	// /subscriptions/{s}/providers/Microsoft.Compute/{kind} (and Microsoft.Network/networkInterfaces:
	// canonKind names it, its op is "networkInterfaces.ListAll")
	// /subscriptions/{s}/providers/Microsoft.Compute/locations/{l}/operations|operationResults/{id}
	if len(seg) >= 5 && strings.EqualFold(seg[2], "providers") && (strings.EqualFold(seg[3], "Microsoft.Compute") || strings.EqualFold(seg[3], "Microsoft.Network")) {
		switch {
		case len(seg) == 5 && m == http.MethodGet:
			q.kind = canonKind(seg[4])
			return kindOp(q.kind) + ".ListAll", bucket, s.list
		case len(seg) == 8 && strings.EqualFold(seg[4], "locations") && m == http.MethodGet:
			q.name, q.action = seg[7], strings.ToLower(seg[6])
			return "Operations.Get", bucket, s.operation
		}
		return "Unknown", bucket, nil
	}
	// /subscriptions/{s}/resourceGroups/{rg}/providers/{ns}/{kind}/{name}[/{action}]
	if len(seg) < 8 || !strings.EqualFold(seg[2], "resourceGroups") || !strings.EqualFold(seg[4], "providers") {
		return "Unknown", bucket, nil
	}
	if !strings.EqualFold(seg[3], s.opts.ResourceGroup) {
		return "Unknown", bucket, func(*request) *apiError {
			return errf(404, "ResourceGroupNotFound", "Resource group '%s' could not be found.", seg[3])
		}
	}
	q.kind, q.name = canonKind(seg[6]), seg[7]
	if len(seg) == 9 {
		q.action = seg[8]
	}
	if strings.EqualFold(seg[5], "Microsoft.Network") && q.kind == "networkInterfaces" && m == http.MethodGet && len(seg) == 8 {
		return "NetworkInterfaces.Get", bucket, s.getNIC
	}
	if !strings.EqualFold(seg[5], "Microsoft.Compute") || len(seg) > 9 {
		return "Unknown", bucket, nil
	}
	name := kindOp(q.kind)
	switch {
	case len(seg) == 8 && m == http.MethodGet:
		return name + ".Get", bucket, s.get
	case len(seg) == 8 && m == http.MethodPut:
		return name + ".CreateOrUpdate", bucket, s.put
	case len(seg) == 8 && m == http.MethodPatch && q.kind == kindVMs:
		return name + ".Update", bucket, s.updateVM
	case len(seg) == 8 && m == http.MethodDelete && q.kind == kindVMs:
		return name + ".Delete", bucket, s.deleteVM
	case len(seg) == 8 && m == http.MethodDelete && q.kind == kindDisks:
		return name + ".Delete", bucket, s.deleteDisk
	case len(seg) == 9 && q.kind == kindVMs && m == http.MethodGet && strings.EqualFold(q.action, "instanceView"):
		return name + ".InstanceView", bucket, s.get
	case len(seg) == 9 && q.kind == kindVMs && m == http.MethodPost:
		return name + "." + actionOp(q.action), bucket, s.vmAction
	}
	return "Unknown", bucket, nil
}

// canonKind spells a resource type as ARM documents it.
func canonKind(k string) string {
	for _, c := range []string{kindVMs, kindDisks, kindSnapshots, kindImages, "networkInterfaces"} {
		if strings.EqualFold(k, c) {
			return c
		}
	}
	return k
}

// kindOp is the SDK client name of a resource type, for the call counters.
func kindOp(kind string) string {
	switch kind {
	case kindVMs:
		return "VirtualMachines"
	case kindDisks:
		return "Disks"
	case kindSnapshots:
		return "Snapshots"
	case kindImages:
		return "Images"
	}
	return kind
}

func actionOp(a string) string {
	switch strings.ToLower(a) {
	case "deallocate":
		return "Deallocate"
	case "poweroff":
		return "PowerOff"
	case "start":
		return "Start"
	case "restart":
		return "Restart"
	case "retrievebootdiagnosticsdata":
		return "RetrieveBootDiagnosticsData"
	case "runcommand":
		return "RunCommand"
	case "attachdetachdatadisks":
		return "AttachDetachDataDisks"
	}
	return a
}

func (s *Server) count(op string) {
	s.mu.Lock()
	s.stats.Calls[op]++
	s.mu.Unlock()
}

// throttle takes a token from the subscription's ARM bucket on the world's
// clock and reports what is left; an empty bucket answers 429.
func (s *Server) throttle(q *request, bucket string) *apiError {
	if s.opts.NoThrottle {
		return nil
	}
	now := s.w.Clock().Now()
	s.mu.Lock()
	key := q.sub + "/" + bucket
	l := s.buckets[key]
	if l == nil {
		b := ARMBuckets[bucket]
		l = rate.NewLimiter(rate.Limit(b.Refill), b.Size)
		s.buckets[key] = l
	}
	res := l.ReserveN(now, 1)
	delay := res.DelayFrom(now)
	if delay > 0 {
		res.CancelAt(now)
	}
	left := int(math.Max(0, l.TokensAt(now)))
	s.mu.Unlock()
	q.rw.Header().Set("x-ms-ratelimit-remaining-subscription-"+bucket, strconv.Itoa(left))
	if delay > 0 {
		return &apiError{status: 429, code: "TooManyRequests", retryAfter: delay,
			msg: fmt.Sprintf("Number of %s requests for subscription '%s' exceeded the limit. Please try again after %d seconds.", strings.TrimSuffix(bucket, "s"), q.sub, retrySeconds(delay))}
	}
	return nil
}

func retrySeconds(d time.Duration) int { return max(1, int(math.Ceil(d.Seconds()))) }

// fail answers an ARM error, or drops the connection for a drop fault.
func (s *Server) fail(q *request, op string, e *apiError) {
	s.mu.Lock()
	switch {
	case e.drop:
		s.stats.Dropped++
	case e.status == 429:
		s.stats.Throttled++
	default:
		s.stats.Errors++
	}
	s.mu.Unlock()
	if e.drop {
		if conn, _, err := http.NewResponseController(q.rw).Hijack(); err == nil {
			if tc, ok := conn.(interface{ NetConn() net.Conn }); ok {
				if t, ok := tc.NetConn().(*net.TCPConn); ok {
					_ = t.SetLinger(0)
				}
			}
			_ = conn.Close()
			return
		}
	}
	h := q.rw.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("x-ms-error-code", e.code)
	if e.retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(retrySeconds(e.retryAfter)))
	}
	q.rw.WriteHeader(e.status)
	body, _ := json.Marshal(map[string]any{"error": map[string]string{"code": e.code, "message": e.msg}})
	_, _ = q.rw.Write(body)
}

// reply answers status with v as JSON (no body if v is nil).
func reply(q *request, status int, v any) {
	q.rw.Header().Set("Content-Type", "application/json; charset=utf-8")
	q.rw.WriteHeader(status)
	if v != nil {
		_ = json.NewEncoder(q.rw).Encode(v)
	}
}

// fromWorld maps a world error to ARM's answer. Busy conflicts carry
// Retry-After.
func fromWorld(err error) *apiError {
	if err == nil {
		return nil
	}
	var pe *providers.Error
	if !errors.As(err, &pe) {
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return &apiError{drop: true}
		}
		return errf(500, "InternalServerError", "%v", err)
	}
	msg := pe.Resource
	if pe.Err != nil {
		msg += ": " + pe.Err.Error()
	}
	switch pe.Class {
	case providers.ErrThrottled:
		return &apiError{status: 429, code: "TooManyRequests", msg: "The request is being throttled.", retryAfter: pe.RetryAfter}
	case providers.ErrUnavailable:
		if errors.Is(err, world.ErrConnReset) {
			return &apiError{drop: true}
		}
		if errors.Is(err, world.ErrOutage) {
			return errf(503, "ServiceUnavailable", "The service is currently unavailable.")
		}
		return errf(500, "InternalServerError", "An internal server error occurred. Please retry the request.")
	case providers.ErrNotFound:
		return errf(404, "ResourceNotFound", "%s", msg)
	case providers.ErrConflict:
		return &apiError{status: 409, code: "OperationNotAllowed", msg: msg, retryAfter: pe.RetryAfter}
	}
	return errf(400, "BadRequest", "%s", msg)
}

// accepted answers a long-running operation that completes at until:
// status (201, 202 or 200) with body, and the Azure-AsyncOperation and
// Location headers to poll.
func (s *Server) accepted(q *request, status int, location string, until time.Time, body any) {
	s.mu.Lock()
	s.seq++
	id := fmt.Sprintf("%08x-0000-4000-8000-%012x", s.seq, s.seq)
	s.ops[id] = operation{account: q.account, until: until}
	s.mu.Unlock()
	base := s.base(q) + "/subscriptions/" + q.sub + "/providers/Microsoft.Compute/locations/" + location
	q.rw.Header().Set("Azure-AsyncOperation", base+"/operations/"+id+"?api-version="+q.r.URL.Query().Get("api-version"))
	q.rw.Header().Set("Location", base+"/operationResults/"+id+"?api-version="+q.r.URL.Query().Get("api-version"))
	if d := until.Sub(s.w.Clock().Now()); d > 0 {
		q.rw.Header().Set("Retry-After", strconv.Itoa(retrySeconds(d)))
	}
	reply(q, status, body)
}

func (s *Server) base(q *request) string { return "https://" + q.r.Host }

// operation answers an Azure-AsyncOperation status poll, or a Location
// poll (202 until done, then 200).
func (s *Server) operation(q *request) *apiError {
	s.mu.Lock()
	op, ok := s.ops[q.name]
	s.mu.Unlock()
	if !ok || op.account != q.account {
		return errf(404, "NotFound", "operation %s not found", q.name)
	}
	now := s.w.Clock().Now()
	done := !now.Before(op.until)
	if !done {
		q.rw.Header().Set("Retry-After", strconv.Itoa(retrySeconds(op.until.Sub(now))))
	}
	if q.action == "operationresults" {
		if !done {
			reply(q, 202, nil)
			return nil
		}
		reply(q, 200, nil)
		return nil
	}
	st := "InProgress"
	if done {
		st = "Succeeded"
	}
	reply(q, 200, map[string]any{"name": q.name, "status": st, "startTime": now.Format(time.RFC3339)})
	return nil
}
