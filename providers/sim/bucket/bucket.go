// Package bucket is the simulated clouds' API token bucket, answering the
// same whatever order the calls of one instant arrive in: on virtual time
// (a testing/synctest bubble) many calls share an instant and goroutine
// order, which the same seed does not fix, would otherwise pick the ones
// refused.
//
// The level is checked at the start of each instant: every call of that
// instant is admitted while the level is at least one token, and each
// takes its token. A burst at one instant can therefore overdraw the
// bucket, which then refuses every call until it has refilled; over any
// longer span the rate is the bucket's.
package bucket

import (
	"math"
	"time"
)

// Bucket is one API bucket. The zero value is not usable: use New. Not
// safe for concurrent use (its owner holds a lock).
type Bucket struct {
	size, refill float64
	tokens       float64
	last         time.Time
	open         float64 // the level at the start of instant last
	started      bool
}

// New returns a full bucket of size tokens refilling refill tokens a
// second.
func New(size int, refill float64) *Bucket {
	return &Bucket{size: float64(size), refill: refill, tokens: float64(size), open: float64(size)}
}

// Take takes a token at now (not earlier than any now given before), or
// says how long to wait before the bucket has one again.
func (b *Bucket) Take(now time.Time) (time.Duration, bool) {
	if !b.started {
		b.last, b.started = now, true
	}
	if el := now.Sub(b.last).Seconds(); el > 0 {
		b.tokens = math.Min(b.size, b.tokens+el*b.refill)
		b.last, b.open = now, b.tokens
	}
	if b.open >= 1 {
		b.tokens--
		return 0, true
	}
	wait := time.Duration(math.Ceil((1 - b.tokens) / b.refill * float64(time.Second)))
	return max(wait, time.Millisecond), false
}
