package journal

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// StepID identifies a journaled step.
type StepID int64

// StepStatus is a step's state in the journal.
type StepStatus string

// Step statuses.
const (
	// StepBegun: journaled before its side effect and never ended. If the
	// process that began it is gone, the effect is unknown: read the real
	// state before deciding what to do.
	StepBegun   StepStatus = "begun"
	StepOK      StepStatus = "ok"
	StepFailed  StepStatus = "failed"
	StepSkipped StepStatus = "skipped" // the effect was already there, or not needed
)

// StepIntent is what a step is about to do, journaled before it acts.
type StepIntent struct {
	RunID    string
	VMKey    string
	Strategy string
	Step     string
	Attempt  int             // >= 1; unique per (RunID, VMKey, Strategy, Step): see NextAttempt
	Intent   json.RawMessage // the step's inputs (optional; valid JSON; no secrets)
	At       time.Time       // required
}

// StepResult is how a step ended, journaled after it acted.
type StepResult struct {
	Status StepStatus        // StepOK, StepFailed or StepSkipped
	Facts  map[string]string // facts the step produced, recorded with the step (optional)
	Error  string            // what went wrong, for StepFailed (no secrets)
	At     time.Time         // required
}

// Step is a journaled step.
type Step struct {
	ID       StepID
	RunID    string
	VMKey    string
	Strategy string
	Step     string
	Attempt  int
	Intent   json.RawMessage
	Status   StepStatus
	Facts    map[string]string // the facts recorded by EndStep (nil if none)
	Error    string
	BegunAt  time.Time
	EndedAt  time.Time // zero while Status is StepBegun
}

// BeginStep journals a step before its side effect and returns its ID. The
// record is durable when BeginStep returns. It is not idempotent: each call
// records a new step, and beginning the same (RunID, VMKey, Strategy, Step,
// Attempt) twice fails with ErrConflict, so a resumed executor takes a new
// attempt number (NextAttempt). The run must exist (ErrNotFound).
func (j *Journal) BeginStep(ctx context.Context, in StepIntent) (StepID, error) {
	switch {
	case in.RunID == "" || in.VMKey == "" || in.Step == "":
		return 0, invalid("step needs a run ID, a VM key and a step name (run %q, VM %q, step %q)", in.RunID, in.VMKey, in.Step)
	case in.Attempt < 1:
		return 0, invalid("step %q of VM %q: attempt %d, want >= 1", in.Step, in.VMKey, in.Attempt)
	case in.At.IsZero():
		return 0, invalid("step %q of VM %q without a time", in.Step, in.VMKey)
	case len(in.Intent) > 0 && !json.Valid(in.Intent):
		return 0, invalid("step %q of VM %q: intent is not valid JSON", in.Step, in.VMKey)
	}
	if err := j.guard("step", in.RunID, in.VMKey).text("run ID", in.RunID).text("VM key", in.VMKey).
		text("strategy", in.Strategy).text("step", in.Step).json("intent", in.Intent).err(); err != nil {
		return 0, err
	}
	var intent any
	if len(in.Intent) > 0 {
		intent = string(in.Intent)
	}
	var id StepID
	err := j.write(ctx, func(tx *sql.Tx) error {
		if err := j.runExists(ctx, tx, in.RunID); err != nil {
			return err
		}
		err := j.txQueryRow(ctx, tx, qInsertStep,
			in.RunID, in.VMKey, in.Strategy, in.Step, in.Attempt, intent, ts(in.At)).Scan(&id)
		if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return fmt.Errorf("journal %s: %w: step %q (strategy %q) attempt %d of VM %q in run %q was already begun; take the next attempt number",
				j.path, ErrConflict, in.Step, in.Strategy, in.Attempt, in.VMKey, in.RunID)
		}
		return j.wrapDB(err)
	})
	return id, err
}

// EndStep journals how step id ended, with the facts it produced, in one
// transaction. Idempotent: ending a step again with the same status is a
// no-op returning nil (the first result stands); with a different status it
// fails with ErrConflict. ErrNotFound if no such step.
func (j *Journal) EndStep(ctx context.Context, id StepID, res StepResult) error {
	switch res.Status {
	case StepOK, StepFailed, StepSkipped:
	default:
		return invalid("step %d: end status %q, want ok, failed or skipped", id, res.Status)
	}
	if res.At.IsZero() {
		return invalid("step %d: end without a time", id)
	}
	return j.write(ctx, func(tx *sql.Tx) error {
		var runID, vmKey, status string
		err := j.txQueryRow(ctx, tx, qStepOfID, int64(id)).Scan(&runID, &vmKey, &status)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("journal %s: step %d %w", j.path, id, ErrNotFound)
		}
		if err != nil {
			return j.wrapDB(err)
		}
		if err := j.guard("step result", runID, vmKey).text("error", res.Error).facts(res.Facts).err(); err != nil {
			return err
		}
		if StepStatus(status) != StepBegun {
			if StepStatus(status) == res.Status {
				return nil
			}
			return fmt.Errorf("journal %s: %w: step %d of VM %q already ended %s, cannot end it %s",
				j.path, ErrConflict, id, vmKey, status, res.Status)
		}
		if _, err := j.txExec(ctx, tx, qEndStep,
			string(res.Status), res.Error, ts(res.At), int64(id)); err != nil {
			return j.wrapDB(err)
		}
		return j.insertFacts(ctx, tx, runID, vmKey, res.Facts, int64(id))
	})
}

// NextAttempt returns 1 + the highest attempt number journaled for this
// step of this VM and strategy (1 if none).
func (j *Journal) NextAttempt(ctx context.Context, runID, vmKey, strategy, step string) (int, error) {
	var n int
	err := j.queryRow(ctx, `SELECT coalesce(max(attempt), 0) + 1 FROM steps
		WHERE run_id = ? AND vm_key = ? AND strategy = ? AND step = ?`, runID, vmKey, strategy, step).Scan(&n)
	return n, j.wrapDB(err)
}

const stepCols = `id, run_id, vm_key, strategy, step, attempt, intent, status, error, begun_at, ended_at`

func scanStep(sc interface{ Scan(...any) error }) (Step, error) {
	var s Step
	var intent, begun, ended sql.NullString
	var status string
	if err := sc.Scan(&s.ID, &s.RunID, &s.VMKey, &s.Strategy, &s.Step, &s.Attempt, &intent, &status, &s.Error, &begun, &ended); err != nil {
		return Step{}, err
	}
	s.Status = StepStatus(status)
	if intent.Valid {
		s.Intent = json.RawMessage(intent.String)
	}
	var err error
	if s.BegunAt, err = parseTS(begun); err != nil {
		return Step{}, err
	}
	if s.EndedAt, err = parseTS(ended); err != nil {
		return Step{}, err
	}
	return s, nil
}

// GetStep returns one step with its facts, or an error wrapping ErrNotFound.
func (j *Journal) GetStep(ctx context.Context, id StepID) (Step, error) {
	s, err := scanStep(j.queryRow(ctx, `SELECT `+stepCols+` FROM steps WHERE id = ?`, int64(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return Step{}, fmt.Errorf("journal %s: step %d %w", j.path, id, ErrNotFound)
	}
	if err != nil {
		return Step{}, j.wrapDB(err)
	}
	steps := []Step{s}
	if err := j.attachFacts(ctx, steps, `step_id = ?`, int64(id)); err != nil {
		return Step{}, err
	}
	return steps[0], nil
}

// ListSteps returns the steps of one VM in a run in the order they were
// begun, each with the facts its EndStep recorded.
func (j *Journal) ListSteps(ctx context.Context, runID, vmKey string) ([]Step, error) {
	steps, err := j.querySteps(ctx, `run_id = ? AND vm_key = ?`, runID, vmKey)
	if err != nil {
		return nil, err
	}
	return steps, j.attachFacts(ctx, steps, `run_id = ? AND vm_key = ? AND step_id IS NOT NULL`, runID, vmKey)
}

// UnfinishedSteps returns the run's steps still StepBegun (across all VMs,
// in the order they were begun): after a crash, the steps whose effect is
// unknown.
func (j *Journal) UnfinishedSteps(ctx context.Context, runID string) ([]Step, error) {
	return j.querySteps(ctx, `run_id = ? AND status = 'begun'`, runID)
}

func (j *Journal) querySteps(ctx context.Context, where string, args ...any) ([]Step, error) {
	rows, err := j.query(ctx, `SELECT `+stepCols+` FROM steps WHERE `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, j.wrapDB(err)
	}
	defer rows.Close()
	var out []Step
	for rows.Next() {
		s, err := scanStep(rows)
		if err != nil {
			return nil, j.wrapDB(err)
		}
		out = append(out, s)
	}
	return out, j.wrapDB(rows.Err())
}

// attachFacts fills steps[i].Facts from the facts rows selected by where.
func (j *Journal) attachFacts(ctx context.Context, steps []Step, where string, args ...any) error {
	if len(steps) == 0 {
		return nil
	}
	byID := make(map[StepID]*Step, len(steps))
	for i := range steps {
		byID[steps[i].ID] = &steps[i]
	}
	rows, err := j.query(ctx, `SELECT step_id, key, value FROM facts WHERE `+where+` ORDER BY seq`, args...)
	if err != nil {
		return j.wrapDB(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id StepID
		var k, v string
		if err := rows.Scan(&id, &k, &v); err != nil {
			return j.wrapDB(err)
		}
		if s := byID[id]; s != nil {
			if s.Facts == nil {
				s.Facts = map[string]string{}
			}
			s.Facts[k] = v
		}
	}
	return j.wrapDB(rows.Err())
}

// Fact is one recorded fact, as kept in the history.
type Fact struct {
	Seq    int64 // order of recording across the journal
	Key    string
	Value  string
	StepID StepID // the step that produced it; 0 if recorded with PutFacts
}

// PutFacts records facts about a VM in a run directly (not from a step), in
// one transaction. Later facts overwrite earlier ones of the same key in
// Facts; the history is kept (FactHistory). Recording an empty map is a
// no-op. The run must exist (ErrNotFound).
func (j *Journal) PutFacts(ctx context.Context, runID, vmKey string, facts map[string]string) error {
	if runID == "" || vmKey == "" {
		return invalid("facts need a run ID and a VM key (run %q, VM %q)", runID, vmKey)
	}
	if len(facts) == 0 {
		return nil
	}
	if err := j.guard("facts", runID, vmKey).text("run ID", runID).text("VM key", vmKey).facts(facts).err(); err != nil {
		return err
	}
	return j.write(ctx, func(tx *sql.Tx) error {
		if err := j.runExists(ctx, tx, runID); err != nil {
			return err
		}
		return j.insertFacts(ctx, tx, runID, vmKey, facts, 0)
	})
}

func (j *Journal) insertFacts(ctx context.Context, tx *sql.Tx, runID, vmKey string, facts map[string]string, stepID int64) error {
	if len(facts) == 0 {
		return nil
	}
	var sid any
	if stepID != 0 {
		sid = stepID
	}
	for _, k := range sortedKeys(facts) {
		if _, err := j.txExec(ctx, tx, qInsertFact, runID, vmKey, k, facts[k], sid); err != nil {
			return j.wrapDB(err)
		}
	}
	return nil
}

// Facts returns the merged facts of a VM in a run: for each key, the value
// recorded last. Empty (not nil, not an error) if there are none.
func (j *Journal) Facts(ctx context.Context, runID, vmKey string) (map[string]string, error) {
	hist, err := j.FactHistory(ctx, runID, vmKey)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(hist))
	for _, f := range hist {
		out[f.Key] = f.Value
	}
	return out, nil
}

// FactHistory returns every fact recorded for a VM in a run, in recording
// order.
func (j *Journal) FactHistory(ctx context.Context, runID, vmKey string) ([]Fact, error) {
	rows, err := j.query(ctx, `SELECT seq, key, value, coalesce(step_id, 0) FROM facts
		WHERE run_id = ? AND vm_key = ? ORDER BY seq`, runID, vmKey)
	if err != nil {
		return nil, j.wrapDB(err)
	}
	defer rows.Close()
	var out []Fact
	for rows.Next() {
		var f Fact
		if err := rows.Scan(&f.Seq, &f.Key, &f.Value, &f.StepID); err != nil {
			return nil, j.wrapDB(err)
		}
		out = append(out, f)
	}
	return out, j.wrapDB(rows.Err())
}
