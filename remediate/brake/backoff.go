// Package brake holds the executor's safety mechanisms, each small and with
// one job: exponential backoff with full jitter (Backoff), a circuit breaker
// for the cloud's control plane (Breaker), and a failure-rate brake (Rate).
//
// Everything waits on an internal/clock.Clock, so that a simulated incident
// on a scaled clock brakes and recovers exactly as a real one would, only
// faster. Nothing here is global: each run makes its own.
package brake

import (
	"hash/fnv"
	"math"
	"time"
)

// Backoff computes retry delays: exponential growth from Base, capped at
// Max, with "full jitter" (a uniformly random delay between 0 and the cap
// for the attempt), which spreads out the retries of many workers that
// failed together so that they do not hammer a recovering API in lockstep.
type Backoff struct {
	Base time.Duration // delay cap of the first retry (default 1s)
	Max  time.Duration // largest delay cap (default 2m)
	// Rand returns a number in [0, 1). Nil draws it from a hash of the
	// retry's key and number (Delay), so that a simulated incident on
	// virtual time replays exactly while workers with different keys
	// still spread apart. Tests pass a fixed function.
	Rand func() float64
}

// Delay returns the wait before retry number n (n >= 1: the wait after
// the n-th failed attempt) of the work named key (a VM and its step, say).
// It is at most min(Max, Base*2^(n-1)), and at least hint (the cloud's
// Retry-After), whichever is larger.
func (b Backoff) Delay(key string, n int, hint time.Duration) time.Duration {
	base, limit := b.Base, b.Max
	if base <= 0 {
		base = time.Second
	}
	if limit <= 0 {
		limit = 2 * time.Minute
	}
	if limit < base {
		limit = base
	}
	c := base
	for i := 1; i < n && c < limit; i++ {
		c *= 2
	}
	c = min(c, limit)
	u := Unit(key, n)
	if b.Rand != nil {
		u = b.Rand()
	}
	d := time.Duration(u * float64(c))
	return max(d, hint)
}

// Unit is a number in [0, 1) drawn from a hash of key and n: the jitter of
// retry n of the work named key. It depends on nothing else (no shared
// random stream, so no goroutine order).
func Unit(key string, n int) float64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0, byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	return float64(h.Sum64()>>11) / math.Exp2(53)
}
