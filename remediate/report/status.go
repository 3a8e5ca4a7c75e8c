package report

import (
	"context"
	"fmt"
	"time"

	"github.com/fixfleet/fixfleet/internal/render"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/remediate/apply"
)

// StatusDoc is where a run stands (`fixfleet status --format json`): the
// rebuilt result, its elapsed time, and who holds the journal's apply
// lock.
type StatusDoc struct {
	*apply.Result
	ElapsedSeconds float64        `json:"elapsed_seconds"`
	Holder         *journal.Owner `json:"lock_holder,omitempty"`
	HolderGone     bool           `json:"lock_holder_gone,omitempty"`
}

// StatusJournal is what Status reads of a journal (journal.Journal): the
// run's facts and its apply lock.
type StatusJournal interface {
	FactReader
	LockHolder(ctx context.Context) (holder journal.Owner, since time.Time, ok bool, err error)
	LockStale(ctx context.Context) (bool, error)
}

// Status is where run res stands, as a document and as the brief tables
// (summary, VMs for a person, original disks kept); while the apply lock
// is held, the summary names its holder, and says when the holder's
// process is gone. An unreadable lock is left out; an unreadable fact is
// an error.
func Status(ctx context.Context, j StatusJournal, res *apply.Result) (StatusDoc, []render.Table, error) {
	doc := StatusDoc{Result: res, ElapsedSeconds: res.Elapsed.Seconds()}
	if h, _, ok, err := j.LockHolder(ctx); err == nil && ok {
		doc.Holder = &h
	}
	kept, err := KeptDisks(ctx, j, res)
	if err != nil {
		return doc, nil, err
	}
	rep, _ := Build(res, nil, kept, "") // no tenant: cannot fail
	tables := rep.Brief()
	if doc.Holder != nil {
		running := fmt.Sprintf("%s pid %d", doc.Holder.Host, doc.Holder.PID)
		if gone, err := j.LockStale(ctx); err == nil && gone {
			doc.HolderGone = true
			running += " — that process is gone: the next apply takes the lock over and resumes"
		}
		tables[0].Rows = append(tables[0].Rows, []string{"apply lock", running})
	}
	return doc, tables, nil
}

// EventReader reads a run's events (journal.Journal.Events).
type EventReader interface {
	Events(ctx context.Context, runID string, f journal.EventFilter) ([]journal.Event, error)
}

// RunJournal is what FromJournal reads of a journal.
type RunJournal interface {
	FactReader
	EventReader
}

// FromJournal reads run res's events and kept disks from j once, and
// returns the Loader that builds its report for a tenant (all: "").
func FromJournal(ctx context.Context, j RunJournal, res *apply.Result) (Loader, error) {
	evs, err := j.Events(ctx, res.RunID, journal.EventFilter{})
	if err != nil {
		return nil, err
	}
	kept, err := KeptDisks(ctx, j, res)
	if err != nil {
		return nil, err
	}
	return func(t string) (*Report, error) { return Build(res, evs, kept, t) }, nil
}

// Brief is the brief tables of an apply's result for people: the summary
// and the VMs for a person grouped by reason (counts from the same rows).
func Brief(res *apply.Result) []render.Table {
	rep, _ := Build(res, nil, nil, "") // no tenant: cannot fail
	return rep.Brief()
}
