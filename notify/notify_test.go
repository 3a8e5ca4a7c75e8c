package notify

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// receiver is a loopback webhook that records what it accepted, in order.
// Its first `throttle` requests get 429 with Retry-After: 1.
type receiver struct {
	mu       sync.Mutex
	throttle int
	texts    []string
	attempts []time.Time
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.attempts = append(rc.attempts, time.Now())
	if rc.throttle > 0 {
		rc.throttle--
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		return
	}
	var m struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Text == "" {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	rc.texts = append(rc.texts, m.Text)
}

func (rc *receiver) got() []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]string(nil), rc.texts...)
}

// twoTenants is a plan: acme has a canary VM and a VM of wave 2, globex
// one VM of wave 2 and one healthy VM.
func twoTenants() *plan.Plan {
	vm := func(tenant, id string, wave int) plan.VMPlan {
		return plan.VMPlan{Key: tenant + "/a/" + id, Location: inventory.Location{Tenant: tenant, Account: "a"}, ID: id, Wave: wave}
	}
	return &plan.Plan{ID: "run-1",
		VMs:   []plan.VMPlan{vm("acme", "c1", 1), vm("acme", "w1", 2), vm("globex", "w2", 2), vm("globex", "h1", 0)},
		Waves: []plan.Wave{{Number: 1, Name: "canary", VMs: []string{"acme/a/c1"}}, {Number: 2, Name: "wave 2", VMs: []string{"acme/a/w1", "globex/a/w2"}}},
	}
}

// feed feeds a whole run's events, as apply emits them, to watch: the
// canary fails, passes at its end (canary "": a VM of a proven strategy
// starts before it ends, as the strategy gate lets it) or passes early.
func feed(watch func(apply.Event), canary string) {
	ev := func(kind, vm, msg string) { watch(apply.Event{Kind: kind, VMKey: vm, Message: msg}) }
	ev(apply.EvRunStarted, "", "apply of plan plan-1 started")
	ev(apply.EvWaveStarted, "", "canary started")
	ev(apply.EvVMStarted, "acme/a/c1", "")
	if canary == "early" {
		ev(apply.EvCanaryPassed, "", "canary passed before its end")
		ev(apply.EvWaveStarted, "", "waves after the canary started")
		ev(apply.EvVMStarted, "globex/a/w2", "")
		ev(apply.EvVMFixed, "globex/a/w2", "")
		ev(apply.EvVMFixed, "acme/a/c1", "")
		ev(apply.EvWaveFinished, "", "canary finished")
		ev(apply.EvVMStarted, "acme/a/w1", "")
		ev(apply.EvVMFlagged, "acme/a/w1", "")
		ev(apply.EvWaveFinished, "", "waves after the canary finished")
		ev(apply.EvRunDone, "", "")
		return
	}
	if canary == "fails" {
		ev(apply.EvVMFlagged, "acme/a/c1", "needs a person")
		ev(apply.EvWaveFinished, "", "canary finished")
		ev(apply.EvCanaryFailed, "", "canary failed: 1 of the 1 canary VMs acted on failed or were flagged")
		ev(apply.EvPausedCanary, "", "canary failed")
		return
	}
	ev(apply.EvWaveStarted, "", "waves after the canary started")
	ev(apply.EvVMStarted, "globex/a/w2", "")
	ev(apply.EvVMFixed, "acme/a/c1", "")
	ev(apply.EvWaveFinished, "", "canary finished")
	ev(apply.EvCanaryDone, "", "canary passed: 0 of the 1 canary VMs acted on went badly")
	ev(apply.EvBreakerOpen, "", "control-plane breaker open")
	ev(apply.EvStepRetry, "globex/a/w2", "retry")
	ev(apply.EvBreakerClosed, "", "control-plane breaker closed")
	ev(apply.EvVMFixed, "globex/a/w2", "")
	ev(apply.EvVMStarted, "acme/a/w1", "")
	ev(apply.EvVMFlagged, "acme/a/w1", "")
	ev(apply.EvWaveFinished, "", "waves after the canary finished")
	ev(apply.EvRunDone, "", "")
}

// TestRunEventsArriveInOrder: a loopback receiver that answers 429 with
// Retry-After first gets every message of the run, in order, after
// waiting as it asked.
func TestRunEventsArriveInOrder(t *testing.T) {
	tests := []struct {
		name   string
		canary string
		want   []string
	}{
		{"done", "", []string{"run-1 started", "canary passed", "API failing", "answers again", "tenant globex done", "tenant acme done", "run-1 done"}},
		{"canary passed early", "early", []string{"run-1 started", "canary passed", "tenant globex done", "tenant acme done", "run-1 done"}},
		{"canary failed", "fails", []string{"run-1 started", "canary failed", "run-1 paused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := &receiver{throttle: 1}
			srv := httptest.NewServer(rc)
			defer srv.Close()
			target, err := ParseFlag("slack=" + srv.URL + "/services/T0/B0/token")
			if err != nil {
				t.Fatal(err)
			}
			var warns []string
			var wmu sync.Mutex
			n := New([]Target{target}, Options{Warn: func(s string) { wmu.Lock(); warns = append(warns, s); wmu.Unlock() }})
			feed(n.Watch(twoTenants()), tt.canary)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a bound, not an assertion
			defer cancel()
			st := n.Close(ctx)
			got := rc.got()
			if len(got) != len(tt.want) {
				t.Fatalf("received %d messages, want %d:\n%s\nwarnings: %v", len(got), len(tt.want), strings.Join(got, "\n---\n"), warns)
			}
			for i, w := range tt.want {
				if !strings.Contains(got[i], w) {
					t.Errorf("message %d is %q, want one with %q", i, got[i], w)
				}
			}
			if st.Delivered != int64(len(tt.want)) || st.Dropped != 0 || st.Failed != 0 {
				t.Errorf("stats %+v", st)
			}
			rc.mu.Lock()
			defer rc.mu.Unlock()
			if len(rc.attempts) != len(tt.want)+1 {
				t.Errorf("%d attempts, want %d (one 429)", len(rc.attempts), len(tt.want)+1)
			}
			// Retry-After: 1 was honoured (a lower bound on real time
			// cannot flake).
			if gap := rc.attempts[1].Sub(rc.attempts[0]); gap < time.Second {
				t.Errorf("retried %v after the 429, before its Retry-After of 1s", gap)
			}
		})
	}
}

// TestSlowReceiverNeverBlocks: a receiver that never answers does not
// hold up Send; the overflow is dropped and counted; Close returns at its
// deadline.
func TestSlowReceiverNeverBlocks(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	target, err := ParseFlag("teams=" + srv.URL + "/hook")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var warns []string
	n := New([]Target{target}, Options{Queue: 2, Timeout: time.Hour, Warn: func(s string) { mu.Lock(); warns = append(warns, s); mu.Unlock() }})
	for i := range 50 {
		n.Send(Message{Title: "m" + string(rune('a'+i%26))})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // no time to flush
	st := n.Close(ctx)
	// 50 sent: at most 2 queued and 1 in flight, the rest dropped.
	if st.Dropped < 47 || st.Dropped+st.Failed+st.Delivered != 50 || st.Delivered != 0 {
		t.Errorf("stats %+v, want ≥47 dropped, the rest failed (cut off)", st)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(warns) == 0 || !strings.Contains(warns[0], "queue full") {
		t.Errorf("warnings %v", warns)
	}
	if len(st.Warnings) != keptWarnings || st.Warned != int64(len(warns)) || st.Warnings[0] != warns[0] {
		t.Errorf("Close kept %d warnings of %d (%d seen live)", len(st.Warnings), st.Warned, len(warns))
	}
	n.Send(Message{Title: "after close"}) // counted, not a panic
}

// TestFailuresNeverShowTheURL: undeliverable messages are warned about
// with the webhook's label, never its URL.
func TestFailuresNeverShowTheURL(t *testing.T) {
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer failing.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedURL := closed.URL
	closed.Close() // nothing listens there any more
	for _, base := range []string{failing.URL, closedURL} {
		target, err := ParseFlag("slack=" + base + "/services/T0/B0/s3cr3tT0ken?sig=s3cr3tSig")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		var warns []string
		n := New([]Target{target}, Options{RetryMax: 1, RetryWaitMin: time.Millisecond, RetryWaitMax: time.Millisecond,
			Warn: func(s string) { mu.Lock(); warns = append(warns, s); mu.Unlock() }})
		n.Send(Message{Title: "run started"})
		st := n.Close(context.Background())
		if st.Failed != 1 {
			t.Errorf("%s: stats %+v, want 1 failed", base, st)
		}
		mu.Lock()
		if len(warns) != 1 || !strings.Contains(warns[0], "slack webhook (--notify)") {
			t.Errorf("%s: warnings %v", base, warns)
		}
		for _, w := range warns {
			if strings.Contains(w, "s3cr3t") || strings.Contains(w, base) {
				t.Errorf("a warning shows the URL: %s", w)
			}
		}
		mu.Unlock()
	}
}

func TestParseFlag(t *testing.T) {
	tests := []struct {
		in   string
		kind Kind
		err  string
	}{
		{"slack=https://hooks.slack.example/services/T/B/X", Slack, ""},
		{"Teams=https://tenant.webhook.office.example/x", Teams, ""},
		{"slack=http://127.0.0.1:8080/x", Slack, ""},
		{"slack=http://[::1]:8080/x", Slack, ""},
		{"slack=http://hooks.example/SECRET", "", "must be https"},
		{"discord=https://x.example/SECRET", "", "slack=URL or teams=URL"},
		{"https://x.example/SECRET", "", "slack=URL or teams=URL"},
		{"slack=SECRET", "", "not a URL"},
	}
	for _, tt := range tests {
		got, err := ParseFlag(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) || strings.Contains(err.Error(), "SECRET") {
				t.Errorf("ParseFlag(%q) error %v, want %q without the URL", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got.Kind != tt.kind || got.Source != "--notify" {
			t.Errorf("ParseFlag(%q) = %+v, %v", tt.in, got, err)
		}
		if s := got.Label(); strings.Contains(s, "http") {
			t.Errorf("label shows the URL: %s", s)
		}
	}
}

func TestPayload(t *testing.T) {
	m := Message{Level: Alert, Title: "tenant <!channel> done\x1b[2J", Text: "a & b\n<https://evil.example|click>"}
	b, err := Payload(Slack, m)
	if err != nil {
		t.Fatal(err)
	}
	var s struct{ Text string }
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(s.Text, "<>\x1b") || !strings.Contains(s.Text, "&lt;!channel&gt;") || !strings.Contains(s.Text, "a &amp; b\n") {
		t.Errorf("slack text not escaped: %q", s.Text)
	}
	b, err = Payload(Teams, m)
	if err != nil {
		t.Fatal(err)
	}
	var card struct {
		Type        string
		Attachments []struct {
			ContentType string
			Content     struct {
				Type string
				Body []struct{ Text, Color string }
			}
		}
	}
	if err := json.Unmarshal(b, &card); err != nil {
		t.Fatal(err)
	}
	if card.Type != "message" || len(card.Attachments) != 1 || card.Attachments[0].Content.Type != "AdaptiveCard" ||
		len(card.Attachments[0].Content.Body) != 2 || card.Attachments[0].Content.Body[0].Color != "Attention" ||
		strings.Contains(card.Attachments[0].Content.Body[0].Text, "\x1b") {
		t.Errorf("teams card: %s", b)
	}
	if _, err := Payload("discord", m); err == nil {
		t.Error("unknown kind: want an error")
	}
}
