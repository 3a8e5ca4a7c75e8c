package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// migrations[i] brings a schema at version i to version i+1. Append only:
// never edit a migration that has shipped.
var migrations = []string{
	// 0 -> 1
	`
CREATE TABLE schema_version (
	app     TEXT    NOT NULL,
	version INTEGER NOT NULL
);
CREATE TABLE apply_lock (
	id       INTEGER PRIMARY KEY CHECK (id = 1),
	host     TEXT    NOT NULL,
	pid      INTEGER NOT NULL,
	command  TEXT    NOT NULL,
	since    TEXT    NOT NULL,
	proc_id  TEXT    NOT NULL,
	token    TEXT    NOT NULL
);
CREATE TABLE runs (
	id         TEXT PRIMARY KEY,
	plan_id    TEXT NOT NULL,
	plan_json  BLOB NOT NULL,
	options    TEXT,
	status     TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE INDEX runs_created ON runs (created_at);
CREATE TABLE vms (
	run_id     TEXT NOT NULL REFERENCES runs (id),
	vm_key     TEXT NOT NULL,
	name       TEXT NOT NULL,
	strategy   TEXT NOT NULL,
	status     TEXT NOT NULL,
	reason     TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (run_id, vm_key)
);
CREATE TABLE steps (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id   TEXT    NOT NULL REFERENCES runs (id),
	vm_key   TEXT    NOT NULL,
	strategy TEXT    NOT NULL,
	step     TEXT    NOT NULL,
	attempt  INTEGER NOT NULL,
	intent   TEXT,
	status   TEXT    NOT NULL CHECK (status IN ('begun', 'ok', 'failed', 'skipped')),
	error    TEXT    NOT NULL DEFAULT '',
	begun_at TEXT    NOT NULL,
	ended_at TEXT,
	UNIQUE (run_id, vm_key, strategy, step, attempt)
);
CREATE INDEX steps_open ON steps (run_id, status);
CREATE TABLE facts (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id  TEXT NOT NULL REFERENCES runs (id),
	vm_key  TEXT NOT NULL,
	key     TEXT NOT NULL,
	value   TEXT NOT NULL,
	step_id INTEGER REFERENCES steps (id)
);
CREATE INDEX facts_vm ON facts (run_id, vm_key, key);
CREATE INDEX facts_step ON facts (step_id);
CREATE TABLE events (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	run_id  TEXT REFERENCES runs (id),
	vm_key  TEXT NOT NULL DEFAULT '',
	kind    TEXT NOT NULL,
	message TEXT NOT NULL,
	at      TEXT NOT NULL
);
CREATE INDEX events_run ON events (run_id, seq);
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'fixfleet journal: events are append-only'); END;
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'fixfleet journal: events are append-only'); END;
INSERT INTO schema_version (app, version) VALUES ('fixfleet-journal', 0);
`,
	// 1 → 2: a VM's outcome carries a machine-readable reason code beside
	// its message, and an event names its strategy. Rows written before
	// are given theirs from the only texts the executor ever wrote for
	// them, once, here: a VM flagged because its account had no
	// configuration, and a strategy-failed event ("<strategy>: <reason>").
	`
ALTER TABLE vms ADD COLUMN reason_code TEXT NOT NULL DEFAULT '';
UPDATE vms SET reason_code = 'account-not-configured' WHERE status = 'flagged' AND reason LIKE 'account not configured%';
ALTER TABLE events ADD COLUMN strategy TEXT NOT NULL DEFAULT '';
DROP TRIGGER events_no_update;
UPDATE events SET strategy = substr(message, 1, instr(message, ': ') - 1)
	WHERE kind = 'vm.strategy-failed' AND instr(message, ': ') > 0;
CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'fixfleet journal: events are append-only'); END;
`,
}

// migrate creates or upgrades the schema inside one IMMEDIATE transaction,
// so concurrent Opens of one file migrate it exactly once.
func (j *Journal) migrate(ctx context.Context) error {
	if err := j.connect(ctx); err != nil {
		if c := sqliteCode(err); c == sqliteCorrupt || c == sqliteNotADB {
			return j.damaged(err.Error())
		}
		return fmt.Errorf("journal %s: cannot open it: %w; check that the file and its directory are writable", j.path, err)
	}
	// A damaged page may not show until it is read, and then as rows
	// missing rather than an error (an open step not found is a step
	// repeated): check the whole file once, before anything is written.
	var check string
	if err := j.w.QueryRowContext(ctx, "PRAGMA quick_check(1)").Scan(&check); err != nil {
		return j.wrapDB(err) // ErrDamaged when SQLite found the damage itself
	}
	if check != "ok" {
		return j.damaged(check)
	}
	var mode string
	if err := j.w.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode); err != nil {
		return j.wrapDB(err)
	}
	if !strings.EqualFold(mode, "wal") {
		return fmt.Errorf("journal %s: cannot switch it to WAL mode (it is in %q mode); check that its directory is writable", j.path, mode)
	}
	return j.write(ctx, func(tx *sql.Tx) error {
		version, err := readVersion(ctx, tx, j.path)
		if err != nil {
			return err
		}
		if version > SchemaVersion {
			return fmt.Errorf("journal %s: %w: it has schema version %d, this fixfleet knows up to %d; upgrade fixfleet or use another journal file",
				j.path, ErrNewerSchema, version, SchemaVersion)
		}
		for v := version; v < SchemaVersion; v++ {
			if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
				return fmt.Errorf("journal %s: migrating schema %d to %d: %w", j.path, v, v+1, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE schema_version SET version = ?`, v+1); err != nil {
				return fmt.Errorf("journal %s: migrating schema %d to %d: %w", j.path, v, v+1, err)
			}
		}
		return nil
	})
}

// connect opens the writer connection. Connecting sets journal_mode=WAL,
// which SQLite refuses with SQLITE_BUSY, without waiting, while another
// process is converting or recovering the same file; that is retried for up
// to the busy timeout.
func (j *Journal) connect(ctx context.Context) error {
	deadline := time.Now().Add(j.busyTimeout)
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		err := j.w.PingContext(ctx)
		if err == nil || !isBusy(err) || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

func isBusy(err error) bool {
	s := err.Error()
	return strings.Contains(s, "SQLITE_BUSY") || strings.Contains(s, "database is locked")
}

// readVersion returns the schema version (0 for an empty database), or
// ErrNotJournal for a database that holds something else.
func readVersion(ctx context.Context, tx *sql.Tx, path string) (int, error) {
	var tables int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema`).Scan(&tables); err != nil {
		if strings.Contains(err.Error(), "not a database") || strings.Contains(err.Error(), "encrypted") {
			return 0, fmt.Errorf("journal %s: %w (%v); choose another path", path, ErrNotJournal, err)
		}
		return 0, fmt.Errorf("journal %s: %w", path, err)
	}
	if tables == 0 {
		return 0, nil
	}
	var app string
	var version int
	err := tx.QueryRowContext(ctx, `SELECT app, version FROM schema_version`).Scan(&app, &version)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) || strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "no such column") {
			return 0, fmt.Errorf("journal %s: %w (an SQLite database holding other tables); choose another path", path, ErrNotJournal)
		}
		return 0, fmt.Errorf("journal %s: %w", path, err)
	}
	if app != appName {
		return 0, fmt.Errorf("journal %s: %w (its schema_version names %q); choose another path", path, ErrNotJournal, app)
	}
	return version, nil
}
