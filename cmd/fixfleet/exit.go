package main

import (
	"context"
	"errors"

	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/apply"
)

// Exit codes. This is the one place that maps errors to them; the root
// command's --help lists them.
const (
	exitOK       = 0
	exitFailure  = 1 // unexpected failure (a bug, an I/O error)
	exitUsage    = 2 // bad flags, bad config, malformed plan or scenario: fix the input
	exitProvider = 3 // a cloud refused or could not be reached: check credentials and the API
	exitLocked   = 4 // another apply holds the journal
	exitPaused   = 5 // the run stopped before the end (a brake, an interrupt): look, then apply again
	exitNotReady = 7 // readiness found gaps: fix its list (6 is left to the partial-plan code)
	exitCanceled = 130
)

const exitCodesHelp = `Exit codes:
  0    success
  1    unexpected failure
  2    bad input: flags, fleet.yaml, plan or scenario file (the message names it)
  3    a cloud API refused or could not be reached (credentials, network, outage)
  4    the journal is locked by another apply (the message names its host and process)
  5    apply stopped before the end by a brake (canary or failure rate): look, then apply --continue;
       demo: a VM left neither healthy nor flagged, or an invariant counter above 0
  7    readiness: gaps remain (the report lists the fixes)
  130  interrupted: run apply again to continue where it stopped
`

// usageError marks an error caused by the user's input.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

// badInput wraps err as a usage error (nil stays nil).
func badInput(err error) error {
	if err == nil {
		return nil
	}
	return usageError{err}
}

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	var ue usageError
	var ur *classify.UnmatchedReportsError
	var le *journal.LockedError
	var rp runPaused
	var nr notReady
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &le):
		return exitLocked
	case errors.As(err, &rp), errors.Is(err, apply.ErrPausedByBrake):
		return exitPaused
	case errors.As(err, &nr):
		return exitNotReady
	case errors.Is(err, context.Canceled):
		return exitCanceled
	case errors.As(err, &ue), errors.As(err, &ur):
		return exitUsage
	case errors.Is(err, providers.ErrPermanent), errors.Is(err, providers.ErrUnavailable),
		errors.Is(err, providers.ErrThrottled), errors.Is(err, providers.ErrUnsupported):
		return exitProvider
	}
	return exitFailure
}

// runPaused is an apply that stopped before the end (a brake, an interrupt),
// or a demo whose outcome breaks a promise.
type runPaused struct {
	status apply.RunStatus
	msg    string
}

func (e runPaused) Error() string {
	if e.msg == "" {
		return "run " + string(e.status) + ": run apply again to continue"
	}
	return "run stopped (" + string(e.status) + "): " + e.msg
}
