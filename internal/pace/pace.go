// Package pace paces calls to a rate on a clock (a token bucket) and gives
// the calls that arrive at one instant their turns in the order of their
// keys, not in the order their goroutines happened to run.
//
// A first-come-first-served limiter (golang.org/x/time/rate's reservations)
// hands out its tokens in arrival order. On virtual time (a
// testing/synctest bubble) many calls share an instant and arrival order is
// goroutine order, which nothing fixes: which call goes at once and which
// waits a second would change from run to run. A real cloud gives no order
// to simultaneous calls either, so serving them by key costs nothing real.
//
// Contract:
//   - Over any span, calls go no faster than the rate with bursts of the
//     burst size (those of rate.Limiter).
//   - Every call waits clock.Settle on the clock before its turn is decided, so
//     that every call of its instant has arrived; then the calls of each
//     instant, earliest instant first, take their tokens in key order.
//   - Calls of one instant with equal keys are interchangeable: they take
//     one token each and all go at the latest of their turns.
//   - A call whose context ends before it goes gives its token back
//     (rate.Reservation.CancelAt) from the next instant on, and returns
//     the context's error.
//   - A call made under NotAfter(t) whose turn would come after t is not
//     made and takes no token: Wait returns ErrStale (a stop or restart
//     guarded by a check that would be stale when it goes out).
//   - A call made under Background yields: it takes its token only while
//     the calls already given a turn would leave it waiting at most
//     BackgroundBacklog; until then it waits, untaken, so that the calls of
//     work someone waits for are not queued behind work done ahead (an
//     apply's early snapshots). Background calls
//     take their tokens in the order they arrived, then key, after the
//     other calls. Once its Urgency is promoted at an instant, a call
//     is served from the next instant on as any other arriving then
//     (never at the promotion's own instant, whose calls may still be
//     arriving in any goroutine order).
package pace

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// Limiter paces calls. Use New; safe for concurrent use.
type Limiter struct {
	clk clock.Clock

	mu       sync.Mutex // never held while waiting
	lim      *rate.Limiter
	pending  []*call // arrived, turn not decided yet
	deferred []*call // background calls left waiting, in the order they are served
	seq      uint64
	last     time.Time // the latest instant a token was reserved at
	wake     time.Time // when the armed wake-up serves the deferred calls; zero: none
	bgAt     time.Time // the instant bgN background tokens were last taken at
	bgN      int
	cancels  []cancel // tokens to give back, from the next instant (applyCancels)
}

// cancel is a served call whose context ended before it went, at at.
type cancel struct {
	c  *call
	at time.Time
}

type call struct {
	at    time.Time
	key   string
	seq   uint64        // arrival order, only to keep the sort total
	urg   *Urgency      // background work until promoted; nil: not (or promoted and re-arrived)
	ready chan struct{} // background work: closed when served

	notAfter time.Time // NotAfter's limit; zero: none

	served bool
	stale  bool // served without a token: its turn would come after notAfter
	res    *rate.Reservation
	goAt   time.Time // decided when served
}

// Headroom is the share of a cloud's documented request rate that ForCloud
// leaves unused. A client paced exactly at the rate is refused whenever a
// call goes a moment after its token was due while the cloud's bucket was
// full: the cloud lost that moment's refill, the client's count did not.
const Headroom = 0.02

// ForCloud returns a Limiter for a cloud's documented bucket of size burst
// refilled at r tokens a second: it paces at (1-Headroom)·r, so that the
// cloud's own bucket never refuses a call it let go.
func ForCloud(clk clock.Clock, r rate.Limit, burst int) *Limiter {
	return New(clk, r*(1-Headroom), burst)
}

// BackgroundBacklog is the longest a call made under Background lets the
// calls before it make it wait: beyond that it waits untaken.
const BackgroundBacklog = 5 * time.Second

type backgroundKey struct{}

type notAfterKey struct{}

// ErrStale is Wait's error for a call made under NotAfter whose turn
// would come too late: it was not made.
var ErrStale = errors.New("the call's turn came after its caller's check went stale")

// NotAfter returns a context whose calls go out no later than t, or not at
// all (ErrStale).
func NotAfter(ctx context.Context, t time.Time) context.Context {
	return context.WithValue(ctx, notAfterKey{}, t)
}

// Urgency says whether, and since when, background work is waited for.
// Use NewUrgency; safe for concurrent use.
type Urgency struct {
	mu   sync.Mutex
	at   time.Time // zero: not promoted
	done chan struct{}
}

// NewUrgency returns an Urgency not promoted yet.
func NewUrgency() *Urgency { return &Urgency{done: make(chan struct{})} }

// Promote marks the work as waited for since at. Only the first call
// counts.
func (u *Urgency) Promote(at time.Time) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.at.IsZero() {
		u.at = at
		close(u.done)
	}
}

// before reports whether u was promoted before t, and when.
func (u *Urgency) before(t time.Time) (time.Time, bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.at, !u.at.IsZero() && u.at.Before(t)
}

// Background marks the calls made under the returned context as work done
// ahead, which nobody waits for yet, until u is promoted (someone waits
// for it now): they yield to the other calls (see the package's
// contract).
func Background(ctx context.Context, u *Urgency) context.Context {
	return context.WithValue(ctx, backgroundKey{}, u)
}

// New returns a Limiter of r calls a second with bursts of burst (at least
// 1), on clk.
func New(clk clock.Clock, r rate.Limit, burst int) *Limiter {
	return &Limiter{clk: clk, lim: rate.NewLimiter(r, max(burst, 1))}
}

// Wait blocks until the call named key may go, or returns ctx's error
// when ctx ends first.
func (l *Limiter) Wait(ctx context.Context, key string) error {
	l.mu.Lock()
	l.seq++
	c := &call{at: l.clk.Now(), key: key, seq: l.seq}
	if t, ok := ctx.Value(notAfterKey{}).(time.Time); ok {
		c.notAfter = t
	}
	if u, ok := ctx.Value(backgroundKey{}).(*Urgency); ok && u != nil {
		c.urg, c.ready = u, make(chan struct{})
	}
	l.pending = append(l.pending, c)
	l.mu.Unlock()

	if err := l.clk.Sleep(ctx, clock.Settle); err != nil {
		l.withdraw(c)
		return err
	}
	l.mu.Lock()
	// Every call of an instant before now has arrived; calls arriving at
	// now wait for their own turn. A clock read as earlier than c.at (a
	// wall clock set back) still serves c.
	now := l.clk.Now()
	l.serve(later(now, c.at.Add(clock.Settle)), now)
	for !c.served {
		// A background call left waiting: a later turn serves it (the
		// limiter's wake-up, or another call's), or it is promoted.
		var promoted <-chan struct{} // nil once promoted: never ready
		if c.urg != nil {
			promoted = c.urg.done
		}
		l.mu.Unlock()
		select {
		case <-c.ready:
		case <-promoted:
			// Served as any other call from the instant after its
			// promotion (serve).
			if err := l.clk.Sleep(ctx, clock.Settle); err != nil {
				l.withdraw(c)
				return err
			}
		case <-ctx.Done():
			l.withdraw(c)
			return ctx.Err()
		}
		l.mu.Lock()
		if !c.served {
			now := l.clk.Now()
			l.serve(later(now, c.at.Add(clock.Settle)), now)
		}
	}
	goAt, stale := c.goAt, c.stale
	l.mu.Unlock()

	if !c.notAfter.IsZero() && goAt.After(c.notAfter) {
		if !stale {
			l.withdraw(c) // its group's turn, later than its own
		}
		return fmt.Errorf("%w: its turn %s, the check's limit %s", ErrStale, goAt.UTC().Format(time.RFC3339), c.notAfter.UTC().Format(time.RFC3339))
	}
	if err := clock.SleepUntil(ctx, l.clk, goAt); err != nil {
		l.withdraw(c)
		return err
	}
	return nil
}

// wakeAt arms a wake-up that serves the deferred calls at t, unless one
// is armed for t or earlier. Caller holds mu.
func (l *Limiter) wakeAt(t time.Time) {
	if !l.wake.IsZero() && !t.Before(l.wake) {
		return
	}
	l.wake = t
	go func() {
		_ = clock.SleepUntil(context.Background(), l.clk, t)
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.wake.Equal(t) {
			l.wake = time.Time{}
		}
		l.serve(t, t) // the calls due at t first, as any turn at t would
	}()
}

// Backlog is how long a call arriving now would wait for its token behind
// the calls that arrived before now (background work left waiting
// aside): 0 while the bucket would hold a token for it. It does not
// depend on the order in which the calls of an instant were served.
func (l *Limiter) Backlog() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.clk.Now()
	l.applyCancels(now)
	ahead := 0
	for _, c := range l.pending {
		if at, bg := c.arrived(now); at.Before(now) && !bg {
			ahead++
		}
	}
	// Background tokens taken at now are left out: whether a read at an
	// instant comes before or after that instant's deferred calls are
	// served is goroutine order.
	w := l.wait(now, ahead)
	if l.bgAt.Equal(now) && l.lim.Limit() > 0 {
		w = max(0, w-time.Duration(float64(l.bgN)/float64(l.lim.Limit())*float64(time.Second)))
	}
	return w
}

// arrived is when c counts as arrived, seen at t, and whether it is
// background work then: a call promoted before t arrived at its
// promotion (or its own arrival, if later). Caller holds mu.
func (c *call) arrived(t time.Time) (time.Time, bool) {
	if c.urg == nil {
		return c.at, false
	}
	if p, ok := c.urg.before(t); ok {
		return later(c.at, p), false
	}
	return c.at, true
}

// wait is how long a call would wait at t behind the calls given their
// turns and ahead more. Caller holds mu.
func (l *Limiter) wait(t time.Time, ahead int) time.Duration {
	need := 1 + float64(ahead) - l.lim.TokensAt(t)
	if need <= 0 || l.lim.Limit() <= 0 {
		return 0
	}
	return time.Duration(need / float64(l.lim.Limit()) * float64(time.Second))
}

// serve decides, at now, the turns of the pending calls that arrived
// before cutoff, by instant, then key; background calls join the deferred
// ones, in that order, which serveDeferred serves. Caller holds mu.
func (l *Limiter) serve(cutoff, now time.Time) {
	l.applyCancels(now)
	// Deferred calls promoted before cutoff arrive again, as any other
	// call, at their promotion.
	l.deferred = slices.DeleteFunc(l.deferred, func(c *call) bool {
		if _, bg := c.arrived(cutoff); !bg {
			l.pending = append(l.pending, c)
			return true
		}
		return false
	})
	var due, rest []*call
	for _, c := range l.pending {
		if at, bg := c.arrived(cutoff); !bg && c.urg != nil {
			c.at, c.urg = at, nil // promoted: a call arriving at its promotion
		}
		if c.at.Before(cutoff) {
			due = append(due, c)
		} else {
			rest = append(rest, c)
		}
	}
	l.pending = rest
	slices.SortFunc(due, func(a, b *call) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	var fg []*call
	for _, c := range due {
		if c.urg != nil {
			l.deferred = append(l.deferred, c)
		} else {
			fg = append(fg, c)
		}
	}
	for i := 0; i < len(fg); {
		j := i + 1
		for j < len(fg) && fg[j].at.Equal(fg[i].at) && fg[j].key == fg[i].key {
			j++
		}
		l.reserve(fg[i:j], fg[i].at)
		i = j
	}
	l.serveDeferred(now)
}

// serveDeferred gives the deferred background calls their turns at now,
// in order, while the backlog ahead of each is at most BackgroundBacklog,
// and arms a wake-up for the rest. Caller holds mu.
func (l *Limiter) serveDeferred(now time.Time) {
	for len(l.deferred) > 0 {
		at := later(now, l.last)
		if b := l.wait(at, 0); b > BackgroundBacklog {
			l.wakeAt(at.Add(b - BackgroundBacklog + time.Millisecond))
			return
		}
		l.reserve(l.deferred[:1], at)
		l.deferred = l.deferred[1:]
		if !l.bgAt.Equal(l.last) {
			l.bgAt, l.bgN = l.last, 0
		}
		l.bgN++
	}
}

// reserve gives calls (of one instant and key) one token each at at (never
// before a token already reserved), and lets them all go at the latest of
// their turns. A call whose turn would come after its NotAfter limit takes
// no token (stale): a token taken and given back would restore more or
// less of the bucket depending on whether other calls of the instant had
// reserved theirs yet, which is goroutine order. Caller holds mu.
func (l *Limiter) reserve(calls []*call, at time.Time) {
	at = later(at, l.last)
	l.last = at
	var last time.Time
	for _, c := range calls {
		c.served = true
		if turn := at.Add(l.wait(at, 0)); !c.notAfter.IsZero() && turn.After(c.notAfter) {
			c.stale, c.goAt = true, turn
			continue
		}
		c.res = l.lim.ReserveN(at, 1)
		last = later(last, at.Add(c.res.DelayFrom(at)))
	}
	for _, c := range calls {
		if !c.stale {
			c.goAt = last
		}
		if c.ready != nil {
			close(c.ready)
		}
	}
}

// withdraw takes back a call whose context ended: out of the pending
// calls, or its token to be returned from the next instant on.
func (l *Limiter) withdraw(c *call) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !c.served {
		l.pending = slices.DeleteFunc(l.pending, func(p *call) bool { return p == c })
		l.deferred = slices.DeleteFunc(l.deferred, func(p *call) bool { return p == c })
		return
	}
	if c.res != nil {
		l.cancels = append(l.cancels, cancel{c, l.clk.Now()})
	}
}

// applyCancels gives back the tokens of the calls cancelled before now,
// in order of their cancel, arrival and key. How much of a token comes
// back depends on the reservations made since (rate.Reservation.CancelAt):
// applied at the instant of the cancel, it would depend on whether the
// other calls of that instant had reserved yet, which is goroutine order;
// from the next instant on, all of them have. Caller holds mu.
func (l *Limiter) applyCancels(now time.Time) {
	var due []cancel
	l.cancels = slices.DeleteFunc(l.cancels, func(x cancel) bool {
		if x.at.Before(now) {
			due = append(due, x)
			return true
		}
		return false
	})
	slices.SortFunc(due, func(a, b cancel) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if c := a.c.at.Compare(b.c.at); c != 0 {
			return c
		}
		if c := cmp.Compare(a.c.key, b.c.key); c != 0 {
			return c
		}
		return cmp.Compare(a.c.seq, b.c.seq)
	})
	for _, x := range due {
		x.c.res.CancelAt(x.at)
	}
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}
