package journal

import (
	"context"
	"path/filepath"
	"testing"
	"time"
)

// t0 is the simulated incident clock the tests write with.
var t0 = time.Date(2024, 7, 19, 4, 9, 0, 0, time.UTC)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

// openTemp opens a fresh journal in a temporary directory and closes it at
// the end of the test.
func openTemp(t testing.TB, opts ...Option) (*Journal, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fixfleet.db")
	return openAt(t, path, opts...), path
}

func openAt(t testing.TB, path string, opts ...Option) *Journal {
	t.Helper()
	j, err := Open(context.Background(), path, opts...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = j.Close() })
	return j
}

func mustRun(t testing.TB, j *Journal, id string) {
	t.Helper()
	err := j.CreateRun(context.Background(), Run{ID: id, PlanID: "plan-" + id, PlanJSON: []byte(`{"plan":"` + id + `"}`), CreatedAt: t0})
	if err != nil {
		t.Fatalf("CreateRun(%s): %v", id, err)
	}
}
