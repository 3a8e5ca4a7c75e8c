package journal

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string) string // returns the path to open
		wantErr error                                 // nil: Open must succeed
		wantMsg []string                              // substrings of the error
	}{
		{
			name:  "fresh file",
			setup: func(t *testing.T, dir string) string { return filepath.Join(dir, "j.db") },
		},
		{
			name: "empty file",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "j.db")
				writeFile(t, p, "")
				return p
			},
		},
		{
			name: "reopen existing journal",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "j.db")
				j, err := Open(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				mustRun(t, j, "r1")
				j.Close()
				return p
			},
		},
		{
			name:    "missing directory",
			setup:   func(t *testing.T, dir string) string { return filepath.Join(dir, "nope", "j.db") },
			wantMsg: []string{"does not exist", "create it"},
		},
		{
			name: "not sqlite",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "plan.yaml")
				writeFile(t, p, "vms:\n  - a\n  - b\n  - c\n")
				return p
			},
			wantErr: ErrNotJournal,
			wantMsg: []string{"plan.yaml", "choose another path"},
		},
		{
			name: "path is a directory",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "sub")
				if err := os.Mkdir(p, 0o755); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrNotJournal,
		},
		{
			name: "another sqlite database",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "other.db")
				db, err := sql.Open("sqlite", p)
				if err != nil {
					t.Fatal(err)
				}
				defer db.Close()
				if _, err := db.Exec(`CREATE TABLE customers (id INTEGER)`); err != nil {
					t.Fatal(err)
				}
				return p
			},
			wantErr: ErrNotJournal,
			wantMsg: []string{"other.db"},
		},
		{
			name: "newer schema",
			setup: func(t *testing.T, dir string) string {
				p := filepath.Join(dir, "j.db")
				j, err := Open(ctx, p)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := j.w.Exec(`UPDATE schema_version SET version = ?`, SchemaVersion+1); err != nil {
					t.Fatal(err)
				}
				j.Close()
				return p
			},
			wantErr: ErrNewerSchema,
			wantMsg: []string{"j.db", "upgrade fixfleet"},
		},
		{
			name:    "uri path refused",
			setup:   func(t *testing.T, dir string) string { return "file:" + filepath.Join(dir, "j.db") + "?mode=ro" },
			wantMsg: []string{"plain file name"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := tt.setup(t, t.TempDir())
			j, err := Open(ctx, path)
			if tt.wantErr == nil && tt.wantMsg == nil {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				j.Close()
				return
			}
			if err == nil {
				j.Close()
				t.Fatalf("Open succeeded, want error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			for _, m := range tt.wantMsg {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
		})
	}
}

func writeFile(t *testing.T, p, s string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestPragmas(t *testing.T) {
	j, _ := openTemp(t)
	ctx := context.Background()
	for _, tt := range []struct{ pragma, want string }{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	} {
		var got string
		if err := j.w.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %s, want %s", tt.pragma, got, tt.want)
		}
	}
	var v int
	if err := j.r.QueryRowContext(ctx, `SELECT version FROM schema_version`).Scan(&v); err != nil || v != SchemaVersion {
		t.Errorf("schema version %d (%v), want %d", v, err, SchemaVersion)
	}
}

func TestOpenConcurrent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j.db")
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			j, err := Open(context.Background(), path)
			if err != nil {
				errs <- err
				return
			}
			errs <- j.Close()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Open: %v", err)
		}
	}
}

// TestReopenAfterClose: everything written before Close is there after
// reopening, and a step begun but never ended is reported as begun.
func TestReopenAfterClose(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "j.db")
	j, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	mustRun(t, j, "r1")
	done, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "vm1", Strategy: "helper-mount", Step: "snapshot", Attempt: 1, At: at(1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EndStep(ctx, done, StepResult{Status: StepOK, Facts: map[string]string{"snapshot": "snap-1"}, At: at(2)}); err != nil {
		t.Fatal(err)
	}
	open, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "vm1", Strategy: "helper-mount", Step: "stop", Attempt: 1, Intent: []byte(`{"force":false}`), At: at(3)})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	j = openAt(t, path)
	steps, err := j.ListSteps(ctx, "r1", "vm1")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 {
		t.Fatalf("%d steps after reopen, want 2", len(steps))
	}
	if s := steps[0]; s.ID != done || s.Status != StepOK || s.Facts["snapshot"] != "snap-1" || !s.EndedAt.Equal(at(2)) {
		t.Errorf("ended step after reopen = %+v", s)
	}
	if s := steps[1]; s.ID != open || s.Status != StepBegun || !s.EndedAt.IsZero() || string(s.Intent) != `{"force":false}` {
		t.Errorf("open step after reopen = %+v, want status begun", s)
	}
	un, err := j.UnfinishedSteps(ctx, "r1")
	if err != nil || len(un) != 1 || un[0].ID != open {
		t.Errorf("UnfinishedSteps = %+v, %v; want step %d", un, err, open)
	}
}
