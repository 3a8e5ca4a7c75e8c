package journal

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Owner identifies the process holding the apply lock.
type Owner struct {
	Host    string `json:"host"` // host name; compared with this host's (WithHost) to check the PID
	PID     int    `json:"pid"`
	Command string `json:"command"` // command line, for the operator (no secrets: it is checked)
}

// CurrentOwner describes this process: os.Hostname, os.Getpid and the
// command line.
func CurrentOwner() Owner {
	h, _ := os.Hostname()
	return Owner{Host: h, PID: os.Getpid(), Command: strings.Join(os.Args, " ")}
}

// LockedError is returned by Lock when another apply holds the journal.
type LockedError struct {
	Path   string
	Holder Owner
	Since  time.Time // when the holder took the lock (wall clock, UTC)
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("journal %s is locked by another apply: %q (PID %d on host %s, since %s); "+
		"wait for it to finish or stop it, then run apply again to resume; "+
		"if that process is certainly gone (its host was lost), break the lock with `fixfleet unlock`",
		e.Path, e.Holder.Command, e.Holder.PID, e.Holder.Host, e.Since.UTC().Format(time.RFC3339))
}

// Lock takes the journal's exclusive apply lock for owner, or fails at once
// with a *LockedError naming the holder. There is one lock per journal file:
// a second Lock fails whether it comes from another process or from this
// one (even through the same *Journal). A holder on this host (Owner.Host
// equal to this host's name) whose process no longer exists, or whose PID
// now belongs to another process, is stale: its lock is taken over and an
// event of kind "lock.stale-takeover" records whom it was taken from. A
// holder on another host is never presumed dead: see BreakLock.
//
// The lock is a row written inside a BEGIN IMMEDIATE transaction, so two
// processes racing for it cannot both win. It outlives the process: a
// process that dies holding it leaves it stale, as above.
//
// release removes the lock if it is still this Lock's (not if it was taken
// over or broken since). It is idempotent and safe for concurrent use; call
// it before Close (after Close it fails and the lock stays, to be taken
// over as stale).
func (j *Journal) Lock(ctx context.Context, owner Owner) (release func() error, err error) {
	if owner.Host == "" || owner.PID <= 0 {
		return nil, invalid("lock owner needs a host and a PID (got host %q, PID %d)", owner.Host, owner.PID)
	}
	if err := j.guard("lock", "", "").text("host", owner.Host).text("command", owner.Command).err(); err != nil {
		return nil, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("journal %s: lock token: %w", j.path, err)
	}
	token := hex.EncodeToString(b[:])
	since := j.now().UTC()
	procID := ""
	if owner.Host == j.host {
		procID = j.procID(owner.PID)
	}
	err = j.write(ctx, func(tx *sql.Tx) error {
		var h Owner
		var sinceS, hProc string
		err := tx.QueryRowContext(ctx, `SELECT host, pid, command, since, proc_id FROM apply_lock WHERE id = 1`).
			Scan(&h.Host, &h.PID, &h.Command, &sinceS, &hProc)
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return j.wrapDB(err)
		default:
			hSince, _ := time.Parse(time.RFC3339Nano, sinceS)
			if !j.stale(h, hProc) {
				return &LockedError{Path: j.path, Holder: h, Since: hSince}
			}
			msg := fmt.Sprintf("took over the apply lock of %q (PID %d on host %s, since %s): that process no longer exists",
				h.Command, h.PID, h.Host, hSince.Format(time.RFC3339))
			if j.isSecret != nil && j.isSecret(msg) { // a holder written before the check was registered
				msg = fmt.Sprintf("took over the apply lock of PID %d (since %s): that process no longer exists", h.PID, hSince.Format(time.RFC3339))
			}
			if err := j.insertEvent(ctx, tx, Event{Kind: "lock.stale-takeover", Message: msg, At: since}); err != nil {
				return err
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT OR REPLACE INTO apply_lock (id, host, pid, command, since, proc_id, token)
			VALUES (1, ?, ?, ?, ?, ?, ?)`, owner.Host, owner.PID, owner.Command, ts(since), procID, token)
		return j.wrapDB(err)
	})
	if err != nil {
		return nil, err
	}
	var mu sync.Mutex
	released := false
	return func() error {
		mu.Lock()
		defer mu.Unlock()
		if released {
			return nil
		}
		err := j.write(context.Background(), func(tx *sql.Tx) error {
			_, err := tx.Exec(`DELETE FROM apply_lock WHERE id = 1 AND token = ?`, token)
			return j.wrapDB(err)
		})
		if err == nil {
			released = true
		}
		return err
	}, nil
}

// stale reports whether a lock holder is certainly gone: it ran on this
// host, and its PID is not alive or now belongs to a different process.
func (j *Journal) stale(h Owner, procID string) bool {
	if h.Host != j.host {
		return false
	}
	if !j.pidAlive(h.PID) {
		return true
	}
	if procID == "" {
		return false
	}
	now := j.procID(h.PID)
	return now != "" && now != procID
}

// LockHolder returns the current holder of the apply lock and since when,
// or ok=false if the journal is not locked. It does not judge staleness.
func (j *Journal) LockHolder(ctx context.Context) (holder Owner, since time.Time, ok bool, err error) {
	var sinceS sql.NullString
	err = j.r.QueryRowContext(ctx, `SELECT host, pid, command, since FROM apply_lock WHERE id = 1`).
		Scan(&holder.Host, &holder.PID, &holder.Command, &sinceS)
	if errors.Is(err, sql.ErrNoRows) {
		return Owner{}, time.Time{}, false, nil
	}
	if err != nil {
		return Owner{}, time.Time{}, false, j.wrapDB(err)
	}
	since, err = parseTS(sinceS)
	return holder, since, err == nil, j.wrapDB(err)
}

// LockStale reports whether the apply lock is held by a process that is
// certainly gone (same rule as Lock's takeover: on this host, and its PID is
// not alive or now belongs to another process). false when not locked.
func (j *Journal) LockStale(ctx context.Context) (bool, error) {
	var h Owner
	var procID sql.NullString
	err := j.r.QueryRowContext(ctx, `SELECT host, pid, proc_id FROM apply_lock WHERE id = 1`).Scan(&h.Host, &h.PID, &procID)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, j.wrapDB(err)
	}
	return j.stale(h, procID.String), nil
}

// BreakLock removes the apply lock whoever holds it, for the operator who
// knows the holder is gone (its host was lost). It records an event of kind
// "lock.broken" at time at with the reason and whom the lock was taken
// from, and returns that holder (ok=false and no event if there was no
// lock). Breaking the lock of a live apply lets two run at once: the
// caller must make sure it is not running.
func (j *Journal) BreakLock(ctx context.Context, reason string, at time.Time) (holder Owner, ok bool, err error) {
	if at.IsZero() {
		return Owner{}, false, invalid("break lock without a time")
	}
	if err := j.guard("event", "", "").text("reason", reason).err(); err != nil {
		return Owner{}, false, err
	}
	err = j.write(ctx, func(tx *sql.Tx) error {
		var since string
		err := tx.QueryRowContext(ctx, `SELECT host, pid, command, since FROM apply_lock WHERE id = 1`).
			Scan(&holder.Host, &holder.PID, &holder.Command, &since)
		if errors.Is(err, sql.ErrNoRows) {
			return nil
		}
		if err != nil {
			return j.wrapDB(err)
		}
		ok = true
		if _, err := tx.ExecContext(ctx, `DELETE FROM apply_lock WHERE id = 1`); err != nil {
			return j.wrapDB(err)
		}
		msg := "broke the apply lock of PID " + strconv.Itoa(holder.PID) + " on host " + holder.Host + " (since " + since + ")"
		if reason != "" {
			msg += ": " + reason
		}
		return j.insertEvent(ctx, tx, Event{Kind: "lock.broken", Message: msg, At: at})
	})
	if err != nil {
		return Owner{}, false, err
	}
	return holder, ok, nil
}
