package apply

import (
	"context"
	"errors"
	"testing"
)

// TestResultErr: a finished run is no error, an interrupted one is
// context.Canceled, any other stop is a *PausedError with the run's status.
func TestResultErr(t *testing.T) {
	if err := (&Result{Status: RunDone}).Err(); err != nil {
		t.Errorf("done: %v", err)
	}
	if err := (&Result{RunID: "r1", Status: RunPausedInterrupt}).Err(); !errors.Is(err, context.Canceled) {
		t.Errorf("interrupted: %v, want context.Canceled", err)
	}
	var pe *PausedError
	err := (&Result{Status: RunPausedBrake, Message: "3 of 5 failed"}).Err()
	if !errors.As(err, &pe) || pe.Status != RunPausedBrake || err.Error() != "run stopped (paused: failure brake): 3 of 5 failed" {
		t.Errorf("brake: %v", err)
	}
	if err := (&Result{Status: RunRunning}).Err(); err == nil || err.Error() != "run running: run apply again to continue" {
		t.Errorf("running: %v", err)
	}
}
