package notify

import (
	"bytes"
	"testing"

	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// TestOpenTeeFinish: no webhook is a nil notifier whose Tee is the display
// itself and whose Finish writes nothing; a bad --notify starts nothing.
func TestOpenTeeFinish(t *testing.T) {
	n, err := Open(nil, nil)
	if err != nil || n != nil {
		t.Fatalf("Open(none) = %v, %v; want nil, nil", n, err)
	}
	shown := 0
	n.Tee(&plan.Plan{ID: "p"}, func(apply.Event) { shown++ })(apply.Event{})
	if shown != 1 {
		t.Errorf("display saw %d events, want 1", shown)
	}
	var out bytes.Buffer
	n.Finish(&out)
	if out.Len() != 0 {
		t.Errorf("Finish wrote %q", out.String())
	}
	if n, err := Open(nil, []string{"irc=https://example.invalid/x"}); err == nil || n != nil {
		t.Errorf("Open(bad flag) = %v, %v; want an error and no notifier", n, err)
	}
}
