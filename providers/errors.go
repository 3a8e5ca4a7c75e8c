package providers

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// Error classes. Test with errors.Is(err, ErrThrottled) etc.
var (
	// ErrNotFound: the resource does not exist (or no longer does).
	ErrNotFound = errors.New("not found")
	// ErrConflict: the resource is in a state that forbids the operation
	// (boot a running VM, detach from a running VM, attach a disk in use).
	ErrConflict = errors.New("conflict")
	// ErrThrottled: the API refused for rate; retry after a wait.
	ErrThrottled = errors.New("throttled")
	// ErrUnavailable: a 5xx, a dropped connection or a control-plane
	// outage. The operation may or may not have been applied: re-read the
	// state before repeating it.
	ErrUnavailable = errors.New("unavailable")
	// ErrPermanent: retrying will not help (bad request, access denied).
	ErrPermanent = errors.New("refused, and retrying will not help")
	// ErrUnsupported: the provider lacks this capability or option.
	ErrUnsupported = errors.New("not supported")
)

// Error is a classified provider error that names the operation and resource.
type Error struct {
	Class      error         // one of the Err* classes above
	Op         string        // e.g. "Stop", "Attach"
	Resource   string        // e.g. "vm i-0abc", "disk vol-123"
	RetryAfter time.Duration // hint from the cloud, 0 if none
	Err        error         // underlying cause, may be nil
}

// Errorf builds an *Error of class for op on resource, with a formatted cause.
func Errorf(class error, op, resource, format string, args ...any) *Error {
	return &Error{Class: class, Op: op, Resource: resource, Err: fmt.Errorf(format, args...)}
}

func (e *Error) Error() string {
	msg := e.Op
	if e.Resource != "" {
		msg += " " + e.Resource
	}
	msg += ": " + e.Class.Error()
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Is matches the error's class.
func (e *Error) Is(target error) bool { return target == e.Class }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Retryable reports whether waiting and trying again may succeed: throttling
// or unavailability. Callers must still re-read state before repeating a
// non-idempotent operation.
func Retryable(err error) bool {
	return errors.Is(err, ErrThrottled) || errors.Is(err, ErrUnavailable)
}

// RetryAfter returns the cloud's retry hint carried by err, or 0.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// RetryWhileBusy calls f until it returns anything but an ErrConflict that
// carries a RetryAfter (the cloud's "still stopping / attaching / being
// created: try again in a moment"), waiting that long on clk between calls.
// It gives up when ctx ends, returning the last conflict with the reason.
func RetryWhileBusy(ctx context.Context, clk clock.Clock, f func() error) error {
	for {
		err := f()
		var pe *Error
		if !errors.As(err, &pe) || pe.Class != ErrConflict || pe.RetryAfter <= 0 {
			return err
		}
		if serr := clk.Sleep(ctx, pe.RetryAfter); serr != nil {
			return fmt.Errorf("%w (gave up waiting: %v)", err, serr)
		}
	}
}
