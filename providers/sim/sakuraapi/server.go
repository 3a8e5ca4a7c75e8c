// Package sakuraapi is a loopback emulator of the subset of the Sakura Cloud
// IaaS API (https://secure.sakura.ad.jp/cloud/zone/{zone}/api/cloud/1.1/)
// that fixfleet uses — servers, power, disks and their connections,
// archives — backed by a simulated world (package world): one world, many
// faces. It answers with the JSON shapes github.com/sacloud/iaas-api-go
// decodes (built from that library's own wire types, package naked), so the
// real client is exercised over HTTP.
//
// Mapping:
//   - HTTP Basic credentials: the access token names the world account (or
//     Options.Accounts maps tokens to accounts and checks secrets).
//   - The zone path segment is the world zone (or Options.Zones maps it).
//   - Every request passes through the world's control plane (its fault
//     gate: outage → 503, throttling → 429 with Retry-After, injected 5xx,
//     dropped connections, latency); errors come back in Sakura's error
//     shape ({"is_fatal","serial","status","error_code","error_msg"}) with
//     404 for unknown IDs, 409 for a state conflict (booting a running
//     server, connecting a disk in use, deleting a connected disk), 400
//     for a bad request.
//   - IDs are integers: ID translates a world ID.
//   - Servers are the world's fleet VMs and helpers. A server created by
//     POST /server is a "shell" held by the emulator until a disk is created
//     for it from a public archive: that call creates the world's helper
//     (world.CreateHelper, with the shell's tags and ID as client token), and from then on the
//     shell's ID is an alias of the helper's own ID, which reads return.
//   - Public archives are the world's helper images (name "Windows Server
//     <release> Datacenter Edition", tags os-windows, distro-ver-<release>).
//     A fleet VM's original disk comes from a user "base image" archive of
//     its zone and release, whose source is the public archive: the lineage
//     a provider walks to find the Windows version. Backups are user
//     archives whose source disk is the VM's original disk, dated when taken.
//     Snapshots are user archives made from a disk (POST /archive).
//   - DELETE /disk/{id} deletes a disconnected disk made from a snapshot or
//     a backup (world.DeleteDisk); the world never deletes a fleet VM's
//     original disk or a helper's own, so those are refused (400).
//   - Instance status: running → "up", stopped and starting → "down",
//     stopping → "cleaning". StatusChangedAt is when the emulator saw the
//     status change (the emulator's start for what it found then): like the
//     real API, a guest that crashes and restarts by itself changes nothing
//     the control plane shows, and a reset keeps the server "up".
//
// Each request may make more than one control-plane call of the world (for
// example a read and then the change), throttled as one request
// (world.OneRequest); Stats counts the API's own operations.
package sakuraapi

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Root is the path every zone's API is served under: Root + "/{zone}/api/cloud/1.1/...".
const Root = "/cloud/zone"

// Options tune the emulator.
type Options struct {
	// Accounts maps access tokens to world accounts, with the secret each
	// must present. nil: the access token is the world account's name and
	// any non-empty secret is accepted.
	Accounts map[string]Credential
	// Zones maps the zone path segment to a world zone. nil: the same name
	// (the world's default zones are Sakura's).
	Zones map[string]string
	// SimulatedDrops answers the world's dropped-connection faults with a
	// 503 instead of closing the connection without a response.
	SimulatedDrops bool
	// Logger receives one line per failed request (operation, status),
	// never bodies or credentials. nil: discard.
	Logger *slog.Logger
}

// Credential is one API key of Options.Accounts.
type Credential struct {
	Secret  string
	Account string
}

// Server is a running emulator on a loopback address.
type Server struct {
	w    *world.World
	opts Options
	ln   net.Listener
	srv  *http.Server
	mux  *http.ServeMux

	statsMu sync.Mutex
	stats   map[string]int
	dropped atomic.Int64
	serial  atomic.Int64 // error serial numbers

	mu       sync.Mutex
	rev      map[int64]string      // numeric ID -> world ID
	num      map[string]int64      // world ID -> numeric ID
	role     map[int64]int         // numeric ID -> kind of resource it names
	prov     map[string]provenance // world disk ID -> where it came from
	backups  map[string]backupRec  // world backup ID -> facts
	helpers  map[string]helperRec  // world helper ID -> facts
	shells   map[int64]*shell      // servers created by the API, no disk yet
	alias    map[int64]string      // shell ID -> world helper ID
	statuses map[string]statusRec  // world VM ID -> status last shown
	images   []world.ImageSpec
	started  time.Time
	seq      int64
}

type provenance struct {
	kind    string // "original", "image", "snapshot", "backup"
	ref     string // image, snapshot or backup ID
	release string // Windows release of an original disk
}

type backupRec struct {
	spec   world.BackupSpec
	vm     string
	vmName string
	disk   string // the VM's original disk
	zone   string
	acct   string
}

type helperRec struct {
	zone, acct, name string
	tags             map[string]string
	windows          inventory.WindowsVersion
	ip               string
	bootDisk         string
}

type shell struct {
	id          int64
	acct, zone  string
	name, desc  string
	tags        []string
	createdAt   time.Time
	cpu, memory int
}

type statusRec struct {
	status, before string
	at             time.Time
}

// Start serves w's Sakura face on listen (a loopback host:port; "" picks
// 127.0.0.1:0). Close stops it.
func Start(w *world.World, listen string, opts Options) (*Server, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return nil, fmt.Errorf("sakuraapi: listen %q: %w", listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("sakuraapi: listen %q: loopback addresses only", listen)
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, fmt.Errorf("sakuraapi: %w", err)
	}
	return Serve(w, ln, opts), nil
}

// Serve serves the emulator of w on ln (any listener, e.g. an in-memory
// network's inside a testing/synctest bubble) until Close, which closes
// ln.
func Serve(w *world.World, ln net.Listener, opts Options) *Server {
	s := New(w, opts)
	s.ln = ln
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s
}

// New returns the emulator as an http.Handler without listening (Start
// serves it); URL and Close are for a started one.
func New(w *world.World, opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{w: w, opts: opts, mux: http.NewServeMux(), stats: map[string]int{},
		rev: map[int64]string{}, num: map[string]int64{}, role: map[int64]int{}, prov: map[string]provenance{}, backups: map[string]backupRec{},
		helpers: map[string]helperRec{}, shells: map[int64]*shell{}, alias: map[int64]string{},
		statuses: map[string]statusRec{}}
	w.UseFullCopySnapshots()  // Sakura's archives are full copies
	w.UseZoneBoundSnapshots() // and zone resources
	w.UseDiskSerials(ID)      // guests name disks by the IDs the API shows
	s.seed()
	p := Root + "/{zone}/api/cloud/1.1"
	for _, r := range []struct {
		pattern, op string
		h           func(*req)
	}{
		{"GET " + p + "/server", "Server.Find", s.serverFind},
		{"POST " + p + "/server", "Server.Create", s.serverCreate},
		{"GET " + p + "/server/{id}", "Server.Read", s.serverRead},
		{"DELETE " + p + "/server/{id}", "Server.Delete", s.serverDelete},
		{"GET " + p + "/server/{id}/power", "Server.Status", s.serverStatus},
		{"PUT " + p + "/server/{id}/power", "Server.Boot", s.serverBoot},
		{"DELETE " + p + "/server/{id}/power", "Server.Shutdown", s.serverShutdown},
		{"PUT " + p + "/server/{id}/reset", "Server.Reset", s.serverReset},
		{"GET " + p + "/server/{id}/vnc/snapshot", "Server.GetVNCSnapshot", s.serverVNCSnapshot},
		{"GET " + p + "/disk", "Disk.Find", s.diskFind},
		{"POST " + p + "/disk", "Disk.Create", s.diskCreate},
		{"GET " + p + "/disk/{id}", "Disk.Read", s.diskRead},
		{"DELETE " + p + "/disk/{id}", "Disk.Delete", s.diskDelete},
		{"PUT " + p + "/disk/{id}/to/server/{server}", "Disk.ConnectToServer", s.diskConnect},
		{"DELETE " + p + "/disk/{id}/to/server", "Disk.DisconnectFromServer", s.diskDisconnect},
		{"GET " + p + "/archive", "Archive.Find", s.archiveFind},
		{"POST " + p + "/archive", "Archive.Create", s.archiveCreate},
		{"GET " + p + "/archive/{id}", "Archive.Read", s.archiveRead},
		{"GET " + p + "/auth-status", "AuthStatus.Read", s.authStatus},
	} {
		s.mux.HandleFunc(r.pattern, s.handle(r.op, r.h))
	}
	s.mux.HandleFunc("/", func(rw http.ResponseWriter, r *http.Request) {
		s.count("unsupported")
		s.writeError(rw, http.StatusNotFound, "not_found", "the emulator does not serve "+r.Method+" "+r.URL.Path)
	})
	return s
}

// URL returns the API root to give iaas-api-go (its APIRootURL), e.g.
// "http://127.0.0.1:40123/cloud/zone".
func (s *Server) URL() string { return "http://" + s.ln.Addr().String() + Root }

// Close stops the server.
func (s *Server) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		return s.srv.Close()
	}
	return nil
}

// Stats returns the number of requests per API operation ("Server.Find",
// "Disk.ConnectToServer", ...), including refused ones; "unsupported"
// counts requests for endpoints the emulator does not serve.
func (s *Server) Stats() map[string]int {
	s.statsMu.Lock()
	defer s.statsMu.Unlock()
	out := make(map[string]int, len(s.stats))
	for k, v := range s.stats {
		out[k] = v
	}
	return out
}

// Dropped returns how many connections were closed without a response.
func (s *Server) Dropped() int64 { return s.dropped.Load() }

// WorldID returns the world ID behind a numeric ID the emulator showed.
func (s *Server) WorldID(id string) (string, bool) {
	n, err := strconv.ParseInt(id, 10, 64)
	if err != nil {
		return "", false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.alias[n]; ok {
		return h, true
	}
	w, ok := s.rev[n]
	return w, ok
}

func (s *Server) count(op string) {
	s.statsMu.Lock()
	s.stats[op]++
	s.statsMu.Unlock()
}

func (s *Server) ServeHTTP(rw http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(rw, r) }

// seed learns the world's static facts once: images, backups, the
// provenance of existing disks, existing helpers. Dynamic state is always
// read through the control plane.
func (s *Server) seed() {
	sc := s.w.Export()
	s.started = sc.Now
	s.images = sc.Images
	for _, im := range sc.Images {
		s.register(kindImage, im.ImageID)
	}
	note := func(d *world.DiskSpec, release string) {
		if d == nil {
			return
		}
		s.register(kindDisk, d.ID)
		s.prov[d.ID] = provFrom(d.Source, release)
	}
	release := map[string]string{} // original disk -> release
	for _, v := range sc.VMs {
		s.register(kindVM, v.ID)
		if v.OSDisk != nil && v.OSDisk.Source == "" {
			release[v.OSDisk.ID] = v.Windows.Release
		}
		if v.OriginalDisk != "" {
			release[v.OriginalDisk] = v.Windows.Release
		}
		note(v.OSDisk, v.Windows.Release)
		orig := v.OriginalDisk
		if orig == "" && v.OSDisk != nil {
			orig = v.OSDisk.ID
		}
		acct := v.Account
		if acct == "" {
			acct = world.DefaultAccount
		}
		for _, b := range v.Backups {
			s.register(kindBackup, b.ID)
			s.backups[b.ID] = backupRec{spec: b, vm: v.ID, vmName: v.Name, disk: orig, zone: v.Zone, acct: acct}
		}
	}
	for _, h := range sc.Helpers {
		s.register(kindHelper, h.ID)
		rec := helperRec{zone: h.Zone, acct: h.Account, name: h.Name, tags: h.Tags, windows: h.Windows, ip: h.PrivateIP}
		if rec.acct == "" {
			rec.acct = world.DefaultAccount
		}
		if h.OSDisk != nil {
			rec.bootDisk = h.OSDisk.ID
			note(h.OSDisk, "")
		}
		s.helpers[h.ID] = rec
	}
	for i := range sc.Disks {
		d := &sc.Disks[i]
		note(d, release[d.ID])
	}
	for _, sn := range sc.Snapshots {
		s.register(kindSnap, sn.ID)
	}
}

func provFrom(source, release string) provenance {
	kind, ref, _ := strings.Cut(source, ":")
	if source == "" {
		return provenance{kind: "original", release: release}
	}
	return provenance{kind: kind, ref: ref}
}

// idOf returns the numeric ID of a world ID, registering one the world
// made since the seed by its prefix's kind. Caller holds mu (or is seed).
func (s *Server) idOf(worldID string) int64 {
	return s.register(prefixKindOf(worldID), worldID)
}

// register gives worldID its numeric ID and records what it names (kind),
// unless it has one already. Caller holds mu (or is seed).
func (s *Server) register(kind int, worldID string) int64 {
	if n, ok := s.num[worldID]; ok {
		return n
	}
	n := numID(worldID)
	for {
		if _, taken := s.rev[n]; !taken {
			break
		}
		n = nextOf(n)
	}
	s.rev[n], s.num[worldID], s.role[n] = worldID, n, kind
	return n
}

// req is one API request being served.
type req struct {
	rw     http.ResponseWriter
	r      *http.Request
	ctx    context.Context
	op     string
	acct   string
	zone   string // world zone
	szone  string // zone path segment
	failed bool
}

func (s *Server) handle(op string, h func(*req)) http.HandlerFunc {
	return func(rw http.ResponseWriter, r *http.Request) {
		s.count(op)
		q := &req{rw: rw, r: r, ctx: world.OneRequest(r.Context()), op: op, szone: r.PathValue("zone")}
		acct, ok := s.auth(r)
		if !ok {
			s.writeError(rw, http.StatusUnauthorized, "unauthorized", "authentication required: HTTP Basic with an access token and secret")
			return
		}
		q.acct = acct
		q.zone = q.szone
		if s.opts.Zones != nil {
			q.zone = s.opts.Zones[q.szone]
		}
		if q.zone == "" || !contains(s.w.Zones(), q.zone) {
			s.writeError(rw, http.StatusNotFound, "not_found", "no such zone: "+q.szone)
			return
		}
		h(q)
	}
}

func (s *Server) auth(r *http.Request) (string, bool) {
	token, secret, ok := r.BasicAuth()
	if !ok || token == "" || secret == "" {
		return "", false
	}
	if s.opts.Accounts == nil {
		return token, true
	}
	c, found := s.opts.Accounts[token]
	if !found || subtle.ConstantTimeCompare([]byte(c.Secret), []byte(secret)) != 1 {
		return "", false
	}
	return c.Account, true
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// reply writes a successful response: status and the envelope, with is_ok.
func (q *req) reply(status int, body map[string]any) {
	if body == nil {
		body = map[string]any{}
	}
	if status != http.StatusOK || q.r.Method != http.MethodGet {
		body["is_ok"] = true
		body["Success"] = true
	}
	q.rw.Header().Set("Content-Type", "application/json; charset=UTF-8")
	q.rw.WriteHeader(status)
	_ = json.NewEncoder(q.rw).Encode(body)
}

// apiError is the error body of the Sakura Cloud API.
type apiError struct {
	IsFatal   bool   `json:"is_fatal"`
	Serial    string `json:"serial"`
	Status    string `json:"status"`
	ErrorCode string `json:"error_code"`
	ErrorMsg  string `json:"error_msg"`
}

// writeError answers with the API's error body.
func (s *Server) writeError(rw http.ResponseWriter, status int, code, msg string) {
	rw.Header().Set("Content-Type", "application/json; charset=UTF-8")
	rw.WriteHeader(status)
	_ = json.NewEncoder(rw).Encode(apiError{IsFatal: true, Serial: fmt.Sprintf("%032x", s.serial.Add(1)),
		Status: fmt.Sprintf("%d %s", status, http.StatusText(status)), ErrorCode: code, ErrorMsg: msg})
}

// fail answers with an error: a classified world error becomes its HTTP
// status; a dropped connection is closed without a response.
func (s *Server) fail(q *req, err error) {
	q.failed = true
	status, code := http.StatusInternalServerError, "internal_server_error"
	var pe *providers.Error
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		status, code = http.StatusServiceUnavailable, "service_unavailable"
	case errors.Is(err, world.ErrDenied):
		status, code = http.StatusForbidden, "forbidden"
	case errors.As(err, &pe):
		switch pe.Class {
		case providers.ErrNotFound:
			status, code = http.StatusNotFound, "not_found"
		case providers.ErrConflict:
			status, code = http.StatusConflict, "conflict"
			if errors.Is(err, world.ErrNotReady) {
				code = "still_creating"
			}
		case providers.ErrThrottled:
			status, code = http.StatusTooManyRequests, "too_many_requests"
			if pe.RetryAfter > 0 {
				q.rw.Header().Set("Retry-After", strconv.Itoa(int((pe.RetryAfter+time.Second-1)/time.Second)))
			}
		case providers.ErrUnavailable:
			if isDrop(err) && !s.opts.SimulatedDrops && s.drop(q.rw) {
				s.opts.Logger.Info("sakuraapi: dropped", "op", q.op)
				return
			}
			status, code = http.StatusServiceUnavailable, "service_unavailable"
			if errors.Is(err, world.ErrInternal) {
				status, code = http.StatusInternalServerError, "internal_server_error"
			}
		case providers.ErrPermanent, providers.ErrUnsupported:
			status, code = http.StatusBadRequest, "bad_request"
		}
	}
	s.opts.Logger.Info("sakuraapi: failed", "op", q.op, "status", status)
	s.writeError(q.rw, status, code, err.Error())
}

func (s *Server) bad(q *req, format string, args ...any) {
	q.failed = true
	s.writeError(q.rw, http.StatusBadRequest, "bad_request", fmt.Sprintf(format, args...))
}

func (s *Server) notFound(q *req, what string) {
	q.failed = true
	s.writeError(q.rw, http.StatusNotFound, "not_found", what+" not found")
}

func (s *Server) conflict(q *req, format string, args ...any) {
	q.failed = true
	s.writeError(q.rw, http.StatusConflict, "conflict", fmt.Sprintf(format, args...))
}

func isDrop(err error) bool { return errors.Is(err, world.ErrConnReset) }

// applied reports whether err is a dropped connection after the world
// applied the change (the change stands; the client sees a failure).
func applied(err error) bool { return errors.Is(err, world.ErrReplyLost) }

func (s *Server) drop(rw http.ResponseWriter) bool {
	conn, _, err := http.NewResponseController(rw).Hijack()
	if err != nil {
		return false
	}
	s.dropped.Add(1)
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
	return true
}

// gate passes a request that touches no world resource (a shell server,
// a public archive) through the control plane's fault gate, so that
// outages, throttling and latency apply to it too.
func (s *Server) gate(q *req) error {
	_, err := s.w.HelperImages(q.ctx, q.acct)
	return err
}

// pathID parses the {name} path value as a numeric ID.
func pathID(q *req, name string) (int64, bool) {
	n, err := strconv.ParseInt(q.r.PathValue(name), 10, 64)
	return n, err == nil && n > 0
}

// worldOf resolves a numeric ID to a world ID of the wanted kinds.
func (s *Server) worldOf(n int64, kinds ...int) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.alias[n]; ok {
		n = s.idOf(h)
	}
	w, ok := s.rev[n]
	if !ok || !containsInt(kinds, s.role[n]) {
		return "", false
	}
	return w, true
}

// roleOf is the kind of resource a numeric ID names (0: none known).
func (s *Server) roleOf(n int64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.role[n]
}

func containsInt(xs []int, x int) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// encodeTags turns world tags into Sakura tags ("key=value", sorted).
func encodeTags(t map[string]string) []string {
	out := make([]string, 0, len(t))
	for k, v := range t {
		if v == "" {
			out = append(out, k)
		} else {
			out = append(out, k+"="+v)
		}
	}
	sort.Strings(out)
	return out
}

// decodeTags turns Sakura tags back into a map ("key" alone: empty value).
func decodeTags(tags []string) map[string]string {
	if len(tags) == 0 {
		return nil
	}
	out := make(map[string]string, len(tags))
	for _, t := range tags {
		k, v, _ := strings.Cut(t, "=")
		out[k] = v
	}
	return out
}
