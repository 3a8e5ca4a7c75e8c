package journal

import (
	"context"
	"database/sql"
	"errors"
	"sync"
)

// Prepared statements. SQLite compiles a statement's text into a program
// every time it is handed the text; a busy apply journals several
// statements per step, and compiling them cost more than running them. The
// journal's frequent statements are therefore prepared once per handle and
// reused: the writer's when the journal opens (its one connection is held
// by the writer goroutine during a group commit, so nothing may wait for
// it then), the readers' on first use. A statement that is not in a cache
// runs from its text, as before: the caches change how often SQLite
// parses, never what is written or read.

// writeQueries are the statements the writer prepares at Open. Each is run
// inside a group commit through txExec or txQueryRow.
var writeQueries = []string{
	qSavepoint, qRelease, qRollbackTo,
	qRunExists, qInsertStep, qStepOfID, qEndStep, qInsertFact, qInsertEvent, qUpsertVM, qSetRunStatus,
}

// The writer's statements.
const (
	qSavepoint    = `SAVEPOINT w`
	qRelease      = `RELEASE w`
	qRollbackTo   = `ROLLBACK TO w`
	qRunExists    = `SELECT 1 FROM runs WHERE id = ?`
	qInsertStep   = `INSERT INTO steps (run_id, vm_key, strategy, step, attempt, intent, status, begun_at) VALUES (?, ?, ?, ?, ?, ?, 'begun', ?) RETURNING id`
	qStepOfID     = `SELECT run_id, vm_key, status FROM steps WHERE id = ?`
	qEndStep      = `UPDATE steps SET status = ?, error = ?, ended_at = ? WHERE id = ?`
	qInsertFact   = `INSERT INTO facts (run_id, vm_key, key, value, step_id) VALUES (?, ?, ?, ?, ?)`
	qInsertEvent  = `INSERT INTO events (run_id, vm_key, kind, strategy, message, at) VALUES (?, ?, ?, ?, ?, ?)`
	qSetRunStatus = `UPDATE runs SET status = ?, updated_at = ? WHERE id = ?`
	qUpsertVM     = `INSERT INTO vms (run_id, vm_key, name, strategy, status, reason_code, reason, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (run_id, vm_key) DO UPDATE SET name = excluded.name, strategy = excluded.strategy,
				status = excluded.status, reason_code = excluded.reason_code, reason = excluded.reason, updated_at = excluded.updated_at`
)

// maxReadStmts bounds the readers' cache (queries built from filters vary;
// past the bound a query runs from its text).
const maxReadStmts = 64

// stmtCache holds statements prepared on one *sql.DB, by query text. Safe
// for concurrent use.
type stmtCache struct {
	db *sql.DB
	mu sync.Mutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: map[string]*sql.Stmt{}}
}

// lookup returns the cached statement for query, nil if none.
func (c *stmtCache) lookup(query string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[query]
}

// prepare prepares query on the cache's handle and keeps it, unless the
// cache is full (then it returns nil, nil: run the text). It waits for a
// connection of the handle: never call it on the writer during a commit.
func (c *stmtCache) prepare(ctx context.Context, query string, limit int) (*sql.Stmt, error) {
	if s := c.lookup(query); s != nil {
		return s, nil
	}
	c.mu.Lock()
	full := limit > 0 && len(c.m) >= limit
	c.mu.Unlock()
	if full {
		return nil, nil
	}
	s, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if old := c.m[query]; old != nil { // prepared meanwhile by another caller
		_ = s.Close()
		return old, nil
	}
	c.m[query] = s
	return s, nil
}

// close closes every cached statement.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, s := range c.m {
		errs = append(errs, s.Close())
		delete(c.m, q)
	}
	return errors.Join(errs...)
}

// prepareWrites prepares the writer's statements (writeQueries); called by
// Open once the schema is current, before any write is queued.
func (j *Journal) prepareWrites(ctx context.Context) error {
	for _, q := range writeQueries {
		if _, err := j.ws.prepare(ctx, q, 0); err != nil {
			return j.wrapDB(err)
		}
	}
	return nil
}

// txExec runs query in tx, through its prepared statement when it has one.
func (j *Journal) txExec(ctx context.Context, tx *sql.Tx, query string, args ...any) (sql.Result, error) {
	if s := j.ws.lookup(query); s != nil {
		return tx.StmtContext(ctx, s).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, query, args...)
}

// txQueryRow is QueryRowContext in tx, through the prepared statement when
// there is one.
func (j *Journal) txQueryRow(ctx context.Context, tx *sql.Tx, query string, args ...any) *sql.Row {
	if s := j.ws.lookup(query); s != nil {
		return tx.StmtContext(ctx, s).QueryRowContext(ctx, args...)
	}
	return tx.QueryRowContext(ctx, query, args...)
}

// query is QueryContext on the readers, through a prepared statement.
func (j *Journal) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	s, err := j.rs.prepare(ctx, query, maxReadStmts)
	if err != nil {
		return nil, err
	}
	if s == nil {
		return j.r.QueryContext(ctx, query, args...)
	}
	return s.QueryContext(ctx, args...)
}

// rowScanner is what a single-row query returns: *sql.Row, or the error
// of preparing it.
type rowScanner interface{ Scan(dest ...any) error }

type errRow struct{ err error }

func (e errRow) Scan(...any) error { return e.err }

// queryRow is QueryRowContext on the readers, through a prepared
// statement.
func (j *Journal) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	s, err := j.rs.prepare(ctx, query, maxReadStmts)
	if err != nil {
		return errRow{err}
	}
	if s == nil {
		return j.r.QueryRowContext(ctx, query, args...)
	}
	return s.QueryRowContext(ctx, args...)
}
