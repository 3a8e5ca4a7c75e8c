package simapi

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/providers"
)

func TestOpNamesAreServed(t *testing.T) {
	for _, op := range strings.Split(opNames, ", ") {
		if opFunc(op) == nil {
			t.Errorf("op %q listed but not served", op)
		}
	}
	if opFunc("format-c") != nil {
		t.Error("unknown op served")
	}
}

// TestErrorRoundTrip: every class survives the wire with its status, op,
// resource, message and retry hint (rounded up to a millisecond).
func TestErrorRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		class  error
		status int
		retry  time.Duration
		want   time.Duration
	}{
		{providers.ErrNotFound, 404, 0, 0},
		{providers.ErrConflict, 409, 1500 * time.Microsecond, 2 * time.Millisecond},
		{providers.ErrThrottled, 429, 3 * time.Second, 3 * time.Second},
		{providers.ErrUnavailable, 503, 0, 0},
		{providers.ErrPermanent, 400, 0, 0},
		{providers.ErrUnsupported, 501, 0, 0},
	} {
		in := providers.Errorf(tc.class, "Op", "vm x", "cause %d", 7)
		in.RetryAfter = tc.retry
		b, status := toBody(in)
		if status != tc.status {
			t.Fatalf("%v: status %d, want %d", tc.class, status, tc.status)
		}
		out := fromBody(b, status, "other", "other")
		if !errors.Is(out, tc.class) || out.Error() != in.Error() || out.RetryAfter != tc.want {
			t.Fatalf("%v: got %q retry %v, want %q retry %v", tc.class, out, out.RetryAfter, in, tc.want)
		}
	}
	// A body without a class falls back on the status.
	if e := fromBody(ErrorBody{}, 502, "List", "account a"); !errors.Is(e, providers.ErrUnavailable) || !strings.Contains(e.Error(), "List account a") {
		t.Fatalf("fallback %v", e)
	}
}
