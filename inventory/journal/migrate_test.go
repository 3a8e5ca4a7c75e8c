package journal

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
)

// TestMigrateV1: a journal written by schema 1 opens in place; its VM
// flagged for a missing account gets its reason code, its strategy-failed
// events their strategy, other rows neither, and events stay append-only.
func TestMigrateV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		migrations[0],
		`UPDATE schema_version SET version = 1`,
		`INSERT INTO runs (id, plan_id, plan_json, status, created_at, updated_at) VALUES ('r1', 'p1', '{}', 'paused', '2024-07-19T09:00:00Z', '2024-07-19T09:00:00Z')`,
		`INSERT INTO vms VALUES ('r1', 't/a/vm1', 'vm1', 'reboot-retry', 'flagged', 'account not configured: fixfleet has no credentials', '2024-07-19T09:00:00Z')`,
		`INSERT INTO vms VALUES ('r1', 't/a/vm2', 'vm2', 'helper-mount', 'flagged', 'helper-mount: disk identity differs', '2024-07-19T09:00:00Z')`,
		`INSERT INTO events (run_id, vm_key, kind, message, at) VALUES ('r1', 't/a/vm2', 'vm.strategy-failed', 'reboot-retry: still boot-looping after 3 restarts: it crashed', '2024-07-19T09:00:00Z')`,
		`INSERT INTO events (run_id, vm_key, kind, message, at) VALUES ('r1', 't/a/vm2', 'vm.flagged', 't/a/vm2 flagged: x: y', '2024-07-19T09:00:00Z')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	j := openAt(t, path)
	for key, want := range map[string]string{"t/a/vm1": "account-not-configured", "t/a/vm2": ""} {
		v, err := j.GetVM(ctx, "r1", key)
		if err != nil || v.Code != want || v.Status != VMFlagged {
			t.Errorf("%s: code %q status %q (%v), want code %q", key, v.Code, v.Status, err, want)
		}
	}
	evs, err := j.Events(ctx, "r1", EventFilter{})
	if err != nil || len(evs) != 2 {
		t.Fatalf("events %v, %v", evs, err)
	}
	if evs[0].Strategy != "reboot-retry" || evs[0].Message != "reboot-retry: still boot-looping after 3 restarts: it crashed" || evs[1].Strategy != "" {
		t.Errorf("migrated events %+v", evs)
	}
	if _, err := j.w.Exec(`UPDATE events SET message = 'x'`); err == nil {
		t.Error("events are no longer append-only after the migration")
	}
}
