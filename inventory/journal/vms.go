package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// VMStatus is the phase of one VM within a run.
type VMStatus string

// VM statuses, the ones the executor and the reports agree on.
const (
	VMPending        VMStatus = "pending"
	VMRunning        VMStatus = "running"
	VMFixed          VMStatus = "fixed"
	VMFlagged        VMStatus = "flagged" // needs a human (no safe strategy, identity unconfirmed...)
	VMFailed         VMStatus = "failed"
	VMSkippedHealthy VMStatus = "skipped-healthy"
	// VMUntouchedHealthy: planned as healthy (strategy none); never touched.
	VMUntouchedHealthy VMStatus = "untouched-healthy"
)

// VM is one VM's progress within a run.
type VM struct {
	RunID    string
	VMKey    string // the VM's stable key (provider/scope/ID)
	Name     string
	Strategy string
	Status   VMStatus
	// Code is why it has this status, machine-readable (the executor's
	// reason constants; "" for records written before codes existed,
	// except those the schema migration could give one). Control flow
	// reads Code, never Reason.
	Code string
	// Reason is why it has this status, in words, for the report.
	Reason    string
	UpdatedAt time.Time
}

// UpsertVM creates or replaces the record of v.VMKey in v.RunID (every field
// is overwritten). Idempotent. RunID, VMKey, Status and UpdatedAt are
// required; the run must exist (ErrNotFound otherwise).
func (j *Journal) UpsertVM(ctx context.Context, v VM) error {
	switch {
	case v.RunID == "" || v.VMKey == "":
		return invalid("VM record needs a run ID and a VM key (run %q, VM %q)", v.RunID, v.VMKey)
	case v.Status == "":
		return invalid("VM %q in run %q without a status", v.VMKey, v.RunID)
	case v.UpdatedAt.IsZero():
		return invalid("VM %q in run %q without a time", v.VMKey, v.RunID)
	}
	if err := j.guard("vm", v.RunID, v.VMKey).text("run ID", v.RunID).text("VM key", v.VMKey).
		text("name", v.Name).text("strategy", v.Strategy).text("status", string(v.Status)).
		text("code", v.Code).text("reason", v.Reason).err(); err != nil {
		return err
	}
	return j.write(ctx, func(tx *sql.Tx) error {
		if err := j.runExists(ctx, tx, v.RunID); err != nil {
			return err
		}
		_, err := j.txExec(ctx, tx, qUpsertVM,
			v.RunID, v.VMKey, v.Name, v.Strategy, string(v.Status), v.Code, v.Reason, ts(v.UpdatedAt))
		return j.wrapDB(err)
	})
}

const vmCols = `run_id, vm_key, name, strategy, status, reason_code, reason, updated_at`

func scanVM(sc interface{ Scan(...any) error }) (VM, error) {
	var v VM
	var at sql.NullString
	if err := sc.Scan(&v.RunID, &v.VMKey, &v.Name, &v.Strategy, &v.Status, &v.Code, &v.Reason, &at); err != nil {
		return VM{}, err
	}
	var err error
	v.UpdatedAt, err = parseTS(at)
	return v, err
}

// GetVM returns one VM's record, or an error wrapping ErrNotFound.
func (j *Journal) GetVM(ctx context.Context, runID, vmKey string) (VM, error) {
	v, err := scanVM(j.queryRow(ctx, `SELECT `+vmCols+` FROM vms WHERE run_id = ? AND vm_key = ?`, runID, vmKey))
	if errors.Is(err, sql.ErrNoRows) {
		return VM{}, fmt.Errorf("journal %s: VM %q in run %q %w", j.path, vmKey, runID, ErrNotFound)
	}
	return v, j.wrapDB(err)
}

// ListVMs returns the run's VM records ordered by VM key (empty, not an
// error, for an unknown run).
func (j *Journal) ListVMs(ctx context.Context, runID string) ([]VM, error) {
	rows, err := j.query(ctx, `SELECT `+vmCols+` FROM vms WHERE run_id = ? ORDER BY vm_key`, runID)
	if err != nil {
		return nil, j.wrapDB(err)
	}
	defer rows.Close()
	var out []VM
	for rows.Next() {
		v, err := scanVM(rows)
		if err != nil {
			return nil, j.wrapDB(err)
		}
		out = append(out, v)
	}
	return out, j.wrapDB(rows.Err())
}
