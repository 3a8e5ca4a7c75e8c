package progress

import (
	"io"

	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/eventlog"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// ForApply returns where an apply of p reports its events: the progress
// line on w when w is a terminal (term), else one log line per event in
// format (eventlog). Call done at the end.
func ForApply(w io.Writer, term bool, p *plan.Plan, format eventlog.Format) (events func(apply.Event), done func()) {
	if term {
		d := New(w, ForPlan(p, Width(w)))
		return d.Event, d.Done
	}
	return eventlog.New(w, format).Event, func() {}
}
