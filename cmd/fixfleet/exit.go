package main

import (
	"context"
	"errors"

	"github.com/fixfleet/fixfleet/internal/clihelp"
	"github.com/fixfleet/fixfleet/internal/outflag"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/readiness"
	"github.com/fixfleet/fixfleet/remediate/target"
)

// Exit codes. This is the one place that maps errors to them; the root
// command's --help and every command's list them (exitcodes.txt).
const (
	exitOK       = 0
	exitFailure  = 1 // unexpected failure (a bug, an I/O error)
	exitUsage    = 2 // bad flags, bad config, malformed plan or scenario: fix the input
	exitProvider = 3 // a cloud refused or could not be reached: check credentials and the API
	exitLocked   = 4 // another apply holds the journal
	exitPaused   = 5 // the run stopped before the end (a brake, an interrupt): look, then apply again
	exitNotReady = 6 // readiness found gaps: fix its list
	exitPartial  = 7 // some accounts were skipped; the rest were done
	exitCanceled = 130
)

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, new(*journal.LockedError)):
		return exitLocked
	case errors.As(err, new(*classify.PartialError)):
		return exitPartial
	case errors.As(err, new(*apply.PausedError)), errors.Is(err, apply.ErrPausedByBrake):
		return exitPaused
	case errors.As(err, new(*readiness.NotReadyError)):
		return exitNotReady
	case errors.Is(err, context.Canceled):
		return exitCanceled
	case errors.As(err, new(clihelp.UsageError)), errors.As(err, new(*classify.UnmatchedReportsError)),
		errors.As(err, new(*target.Error)), errors.As(err, new(*policy.FlagError)),
		errors.As(err, new(*outflag.UsageError)), errors.As(err, new(*plan.StaleError)):
		return exitUsage
	case errors.Is(err, providers.ErrPermanent), errors.Is(err, providers.ErrUnavailable),
		errors.Is(err, providers.ErrThrottled), errors.Is(err, providers.ErrUnsupported):
		return exitProvider
	}
	return exitFailure
}
