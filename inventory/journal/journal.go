// Package journal is the durable record of apply runs: an embedded SQLite
// database (pure Go, modernc.org/sqlite), by default ./fixfleet.db.
//
// It records, per run, the plan document verbatim, every VM's status, every
// step before and after its side effect, the facts those steps produced
// (snapshot IDs, attachments, disk identities, helper IDs...) and an
// append-only event log. It also holds the exclusive apply lock, so that two
// apply processes cannot work from the same journal at once.
//
// Durability: the database runs in WAL mode with synchronous=FULL, so a
// write that returned nil survives a SIGKILL or power loss right after it.
// A step begun and never ended (the process died during its side effect)
// keeps the status "begun": its effect is unknown, and the caller must read
// the real state before acting again. A file found damaged (truncated or
// corrupted) is refused at Open with ErrDamaged and left untouched: a journal
// that silently lost rows would make apply repeat steps.
//
// Time: the journal never reads the clock for what it records; every record
// carries a time the caller passes (the executor may run on a simulated
// clock). The one exception is the lock's Since, which is wall-clock time.
// Times are stored as UTC RFC 3339 text with a fixed nine-digit fraction
// ("2024-07-19T04:09:00.000000000Z"), so that text order is time order.
//
// Secrets: a Journal opened WithSecretCheck (or WithSecrets) refuses any
// write whose text contains a registered secret, with an error that does not
// contain it. Every text column is checked: IDs, names, plan and intent JSON
// (raw and decoded), facts, errors, events and the lock owner's command line.
//
// Concurrency: a *Journal is safe for use by many goroutines. Writes from
// one process go through a single writer goroutine and connection (one
// writer at a time is all SQLite allows anyway, and queueing in-process is
// far cheaper than spinning on SQLITE_BUSY); writes that arrive together are
// group-committed, one fsync for many, each in its own savepoint so that a
// refused write is rolled back alone. Reads use a separate pool and do not
// wait for writers. The frequent statements are prepared once per
// connection pool and reused (stmts.go), not compiled at every call. Writers in other processes are waited for up to the
// busy timeout (WithBusyTimeout).
package journal

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/internal/secret"

	"modernc.org/sqlite" // the "sqlite" database/sql driver, and its error codes
)

// DefaultPath is the journal file used when none is given.
const DefaultPath = "fixfleet.db"

// SchemaVersion is the schema version this build writes and understands.
const SchemaVersion = 2

// appName marks a database as a fixfleet journal in its schema_version table.
const appName = "fixfleet-journal"

// defaultBusyTimeout is how long a write waits for another process's write
// transaction (or the apply lock transaction) before failing with SQLITE_BUSY.
const defaultBusyTimeout = 10 * time.Second

// Sentinel errors. Errors returned by the journal wrap these where they apply;
// test with errors.Is.
var (
	// ErrNotFound: the run, VM or step asked for is not in the journal.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the write contradicts what the journal already holds (a
	// run ID reused for another plan, a step ended twice with different
	// results, an attempt number begun twice).
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the caller passed an invalid record (missing ID, zero time,
	// malformed JSON, unknown status).
	ErrInvalid = errors.New("invalid record")
	// ErrSecret: the write was refused because it contains a registered secret.
	ErrSecret = errors.New("contains a secret")
	// ErrNotJournal: the file is not a fixfleet journal.
	ErrNotJournal = errors.New("not a fixfleet journal")
	// ErrNewerSchema: the journal was written by a newer fixfleet.
	ErrNewerSchema = errors.New("journal schema is newer than this fixfleet")
	// ErrDamaged: the journal file is truncated or corrupted. Open refuses
	// it and leaves it untouched.
	ErrDamaged = errors.New("the journal file is damaged (truncated or corrupted)")
)

// damagedAdvice is what to do about a damaged journal.
const damagedAdvice = "fixfleet left it untouched: restore it from a copy or backup to resume, " +
	"or keep it for inspection and start over with another --journal path " +
	"(a new journal knows nothing of the steps this one recorded: check the fleet's state first)"

// damaged is the error for a damaged journal file, with what SQLite found.
func (j *Journal) damaged(found string) error {
	return fmt.Errorf("journal %s: %w: %s; %s", j.path, ErrDamaged, found, damagedAdvice)
}

// SQLite primary result codes the journal tells apart (sqlite3.h).
const (
	sqliteIOErr   = 10
	sqliteCorrupt = 11
	sqliteFull    = 13
	sqliteNotADB  = 26
)

// sqliteCode returns the primary SQLite result code of err, 0 if none.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// Journal is an open journal file. Create it with Open; Close it when done.
// All methods are safe for concurrent use.
type Journal struct {
	path     string
	w        *sql.DB    // one connection: all writes, serialised in-process
	r        *sql.DB    // read-only pool
	ws, rs   *stmtCache // statements prepared on w and r (stmts.go)
	isSecret func(string) bool
	pidAlive func(pid int) bool
	procID   func(pid int) string
	host     string
	now      func() time.Time // only for the lock's Since

	busyTimeout time.Duration

	reqs      chan *writeReq // to the writer goroutine (unbuffered)
	closing   chan struct{}  // closed by Close
	loopDone  chan struct{}  // closed when the writer goroutine has returned
	closeOnce sync.Once
}

// Option configures Open.
type Option func(*config)

type config struct {
	secretChecks []func(string) bool
	pidAlive     func(int) bool
	procID       func(int) string
	host         string
	hostSet      bool
	busyTimeout  time.Duration
	now          func() time.Time
}

// WithSecretCheck registers a check that reports whether a text contains a
// secret. Every text the journal is asked to write is passed to each
// registered check; if any returns true the write is refused with an error
// wrapping ErrSecret that does not include the text. May be given several
// times; all checks apply.
func WithSecretCheck(contains func(text string) bool) Option {
	return func(c *config) {
		if contains != nil {
			c.secretChecks = append(c.secretChecks, contains)
		}
	}
}

// WithSecrets registers secret values (WinRM passwords, BitLocker keys, API
// secrets): a write containing any of them as a substring is refused. Empty
// secrets are ignored.
func WithSecrets(ss ...secret.Secret) Option {
	vals := make([]string, 0, len(ss))
	for _, s := range ss {
		if !s.IsZero() {
			vals = append(vals, s.Reveal())
		}
	}
	return WithSecretCheck(func(text string) bool {
		for _, v := range vals {
			if strings.Contains(text, v) {
				return true
			}
		}
		return false
	})
}

// WithPIDAlive replaces the check that a process on this host still exists
// (default: signal 0 on Unix). Tests use it to simulate a dead lock holder.
func WithPIDAlive(alive func(pid int) bool) Option {
	return func(c *config) { c.pidAlive = alive }
}

// WithProcessIdentity replaces the function that returns an identity for a
// live process that survives PID reuse (default on Linux: boot ID and start
// time from /proc; elsewhere ""). An empty identity means unknown. A lock
// holder whose recorded identity differs from the identity of the process
// now running under its PID is stale, which matters in containers where the
// apply process is PID 1 every time.
func WithProcessIdentity(id func(pid int) string) Option {
	return func(c *config) { c.procID = id }
}

// WithHost sets the name of this host as the lock compares it with a
// holder's Owner.Host to decide whether the holder's PID can be checked
// (default: os.Hostname()).
func WithHost(host string) Option {
	return func(c *config) { c.host = host; c.hostSet = true }
}

// WithBusyTimeout sets how long a write waits for another process holding
// the database's write lock (default 10s).
func WithBusyTimeout(d time.Duration) Option {
	return func(c *config) { c.busyTimeout = d }
}

// withNow replaces the wall clock used for the lock's Since (tests only).
func withNow(now func() time.Time) Option {
	return func(c *config) { c.now = now }
}

// Open opens the journal at path, creating the file and its schema if they
// do not exist and migrating an older schema. It is safe for several
// processes to open the same file at once. Errors name the file and say what
// to do: the directory does not exist or is not writable, the file is not a
// fixfleet journal (ErrNotJournal), it is truncated or corrupted
// (ErrDamaged: it is checked whole, and left untouched), or it was written
// by a newer fixfleet (ErrNewerSchema). The caller must Close the journal.
func Open(ctx context.Context, path string, opts ...Option) (*Journal, error) {
	if path == "" {
		path = DefaultPath
	}
	cfg := config{busyTimeout: defaultBusyTimeout}
	for _, o := range opts {
		o(&cfg)
	}
	if strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") || path == ":memory:" {
		return nil, fmt.Errorf("journal %s: the path must be a plain file name (no '?', '#', \"file:\" or \":memory:\"); choose another file name", path)
	}
	if err := precheck(path); err != nil {
		return nil, err
	}
	j := &Journal{
		path:     path,
		pidAlive: cfg.pidAlive,
		procID:   cfg.procID,
		host:     cfg.host,
		now:      cfg.now,

		busyTimeout: cfg.busyTimeout,
	}
	if checks := cfg.secretChecks; len(checks) > 0 {
		j.isSecret = func(s string) bool {
			for _, c := range checks {
				if c(s) {
					return true
				}
			}
			return false
		}
	}
	if j.pidAlive == nil {
		j.pidAlive = pidAlive
	}
	if j.procID == nil {
		j.procID = processIdentity
	}
	if !cfg.hostSet {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("journal %s: cannot read this host's name for the apply lock: %w", path, err)
		}
		j.host = h
	}
	if j.now == nil {
		j.now = time.Now
	}

	ms := cfg.busyTimeout.Milliseconds()
	wdsn := fmt.Sprintf("%s?_busy_timeout=%d&_journal_mode=WAL&_synchronous=FULL&_foreign_keys=1&_txlock=immediate", path, ms)
	w, err := sql.Open("sqlite", wdsn)
	if err != nil {
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	j.w = w
	j.ws = newStmtCache(w)
	j.reqs = make(chan *writeReq)
	j.closing = make(chan struct{})
	j.loopDone = make(chan struct{})
	go j.writeLoop()
	if err := j.migrate(ctx); err != nil {
		j.stopWriter()
		_ = w.Close()
		return nil, err
	}
	if err := j.prepareWrites(ctx); err != nil {
		j.stopWriter()
		_ = j.ws.close()
		_ = w.Close()
		return nil, err
	}
	rdsn := fmt.Sprintf("%s?_busy_timeout=%d&_query_only=1", path, ms)
	r, err := sql.Open("sqlite", rdsn)
	if err != nil {
		j.stopWriter()
		_ = j.ws.close()
		_ = w.Close()
		return nil, fmt.Errorf("journal %s: %w", path, err)
	}
	n := max(4, runtime.GOMAXPROCS(0))
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	j.r = r
	j.rs = newStmtCache(r)
	return j, nil
}

// precheck turns the common path problems into errors that say what to do,
// before SQLite reports them as "unable to open database file".
func precheck(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("journal %s: directory %s does not exist; create it or choose another journal path", path, dir)
	case err != nil:
		return fmt.Errorf("journal %s: cannot use directory %s: %w", path, dir, err)
	case !st.IsDir():
		return fmt.Errorf("journal %s: %s is not a directory; choose another journal path", path, dir)
	}
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("journal %s: cannot read it: %w; check its permissions", path, err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return fmt.Errorf("journal %s: is a directory; %w: choose a file path", path, ErrNotJournal)
	}
	hdr := make([]byte, 16)
	n, err := io.ReadFull(f, hdr)
	if n == 0 && (err == io.EOF || err == nil) {
		return nil // empty file: SQLite initialises it
	}
	if n < 16 || string(hdr) != "SQLite format 3\x00" {
		return fmt.Errorf("journal %s: %w (not an SQLite database); choose another path, the journal would overwrite nothing here", path, ErrNotJournal)
	}
	return nil
}

// Path returns the journal's file path as given to Open.
func (j *Journal) Path() string { return j.path }

// Close closes the journal. Data already written is durable whether or not
// Close is called; Close releases file handles and checkpoints the WAL. It
// does not release an apply lock: call the release func Lock returned.
// Writes in progress finish first; writes after Close fail. Idempotent.
func (j *Journal) Close() error {
	j.stopWriter()
	return errors.Join(j.rs.close(), j.ws.close(), j.r.Close(), j.w.Close())
}

// stopWriter stops the writer goroutine and waits for it.
func (j *Journal) stopWriter() {
	j.closeOnce.Do(func() { close(j.closing) })
	<-j.loopDone
}

// maxBatch bounds how many concurrent writes share one transaction.
const maxBatch = 256

// errClosed is returned by writes on a closed Journal.
var errClosed = errors.New("journal is closed")

// writeReq is one write waiting for the writer goroutine.
type writeReq struct {
	ctx  context.Context
	fn   func(tx *sql.Tx) error
	done chan error // buffered(1); always answered once the request is taken
}

// write runs fn atomically in a write transaction and returns once its
// effect is durable (committed with synchronous=FULL) or refused. Writes
// that arrive together are group-committed: each runs inside its own
// savepoint of one BEGIN IMMEDIATE transaction, so one fsync serves many,
// and a write whose fn fails is rolled back alone. ctx is checked before fn
// runs; once fn has started it is not interrupted (an interrupted statement
// would roll back the whole group).
func (j *Journal) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	req := &writeReq{ctx: ctx, fn: fn, done: make(chan error, 1)}
	select {
	case j.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	case <-j.closing:
		return fmt.Errorf("journal %s: %w", j.path, errClosed)
	}
	return <-req.done
}

// writeLoop is the single writer: it takes the waiting writes in groups and
// commits each group once. It returns when the journal is closing.
func (j *Journal) writeLoop() {
	defer close(j.loopDone)
	for {
		var first *writeReq
		select {
		case first = <-j.reqs:
		case <-j.closing:
			return
		}
		batch := []*writeReq{first}
	drain:
		for len(batch) < maxBatch {
			select {
			case r := <-j.reqs:
				batch = append(batch, r)
			default:
				break drain
			}
		}
		j.commitBatch(batch)
	}
}

func (j *Journal) commitBatch(batch []*writeReq) {
	results := make([]error, len(batch))
	defer func() {
		for i, r := range batch {
			r.done <- results[i]
		}
	}()
	bg := context.Background()
	tx, err := j.w.BeginTx(bg, nil) // BEGIN IMMEDIATE (_txlock), waits busy_timeout for other processes
	if err != nil {
		for i := range results {
			results[i] = j.wrapDB(err)
		}
		return
	}
	ok := 0
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			results[i] = err
			continue
		}
		if _, err := j.txExec(bg, tx, qSavepoint); err != nil {
			results[i] = j.wrapDB(err)
			continue
		}
		if err := r.fn(tx); err != nil {
			results[i] = err
			_, rbErr := j.txExec(bg, tx, qRollbackTo)
			_, relErr := j.txExec(bg, tx, qRelease)
			if rbErr != nil || relErr != nil { // the transaction is unusable: fail the group
				_ = tx.Rollback()
				for k := range results {
					if results[k] == nil {
						results[k] = j.wrapDB(errors.Join(rbErr, relErr))
					}
				}
				return
			}
			continue
		}
		if _, err := j.txExec(bg, tx, qRelease); err != nil {
			results[i] = j.wrapDB(err)
			continue
		}
		ok++
	}
	if ok == 0 {
		_ = tx.Rollback()
		return
	}
	if err := tx.Commit(); err != nil {
		for i := range results {
			if results[i] == nil {
				results[i] = j.wrapDB(err)
			}
		}
	}
}

// wrapDB names the file in a database error.
func (j *Journal) wrapDB(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	switch sqliteCode(err) {
	case sqliteCorrupt, sqliteNotADB:
		return j.damaged(err.Error())
	case sqliteFull, sqliteIOErr:
		return fmt.Errorf("journal %s: %w; the last write was not recorded: free disk space (or raise the file size limit) and run again", j.path, err)
	}
	msg := err.Error()
	hint := ""
	switch {
	case strings.Contains(msg, "database is locked"), strings.Contains(msg, "SQLITE_BUSY"):
		hint = "; another process is writing to this journal, retry or stop it"
	case strings.Contains(msg, "readonly"), strings.Contains(msg, "unable to open"):
		hint = "; check that the file and its directory are writable"
	case strings.Contains(msg, "disk is full"), strings.Contains(msg, "SQLITE_FULL"):
		hint = "; free disk space and retry"
	}
	return fmt.Errorf("journal %s: %w%s", j.path, err, hint)
}

// ts formats t for storage: UTC, fixed nine-digit fraction (so text order
// is time order), RFC 3339.
func ts(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000000Z07:00")
}

// parseTS parses a stored time; NULL or "" is the zero time.
func parseTS(s sql.NullString) (time.Time, error) {
	if !s.Valid || s.String == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s.String)
	if err != nil {
		return time.Time{}, fmt.Errorf("corrupt time %q in journal: %w", s.String, err)
	}
	return t, nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("journal: %w: "+format, append([]any{ErrInvalid}, args...)...)
}
