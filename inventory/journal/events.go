package journal

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// Event is one entry of the append-only event log.
type Event struct {
	Seq   int64  `json:"seq"`              // assigned by the journal; increasing in recording order
	RunID string `json:"run_id,omitempty"` // optional: "" for journal-wide events (lock takeovers)
	VMKey string `json:"vm_key,omitempty"` // optional
	Kind  string `json:"kind"`             // e.g. "brake.tripped", "vm.recheck", "lock.stale-takeover"
	// Strategy is the strategy the event is about, "" for none.
	Strategy string    `json:"strategy,omitempty"`
	Message  string    `json:"message"`
	At       time.Time `json:"at"` // required
}

// EventFilter narrows Events. The zero value selects everything.
type EventFilter struct {
	VMKey    string   // only this VM's events
	Kinds    []string // only these kinds
	AfterSeq int64    // only events with Seq > AfterSeq (to follow the log)
	Limit    int      // at most this many (0: no limit)
}

// Event appends e to the event log. Events can never be changed or deleted
// (the database refuses it). Kind and At are required; if RunID is set the
// run must exist (ErrNotFound). e.Seq is ignored.
func (j *Journal) Event(ctx context.Context, e Event) error {
	if e.Kind == "" {
		return invalid("event without a kind (run %q, VM %q)", e.RunID, e.VMKey)
	}
	if e.At.IsZero() {
		return invalid("event %q without a time", e.Kind)
	}
	if err := j.guard("event", e.RunID, e.VMKey).text("run ID", e.RunID).text("VM key", e.VMKey).
		text("kind", e.Kind).text("strategy", e.Strategy).text("message", e.Message).err(); err != nil {
		return err
	}
	return j.write(ctx, func(tx *sql.Tx) error {
		if e.RunID != "" {
			if err := j.runExists(ctx, tx, e.RunID); err != nil {
				return err
			}
		}
		return j.insertEvent(ctx, tx, e)
	})
}

func (j *Journal) insertEvent(ctx context.Context, tx *sql.Tx, e Event) error {
	var run any
	if e.RunID != "" {
		run = e.RunID
	}
	_, err := j.txExec(ctx, tx, qInsertEvent,
		run, e.VMKey, e.Kind, e.Strategy, e.Message, ts(e.At))
	return j.wrapDB(err)
}

// Events returns a run's events in recording order, narrowed by f. An
// empty runID selects the events of every run and the journal-wide ones.
func (j *Journal) Events(ctx context.Context, runID string, f EventFilter) ([]Event, error) {
	var where []string
	var args []any
	if runID != "" {
		where = append(where, "run_id = ?")
		args = append(args, runID)
	}
	if f.VMKey != "" {
		where = append(where, "vm_key = ?")
		args = append(args, f.VMKey)
	}
	if len(f.Kinds) > 0 {
		where = append(where, "kind IN (?"+strings.Repeat(", ?", len(f.Kinds)-1)+")")
		for _, k := range f.Kinds {
			args = append(args, k)
		}
	}
	if f.AfterSeq > 0 {
		where = append(where, "seq > ?")
		args = append(args, f.AfterSeq)
	}
	q := `SELECT seq, coalesce(run_id, ''), vm_key, kind, strategy, message, at FROM events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY seq"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := j.query(ctx, q, args...)
	if err != nil {
		return nil, j.wrapDB(err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var at sql.NullString
		if err := rows.Scan(&e.Seq, &e.RunID, &e.VMKey, &e.Kind, &e.Strategy, &e.Message, &at); err != nil {
			return nil, j.wrapDB(err)
		}
		if e.At, err = parseTS(at); err != nil {
			return nil, j.wrapDB(err)
		}
		out = append(out, e)
	}
	return out, j.wrapDB(rows.Err())
}

// Summary counts a run's VMs and steps, for status and report.
type Summary struct {
	Run              Run                         // the run (PlanJSON nil)
	VMs              int                         // VM records
	ByStatus         map[VMStatus]int            // VM status -> count
	ByStrategy       map[string]int              // strategy -> count ("" for none)
	ByStrategyStatus map[string]map[VMStatus]int // strategy -> status -> count
	Steps            map[StepStatus]int          // step status -> count; Steps[StepBegun] are unfinished
}

// Summarize counts the VMs of a run by status and strategy, and its steps by
// status. ErrNotFound if the run does not exist.
func (j *Journal) Summarize(ctx context.Context, runID string) (Summary, error) {
	run, err := j.GetRun(ctx, runID)
	if err != nil {
		return Summary{}, err
	}
	run.PlanJSON = nil
	s := Summary{
		Run:              run,
		ByStatus:         map[VMStatus]int{},
		ByStrategy:       map[string]int{},
		ByStrategyStatus: map[string]map[VMStatus]int{},
		Steps:            map[StepStatus]int{},
	}
	rows, err := j.r.QueryContext(ctx, `SELECT strategy, status, count(*) FROM vms WHERE run_id = ? GROUP BY strategy, status`, runID)
	if err != nil {
		return Summary{}, j.wrapDB(err)
	}
	defer rows.Close()
	for rows.Next() {
		var strategy string
		var status VMStatus
		var n int
		if err := rows.Scan(&strategy, &status, &n); err != nil {
			return Summary{}, j.wrapDB(err)
		}
		s.VMs += n
		s.ByStatus[status] += n
		s.ByStrategy[strategy] += n
		if s.ByStrategyStatus[strategy] == nil {
			s.ByStrategyStatus[strategy] = map[VMStatus]int{}
		}
		s.ByStrategyStatus[strategy][status] += n
	}
	if err := rows.Err(); err != nil {
		return Summary{}, j.wrapDB(err)
	}
	srows, err := j.r.QueryContext(ctx, `SELECT status, count(*) FROM steps WHERE run_id = ? GROUP BY status`, runID)
	if err != nil {
		return Summary{}, j.wrapDB(err)
	}
	defer srows.Close()
	for srows.Next() {
		var status string
		var n int
		if err := srows.Scan(&status, &n); err != nil {
			return Summary{}, j.wrapDB(err)
		}
		s.Steps[StepStatus(status)] = n
	}
	return s, j.wrapDB(srows.Err())
}
