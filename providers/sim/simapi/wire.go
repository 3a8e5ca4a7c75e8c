// Package simapi serves a simulated world (package world) as its own
// process: a JSON-over-HTTP face of the world's control plane, its referee
// and its fault switches, and the client side of it, a providers.Provider
// with the exact semantics of the in-process provider (package sim).
//
// "fixfleet sim serve" runs NewServer (or Start) over one world; other
// fixfleet processes reach it with Dial and NewProvider, so that an
// orchestrator can be killed and restarted against the same world.
//
// # Wire format
//
// Every response carries the header Fixfleet-Sim-Now: the world's clock
// (RFC 3339, nanoseconds) when the response was written. Bodies are JSON.
//
// Control plane, keyed by the calling account (the world's fault gate,
// latency and throttling apply; a resource of another account is not
// found). Always POST, never retried by HTTP clients on their own:
//
//	POST /v1/accounts/{account}/{op}   body: Request   response: per op
//
//	op                   request fields             response
//	list-vms             zones                      []inventory.VM
//	observe              ids                        map[id]inventory.Signals
//	guest-endpoint       vm                         providers.Endpoint
//	stop                 ids, force                 world.Pending
//	start                ids                        world.Pending
//	restart              vm                         world.Pending
//	describe-disk        disk                       world.DiskInfo
//	find-disks           tags                       []world.DiskInfo
//	delete-disk          disk                       {}
//	find-helpers         tags                       []world.HelperInfo
//	snapshot             disk, tags                 world.SnapshotInfo
//	find-snapshots       tags                       []world.SnapshotInfo
//	detach               vm, disk                   world.Pending
//	attach               vm, disk, boot             world.Pending
//	disk-from-snapshot   snapshot, zone, tags       world.DiskInfo
//	list-backups         vm                         []inventory.Backup
//	restore-backup       backup, zone, tags         world.DiskInfo
//	helper-images        -                          []providers.HelperImage
//	acquire-helper       zone, windows, tags        world.HelperInfo
//	release-helper       vm                         {}
//
// Times in responses (Pending.Until, ReadyAt, ...) are the world's
// simulated time. A caller that wants the cloud's "done" waits
// (until - Fixfleet-Sim-Now) of simulated time on a clock at the world's
// scale.
//
// The world itself (no fault gate):
//
//	GET  /v1/info          Info
//	GET  /v1/credentials   Credentials (simulator test data; loopback only)
//	GET  /v1/audit         world.Audit
//	GET  /v1/faults        world.Faults
//	PUT  /v1/faults        world.Faults -> the new world.Faults
//	PUT  /v1/outage        {"on": bool} -> {"on": bool}
//	GET  /v1/stats         Stats
//
// Errors are ErrorBody with the status a cloud would use: not_found 404,
// conflict 409, throttled 429 (with Retry-After), unavailable 503,
// permanent 400, unsupported 501. retry_after_ms is simulated time,
// rounded up. The world's "dropped connection" faults are real on the
// wire unless ServerOptions.SimulatedDrops is set: the server closes the
// connection without a response (before or after applying the change, as
// the fault says), and the client reports providers.ErrUnavailable.
package simapi

import (
	"errors"
	"net/http"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// APIVersion is the wire version Info reports; a client refuses a server
// of another version.
const APIVersion = "1"

// NowHeader carries the world's clock on every response.
const NowHeader = "Fixfleet-Sim-Now"

// Info is the remote world's description (GET /v1/info).
type Info struct {
	Version  string             `json:"version"`
	Zones    []string           `json:"zones"`
	Accounts []string           `json:"accounts"`
	Incident inventory.Incident `json:"incident"`
	// Now is the world's clock when the response was made; Scale is how
	// many times faster than wall time it runs.
	Now   time.Time `json:"now"`
	Scale float64   `json:"scale"`
	// ConsoleAvailable reports whether Observe returns console text.
	ConsoleAvailable bool `json:"console_available"`
	// Gateway is the host:port of the world's WinRM CONNECT gateway ("" if
	// the server was given none).
	Gateway string `json:"gateway,omitempty"`
	// GuestUser is the administrator user name the guests accept.
	GuestUser string `json:"guest_user"`
}

// credentialsBody is GET /v1/credentials. It holds secrets in clear: the
// simulator's own test data, served on loopback only. The client turns
// them into secret.Secret at once.
type credentialsBody struct {
	Notice        string            `json:"notice"`
	GuestUser     string            `json:"guest_user"`
	GuestPassword string            `json:"guest_password"`
	BitLockerKeys map[string]string `json:"bitlocker_keys"`
}

// credentialsNotice marks the credentials document for what it is.
const credentialsNotice = "SIMULATOR TEST DATA: guest password and escrowed BitLocker recovery keys of a simulated world; " +
	"served on loopback only; never use or log them as real secrets"

// Stats are the server's and the world's counters (GET /v1/stats).
type Stats struct {
	World world.CallStats `json:"world"`
	// Requests counts HTTP requests served; Dropped the connections closed
	// without a response for a dropped-connection fault.
	Requests int64 `json:"requests"`
	Dropped  int64 `json:"dropped"`
}

// Request is the body of every control-plane call; each op reads the
// fields the package documentation lists for it.
type Request struct {
	Zones    []string                 `json:"zones,omitempty"`
	IDs      []string                 `json:"ids,omitempty"`
	Force    bool                     `json:"force,omitempty"`
	VM       string                   `json:"vm,omitempty"`
	Disk     string                   `json:"disk,omitempty"`
	Snapshot string                   `json:"snapshot,omitempty"`
	Backup   string                   `json:"backup,omitempty"`
	Zone     string                   `json:"zone,omitempty"`
	Boot     bool                     `json:"boot,omitempty"`
	Windows  inventory.WindowsVersion `json:"windows,omitzero"`
	Tags     map[string]string        `json:"tags,omitempty"`
}

type outageBody struct {
	On bool `json:"on"`
}

// ErrorBody is every error response.
type ErrorBody struct {
	// Class is one of not_found, conflict, throttled, unavailable,
	// permanent, unsupported.
	Class    string `json:"class"`
	Op       string `json:"op,omitempty"`
	Resource string `json:"resource,omitempty"`
	// Message is the cause; it never holds a secret.
	Message      string `json:"message"`
	RetryAfterMS int64  `json:"retry_after_ms,omitempty"`
}

var classes = []struct {
	name   string
	class  error
	status int
}{
	{"not_found", providers.ErrNotFound, http.StatusNotFound},
	{"conflict", providers.ErrConflict, http.StatusConflict},
	{"throttled", providers.ErrThrottled, http.StatusTooManyRequests},
	{"unavailable", providers.ErrUnavailable, http.StatusServiceUnavailable},
	{"permanent", providers.ErrPermanent, http.StatusBadRequest},
	{"unsupported", providers.ErrUnsupported, http.StatusNotImplemented},
}

// classOf names an error class and gives its status.
func classOf(class error) (string, int) {
	for _, c := range classes {
		if c.class == class {
			return c.name, c.status
		}
	}
	return "unavailable", http.StatusInternalServerError
}

// classNamed returns the error class of a wire name, or nil.
func classNamed(name string) error {
	for _, c := range classes {
		if c.name == name {
			return c.class
		}
	}
	return nil
}

// classOfStatus guesses a class from a status when the body says none.
func classOfStatus(status int) error {
	switch {
	case status == http.StatusNotFound:
		return providers.ErrNotFound
	case status == http.StatusConflict:
		return providers.ErrConflict
	case status == http.StatusTooManyRequests:
		return providers.ErrThrottled
	case status == http.StatusNotImplemented:
		return providers.ErrUnsupported
	case status >= 500:
		return providers.ErrUnavailable
	}
	return providers.ErrPermanent
}

// toBody encodes err for the wire.
func toBody(err error) (ErrorBody, int) {
	var pe *providers.Error
	if errors.As(err, &pe) {
		name, status := classOf(pe.Class)
		b := ErrorBody{Class: name, Op: pe.Op, Resource: pe.Resource}
		if pe.Err != nil {
			b.Message = pe.Err.Error()
		}
		if pe.RetryAfter > 0 {
			b.RetryAfterMS = int64((pe.RetryAfter + time.Millisecond - 1) / time.Millisecond)
		}
		return b, status
	}
	for _, c := range classes {
		if errors.Is(err, c.class) {
			return ErrorBody{Class: c.name, Message: err.Error()}, c.status
		}
	}
	return ErrorBody{Class: "unavailable", Message: err.Error()}, http.StatusInternalServerError
}

// fromBody decodes a wire error into a classified *providers.Error; op and
// res name the call when the body does not.
func fromBody(b ErrorBody, status int, op, res string) *providers.Error {
	class := classNamed(b.Class)
	if class == nil {
		class = classOfStatus(status)
	}
	e := &providers.Error{Class: class, Op: b.Op, Resource: b.Resource,
		RetryAfter: time.Duration(b.RetryAfterMS) * time.Millisecond}
	if e.Op == "" {
		e.Op, e.Resource = op, res
	}
	if b.Message != "" {
		e.Err = errors.New(b.Message)
	} else {
		e.Err = errors.New("HTTP " + http.StatusText(status))
	}
	return e
}
