// Package winrmd is the simulated guests' WinRM service: a WS-Management
// server speaking the SOAP protocol of the Windows WinRM service (as the
// masterzen/winrm client sends and reads it) for every simulated guest at
// once, and an HTTP CONNECT gateway through which the simulated network is
// reached.
//
// The guest addressed by a request is its Host header (without the port);
// Hosts says which guests listen and authenticates them. Only the guest
// catalog's scripts run: a command line must equal guest.CommandLine(n)
// byte for byte, and its JSON parameters must decode strictly into n's
// parameter type; anything else is refused (exit code guest.ExitRefused)
// and reported to Hosts.Refused. Standard input and parameters are never
// logged.
package winrmd

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
)

// Options tune a Server. Zero values take the defaults noted.
type Options struct {
	// Logger receives refusals and server errors; never parameters or
	// credentials. nil: discard.
	Logger *slog.Logger
	// Ports are the ports CONNECT may reach on a guest (default 5985).
	Ports []int
	// ReceiveWait caps how long a Receive is held waiting for output
	// before the TimedOut fault, after which clients poll again (default
	// 10s; the request's OperationTimeout applies when shorter).
	ReceiveWait time.Duration
	// ShellIdleTimeout expires shells (and their commands) unused this long
	// when the client's Create asked for no IdleTimeOut (default 2h, the
	// Windows default). A client's IdleTimeOut is honoured up to
	// MaxShellIdleTimeout (default 12h, Windows' MaxIdleTimeoutms).
	ShellIdleTimeout    time.Duration
	MaxShellIdleTimeout time.Duration
	// Clock times shells' idleness (default the real clock); a simulated
	// guest's WinRM service runs on its world's clock, as its Windows does.
	Clock clock.Clock
	// CommandTimeout bounds one script's run on a Machine (default 5m).
	CommandTimeout time.Duration
	// MaxShellsPerHost bounds the open shells of one guest (default 30,
	// Windows' MaxShellsPerUser); MaxShells bounds them overall (default
	// 100000).
	MaxShellsPerHost int
	MaxShells        int
	// MaxStdin bounds a command's standard input (default 64 KiB).
	MaxStdin int
	// IdleConnTimeout closes keep-alive connections idle this long (default
	// 90s).
	IdleConnTimeout time.Duration
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.ReceiveWait, 10*time.Second)
	def(&o.ShellIdleTimeout, 2*time.Hour)
	def(&o.MaxShellIdleTimeout, 12*time.Hour)
	if o.Clock == nil {
		o.Clock = clock.Real{}
	}
	def(&o.CommandTimeout, 5*time.Minute)
	def(&o.IdleConnTimeout, 90*time.Second)
	if o.MaxShellsPerHost <= 0 {
		o.MaxShellsPerHost = 30
	}
	if o.MaxShells <= 0 {
		o.MaxShells = 100000
	}
	if o.MaxStdin <= 0 {
		o.MaxStdin = 64 << 10
	}
	if len(o.Ports) == 0 {
		o.Ports = []int{5985}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Server is a running WinRM service and gateway on loopback.
type Server struct {
	h       *handler
	winrm   *http.Server
	gateway *http.Server
	wl      net.Listener  // WinRM, direct
	gl      net.Listener  // gateway
	tunnels *connListener // WinRM, through the gateway
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	once    sync.Once
	err     error
}

// Start listens on two loopback ports (the WinRM service and the CONNECT
// gateway) and serves until Close. It is the caller's to Close.
func Start(hosts Hosts, opts Options) (*Server, error) {
	wl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	gl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = wl.Close()
		return nil, err
	}
	return Serve(hosts, wl, gl, opts), nil
}

// Serve serves the WinRM service on wl and the CONNECT gateway on gl (any
// listeners: loopback sockets, or an in-memory network inside a
// testing/synctest bubble) until Close, which closes both.
func Serve(hosts Hosts, wl, gl net.Listener, opts Options) *Server {
	opts = opts.withDefaults()
	base, cancel := context.WithCancel(context.Background())
	s := &Server{
		h:       &handler{hosts: hosts, opts: opts, shells: newShells(), log: opts.Logger, base: base},
		wl:      wl,
		gl:      gl,
		tunnels: newConnListener(wl.Addr()),
		cancel:  cancel,
	}
	errLog := slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug)
	s.winrm = &http.Server{
		Handler:           s.h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       opts.IdleConnTimeout,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          errLog,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if tc, ok := c.(*tunnelConn); ok {
				return context.WithValue(ctx, tunnelKey{}, tc.host)
			}
			return ctx
		},
	}
	s.gateway = &http.Server{
		Handler:           &gateway{hosts: hosts, ports: opts.Ports, tunnels: s.tunnels, log: opts.Logger, counters: &s.h.counters},
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          errLog,
	}
	s.wg.Add(4)
	go func() { defer s.wg.Done(); _ = s.winrm.Serve(wl) }()
	go func() { defer s.wg.Done(); _ = s.winrm.Serve(s.tunnels) }()
	go func() { defer s.wg.Done(); _ = s.gateway.Serve(gl) }()
	go func() { defer s.wg.Done(); s.janitor(base) }()
	return s
}

// GatewayAddr is the CONNECT gateway's host:port: give it to
// guest.NewConnectDialer.
func (s *Server) GatewayAddr() string { return s.gl.Addr().String() }

// WinRMAddr is the WinRM service's own host:port, for direct connections
// (the guest is then named only by the Host header, and a guest that is
// not listening answers 401, not a refused connection).
func (s *Server) WinRMAddr() string { return s.wl.Addr().String() }

// Handler returns the WS-Management handler, to serve it in-process.
func (s *Server) Handler() http.Handler { return s.h }

// OpenShells returns the number of shells currently open (for tests and
// metrics).
func (s *Server) OpenShells() int { return s.h.shells.count() }

// Stats are the server's counters since Start.
type Stats struct {
	Tunnels         int // CONNECT tunnels opened
	TunnelsRejected int // CONNECTs answered 502
	AuthFailures    int // requests answered 401
	Shells          int // shells created
	Commands        int // commands started (catalog or not)
	Refused         int // commands refused
	Receives        int // Receives begun on a running or finished command
	ReceiveTimeouts int // Receives answered with the TimedOut fault
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	c := &s.h.counters
	return Stats{
		Tunnels:         int(c.tunnels.Load()),
		TunnelsRejected: int(c.tunnelsRejected.Load()),
		AuthFailures:    int(c.authFailures.Load()),
		Shells:          int(c.shells.Load()),
		Commands:        int(c.commands.Load()),
		Refused:         int(c.refused.Load()),
		Receives:        int(c.receives.Load()),
		ReceiveTimeouts: int(c.receiveTimeouts.Load()),
	}
}

// counters back Stats.
type counters struct {
	tunnels, tunnelsRejected, authFailures, shells, commands, refused, receives, receiveTimeouts atomic.Int64
}

// Close stops both listeners, closes every connection, cancels running
// scripts and waits for the server's goroutines. Safe to call twice.
func (s *Server) Close() error {
	s.once.Do(func() {
		s.cancel()
		s.tunnels.Close()
		err1 := s.gateway.Close()
		err2 := s.winrm.Close()
		s.wg.Wait()
		s.h.shells.closeAll()
		s.err = errors.Join(err1, err2)
	})
	return s.err
}

// janitor expires idle shells until ctx ends, checking a quarter of the
// shortest idle timeout apart (at least 100ms, at most a minute).
func (s *Server) janitor(ctx context.Context) {
	every := min(max(s.h.opts.ShellIdleTimeout/4, 100*time.Millisecond), time.Minute)
	for s.h.opts.Clock.Sleep(ctx, every) == nil {
		if n := s.h.shells.expire(s.h.opts.Clock.Now()); n > 0 {
			s.h.log.Debug("expired idle WinRM shells", "count", n)
		}
	}
}

// gateway is an HTTP CONNECT proxy onto the simulated network: a tunnel to
// a guest that listens is handed to the WinRM server; any other answers 502.
type gateway struct {
	hosts    Hosts
	ports    []int
	tunnels  *connListener
	log      *slog.Logger
	counters *counters
}

func (g *gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		w.Header().Set("Allow", http.MethodConnect)
		http.Error(w, "this gateway only tunnels (CONNECT)", http.StatusMethodNotAllowed)
		return
	}
	host, portStr, err := net.SplitHostPort(r.Host)
	port, perr := strconv.Atoi(portStr)
	if err != nil || perr != nil || host == "" {
		http.Error(w, "CONNECT needs host:port", http.StatusBadRequest)
		return
	}
	if !slices.Contains(g.ports, port) || !g.hosts.Listening(host) {
		g.counters.tunnelsRejected.Add(1)
		w.Header().Set("Connection", "close")
		http.Error(w, "no route to "+r.Host, http.StatusBadGateway)
		return
	}
	conn, brw, err := http.NewResponseController(w).Hijack()
	if err != nil {
		http.Error(w, "cannot tunnel", http.StatusInternalServerError)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	if _, err := io.WriteString(conn, "HTTP/1.1 200 Connection established\r\n\r\n"); err != nil {
		_ = conn.Close()
		return
	}
	g.counters.tunnels.Add(1)
	tc := &tunnelConn{Conn: conn, host: host}
	if brw.Reader.Buffered() > 0 {
		tc.r = brw.Reader
	}
	g.tunnels.push(tc)
}

// tunnelConn is a client connection tunnelled to guest host.
type tunnelConn struct {
	net.Conn
	host string
	r    *bufio.Reader // bytes read before the hand-over, if any
}

func (c *tunnelConn) Read(p []byte) (int, error) {
	if c.r != nil {
		if c.r.Buffered() > 0 {
			return c.r.Read(p)
		}
		c.r = nil
	}
	return c.Conn.Read(p)
}

// connListener is a net.Listener fed with connections by push.
type connListener struct {
	addr net.Addr
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newConnListener(addr net.Addr) *connListener {
	return &connListener{addr: addr, ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *connListener) push(c net.Conn) {
	select {
	case l.ch <- c:
	case <-l.done:
		_ = c.Close()
	}
}

func (l *connListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *connListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *connListener) Addr() net.Addr { return l.addr }
