package world

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/bucket"
)

// Throttle models.
const (
	ThrottleOff    = "off"
	ThrottleSimple = "simple"
	ThrottleEC2    = "ec2"
)

// bucketKind classifies an API action for throttling, after EC2's buckets.
type bucketKind int

const (
	bucketNonMutating    bucketKind = iota // filtered Describe*
	bucketDescribeAll                      // unfiltered Describe* (List)
	bucketMutating                         // Stop, Attach, Detach, Reboot, ...
	bucketSnapshotVolume                   // CreateSnapshot, CreateVolume
	bucketStartRun                         // StartInstances, RunInstances
)

func (k bucketKind) ec2() timing.Bucket {
	switch k {
	case bucketDescribeAll:
		return timing.EC2UnfilteredDescr
	case bucketMutating:
		return timing.EC2Mutating
	case bucketSnapshotVolume:
		return timing.EC2SnapshotVolume
	case bucketStartRun:
		return timing.EC2StartRunInstance
	}
	return timing.EC2NonMutating
}

type gateState struct {
	faults   Faults
	outageOn bool
	buckets  map[string]*bucket.Bucket
	load     loadMeter
	attempts map[string]*callCount // by op|res
	applied  map[string]int        // calls applied, by op (for Faults.DropReplies)

	calls      map[string]int
	throttled  int
	injected   int // 5xx and drops
	outageFail int

	guestInjected int // guest-path faults
	asyncFailed   int // attaches and detaches that failed after acceptance
}

func (g *gateState) init(f Faults) {
	g.faults = f.clone()
	g.buckets = map[string]*bucket.Bucket{}
	g.calls = map[string]int{}
	g.attempts = map[string]*callCount{}
	g.applied = map[string]int{}
}

// dropReply counts an applied call of op and reports whether
// Faults.DropReplies loses its reply. Caller holds mu.
func (g *gateState) dropReply(op string) bool {
	g.applied[op]++
	for _, d := range g.faults.DropReplies {
		if d.Op == op && d.Nth == g.applied[op] {
			return true
		}
	}
	return false
}

// callCount counts the calls of one operation on one resource.
type callCount struct {
	before int       // calls at instants before at
	at     time.Time // the last instant a call came
	atN    int       // calls at that instant
}

// callAttempt returns the attempt number that keys a call's draws: the
// number of identical calls (same op and resource) at earlier instants.
// Sequential calls get 0, 1, 2... on any clock; identical calls at one
// instant share a number and so draw alike, which makes it irrelevant
// which goroutine gets which (on virtual time, goroutine order decides).
func (g *gateState) callAttempt(key string, now time.Time) int {
	c := g.attempts[key]
	if c == nil {
		c = &callCount{at: now}
		g.attempts[key] = c
	}
	if !now.Equal(c.at) {
		c.before, c.at, c.atN = c.before+c.atN, now, 0
	}
	c.atN++
	return c.before
}

// SetFaults replaces the fault configuration at run time. Rates must be in
// [0,1]; an invalid configuration is an error and changes nothing.
func (w *World) SetFaults(f Faults) error {
	if errs := f.validate(); len(errs) > 0 {
		return fmt.Errorf("faults: %v", errs)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gate.faults = f.clone()
	return nil
}

// Faults returns the current fault configuration.
func (w *World) Faults() Faults {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.gate.faults.clone()
}

// SetOutage switches a control-plane outage on or off at run time (on top
// of the configured outage windows).
func (w *World) SetOutage(on bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gate.outageOn = on
}

// CallStats are the control plane's counters.
type CallStats struct {
	// Calls counts calls per operation, including refused ones.
	Calls map[string]int `json:"calls"`
	// Throttled counts calls refused with ErrThrottled.
	Throttled int `json:"throttled"`
	// Injected counts calls failed by an injected 5xx or dropped connection.
	Injected int `json:"injected"`
	// OutageFailures counts calls failed by an outage.
	OutageFailures int `json:"outage_failures"`
	// GuestInjected counts guest scripts failed, or whose connection
	// dropped, by an injected guest-path fault.
	GuestInjected int `json:"guest_injected"`
	// AsyncFailed counts accepted attaches and detaches that failed when
	// they completed.
	AsyncFailed int `json:"async_failed"`
	// Applied counts calls per operation whose change (or read) the world
	// applied, whether or not their reply arrived.
	Applied map[string]int `json:"applied,omitempty"`
}

// Stats returns the control plane's counters.
func (w *World) Stats() CallStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.statsLocked()
}

func (w *World) statsLocked() CallStats {
	c := make(map[string]int, len(w.gate.calls))
	for k, v := range w.gate.calls {
		c[k] = v
	}
	applied := make(map[string]int, len(w.gate.applied))
	for k, v := range w.gate.applied {
		applied[k] = v
	}
	return CallStats{Calls: c, Throttled: w.gate.throttled, Injected: w.gate.injected, OutageFailures: w.gate.outageFail,
		GuestInjected: w.gate.guestInjected, AsyncFailed: w.gate.asyncFailed, Applied: applied}
}

func (w *World) inOutage(now time.Time) bool {
	if w.gate.outageOn {
		return true
	}
	for _, o := range w.gate.faults.Outages {
		if !now.Before(o.From) && now.Before(o.Until) {
			return true
		}
	}
	return false
}

// APILimit is the per-account request limit the world's cloud documents,
// for a client to pace itself by: the one bucket of the simple throttling
// model. ok is false when the world does not throttle, or throttles as EC2
// does (a bucket per kind of call: pace as the AWS provider does).
func (w *World) APILimit() (b timing.Bucket, ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gate.faults.Throttle != ThrottleSimple {
		return timing.Bucket{}, false
	}
	return calib.SimpleBucket, true
}

// take takes one token from account's bucket for k, or says how long to
// wait for one. Caller holds mu.
func (w *World) take(account string, k bucketKind, now time.Time) (time.Duration, bool) {
	var b timing.Bucket
	key := account
	switch w.gate.faults.Throttle {
	case ThrottleSimple:
		b = calib.SimpleBucket
	case ThrottleEC2:
		b = k.ec2()
		key = fmt.Sprintf("%s/%d", account, k)
	default:
		return 0, true
	}
	tb := w.gate.buckets[key]
	if tb == nil {
		tb = bucket.New(b.Size, b.Refill)
		w.gate.buckets[key] = tb
	}
	return tb.Take(now)
}

// The causes the world gives, as the Err of an ErrUnavailable
// *providers.Error, for the control-plane faults it injects. An emulator
// tells them apart with errors.Is to answer as its cloud would: a dropped
// connection for ErrConnReset (and so for ErrReplyLost, which wraps it),
// the cloud's 503 for ErrOutage, its 500 for ErrInternal (an injected
// error before the change is made). After ErrReplyLost the call's change is
// made: an emulator finishes its own bookkeeping of it (names, IDs) before
// it drops the reply, as a cloud that committed the change would.
var (
	ErrOutage    = errors.New("HTTP 503: control plane unavailable (outage)")
	ErrInternal  = errors.New("HTTP 500: internal error")
	ErrConnReset = errors.New("connection reset by peer")
	ErrReplyLost = fmt.Errorf("%w (the request may have been applied)", ErrConnReset)
)

// ErrNotReady is the cause of a conflict over a disk or a snapshot still
// being created (errors.Is): the conflict's RetryAfter says when it is
// ready.
var ErrNotReady = errors.New("still being created")

// call runs one control-plane call: outage, throttling, latency (slept on
// the world's clock, outside the lock), injected 5xx and dropped
// connections, then apply under the lock. A drop after apply returns
// ErrUnavailable although apply's change stays. apply's error is returned
// as is.
func (w *World) call(ctx context.Context, account, op, res string, k bucketKind, apply func(now time.Time) error) error {
	w.mu.Lock()
	now := w.clk.Now()
	w.gate.calls[op]++
	if act, ok := opAction[op]; ok && w.denied(account, act) {
		w.mu.Unlock()
		return deniedErr(op, res, account, act)
	}
	if w.inOutage(now) {
		w.gate.outageFail++
		w.mu.Unlock()
		return &providers.Error{Class: providers.ErrUnavailable, Op: op, Resource: res, Err: ErrOutage}
	}
	rq, _ := ctx.Value(requestKey{}).(*request)
	if rq == nil || !rq.admitted {
		if wait, ok := w.take(account, k, now); !ok {
			w.gate.throttled++
			w.mu.Unlock()
			e := providers.Errorf(providers.ErrThrottled, op, res, "request limit exceeded for account %s", account)
			e.RetryAfter = wait
			return e
		}
		if rq != nil {
			rq.admitted = true
		}
	}
	f := w.gate.faults
	// The draws are keyed by the call (op, resource, attempt), the load by
	// calls begun strictly earlier: neither depends on goroutine order.
	n := w.gate.callAttempt(op+"|"+res, now)
	base := w.hashDur(timing.Of(timing.OpAPICall), "call", op, res, n)
	lat := time.Duration(float64(base) * f.Latency * (1 + calib.LoadPerInflight*float64(w.gate.load.inflight(now))))
	w.gate.load.begin(now.Add(lat))
	r := w.unit("fault", op, res, n)
	w.mu.Unlock()

	err := w.clk.Sleep(ctx, lat)

	w.mu.Lock()
	defer w.mu.Unlock()
	if err != nil {
		return err
	}
	switch {
	case r < f.ErrorRate:
		w.gate.injected++
		return &providers.Error{Class: providers.ErrUnavailable, Op: op, Resource: res, Err: ErrInternal}
	case r < f.ErrorRate+f.DropBeforeRate:
		w.gate.injected++
		return &providers.Error{Class: providers.ErrUnavailable, Op: op, Resource: res, Err: ErrConnReset}
	}
	if err := apply(w.clk.Now()); err != nil {
		return err
	}
	if w.gate.dropReply(op) || r < f.ErrorRate+f.DropBeforeRate+f.DropAfterRate {
		w.gate.injected++
		return &providers.Error{Class: providers.ErrUnavailable, Op: op, Resource: res, Err: ErrReplyLost}
	}
	return nil
}

type requestKey struct{}

// request is one API request an emulator serves with several control-plane
// calls of the world. admitted is guarded by World.mu.
type request struct{ admitted bool }

// OneRequest marks ctx as one request of a cloud's API that an emulator
// (sakuraapi, ec2api, azureapi) serves with several calls of the world
// made one after another (a read, then the change): the first of them
// takes the request's token from the account's bucket, or is throttled,
// and the later ones take none. A cloud throttles requests, not the work
// behind them: a request refused half-way, after its first call changed
// the world, would be a partial change no real cloud makes. Faults and
// latency still apply to every call.
func OneRequest(ctx context.Context) context.Context {
	return context.WithValue(ctx, requestKey{}, &request{})
}

// loadMeter counts the control-plane calls in flight at an instant: those
// begun strictly before it and not yet ended. Calls begun at the same
// instant do not count one another, so the count does not depend on the
// order in which they arrive. Caller holds the world's mu.
type loadMeter struct {
	at       time.Time
	arriving []time.Time // ends of the calls begun at at
	ends     endHeap     // ends of the calls begun before at
}

// inflight returns the number of calls in flight at now (>= every earlier
// now given).
func (m *loadMeter) inflight(now time.Time) int {
	if now.After(m.at) {
		for _, e := range m.arriving {
			heap.Push(&m.ends, e)
		}
		m.at, m.arriving = now, m.arriving[:0]
	}
	for m.ends.Len() > 0 && !m.ends[0].After(now) {
		heap.Pop(&m.ends)
	}
	return m.ends.Len()
}

// begin records a call begun at now that ends at end; call inflight(now)
// first.
func (m *loadMeter) begin(end time.Time) { m.arriving = append(m.arriving, end) }

// endHeap is a min-heap of end times.
type endHeap []time.Time

func (h endHeap) Len() int           { return len(h) }
func (h endHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h endHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *endHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *endHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
