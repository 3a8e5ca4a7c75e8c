package main

import (
	"context"
	"errors"
	"fmt"
	"io"

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
	exitNotReady = 6 // readiness found gaps: fix its list
	exitPartial  = 7 // some accounts were skipped; the rest were done (6 is readiness's)
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
  6    readiness: gaps remain (the report ranks the fixes)
  7    partial: an account could not be opened or listed and was skipped (named on stderr
       and in the output); the other accounts were done. --strict makes it exit 3 instead
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
	case errors.As(err, &partialRun{}):
		return exitPartial
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

// partialRun is a command that skipped accounts (see skippedAccounts).
type partialRun struct{ n int }

func (e partialRun) Error() string {
	return fmt.Sprintf("partial: %d account(s) skipped (named above); pass --strict to fail instead", e.n)
}

// skippedAccounts warns of each skipped account on stderr and returns a
// partialRun error when there is one.
func skippedAccounts(stderr io.Writer, s []classify.SkippedAccount) error {
	for _, a := range s {
		fmt.Fprintf(stderr, "fixfleet: warning: account %s/%s (%s) skipped: %s\n", a.Tenant, a.Account, a.Provider, a.Reason)
	}
	if len(s) == 0 {
		return nil
	}
	return partialRun{len(s)}
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
