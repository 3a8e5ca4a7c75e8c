// Package retry repeats read-only calls that fail with a retryable provider
// error (throttled, unavailable), with exponential backoff, jitter and a
// bound, on a clock. It is for calls that are safe to repeat; the executor
// has its own breaker-aware retries for steps.
package retry

import (
	"context"
	"fmt"
	"hash/fnv"
	"math"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/providers"
)

// Policy bounds the retries. Zero fields take the defaults.
type Policy struct {
	Attempts int           // calls in all (default 6)
	Base     time.Duration // first wait (default 2s)
	Max      time.Duration // largest wait (default 1m)
	// Key names the call (operation and what it reads): the jitter of
	// each wait is a hash of it and the attempt, not a shared random
	// stream, so that a simulated incident on virtual time replays
	// exactly while calls with different keys still spread apart.
	Key string
	// OnRetry, if set, is told of each failed call that will be retried:
	// its attempt number (1-based), Attempts, the error and the wait.
	OnRetry func(attempt, attempts int, err error, wait time.Duration)
}

// Keyed returns p with Key set to key.
func (p Policy) Keyed(key string) Policy {
	p.Key = key
	return p
}

func (p Policy) withDefaults() Policy {
	if p.Attempts <= 0 {
		p.Attempts = 6
	}
	if p.Base <= 0 {
		p.Base = 2 * time.Second
	}
	if p.Max <= 0 {
		p.Max = time.Minute
	}
	return p
}

// Do calls fn until it succeeds, returns an error that is not
// providers.Retryable, ctx ends, or p.Attempts calls have failed. Between
// calls it waits on clk: the larger of the cloud's Retry-After hint and an
// exponentially growing delay with up to 50% jitter. The last error is
// returned, wrapped with the number of attempts when they ran out.
func Do(ctx context.Context, clk clock.Clock, p Policy, fn func() error) error {
	p = p.withDefaults()
	wait := p.Base
	for attempt := 1; ; attempt++ {
		err := fn()
		if err == nil || !providers.Retryable(err) {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if attempt >= p.Attempts {
			return fmt.Errorf("after %d attempts: %w", attempt, err)
		}
		d := max(wait/2+time.Duration(unit(p.Key, attempt)*float64(wait/2)), providers.RetryAfter(err))
		if p.OnRetry != nil {
			p.OnRetry(attempt, p.Attempts, err, d)
		}
		if err := clk.Sleep(ctx, d); err != nil {
			return err
		}
		wait = min(2*wait, p.Max)
	}
}

// unit is a number in [0, 1) drawn from a hash of key and n.
func unit(key string, n int) float64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0, byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	return float64(h.Sum64()>>11) / math.Exp2(53)
}
