package brake

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/pace"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
)

// State is a circuit breaker's state.
type State int

// Breaker states.
const (
	// Closed: calls flow.
	Closed State = iota
	// Open: no call may start until the cool-down has passed.
	Open
	// HalfOpen: one probe call is let through; its result closes or
	// re-opens the breaker.
	HalfOpen
)

func (s State) String() string {
	switch s {
	case Closed:
		return "closed"
	case Open:
		return "open"
	case HalfOpen:
		return "half-open"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Outcome is how one call went, as the breaker sees the control plane.
type Outcome int

// Call outcomes.
const (
	// Success: the control plane answered (even if the answer was "no").
	Success Outcome = iota
	// APIError: the control plane failed (unavailable or throttled).
	APIError
	// Neutral: the call says nothing about the control plane (the guest
	// did not answer, the caller was cancelled).
	Neutral
)

// Classify maps a call's error to an Outcome:
//   - nil, and every error other than those below: Success (the control
//     plane answered; a step failing for its own reasons is not an outage);
//   - providers.ErrUnavailable or providers.ErrThrottled: APIError;
//   - guest.Transient (unreachable, busy, shell lost), context.Canceled,
//     context.DeadlineExceeded: Neutral (a guest or the caller, not the
//     control plane).
func Classify(err error) Outcome {
	switch {
	case err == nil:
		return Success
	case errors.Is(err, providers.ErrUnavailable), errors.Is(err, providers.ErrThrottled):
		return APIError
	case guest.Transient(err), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.Is(err, pace.ErrStale):
		return Neutral
	}
	return Success
}

// Change describes a state change, for OnChange.
type Change struct {
	From, To State
	At       time.Time
	// CoolDown is how long the breaker stays open (To == Open).
	CoolDown time.Duration
	// Reason says why, in words an operator reads (no secrets: it only
	// holds counts and durations).
	Reason string
}

// BreakerConfig configures a Breaker. Zero fields take the defaults.
type BreakerConfig struct {
	// Threshold opens the breaker when the share of API errors among the
	// last Window calls exceeds it (0 < x <= 1; default 0.5; the plan's
	// policy.api_error_threshold).
	Threshold float64
	// Window is the number of most recent calls the rate is taken over
	// (default 20).
	Window int
	// MinCalls is the number of calls in the window before the rate counts
	// (default 10).
	MinCalls int
	// Consecutive opens the breaker after this many API errors in a row,
	// whatever the rate (default 5).
	Consecutive int
	// CoolDown is the first open period (default 30s); each failed probe
	// doubles it up to MaxCoolDown (default 10m).
	CoolDown    time.Duration
	MaxCoolDown time.Duration
	// Poll is how often a waiting caller looks again while a probe is out
	// (default 1s of clock time).
	Poll time.Duration
	// Clock is the time source (default clock.Real).
	Clock clock.Clock
	// OnChange, if set, is called after every state change, outside the
	// breaker's lock, possibly from many goroutines.
	OnChange func(Change)
}

func (c BreakerConfig) withDefaults() BreakerConfig {
	if !(c.Threshold > 0 && c.Threshold <= 1) {
		c.Threshold = 0.5
	}
	if c.Window <= 0 {
		c.Window = 20
	}
	if c.MinCalls <= 0 {
		c.MinCalls = 10
	}
	c.MinCalls = min(c.MinCalls, c.Window)
	if c.Consecutive <= 0 {
		c.Consecutive = 5
	}
	if c.CoolDown <= 0 {
		c.CoolDown = 30 * time.Second
	}
	if c.MaxCoolDown < c.CoolDown {
		c.MaxCoolDown = max(10*time.Minute, c.CoolDown)
	}
	if c.Poll <= 0 {
		c.Poll = time.Second
	}
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	return c
}

// Breaker is a circuit breaker for one control plane. Every call first
// takes a Ticket (Acquire), which waits while the breaker is open, and
// reports its result with Ticket.Done. Safe for concurrent use.
//
// Closed, it counts the results of the last Window calls; when the API
// error share exceeds Threshold (after MinCalls) or Consecutive
// API errors arrive in a row, it opens for CoolDown. Then it goes
// half-open and lets one call through as a probe: success closes it (and
// resets the cool-down), an API error re-opens it for twice the previous
// cool-down (capped at MaxCoolDown), a Neutral result lets another probe
// through. Results of calls that started before the breaker opened are
// ignored while it is open or half-open.
type Breaker struct {
	cfg BreakerConfig

	mu          sync.Mutex
	state       State
	ring        []bool // true = API error; the last len(ring) <= Window results
	next        int    // ring write position once full
	consecutive int
	openUntil   time.Time
	cool        time.Duration
	probing     bool
	openings    int
	candidates  []*candidate // callers drawing for the probe
	results     []*result    // results waiting to be counted
	seq         uint64
}

// NewBreaker returns a closed breaker.
func NewBreaker(cfg BreakerConfig) *Breaker {
	cfg = cfg.withDefaults()
	return &Breaker{cfg: cfg, cool: cfg.CoolDown}
}

// State returns the current state.
func (b *Breaker) State() State {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

// Openings returns how many times the breaker has opened (re-openings
// after a failed probe included).
func (b *Breaker) Openings() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.openings
}

// Ticket is the permission for one call. Report its result with Done.
type Ticket struct {
	b     *Breaker
	key   string
	probe bool
	once  sync.Once
	after State
}

// Probe reports whether this call is the half-open breaker's probe.
func (t *Ticket) Probe() bool { return t.probe }

// Acquire waits until a call may start: at once when closed; while open,
// until the cool-down has passed and this caller gets the probe, or until
// a probe has closed the breaker. It returns ctx's error if ctx ends
// first. The caller must call Done on the ticket exactly once (further
// calls are ignored); a probe ticket never Done would hold the breaker
// half-open.
//
// key names the caller (its VM). The probe goes to the earliest caller
// once it may go out; among callers asking at one instant, to the least
// key, whatever order their goroutines ran in: a caller first waits
// clock.Settle on the clock, so that every caller of its instant has asked
// (on virtual time goroutines woken at one instant run in any order).
func (b *Breaker) Acquire(ctx context.Context, key string) (*Ticket, error) {
	for {
		var wait time.Duration
		b.mu.Lock()
		now := b.cfg.Clock.Now()
		switch {
		case b.state == Closed:
			b.mu.Unlock()
			return &Ticket{b: b, key: key}, nil
		case b.probeFreeLocked(now):
			b.seq++
			c := &candidate{at: now, key: key, seq: b.seq}
			b.candidates = append(b.candidates, c)
			b.mu.Unlock()
			t, err := b.drawProbe(ctx, c)
			if t != nil || err != nil {
				return t, err
			}
			continue // another caller has the probe: wait for its result
		case b.state == Open:
			wait = min(b.openUntil.Sub(now), b.cfg.Poll)
		default: // half-open, probe out
			wait = b.cfg.Poll
		}
		b.mu.Unlock()
		if err := b.cfg.Clock.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// AwaitClosed waits until the breaker is closed, never taking the probe:
// for background calls that must not hold a half-open breaker for as long
// as they run (a snapshot waited for over minutes), nor hammer a control
// plane that is down. Their outcomes are not recorded. It returns ctx's
// error if ctx ends first.
func (b *Breaker) AwaitClosed(ctx context.Context) error {
	for b.State() != Closed {
		if err := b.cfg.Clock.Sleep(ctx, b.cfg.Poll); err != nil {
			return err
		}
	}
	return nil
}

// candidate is a caller asking for the probe.
type candidate struct {
	at  time.Time
	key string
	seq uint64 // order asked, only to keep the order total
	won bool
}

// probeFreeLocked reports whether a probe may go out now. Caller holds mu.
func (b *Breaker) probeFreeLocked(now time.Time) bool {
	switch b.state {
	case Open:
		return !now.Before(b.openUntil)
	case HalfOpen:
		return !b.probing
	}
	return false
}

// drawProbe waits clock.Settle, then gives the probe, if it is still free,
// to the first candidate that asked before now (the earliest, then the
// least key), and says whether c won it: c's probe ticket, or nil when c
// lost (it then waits as any caller does).
func (b *Breaker) drawProbe(ctx context.Context, c *candidate) (*Ticket, error) {
	err := b.cfg.Clock.Sleep(ctx, clock.Settle)
	var ch *Change
	b.mu.Lock()
	now := b.cfg.Clock.Now()
	if err == nil && b.probeFreeLocked(now) {
		cutoff := now
		if due := c.at.Add(clock.Settle); due.After(cutoff) {
			cutoff = due // a clock set back: c itself is due
		}
		var first *candidate
		for _, o := range b.candidates {
			if o.at.Before(cutoff) && (first == nil || o.before(first)) {
				first = o
			}
		}
		if b.state == Open {
			ch = b.setLocked(HalfOpen, now, "cool-down over; letting one call through as a probe")
		}
		b.probing, first.won = true, true
	}
	b.candidates = slices.DeleteFunc(b.candidates, func(o *candidate) bool { return o == c })
	if err != nil && c.won {
		b.probing = false // drawn for c, which gave up: the probe is free again
	}
	won := c.won
	b.mu.Unlock()
	b.notify(ch)
	switch {
	case err != nil:
		return nil, err
	case won:
		return &Ticket{b: b, key: c.key, probe: true}, nil
	}
	return nil, nil
}

func (c *candidate) before(o *candidate) bool {
	if d := c.at.Compare(o.at); d != 0 {
		return d < 0
	}
	if d := cmp.Compare(c.key, o.key); d != 0 {
		return d < 0
	}
	return c.seq < o.seq
}

// Done records the call's result (its error, classified by Classify) and
// returns the breaker's state after it. Idempotent: only the first call
// counts.
//
// The results of one instant count in the order of their callers' keys,
// not in the order their goroutines ran: Done waits clock.Settle on the clock,
// so that every result of its instant has come, and the breaker then takes
// them by key (the run of errors in a row, an opening, and the state each
// caller is told depend on that order).
func (t *Ticket) Done(err error) State {
	t.once.Do(func() { t.after = t.b.record(t.key, t.probe, Classify(err)) })
	return t.after
}

// result is a call's result waiting to be counted.
type result struct {
	at    time.Time
	key   string
	seq   uint64 // order reported, only to keep the order total
	probe bool
	o     Outcome
	after State // once counted
}

func (b *Breaker) record(key string, probe bool, o Outcome) State {
	b.mu.Lock()
	b.seq++
	r := &result{at: b.cfg.Clock.Now(), key: key, seq: b.seq, probe: probe, o: o}
	b.results = append(b.results, r)
	b.mu.Unlock()
	// A wait of clock.Settle cannot be cut short by a context: the result must
	// count.
	_ = b.cfg.Clock.Sleep(context.Background(), clock.Settle)
	b.mu.Lock()
	cutoff := b.cfg.Clock.Now()
	if due := r.at.Add(clock.Settle); due.After(cutoff) {
		cutoff = due // a clock set back: r itself is due
	}
	var due []*result
	b.results = slices.DeleteFunc(b.results, func(x *result) bool {
		if x.at.Before(cutoff) {
			due = append(due, x)
			return true
		}
		return false
	})
	slices.SortFunc(due, func(x, y *result) int {
		return cmp.Or(x.at.Compare(y.at), cmp.Compare(x.key, y.key), cmp.Compare(x.seq, y.seq))
	})
	var changes []*Change
	for _, x := range due {
		if ch := b.countLocked(x.at, x.probe, x.o); ch != nil {
			changes = append(changes, ch)
		}
		x.after = b.state
	}
	st := r.after
	b.mu.Unlock()
	for _, ch := range changes {
		b.notify(ch)
	}
	return st
}

// countLocked counts one result that came at now. Caller holds mu.
func (b *Breaker) countLocked(now time.Time, probe bool, o Outcome) *Change {
	var ch *Change
	switch {
	case probe:
		b.probing = false
		switch o {
		case Success:
			ch = b.setLocked(Closed, now, "the probe call succeeded; the control plane answers again")
			b.cool = b.cfg.CoolDown
			b.ring, b.next, b.consecutive = b.ring[:0], 0, 0
		case APIError:
			b.cool = min(2*b.cool, b.cfg.MaxCoolDown)
			ch = b.openLocked(now, "the probe call failed")
		}
	case b.state != Closed:
		// A call that started before the breaker opened: its result says
		// nothing new.
	case o == Neutral:
	default:
		bad := o == APIError
		if len(b.ring) < b.cfg.Window {
			b.ring = append(b.ring, bad)
		} else {
			b.ring[b.next] = bad
			b.next = (b.next + 1) % b.cfg.Window
		}
		if bad {
			b.consecutive++
		} else {
			b.consecutive = 0
		}
		errs := 0
		for _, e := range b.ring {
			if e {
				errs++
			}
		}
		switch {
		case b.consecutive >= b.cfg.Consecutive:
			ch = b.openLocked(now, fmt.Sprintf("%d API errors in a row", b.consecutive))
		case len(b.ring) >= b.cfg.MinCalls && float64(errs)/float64(len(b.ring)) > b.cfg.Threshold:
			ch = b.openLocked(now, fmt.Sprintf("%d of the last %d API calls failed (threshold %.0f%%)",
				errs, len(b.ring), 100*b.cfg.Threshold))
		}
	}
	return ch
}

func (b *Breaker) openLocked(now time.Time, reason string) *Change {
	b.openUntil = now.Add(b.cool)
	b.openings++
	ch := b.setLocked(Open, now, fmt.Sprintf("%s; pausing new calls for %s", reason, b.cool))
	ch.CoolDown = b.cool
	return ch
}

func (b *Breaker) setLocked(to State, now time.Time, reason string) *Change {
	ch := &Change{From: b.state, To: to, At: now, Reason: reason}
	b.state = to
	return ch
}

func (b *Breaker) notify(ch *Change) {
	if ch != nil && b.cfg.OnChange != nil {
		b.cfg.OnChange(*ch)
	}
}
