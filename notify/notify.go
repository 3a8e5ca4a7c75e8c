// Package notify tells chat channels how a run goes, through Slack and
// Microsoft Teams incoming webhooks: run started, canary result, brake and
// breaker events, each tenant done, run done (Watch turns an apply's
// events into these messages).
//
// Delivery never stops or slows the run: Send only queues (a bounded queue
// per webhook; a full queue drops the message and counts it), and one
// goroutine per webhook posts in order through go-retryablehttp, with
// exponential backoff and the receiver's Retry-After on 429 and 503.
// Close flushes with a deadline. A webhook URL holds a token: it is kept
// as a secret.Secret and never appears in a log line or an error.
package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"

	"github.com/fixfleet/fixfleet/internal/config"
	"github.com/fixfleet/fixfleet/internal/secret"
)

// Kind is a chat service's incoming-webhook dialect.
type Kind string

// Webhook kinds.
const (
	Slack Kind = "slack"
	Teams Kind = "teams"
)

// Target is one webhook.
type Target struct {
	Kind Kind
	URL  secret.Secret
	// Source says where the URL came from, for messages ("environment
	// variable X", "--notify"); never the URL.
	Source string
}

// Label names a target in logs and errors without its URL.
func (t Target) Label() string { return string(t.Kind) + " webhook (" + t.Source + ")" }

// FromConfig returns the targets of fleet.yaml's notify section (whose
// URLs the config already checked).
func FromConfig(hooks []config.Webhook) []Target {
	out := make([]Target, 0, len(hooks))
	for _, h := range hooks {
		out = append(out, Target{Kind: Kind(h.Kind), URL: h.URL, Source: "environment variable " + h.URLEnv})
	}
	return out
}

// ParseFlag parses a --notify value, KIND=URL with KIND slack or teams.
// The URL must be https, or http to a loopback address (a local receiver
// in a drill). Errors never quote the URL.
func ParseFlag(v string) (Target, error) {
	kind, raw, ok := strings.Cut(v, "=")
	k := Kind(strings.ToLower(strings.TrimSpace(kind)))
	if !ok || k != Slack && k != Teams {
		return Target{}, errors.New("--notify takes slack=URL or teams=URL (the incoming webhook's URL)")
	}
	if err := CheckURL(raw, true); err != nil {
		return Target{}, fmt.Errorf("--notify %s=…: %w", k, err)
	}
	return Target{Kind: k, URL: secret.New(strings.TrimSpace(raw)), Source: "--notify"}, nil
}

// Open starts a notifier (New) for fleet.yaml's notify webhooks and then
// the --notify values in flags (nil when there are none). A bad flag
// value is ParseFlag's error, and nothing is started.
func Open(hooks []config.Webhook, flags []string) (*Notifier, error) {
	targets := FromConfig(hooks)
	for _, f := range flags {
		t, err := ParseFlag(f)
		if err != nil {
			return nil, err
		}
		targets = append(targets, t)
	}
	return New(targets, Options{}), nil
}

// CheckURL accepts an https URL with a host; with loopbackHTTP, also http
// to localhost or a loopback IP. Its error never quotes the URL.
func CheckURL(raw string, loopbackHTTP bool) error {
	u, err := url.Parse(strings.TrimSpace(raw))
	switch {
	case err != nil || u.Host == "":
		return errors.New("not a URL: give the incoming webhook's https URL")
	case u.Scheme == "https":
		return nil
	case u.Scheme == "http" && loopbackHTTP && isLoopback(u.Hostname()):
		return nil
	}
	return errors.New("the webhook URL must be https (http only to a loopback address, for a local receiver)")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Options configure a Notifier. Zero fields take the defaults.
type Options struct {
	// Queue is the number of messages waiting per webhook (default 64);
	// a message that finds the queue full is dropped and counted.
	Queue int
	// RetryMax is the number of retries of one message (default 4).
	RetryMax int
	// RetryWaitMin and RetryWaitMax bound the exponential backoff (default
	// 1s and 30s). A Retry-After is honoured as given, up to MaxRetryAfter.
	RetryWaitMin, RetryWaitMax time.Duration
	// MaxRetryAfter is the longest Retry-After waited for (default 2m); a
	// longer one gives the message up.
	MaxRetryAfter time.Duration
	// Timeout bounds one attempt (default 10s).
	Timeout time.Duration
	// HTTPClient is the client under the retries (default: a new one with
	// Timeout).
	HTTPClient *http.Client
	// Warn, if set, receives one line per dropped or undelivered message
	// (never a URL) as it happens, from any goroutine. The first lines
	// are also kept for Close (Stats.Warnings).
	Warn func(string)
}

// keptWarnings is how many warning lines Close returns.
const keptWarnings = 5

func (o Options) withDefaults() Options {
	if o.Queue <= 0 {
		o.Queue = 64
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 4
	}
	if o.RetryWaitMin <= 0 {
		o.RetryWaitMin = time.Second
	}
	if o.RetryWaitMax <= 0 {
		o.RetryWaitMax = 30 * time.Second
	}
	if o.MaxRetryAfter <= 0 {
		o.MaxRetryAfter = 2 * time.Minute
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: o.Timeout}
	}
	return o
}

// Stats count what happened to the messages, over every webhook.
type Stats struct {
	Delivered int64 // accepted by the receiver (2xx)
	Dropped   int64 // not queued: the queue was full, or the notifier closed
	Failed    int64 // given up after the retries, or cut off at Close's deadline
	// Warnings are the first warning lines (never a URL); Warned counts
	// them all.
	Warnings []string
	Warned   int64
}

// Notifier delivers messages to its targets. It is safe for concurrent
// use. A nil *Notifier accepts and ignores everything.
type Notifier struct {
	o       Options
	workers []*worker
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.RWMutex // held for reading while sending to the queues, for writing to close them
	closed  bool         // under mu

	delivered, dropped, failed atomic.Int64

	wmu    sync.Mutex
	warns  []string
	warned int64
}

type worker struct {
	t      Target
	q      chan Message
	client *retryablehttp.Client
}

// New starts a notifier for targets (nil when there are none).
func New(targets []Target, o Options) *Notifier {
	if len(targets) == 0 {
		return nil
	}
	o = o.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	n := &Notifier{o: o, cancel: cancel}
	for _, t := range targets {
		w := &worker{t: t, q: make(chan Message, o.Queue), client: n.client()}
		n.workers = append(n.workers, w)
		n.wg.Add(1)
		go func() {
			defer n.wg.Done()
			n.run(ctx, w)
		}()
	}
	return n
}

// client is a retrying client that logs nothing (its log lines hold URLs)
// and whose errors hold no URL.
func (n *Notifier) client() *retryablehttp.Client {
	c := retryablehttp.NewClient()
	c.HTTPClient = n.o.HTTPClient
	c.Logger = nil
	c.RetryMax = n.o.RetryMax
	c.RetryWaitMin, c.RetryWaitMax = n.o.RetryWaitMin, n.o.RetryWaitMax
	c.Backoff = retryablehttp.DefaultBackoff // Retry-After on 429 and 503, exponential otherwise
	limit := n.o.MaxRetryAfter
	c.CheckRetry = func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		// DefaultBackoff with no minimum is the Retry-After alone.
		if ra := retryablehttp.DefaultBackoff(0, 0, 0, resp); ra > limit {
			return false, fmt.Errorf("the receiver asked to wait %v (Retry-After), longer than %v", ra, limit)
		}
		return retryablehttp.DefaultRetryPolicy(ctx, resp, err)
	}
	c.ErrorHandler = func(resp *http.Response, err error, tries int) (*http.Response, error) {
		if resp != nil {
			resp.Body.Close()
			return nil, fmt.Errorf("HTTP %d after %d attempt(s)", resp.StatusCode, tries)
		}
		return nil, fmt.Errorf("after %d attempt(s): %w", tries, err)
	}
	return c
}

// Send queues m for every target and returns at once. A full queue drops
// m for that target, counts it and warns.
func (n *Notifier) Send(m Message) {
	if n == nil {
		return
	}
	n.mu.RLock()
	defer n.mu.RUnlock()
	if n.closed {
		n.dropped.Add(int64(len(n.workers)))
		return
	}
	for _, w := range n.workers {
		select {
		case w.q <- m:
		default:
			d := n.dropped.Add(1)
			n.warn(fmt.Sprintf("notify: %s: queue full (the receiver is slow or failing): dropped %q (%d dropped so far)", w.t.Label(), m.Title, d))
		}
	}
}

func (n *Notifier) run(ctx context.Context, w *worker) {
	for m := range w.q {
		if err := n.post(ctx, w, m); err != nil {
			n.failed.Add(1)
			n.warn(fmt.Sprintf("notify: %s: %q not delivered: %s", w.t.Label(), m.Title, redact(err.Error(), w.t.URL.Reveal())))
			continue
		}
		n.delivered.Add(1)
	}
}

func (n *Notifier) warn(s string) {
	n.wmu.Lock()
	n.warned++
	if len(n.warns) < keptWarnings {
		n.warns = append(n.warns, s)
	}
	n.wmu.Unlock()
	if n.o.Warn != nil {
		n.o.Warn(s)
	}
}

func (n *Notifier) post(ctx context.Context, w *worker, m Message) error {
	if ctx.Err() != nil {
		return errors.New("cut off: the run ended and the flush deadline passed")
	}
	body, err := Payload(w.t.Kind, m)
	if err != nil {
		return err
	}
	req, err := retryablehttp.NewRequestWithContext(ctx, http.MethodPost, w.t.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return errors.New("the webhook URL is not usable")
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := w.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return errors.New("cut off: the run ended and the flush deadline passed")
		}
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// Close stops accepting messages and delivers those queued until ctx is
// done; then it cuts off what is left (counted as failed) and returns the
// stats. It may be called once.
func (n *Notifier) Close(ctx context.Context) Stats {
	if n == nil {
		return Stats{}
	}
	n.mu.Lock()
	if !n.closed {
		n.closed = true
		for _, w := range n.workers {
			close(w.q)
		}
	}
	n.mu.Unlock()
	done := make(chan struct{})
	go func() {
		n.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
		n.cancel()
		<-done
	}
	n.cancel()
	n.wmu.Lock()
	defer n.wmu.Unlock()
	return Stats{Delivered: n.delivered.Load(), Dropped: n.dropped.Load(), Failed: n.failed.Load(),
		Warnings: append([]string(nil), n.warns...), Warned: n.warned}
}

// FlushDeadline bounds, in Finish, the delivery of the messages still
// queued when a run ends.
const FlushDeadline = 15 * time.Second

// Finish closes n, delivering what is queued for at most FlushDeadline,
// then writes to w the first warnings and, when a message was lost, the
// counts. Nothing is written for a nil Notifier or a clean delivery.
func (n *Notifier) Finish(w io.Writer) {
	ctx, cancel := context.WithTimeout(context.Background(), FlushDeadline)
	defer cancel()
	st := n.Close(ctx)
	for _, line := range st.Warnings {
		fmt.Fprintln(w, line)
	}
	if st.Dropped+st.Failed > 0 {
		fmt.Fprintf(w, "notify: %d messages delivered, %d dropped, %d not delivered (%d warnings)\n", st.Delivered, st.Dropped, st.Failed, st.Warned)
	}
}

// redact removes a URL and its parts that carry a token (path, query)
// from text.
func redact(text, raw string) string {
	if raw == "" {
		return text
	}
	text = strings.ReplaceAll(text, raw, "[webhook URL]")
	if u, err := url.Parse(raw); err == nil {
		for _, part := range []string{u.String(), u.RequestURI(), u.EscapedPath(), u.Path, u.RawQuery} {
			if len(part) > 1 {
				text = strings.ReplaceAll(text, part, "[redacted]")
			}
		}
	}
	return text
}
