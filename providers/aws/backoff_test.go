package aws

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	sdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/fixfleet/fixfleet/providers"
)

// TestBackoffDelay: the delay is a function of the key and the attempt
// alone, lies in [c/2, c) for c = min(base·2^(n-1), max), so grows with
// the attempt until the cap and never passes it.
func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		name      string
		b         backoff
		key       string
		attempt   int
		low, high time.Duration // low <= delay < high
	}{
		{"first retry", backoff{time.Second, 20 * time.Second}, "DescribeInstances", 1, 500 * time.Millisecond, time.Second},
		{"attempt 0 (2026 mode) is the first", backoff{time.Second, 20 * time.Second}, "DescribeInstances", 0, 500 * time.Millisecond, time.Second},
		{"second retry", backoff{time.Second, 20 * time.Second}, "DescribeInstances", 2, time.Second, 2 * time.Second},
		{"fifth retry", backoff{time.Second, 20 * time.Second}, "x", 5, 8 * time.Second, 16 * time.Second},
		{"capped", backoff{time.Second, 20 * time.Second}, "x", 6, 10 * time.Second, 20 * time.Second},
		{"capped far out", backoff{time.Second, 20 * time.Second}, "x", 1 << 20, 10 * time.Second, 20 * time.Second},
		{"no key", backoff{time.Second, 20 * time.Second}, "", 3, 2 * time.Second, 4 * time.Second},
		{"max below base", backoff{time.Second, 100 * time.Millisecond}, "x", 1, 50 * time.Millisecond, 100 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.b.delay(tt.key, tt.attempt)
			if d < tt.low || d >= tt.high {
				t.Errorf("delay(%q, %d) = %v, want in [%v, %v)", tt.key, tt.attempt, d, tt.low, tt.high)
			}
			if again := tt.b.delay(tt.key, tt.attempt); again != d {
				t.Errorf("delay(%q, %d) = %v, then %v", tt.key, tt.attempt, d, again)
			}
		})
	}
}

// TestBackoffGrowsToTheCap: for several keys, each retry waits longer
// than the one before until the cap, and none waits longer than the cap.
func TestBackoffGrowsToTheCap(t *testing.T) {
	b := backoff{base: time.Second, max: 20 * time.Second}
	for _, key := range []string{"", "DescribeInstances\x00Observe vm i-1", "StopInstances\x00Stop vm i-2", "RunInstances\x00Acquire helper"} {
		prev := time.Duration(0)
		for n := 1; n <= 12; n++ {
			d := b.delay(key, n)
			if d > b.max {
				t.Errorf("key %q attempt %d: %v exceeds the cap %v", key, n, d, b.max)
			}
			// Uncapped (base·2^(n-1) <= max), the delay is at least the
			// previous attempt's ceiling.
			if b.base<<(n-1) <= b.max && d <= prev {
				t.Errorf("key %q attempt %d: %v, not more than attempt %d's %v", key, n, d, n-1, prev)
			}
			prev = d
		}
	}
}

// TestBackoffSpreadsKeys: requests with different keys do not all wait
// the same time.
func TestBackoffSpreadsKeys(t *testing.T) {
	b := backoff{base: time.Second, max: 20 * time.Second}
	seen := map[time.Duration]bool{}
	for i := range 20 {
		seen[b.delay(fmt.Sprintf("DescribeInstances\x00Observe vm i-%d", i), 3)] = true
	}
	if len(seen) < 15 {
		t.Errorf("20 keys gave %d distinct delays", len(seen))
	}
}

// TestBackoffDelayReadsTheKey: BackoffDelay finds the key of a keyedError
// however the SDK wrapped it, and uses no key for an error without one.
func TestBackoffDelayReadsTheKey(t *testing.T) {
	b := backoff{base: time.Second, max: 20 * time.Second}
	cause := errors.New("RequestLimitExceeded")
	tests := []struct {
		name string
		err  error
		key  string
	}{
		{"keyed", &keyedError{key: "k", err: cause}, "k"},
		{"wrapped", &retry.MaxAttemptsError{Attempt: 2, Err: &keyedError{key: "k", err: cause}}, "k"},
		{"plain", cause, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := b.BackoffDelay(2, tt.err)
			if err != nil || got != b.delay(tt.key, 2) {
				t.Errorf("BackoffDelay = %v, %v; want %v (key %q)", got, err, b.delay(tt.key, 2), tt.key)
			}
		})
	}
}

// TestRetryKeyReachesTheRetryer: through the SDK configuration open
// builds, a throttled request is retried up to RetryMaxAttempts, and each
// attempt's error names the operation and the call key, where the
// backoff finds them.
func TestRetryKeyReachesTheRetryer(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error><Code>RequestLimitExceeded</Code>`+
			`<Message>Request limit exceeded.</Message></Error></Errors><RequestID>r</RequestID></Response>`)
	}))
	defer srv.Close()
	o := Options{RetryMaxAttempts: 3, RetryMaxBackoff: time.Millisecond, AccessKeyIDEnv: "K", SecretAccessKeyEnv: "S"}
	getenv := func(k string) string { return map[string]string{"K": "AKIDEXAMPLE", "S": "not-a-real-secret"}[k] }
	cfg, err := loadConfig(context.Background(), "ap-northeast-1", o, getenv, awshttp.NewBuildableClient())
	if err != nil {
		t.Fatal(err)
	}
	e := ec2.NewFromConfig(cfg, func(x *ec2.Options) { x.BaseEndpoint = sdk.String(srv.URL) })
	ctx := withCallKey(context.Background(), "Observe vm i-1")
	_, err = e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	var ke *keyedError
	if !errors.As(err, &ke) || ke.key != "DescribeInstances\x00Observe vm i-1" {
		t.Fatalf("error %v: want a keyedError naming DescribeInstances and the call key", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}
	var pe *providers.Error
	if c := classify("Observe", "vm i-1", err); !errors.As(c, &pe) || pe.Class != providers.ErrThrottled {
		t.Errorf("classify = %v, want throttled", c)
	}
}
