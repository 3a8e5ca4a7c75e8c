package guest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"strconv"
	"time"

	"github.com/masterzen/winrm"

	"github.com/fixfleet/fixfleet/providers"
)

// ClientOptions configure a Client. Zero values take the defaults noted.
type ClientOptions struct {
	// Dial opens connections to guests, e.g. NewConnectDialer(proxy) to go
	// through a bastion or the simulated network's gateway. nil: direct TCP.
	Dial func(network, addr string) (net.Conn, error)
	// DialContext, when set, is used instead of Dial and honours the
	// request's context, e.g. (&ConnectDialer{...}).DialContext.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// DialTimeout bounds a direct TCP connect (default 10s).
	DialTimeout time.Duration
	// OperationTimeout is the WS-Management OperationTimeout: how long the
	// guest may hold a Receive before answering that there is no output yet
	// (default 20s).
	OperationTimeout time.Duration
	// RequestTimeout bounds one HTTP exchange (default OperationTimeout +
	// 30s). A guest silent for longer is unreachable.
	RequestTimeout time.Duration
	// ScriptTimeout bounds a whole Run when ctx has no deadline (default
	// 10m).
	ScriptTimeout time.Duration
	// CleanupTimeout bounds the requests that free the guest's shell after
	// the caller's context ended (default 5s).
	CleanupTimeout time.Duration
	// ShellIdleTimeout is the IdleTimeOut each shell is opened with: the
	// guest deletes a shell unused this long (default 5m, at least twice
	// OperationTimeout, since a running command's Receives keep it used).
	// A process killed mid-command never deletes its shells; without it
	// Windows keeps them two hours, each counting against the user's
	// MaxShellsPerUser, and a guest shared by many VMs' repairs (a
	// helper) answers QuotaLimit (ErrBusy) until they expire.
	ShellIdleTimeout time.Duration
	// IdleConnTimeout closes pooled connections unused this long (default
	// 30s); MaxIdleConns bounds the pool across all guests (default 1024).
	IdleConnTimeout time.Duration
	MaxIdleConns    int
	// TLSConfig is used for HTTPS endpoints (nil: Go's defaults).
	TLSConfig *tls.Config
}

func (o ClientOptions) withDefaults() ClientOptions {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DialTimeout, 10*time.Second)
	def(&o.OperationTimeout, 20*time.Second)
	def(&o.RequestTimeout, o.OperationTimeout+30*time.Second)
	def(&o.ScriptTimeout, 10*time.Minute)
	def(&o.CleanupTimeout, 5*time.Second)
	def(&o.ShellIdleTimeout, 5*time.Minute)
	o.ShellIdleTimeout = max(o.ShellIdleTimeout, 2*o.OperationTimeout)
	def(&o.IdleConnTimeout, 30*time.Second)
	if o.MaxIdleConns <= 0 {
		o.MaxIdleConns = 1024
	}
	return o
}

// Client runs catalog scripts on guests over WinRM (HTTP Basic auth), with
// the masterzen/winrm client. One Client serves a whole fleet: its HTTP
// connections are pooled per guest address and reused across Runs. It is
// safe for concurrent use.
type Client struct {
	opts ClientOptions
	tr   *http.Transport
	http *http.Client
}

// NewClient returns a Client. It does not connect.
func NewClient(opts ClientOptions) *Client {
	opts = opts.withDefaults()
	dial := opts.Dial
	nd := &net.Dialer{Timeout: opts.DialTimeout, KeepAlive: 30 * time.Second}
	tr := &http.Transport{
		Proxy: nil, // never from the environment: guests are reached by Dial
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if opts.DialContext != nil {
				return opts.DialContext(ctx, network, addr)
			}
			if dial == nil {
				return nd.DialContext(ctx, network, addr)
			}
			return dialWithContext(ctx, dial, network, addr)
		},
		TLSClientConfig:       opts.TLSConfig,
		MaxIdleConns:          opts.MaxIdleConns,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       opts.IdleConnTimeout,
		ResponseHeaderTimeout: opts.RequestTimeout,
		ForceAttemptHTTP2:     false,
	}
	return &Client{
		opts: opts,
		tr:   tr,
		http: &http.Client{
			Transport:     tr,
			Timeout:       opts.RequestTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// CloseIdleConnections closes pooled connections not in use.
func (c *Client) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// dialWithContext runs a context-free dial function under ctx: if ctx ends
// first the dial is abandoned and its connection, when it comes, closed.
func dialWithContext(ctx context.Context, dial func(string, string) (net.Conn, error), network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		c, err := dial(network, addr)
		ch <- result{c, err}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.c != nil {
				_ = r.c.Close()
			}
		}()
		return nil, ctx.Err()
	}
}

// maxStdout bounds the result document kept from a script.
const maxStdout = 4 << 20

// Run runs script n on the guest at ep as cr: it sends the fixed
// CommandLine(n), writes params (which must be n's Params type, value or
// pointer) as JSON on the script's standard input, and decodes the one JSON
// document the script prints into result (a pointer to n's Result type, or
// nil to discard it), rejecting unknown fields.
//
// Errors, classified with errors.Is: ErrUnreachable (nothing answered, the
// proxy refused the tunnel, a timeout or dropped connection), ErrAuth (the
// credentials were rejected), ErrRefused (the guest refused the script or
// its parameters; also a *ScriptError), context errors when ctx ended, and
// *ScriptError for any other non-zero exit. No error contains the password
// or a parameter. Whether a Run may be repeated is the script's contract
// (see the catalog); every catalog script is read-only or idempotent.
func (c *Client) Run(ctx context.Context, ep providers.Endpoint, cr Credentials, n Name, params, result any) error {
	line, err := CommandLine(n)
	if err != nil {
		return err
	}
	host := ep.Host
	if err := checkParams(n, params); err != nil {
		return fmt.Errorf("guest %s: %w", host, err)
	}
	stdin, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("guest %s: script %s: encoding parameters failed", host, n)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.opts.ScriptTimeout)
		defer cancel()
	}
	port := ep.Port
	if port == 0 {
		port = 5985
		if ep.HTTPS {
			port = 5986
		}
	}
	scheme := "http"
	if ep.HTTPS {
		scheme = "https"
	}
	secrets := append([]string{cr.Password}, secretParams(params)...)
	t := &transporter{
		c:        c,
		ctx:      ctx,
		url:      scheme + "://" + net.JoinHostPort(host, strconv.Itoa(port)) + "/wsman",
		user:     cr.User,
		password: cr.Password,
		secrets:  secrets,
	}
	// masterzen's default transport builds a new http.Transport (with its
	// own idle connections, never timed out) per winrm.Client and reads
	// proxies from the environment; the decorator instead posts through
	// this Client's shared pool, under ctx, and classifies errors.
	// Parameters.Dial is therefore unused: ClientOptions.Dial takes its
	// place.
	wp := winrm.NewParameters(wsmanDuration(c.opts.OperationTimeout), "en-US", 153600)
	wp.TransportDecorator = func() winrm.Transporter { return t }
	wc, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: host, Port: port, HTTPS: ep.HTTPS, Timeout: c.opts.RequestTimeout}, cr.User, cr.Password, wp)
	if err != nil {
		return fmt.Errorf("guest %s: script %s: %s", host, n, scrub(err.Error(), secrets, 256))
	}
	var stdout, stderr capped
	stdout.max, stderr.max = maxStdout, 16*maxStderr
	code, err := runWithInput(ctx, wc, t, line, &stdout, &stderr, stdin)
	if err != nil {
		return runError(host, n, err, secrets)
	}
	if code != 0 {
		return &ScriptError{Host: host, Name: n, ExitCode: code, Stderr: scrub(stderr.buf.String(), secrets, maxStderr)}
	}
	if stdout.over {
		return fmt.Errorf("guest %s: script %s: result larger than %d bytes", host, n, maxStdout)
	}
	if result == nil {
		return nil
	}
	if err := decodeStrict(stdout.buf.Bytes(), result); err != nil {
		return fmt.Errorf("guest %s: script %s: result is not the expected JSON: %s", host, n, scrub(err.Error(), secrets, 256))
	}
	return nil
}

// runError gives a masterzen failure its class and a scrubbed message.
func runError(host string, n Name, err error, secrets []string) error {
	prefix := fmt.Sprintf("guest %s: script %s: ", host, n)
	var ce *classError
	if errors.As(err, &ce) {
		return &classError{class: ce.class, cause: ce.cause, msg: prefix + ce.msg}
	}
	out := &classError{msg: prefix + scrub(err.Error(), secrets, 512)}
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, cause) {
			out.cause = cause
		}
	}
	return out
}

// wsmanDuration formats d as an xs:duration in seconds, e.g. "PT20S".
func wsmanDuration(d time.Duration) string {
	s := int(d.Round(time.Second) / time.Second)
	if s < 1 {
		s = 1
	}
	return "PT" + strconv.Itoa(s) + "S"
}

// decodeStrict decodes exactly one JSON document with no unknown fields.
func decodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("more than one JSON document")
	}
	return nil
}

// capped is an io.Writer that keeps the first max bytes and discards (but
// accepts) the rest, so that the WinRM client's output pipes never block.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (w *capped) Write(p []byte) (int, error) {
	if room := w.max - w.buf.Len(); room < len(p) {
		w.over = true
		if room > 0 {
			w.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return w.buf.Write(p)
}

// ParamsType returns the Go type of script n's parameters, and false for an
// unknown script.
func ParamsType(n Name) (reflect.Type, bool) {
	var v any
	switch n {
	case Probe:
		v = ProbeParams{}
	case DeleteFiles:
		v = DeleteParams{}
	case ClearSafeBoot:
		v = ClearSafeBootParams{}
	case ReadinessFacts:
		v = ReadinessFactsParams{}
	case CheckHives:
		v = CheckHivesParams{}
	case ListDisks:
		v = ListDisksParams{}
	case OnlineDisk, OfflineDisk:
		v = DiskParams{}
	case UnlockVolume:
		v = UnlockParams{}
	case SetDiskIdentity:
		v = SetIdentityParams{}
	case ClearSafeBootOffline, SetSafeBootOffline:
		v = BCDParams{}
	default:
		return nil, false
	}
	return reflect.TypeOf(v), true
}

func checkParams(n Name, params any) error {
	want, ok := ParamsType(n)
	if !ok {
		return fmt.Errorf("unknown script %q", string(n))
	}
	got := reflect.TypeOf(params)
	if got != nil && got.Kind() == reflect.Pointer {
		got = got.Elem()
	}
	if got != want {
		return fmt.Errorf("script %s takes %s parameters, not %v", n, want, got)
	}
	return nil
}

// secretParams lists the parameter values that are secrets.
func secretParams(params any) []string {
	switch p := params.(type) {
	case UnlockParams:
		return []string{p.RecoveryKey}
	case *UnlockParams:
		if p != nil {
			return []string{p.RecoveryKey}
		}
	}
	return nil
}
