package report

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory/journal"
)

// fakeJournal holds one run's facts and its apply lock.
type fakeJournal struct {
	held, stale bool
	events      []journal.Event
}

func (f fakeJournal) Facts(context.Context, string, string) (map[string]string, error) {
	return map[string]string{}, nil
}

func (f fakeJournal) LockHolder(context.Context) (journal.Owner, time.Time, bool, error) {
	return journal.Owner{Host: "ops-1", PID: 42}, time.Time{}, f.held, nil
}

func (f fakeJournal) LockStale(context.Context) (bool, error) { return f.stale, nil }

func (f fakeJournal) Events(context.Context, string, journal.EventFilter) ([]journal.Event, error) {
	return f.events, nil
}

// TestStatus: the summary names the lock's holder only while the lock is
// held, and says when its process is gone.
func TestStatus(t *testing.T) {
	res, _ := fixture()
	for _, tc := range []struct {
		name         string
		j            fakeJournal
		row          string
		holder, gone bool
	}{
		{name: "free", j: fakeJournal{}},
		{name: "held", j: fakeJournal{held: true}, row: "ops-1 pid 42", holder: true},
		{name: "stale", j: fakeJournal{held: true, stale: true}, row: "ops-1 pid 42 — that process is gone", holder: true, gone: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			doc, tables, err := Status(context.Background(), tc.j, res)
			if err != nil {
				t.Fatal(err)
			}
			if (doc.Holder != nil) != tc.holder || doc.HolderGone != tc.gone || doc.ElapsedSeconds != res.Elapsed.Seconds() {
				t.Errorf("doc: holder %v, gone %v, elapsed %v", doc.Holder, doc.HolderGone, doc.ElapsedSeconds)
			}
			last := tables[0].Rows[len(tables[0].Rows)-1]
			if got := last[0] == "apply lock"; got != (tc.row != "") || (got && !strings.HasPrefix(last[1], tc.row)) {
				t.Errorf("last summary row %q", last)
			}
		})
	}
}

// TestFromJournal: the loader builds the same report as Build on the
// journal's events.
func TestFromJournal(t *testing.T) {
	res, evs := fixture()
	load, err := FromJournal(context.Background(), fakeJournal{events: evs}, res)
	if err != nil {
		t.Fatal(err)
	}
	got, err := load("")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := Build(res, evs, nil, "")
	if got.Title() != want.Title() || len(got.VMs) != len(want.VMs) {
		t.Errorf("FromJournal's report differs from Build's")
	}
}
