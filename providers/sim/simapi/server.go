package simapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// ServerOptions tune the HTTP face.
type ServerOptions struct {
	// Scale is the world clock's speed-up over wall time, reported in Info
	// so that clients can run a clock at the same pace. 0: the world
	// clock's Factor() if it has one, else 1.
	Scale float64
	// SimulatedDrops answers the world's dropped-connection faults with a
	// 503 error body instead of closing the connection without a response.
	SimulatedDrops bool
	// Logger receives one line per failed request (operation, class,
	// status), never bodies or credentials. nil: discard.
	Logger *slog.Logger
}

// maxBody bounds a request body (an Observe of a large fleet is well under).
const maxBody = 16 << 20

type server struct {
	w       *world.World
	gateway string
	opts    ServerOptions
	mux     *http.ServeMux

	requests atomic.Int64
	dropped  atomic.Int64
}

// NewServer returns the HTTP face of w (see the package documentation for
// the wire format). gatewayAddr is the WinRM CONNECT gateway reported in
// Info ("" for none). The handler is safe for concurrent use; serve it on
// loopback only: GET /v1/credentials answers loopback peers only.
func NewServer(w *world.World, gatewayAddr string, opts ServerOptions) http.Handler {
	if opts.Scale <= 0 {
		opts.Scale = 1
		if f, ok := w.Clock().(interface{ Factor() float64 }); ok && f.Factor() > 0 {
			opts.Scale = f.Factor()
		}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &server{w: w, gateway: gatewayAddr, opts: opts, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /v1/info", s.info)
	s.mux.HandleFunc("GET /v1/credentials", s.credentials)
	s.mux.HandleFunc("GET /v1/audit", func(rw http.ResponseWriter, r *http.Request) { s.reply(rw, s.w.Audit()) })
	s.mux.HandleFunc("GET /v1/faults", func(rw http.ResponseWriter, r *http.Request) { s.reply(rw, s.w.Faults()) })
	s.mux.HandleFunc("PUT /v1/faults", s.putFaults)
	s.mux.HandleFunc("PUT /v1/outage", s.putOutage)
	s.mux.HandleFunc("GET /v1/stats", s.stats)
	s.mux.HandleFunc("POST /v1/accounts/{account}/{op}", s.control)
	s.mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		s.fail(rw, r.Method+" "+r.URL.Path, providers.Errorf(providers.ErrUnsupported, r.Method, r.URL.Path, "no such endpoint"))
	})
	return s
}

func (s *server) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	s.mux.ServeHTTP(rw, r)
}

func (s *server) stamp(rw http.ResponseWriter) {
	rw.Header().Set(NowHeader, s.w.Clock().Now().Format(time.RFC3339Nano))
}

// reply writes v as JSON with status 200.
func (s *server) reply(rw http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.fail(rw, "encode", fmt.Errorf("encoding the response: %w", err))
		return
	}
	s.stamp(rw)
	rw.Header().Set("Content-Type", "application/json")
	rw.Header().Set("Cache-Control", "no-store")
	_, _ = rw.Write(append(b, '\n'))
}

// fail writes err as an ErrorBody with its class's status.
func (s *server) fail(rw http.ResponseWriter, what string, err error) {
	body, status := toBody(err)
	s.opts.Logger.Info("simapi: request failed", "request", what, "class", body.Class, "status", status)
	b, _ := json.Marshal(body)
	s.stamp(rw)
	rw.Header().Set("Content-Type", "application/json")
	if body.RetryAfterMS > 0 {
		// Simulated seconds, rounded up: the JSON field is the precise hint.
		rw.Header().Set("Retry-After", strconv.FormatInt((body.RetryAfterMS+999)/1000, 10))
	}
	rw.WriteHeader(status)
	_, _ = rw.Write(append(b, '\n'))
}

func (s *server) info(rw http.ResponseWriter, _ *http.Request) {
	s.reply(rw, Info{
		Version: APIVersion, Zones: s.w.Zones(), Accounts: s.w.Accounts(), Incident: s.w.Incident(),
		Now: s.w.Clock().Now(), Scale: s.opts.Scale, ConsoleAvailable: s.w.ConsoleAvailable(),
		Gateway: s.gateway, GuestUser: s.w.GuestUser(),
	})
}

// isLoopback reports whether a request's peer is on this host.
func isLoopback(remoteAddr string) bool {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// credentials serves the simulator's test secrets, to loopback peers only.
func (s *server) credentials(rw http.ResponseWriter, r *http.Request) {
	if !isLoopback(r.RemoteAddr) {
		s.fail(rw, "credentials", providers.Errorf(providers.ErrPermanent, "Credentials", "", "served to loopback clients only"))
		return
	}
	keys := map[string]string{}
	for id, k := range s.w.EscrowedKeys() {
		keys[id] = k.Reveal() // the wire: simulator test data, loopback only
	}
	s.reply(rw, credentialsBody{Notice: credentialsNotice, GuestUser: s.w.GuestUser(),
		GuestPassword: s.w.GuestPassword().Reveal(), BitLockerKeys: keys})
}

func (s *server) putFaults(rw http.ResponseWriter, r *http.Request) {
	var f world.Faults
	if err := decode(r, &f); err != nil {
		s.fail(rw, "PUT faults", err)
		return
	}
	if err := s.w.SetFaults(f); err != nil {
		s.fail(rw, "PUT faults", providers.Errorf(providers.ErrPermanent, "SetFaults", "", "%v", err))
		return
	}
	s.reply(rw, s.w.Faults())
}

func (s *server) putOutage(rw http.ResponseWriter, r *http.Request) {
	var o outageBody
	if err := decode(r, &o); err != nil {
		s.fail(rw, "PUT outage", err)
		return
	}
	s.w.SetOutage(o.On)
	s.reply(rw, o)
}

func (s *server) stats(rw http.ResponseWriter, _ *http.Request) {
	s.reply(rw, Stats{World: s.w.Stats(), Requests: s.requests.Load(), Dropped: s.dropped.Load()})
}

// decode reads a JSON body strictly: unknown fields and trailing data are
// ErrPermanent.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return providers.Errorf(providers.ErrPermanent, "decode", "request body", "bad JSON: %v", err)
	}
	if dec.More() {
		return providers.Errorf(providers.ErrPermanent, "decode", "request body", "trailing data after the JSON document")
	}
	return nil
}

// opNames lists the control-plane ops, for the unknown-op error.
const opNames = "acquire-helper, attach, delete-disk, describe-disk, detach, disk-from-snapshot, find-disks, find-helpers, find-snapshots, guest-endpoint, helper-images, list-backups, list-vms, observe, release-helper, restart, restore-backup, snapshot, start, stop"

// opFunc returns the world call of a control-plane op, or nil.
func opFunc(op string) func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
	switch op {
	case "list-vms":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.ListVMs(ctx, a, q.Zones)
		}
	case "observe":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.Observe(ctx, a, q.IDs)
		}
	case "guest-endpoint":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.GuestEndpoint(ctx, a, q.VM)
		}
	case "stop":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.StopVMs(ctx, a, q.IDs, q.Force)
		}
	case "start":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.StartVMs(ctx, a, q.IDs)
		}
	case "restart":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.RestartVM(ctx, a, q.VM)
		}
	case "describe-disk":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.DescribeDisk(ctx, a, q.Disk)
		}
	case "find-disks":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.FindDisks(ctx, a, q.Tags)
		}
	case "delete-disk":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return struct{}{}, w.DeleteDisk(ctx, a, q.Disk)
		}
	case "snapshot":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.Snapshot(ctx, a, q.Disk, q.Tags)
		}
	case "find-snapshots":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.FindSnapshots(ctx, a, q.Tags)
		}
	case "detach":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.DetachDisk(ctx, a, q.VM, q.Disk)
		}
	case "attach":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.AttachDisk(ctx, a, q.VM, q.Disk, q.Boot)
		}
	case "disk-from-snapshot":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.DiskFromSnapshot(ctx, a, q.Snapshot, q.Zone, q.Tags)
		}
	case "list-backups":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.ListBackups(ctx, a, q.VM)
		}
	case "restore-backup":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.RestoreBackup(ctx, a, q.Backup, q.Zone, q.Tags)
		}
	case "helper-images":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.HelperImages(ctx, a)
		}
	case "acquire-helper":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.AcquireHelper(ctx, a, q.Zone, q.Windows, q.Tags, nil)
		}
	case "find-helpers":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return w.FindHelpers(ctx, a, q.Tags)
		}
	case "release-helper":
		return func(ctx context.Context, w *world.World, a string, q Request) (any, error) {
			return struct{}{}, w.ReleaseHelper(ctx, a, q.VM)
		}
	}
	return nil
}

// isDrop reports whether err is the world's dropped-connection fault
// (before or after the change was made).
func isDrop(err error) bool { return errors.Is(err, world.ErrConnReset) }

// control serves one control-plane call.
func (s *server) control(rw http.ResponseWriter, r *http.Request) {
	acct, op := r.PathValue("account"), r.PathValue("op")
	f := opFunc(op)
	if f == nil {
		s.fail(rw, op, providers.Errorf(providers.ErrUnsupported, op, "", "no such operation; operations are %s", opNames))
		return
	}
	var q Request
	if err := decode(r, &q); err != nil {
		s.fail(rw, op, err)
		return
	}
	out, err := f(r.Context(), s.w, acct, q)
	if err != nil {
		if !s.opts.SimulatedDrops && isDrop(err) && s.drop(rw) {
			return
		}
		s.fail(rw, op, err)
		return
	}
	s.reply(rw, out)
}

// drop closes the connection without a response; false if it cannot.
func (s *server) drop(rw http.ResponseWriter) bool {
	conn, _, err := http.NewResponseController(rw).Hijack()
	if err != nil {
		return false
	}
	s.dropped.Add(1)
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0) // a reset, as the fault says
	}
	_ = conn.Close()
	return true
}

// Server is a running HTTP face of a world on a loopback address.
type Server struct {
	ln   net.Listener
	srv  *http.Server
	once sync.Once
	err  error
}

// Start serves NewServer(w, gatewayAddr, opts) on listen, which must be a
// loopback address ("127.0.0.1:0", "[::1]:8780", "localhost:8780"), until
// Close.
func Start(w *world.World, gatewayAddr, listen string, opts ServerOptions) (*Server, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("simapi: listen address %q: %w", listen, err)
	}
	if !loopbackHost(host) {
		return nil, fmt.Errorf("simapi: listen address %q: the simulator serves loopback only (127.0.0.1, ::1, localhost)", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("simapi: %w", err)
	}
	return Serve(w, gatewayAddr, ln, opts), nil
}

// Serve serves NewServer(w, gatewayAddr, opts) on ln (any listener, e.g.
// an in-memory network's inside a testing/synctest bubble) until Close,
// which closes ln.
func Serve(w *world.World, gatewayAddr string, ln net.Listener, opts ServerOptions) *Server {
	s := &Server{ln: ln, srv: &http.Server{Handler: NewServer(w, gatewayAddr, opts), ReadHeaderTimeout: 10 * time.Second}}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

// loopbackHost reports whether host names this machine's loopback.
func loopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr is the host:port the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// URL is the base URL clients give to Dial and NewProvider.
func (s *Server) URL() string { return "http://" + s.Addr() }

// Close stops the server at once (calls in flight are cut). Idempotent.
func (s *Server) Close() error {
	s.once.Do(func() { s.err = s.srv.Close() })
	return s.err
}
