package winrmd

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/sizedread"
	"github.com/fixfleet/fixfleet/providers/guest"
)

// tunnelKey carries, in a connection's context, the guest a CONNECT tunnel
// was opened to.
type tunnelKey struct{}

// handler serves WS-Management on POST /wsman for every simulated guest;
// the guest is the request's Host (without port).
type handler struct {
	hosts    Hosts
	opts     Options
	shells   *shells
	log      *slog.Logger
	base     context.Context // ends when the server closes
	counters counters
}

// maxCommandsPerShell bounds the commands a shell holds until they are
// signalled or the shell is deleted.
const maxCommandsPerShell = 16

// maxBody bounds a request body (masterzen's envelope size is 150 KiB).
const maxBody = 512 << 10

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/wsman" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	host := hostOnly(r.Host)
	if th, ok := r.Context().Value(tunnelKey{}).(string); ok && th != host {
		http.Error(w, "Host does not match the tunnel's destination", http.StatusBadRequest)
		return
	}
	user, password, ok := r.BasicAuth()
	var m Machine
	if ok {
		m, ok = h.hosts.Authenticate(host, user, password)
	}
	if (!ok || m == nil) && !h.hosts.Listening(host) {
		// The guest went down after the tunnel opened (a restart, a
		// shutdown): a real host drops the connection; it does not
		// reject the credentials.
		dropConnection(w)
		return
	}
	if !ok || m == nil {
		// Drain a little of the body so the connection can be reused.
		h.counters.authFailures.Add(1)
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxBody))
		w.Header().Set("WWW-Authenticate", `Basic realm="WSMAN"`)
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if ct := r.Header.Get("Content-Type"); !strings.Contains(ct, "application/soap+xml") {
		http.Error(w, "unsupported content type", http.StatusUnsupportedMediaType)
		return
	}
	data, err := sizedread.ReadAll(http.MaxBytesReader(w, r.Body, maxBody), r.ContentLength, maxBody)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeFault(w, "", faultEncoding)
			return
		}
		return // connection failed; nothing to answer
	}
	var env envelope
	if err := parseEnvelope(data, &env); err != nil {
		writeFault(w, "", faultSchema)
		return
	}
	rel := env.Header.MessageID
	action := strings.TrimSpace(env.Header.Action)
	if strings.TrimSpace(env.Header.ResourceURI) != resourceCmd {
		writeFault(w, rel, faultResource)
		return
	}
	now := h.opts.Clock.Now()
	if action == actionCreate {
		h.create(w, r, &env, host, user, m, now)
		return
	}
	sh, ok := h.shells.get(env.selector("ShellId"), host, user, now)
	if !ok {
		writeFault(w, rel, faultNoShell)
		return
	}
	// A shell is idle from the end of its last request: a Receive that
	// waits for output uses it all along.
	defer h.shells.used(sh, h.opts.Clock.Now)
	switch action {
	case actionCommand:
		h.command(w, &env, sh)
	case actionSend:
		h.send(w, &env, sh)
	case actionReceive:
		h.receive(w, r, &env, sh)
	case actionSignal:
		h.signal(w, &env, sh)
	case actionDelete:
		h.shells.remove(sh)
		writeEnvelope(w, rel, nsTransfer+"/DeleteResponse", "")
	default:
		writeFault(w, rel, faultAction)
	}
}

func (h *handler) create(w http.ResponseWriter, r *http.Request, env *envelope, host, user string, m Machine, now time.Time) {
	if env.Body.Shell == nil {
		writeFault(w, env.Header.MessageID, faultSchema)
		return
	}
	idle := h.opts.ShellIdleTimeout
	if v := strings.TrimSpace(env.Body.Shell.IdleTimeOut); v != "" {
		d, err := parseDuration(v)
		if err != nil || d <= 0 {
			writeFault(w, env.Header.MessageID, faultSchema)
			return
		}
		idle = min(d, h.opts.MaxShellIdleTimeout)
	}
	sh, ok := h.shells.open(host, user, m, now, idle, h.opts.MaxShellsPerHost, h.opts.MaxShells)
	if !ok {
		writeFault(w, env.Header.MessageID, faultQuota)
		return
	}
	h.counters.shells.Add(1)
	addr := "http://" + r.Host + "/wsman"
	writeEnvelope(w, env.Header.MessageID, nsTransfer+"/CreateResponse", createResponse(addr, sh.id))
}

// command starts a command. Only a catalog script's exact command line is
// accepted; anything else finishes at once, refused.
func (h *handler) command(w http.ResponseWriter, env *envelope, sh *shell) {
	cl := env.Body.CommandLine
	if cl == nil {
		writeFault(w, env.Header.MessageID, faultSchema)
		return
	}
	c := &command{id: newID(), done: make(chan struct{})}
	name, known := guest.Lookup(cl.Command)
	if known && len(cl.Arguments) == 0 {
		c.name = name
	} else {
		c.started = true // refused below; it reads no input
	}
	var full bool
	h.shells.withShell(sh, func() {
		if full = len(sh.commands) >= maxCommandsPerShell; !full {
			sh.commands[c.id] = c
		}
	})
	if full {
		writeFault(w, env.Header.MessageID, faultQuota)
		return
	}
	h.counters.commands.Add(1)
	if c.name == "" {
		h.refuse(sh.host, c, refusedOutcome("command is not a catalog script"))
	}
	writeEnvelope(w, env.Header.MessageID, nsShell+"/CommandResponse", commandResponse(c.id))
}

// refuse finishes c as refused and tells Hosts.
func (h *handler) refuse(host string, c *command, out outcome) {
	h.counters.refused.Add(1)
	h.hosts.Refused(host, out.refused)
	h.log.Warn("guest refused a command", "host", host, "reason", out.refused)
	c.out = out
	close(c.done)
}

// send appends stdin; with End="true" the script runs.
func (h *handler) send(w http.ResponseWriter, env *envelope, sh *shell) {
	if env.Body.Send == nil {
		writeFault(w, env.Header.MessageID, faultSchema)
		return
	}
	for _, st := range env.Body.Send.Streams {
		if st.Name != "stdin" {
			writeFault(w, env.Header.MessageID, faultSchema)
			return
		}
		data, err := base64.StdEncoding.DecodeString(strings.TrimSpace(st.Data))
		if err != nil {
			writeFault(w, env.Header.MessageID, faultSchema)
			return
		}
		var (
			c        *command
			found    bool
			accepted bool
			start    bool
			tooLarge bool
		)
		h.shells.withShell(sh, func() {
			c, found = sh.commands[st.CommandID]
			if !found || c.started {
				return
			}
			accepted = true
			if len(c.stdin)+len(data) > h.opts.MaxStdin {
				c.started, tooLarge = true, true
				c.stdin = nil
				return
			}
			c.stdin = append(c.stdin, data...)
			if st.End == "true" {
				c.started, start = true, true
			}
		})
		switch {
		case !found:
			writeFault(w, env.Header.MessageID, faultNoCommand)
			return
		case !accepted:
			// Input after the command was refused, or after End: the
			// command no longer reads stdin.
			if c.name == "" {
				continue
			}
			writeFault(w, env.Header.MessageID, faultStdin)
			return
		case tooLarge:
			h.refuse(sh.host, c, refusedOutcome("parameters for "+string(c.name)+": larger than the guest accepts"))
		case start:
			h.start(sh, c)
		}
	}
	writeEnvelope(w, env.Header.MessageID, nsShell+"/SendResponse", `<rsp:SendResponse/>`)
}

// start runs c's script against the shell's machine in the background.
func (h *handler) start(sh *shell, c *command) {
	ctx, cancel := context.WithTimeout(h.base, h.opts.CommandTimeout)
	var stdin []byte
	h.shells.withShell(sh, func() {
		c.cancel = cancel
		stdin, c.stdin = c.stdin, nil
	})
	go func() {
		defer cancel()
		out := execute(ctx, sh.machine, c.name, stdin)
		clear(stdin)
		if out.refused != "" {
			h.refuse(sh.host, c, out)
			return
		}
		c.out = out
		close(c.done)
	}()
}

// receive waits for the command to finish, at most the request's
// OperationTimeout (capped by Options.ReceiveWait); then it returns the
// output and exit code, or the TimedOut fault after which clients poll
// again.
func (h *handler) receive(w http.ResponseWriter, r *http.Request, env *envelope, sh *shell) {
	if env.Body.Receive == nil {
		writeFault(w, env.Header.MessageID, faultSchema)
		return
	}
	id := env.Body.Receive.DesiredStream.CommandID
	var c *command
	h.shells.withShell(sh, func() { c = sh.commands[id] })
	if c == nil {
		writeFault(w, env.Header.MessageID, faultNoCommand)
		return
	}
	h.counters.receives.Add(1)
	wait := min(env.operationTimeout(h.opts.ReceiveWait), h.opts.ReceiveWait)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		h.counters.receiveTimeouts.Add(1)
		writeFault(w, env.Header.MessageID, faultTimedOut)
		return
	case <-r.Context().Done():
		return
	case <-h.base.Done():
		return
	}
	if c.out.dropped {
		dropConnection(w)
		return
	}
	writeEnvelope(w, env.Header.MessageID, nsShell+"/ReceiveResponse",
		receiveResponse(c.id, c.out.stdout, c.out.stderr, c.out.exitCode))
}

// signal terminates a command and forgets it.
func (h *handler) signal(w http.ResponseWriter, env *envelope, sh *shell) {
	if env.Body.Signal == nil {
		writeFault(w, env.Header.MessageID, faultSchema)
		return
	}
	id := env.Body.Signal.CommandID
	var found bool
	h.shells.withShell(sh, func() {
		var c *command
		if c, found = sh.commands[id]; found {
			if c.cancel != nil {
				c.cancel()
			}
			delete(sh.commands, id)
		}
	})
	if !found {
		writeFault(w, env.Header.MessageID, faultNoCommand)
		return
	}
	writeEnvelope(w, env.Header.MessageID, nsShell+"/SignalResponse", `<rsp:SignalResponse/>`)
}

// hostOnly strips the port from a Host header.
func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return strings.Trim(hostport, "[]")
}

// dropConnection closes the client's connection without a response, as a
// host that went down does.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if conn, _, err := hj.Hijack(); err == nil {
		_ = conn.Close()
	}
}
