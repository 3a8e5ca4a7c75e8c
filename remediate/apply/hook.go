package apply

import (
	"context"

	"github.com/fixfleet/fixfleet/remediate/policy"
)

// Point is a place in one step attempt's journaling, as seen by a Hook.
type Point string

// The four points of every step attempt, in order.
const (
	// PointBeforeBegin: the step is about to be journaled as begun.
	PointBeforeBegin Point = "before-begin"
	// PointBegun: the step is journaled as begun; it has not run.
	PointBegun Point = "begun"
	// PointAfterEffect: the step's Run (or Abort) returned, so its cloud
	// side effect, if it has one and succeeded, is done; its end is not
	// journaled yet. A read-only step has no side effect to be after.
	PointAfterEffect Point = "after-effect"
	// PointEnded: the step's end is journaled.
	PointEnded Point = "ended"
)

// Points lists the four points in order.
var Points = []Point{PointBeforeBegin, PointBegun, PointAfterEffect, PointEnded}

// At is where a Hook is called: one point of one step attempt of one VM.
type At struct {
	VMKey    string
	Strategy policy.Strategy
	Step     string // a step's Name, or StepAbort
	Attempt  int
	Point    Point
}

// Hook is called synchronously at every point of every step attempt, from
// the VM's goroutine. It exists for fault-injection tests (a test kills
// its own apply process at one point); it must not block for long.
type Hook func(At)

type hookKey struct{}

// WithHook returns a context that makes Run call h at every step point.
// Nothing in the fixfleet binary calls it: only tests (cmd/fixfleet's test
// binary installs one when its environment names a kill point), so a
// production run has no hook and no environment variable that could set
// one.
func WithHook(ctx context.Context, h Hook) context.Context {
	return context.WithValue(ctx, hookKey{}, h)
}

// hookOf returns the hook WithHook put in ctx, or nil.
func hookOf(ctx context.Context) Hook {
	h, _ := ctx.Value(hookKey{}).(Hook)
	return h
}

// at calls the run's hook, if any.
func (r *runner) at(vmKey string, s policy.Strategy, name string, attempt int, p Point) {
	if r.hook != nil {
		r.hook(At{VMKey: vmKey, Strategy: s, Step: name, Attempt: attempt, Point: p})
	}
}
