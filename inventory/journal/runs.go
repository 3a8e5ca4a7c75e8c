package journal

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// RunStatus is the state of a whole apply run.
type RunStatus string

// Run statuses.
const (
	RunRunning RunStatus = "running" // being applied (or its process died: see the lock)
	RunPaused  RunStatus = "paused"  // stopped by a failure brake or the operator; apply again to resume
	RunDone    RunStatus = "done"    // every VM reached a final status
	RunAborted RunStatus = "aborted" // abandoned; not to be resumed
)

func (s RunStatus) valid() bool {
	switch s {
	case RunRunning, RunPaused, RunDone, RunAborted:
		return true
	}
	return false
}

// Run is one apply of one plan.
type Run struct {
	ID        string          // unique, chosen by the caller; tags every cloud resource the run creates
	PlanID    string          // the plan's ID
	PlanJSON  []byte          // the plan document, stored and returned verbatim
	CreatedAt time.Time       // required
	Options   json.RawMessage // apply options as JSON (optional)
	Status    RunStatus       // CreateRun: empty means RunRunning
	UpdatedAt time.Time       // when Status last changed; set by CreateRun and SetRunStatus
}

// CreateRun records a new run. It is idempotent on r.ID: creating a run that
// already exists with the same PlanID and PlanJSON returns nil and changes
// nothing (its status included); one with a different plan fails with
// ErrConflict. ID, PlanID, PlanJSON and CreatedAt are required; Options, if
// set, must be valid JSON.
func (j *Journal) CreateRun(ctx context.Context, r Run) error {
	switch {
	case r.ID == "":
		return invalid("run without an ID")
	case r.PlanID == "":
		return invalid("run %q without a plan ID", r.ID)
	case len(r.PlanJSON) == 0:
		return invalid("run %q without a plan document", r.ID)
	case r.CreatedAt.IsZero():
		return invalid("run %q without a creation time", r.ID)
	case len(r.Options) > 0 && !json.Valid(r.Options):
		return invalid("run %q: options are not valid JSON", r.ID)
	}
	if r.Status == "" {
		r.Status = RunRunning
	}
	if !r.Status.valid() {
		return invalid("run %q: unknown status %q", r.ID, r.Status)
	}
	if err := j.guard("run", r.ID, "").text("ID", r.ID).text("plan ID", r.PlanID).
		json("plan", r.PlanJSON).json("options", r.Options).err(); err != nil {
		return err
	}
	return j.write(ctx, func(tx *sql.Tx) error {
		var planID string
		var plan []byte
		err := tx.QueryRowContext(ctx, `SELECT plan_id, plan_json FROM runs WHERE id = ?`, r.ID).Scan(&planID, &plan)
		switch {
		case err == nil:
			if planID != r.PlanID || !bytes.Equal(plan, r.PlanJSON) {
				return fmt.Errorf("journal %s: %w: run %q already exists for plan %q; choose a new run ID for a different plan", j.path, ErrConflict, r.ID, planID)
			}
			return nil
		case !errors.Is(err, sql.ErrNoRows):
			return j.wrapDB(err)
		}
		var opts any
		if len(r.Options) > 0 {
			opts = string(r.Options)
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO runs (id, plan_id, plan_json, options, status, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, r.ID, r.PlanID, r.PlanJSON, opts, string(r.Status), ts(r.CreatedAt), ts(r.CreatedAt))
		return j.wrapDB(err)
	})
}

// SetRunStatus sets a run's status as of at. ErrNotFound if the run does
// not exist; ErrInvalid for an unknown status or zero time. Idempotent.
func (j *Journal) SetRunStatus(ctx context.Context, runID string, status RunStatus, at time.Time) error {
	if !status.valid() {
		return invalid("run %q: unknown status %q", runID, status)
	}
	if at.IsZero() {
		return invalid("run %q: status change without a time", runID)
	}
	return j.write(ctx, func(tx *sql.Tx) error {
		res, err := j.txExec(ctx, tx, qSetRunStatus, string(status), ts(at), runID)
		if err != nil {
			return j.wrapDB(err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return j.noRun(runID)
		}
		return nil
	})
}

func (j *Journal) noRun(runID string) error {
	return fmt.Errorf("journal %s: run %q %w; list runs with the status command", j.path, runID, ErrNotFound)
}

const runCols = `id, plan_id, plan_json, options, status, created_at, updated_at`

func scanRun(sc interface{ Scan(...any) error }, withPlan bool) (Run, error) {
	var r Run
	var plan []byte
	var opts, created, updated sql.NullString
	var status string
	if err := sc.Scan(&r.ID, &r.PlanID, &plan, &opts, &status, &created, &updated); err != nil {
		return Run{}, err
	}
	if withPlan {
		r.PlanJSON = plan
	}
	if opts.Valid {
		r.Options = json.RawMessage(opts.String)
	}
	r.Status = RunStatus(status)
	var err error
	if r.CreatedAt, err = parseTS(created); err != nil {
		return Run{}, err
	}
	if r.UpdatedAt, err = parseTS(updated); err != nil {
		return Run{}, err
	}
	return r, nil
}

// GetRun returns the run with this ID, plan document included, or an error
// wrapping ErrNotFound.
func (j *Journal) GetRun(ctx context.Context, runID string) (Run, error) {
	r, err := scanRun(j.queryRow(ctx, `SELECT `+runCols+` FROM runs WHERE id = ?`, runID), true)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, j.noRun(runID)
	}
	return r, j.wrapDB(err)
}

// LatestRun returns the most recently created run (by CreatedAt, then by
// insertion order), plan document included, or an error wrapping
// ErrNotFound if the journal holds no run.
func (j *Journal) LatestRun(ctx context.Context) (Run, error) {
	r, err := scanRun(j.r.QueryRowContext(ctx, `SELECT `+runCols+` FROM runs ORDER BY created_at DESC, rowid DESC LIMIT 1`), true)
	if errors.Is(err, sql.ErrNoRows) {
		return Run{}, fmt.Errorf("journal %s: no run %w; run apply first", j.path, ErrNotFound)
	}
	return r, j.wrapDB(err)
}

// ListRuns returns every run, newest first. PlanJSON is left nil (plans can
// be large); read it with GetRun.
func (j *Journal) ListRuns(ctx context.Context) ([]Run, error) {
	rows, err := j.r.QueryContext(ctx, `SELECT `+runCols+` FROM runs ORDER BY created_at DESC, rowid DESC`)
	if err != nil {
		return nil, j.wrapDB(err)
	}
	defer rows.Close()
	var out []Run
	for rows.Next() {
		r, err := scanRun(rows, false)
		if err != nil {
			return nil, j.wrapDB(err)
		}
		out = append(out, r)
	}
	return out, j.wrapDB(rows.Err())
}

// runExists fails with ErrNotFound unless the run exists.
func (j *Journal) runExists(ctx context.Context, tx *sql.Tx, runID string) error {
	var one int
	err := j.txQueryRow(ctx, tx, qRunExists, runID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return j.noRun(runID)
	}
	return j.wrapDB(err)
}
