package aws

import (
	"context"
	"errors"
	"hash/fnv"
	"math"
	"time"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// backoff is the SDK retryer's delay before the next attempt of a request
// that failed with a retryable error (a throttle, a 5xx, a dropped
// connection). It implements retry.BackoffDelayer.
//
// Contract:
//   - The delay of attempt n (1 for the wait after the first failure; the
//     SDK's 2026 retry mode counts from 0, taken as 1) lies in
//     [c/2, c), where c = min(base·2^(n-1), max): it grows with the
//     attempt until it reaches max, and never exceeds max.
//   - Where in that range it lies is a hash of the request's retry key
//     and n, not a random draw: the same request retried at the same
//     attempt waits the same time in every run, whatever order the
//     goroutines ran in (a simulated incident on virtual time replays
//     exactly), while requests with different keys still spread apart.
//
// The retry key is the operation's name (from the SDK's request context)
// and, for calls made through core.call, the call's operation and
// resource (the key the provider's own pace limiter uses), attached to
// the attempt's error by the middleware addRetryKey adds. Trade-off: requests with the
// same key retried at the same attempt (the same call for the same
// resource, made at once by two callers) wait exactly the same time and
// retry together; with a random draw they would spread. Such requests are
// interchangeable, and the provider's own token buckets pace every
// first attempt, so the herd this allows is small; in exchange the
// SDK's retries no longer make two runs of one seed differ. A request
// whose error carries no key (none of the provider's calls) still backs
// off exponentially, with the jitter of the attempt alone.
type backoff struct {
	base time.Duration // the largest delay of the first retry
	max  time.Duration // the largest delay of any retry
}

// BackoffDelay implements retry.BackoffDelayer. It never returns an error.
func (b backoff) BackoffDelay(attempt int, err error) (time.Duration, error) {
	var ke *keyedError
	key := ""
	if errors.As(err, &ke) {
		key = ke.key
	}
	return b.delay(key, attempt), nil
}

// delay is the wait before attempt+1 of the request named key.
func (b backoff) delay(key string, attempt int) time.Duration {
	attempt = max(attempt, 1)
	c := b.base
	for i := 1; i < attempt && c < b.max; i++ {
		c *= 2
	}
	c = min(c, b.max)
	return c/2 + time.Duration(unit(key, attempt)*float64(c/2))
}

// unit is a number in [0, 1) drawn from a hash of key and n.
func unit(key string, n int) float64 {
	h := fnv.New64a()
	h.Write([]byte(key))
	h.Write([]byte{0, byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)})
	return float64(h.Sum64()>>11) / math.Exp2(53)
}

// keyedError is an attempt's error with the retry key of its request; it
// unwraps to the error itself, so that the SDK's retry checks and
// classify see through it.
type keyedError struct {
	key string
	err error
}

func (e *keyedError) Error() string { return e.err.Error() }
func (e *keyedError) Unwrap() error { return e.err }

// callKey is the context key of a call's retry key (withCallKey).
type callKey struct{}

// withCallKey returns ctx naming the call key (its operation and
// resource) for the retry key of the SDK requests made under it.
func withCallKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, callKey{}, key)
}

// retryKey is the retry key of the request of ctx: the SDK's operation
// name, then the call key if any.
func retryKey(ctx context.Context) string {
	k, _ := ctx.Value(callKey{}).(string)
	return awsmiddleware.GetOperationName(ctx) + "\x00" + k
}

// addRetryKey adds to an operation's stack, right after the SDK's retry
// middleware (inside its loop of attempts), a middleware that wraps each
// failed attempt's error in a keyedError naming the request's retry key,
// where the retryer's BackoffDelay (given only the attempt and the error)
// finds it. A stack without a retry middleware retries nothing and is
// left alone.
func addRetryKey(s *middleware.Stack) error {
	if _, ok := s.Finalize.Get("Retry"); !ok {
		return nil
	}
	mw := middleware.FinalizeMiddlewareFunc("fixfleet.RetryKey",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleFinalize(ctx, in)
			if err != nil {
				err = &keyedError{key: retryKey(ctx), err: err}
			}
			return out, md, err
		})
	return s.Finalize.Insert(mw, "Retry", middleware.After)
}
