package winrmd

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"sync"
	"time"

	"github.com/fixfleet/fixfleet/providers/guest"
)

// shell is one WinRM shell: opened by Create, bound to the guest (host) and
// user that opened it, closed by Delete or when idle too long.
type shell struct {
	id       string
	host     string
	user     string
	machine  Machine
	lastUsed time.Time
	inflight int           // requests on it being served: it is not idle
	idle     time.Duration // expires once unused this long
	commands map[string]*command
}

// command is one command in a shell. Its fields after done is closed are
// read-only; before that they are guarded by the shells mutex.
type command struct {
	id      string
	name    guest.Name // "" for a refused command
	stdin   []byte
	started bool
	cancel  context.CancelFunc
	done    chan struct{}
	out     outcome // valid once done is closed
}

// shells is the server's table of shells, bounded per guest and overall.
type shells struct {
	mu      sync.Mutex
	byID    map[string]*shell
	perHost map[string]int
}

func newShells() *shells {
	return &shells{byID: map[string]*shell{}, perHost: map[string]int{}}
}

// open creates a shell, or returns false when a quota is reached.
func (t *shells) open(host, user string, m Machine, now time.Time, idle time.Duration, maxPerHost, maxTotal int) (*shell, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.byID) >= maxTotal || t.perHost[host] >= maxPerHost {
		return nil, false
	}
	s := &shell{id: newID(), host: host, user: user, machine: m, lastUsed: now, idle: idle, commands: map[string]*command{}}
	t.byID[s.id] = s
	t.perHost[host]++
	return s, true
}

// get returns the shell id opened by host and user, and marks it in use
// until used is called. Another guest's or user's shell is not found.
func (t *shells) get(id, host, user string, now time.Time) (*shell, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.byID[id]
	if !ok || s.host != host || s.user != user {
		return nil, false
	}
	s.lastUsed = now
	s.inflight++
	return s, true
}

// used ends a request that get began: s is idle from now() on (read under
// the table's lock, so that the janitor never expires a shell at an
// instant before its last use) unless another request is on it.
func (t *shells) used(s *shell, now func() time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s.inflight--
	s.lastUsed = now()
}

// withShell runs f on the shell under the table's lock.
func (t *shells) withShell(s *shell, f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	f()
}

// remove deletes a shell and cancels its commands. It reports whether the
// shell existed.
func (t *shells) remove(s *shell) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removeLocked(s)
}

func (t *shells) removeLocked(s *shell) bool {
	if _, ok := t.byID[s.id]; !ok {
		return false
	}
	delete(t.byID, s.id)
	if t.perHost[s.host]--; t.perHost[s.host] <= 0 {
		delete(t.perHost, s.host)
	}
	for _, c := range s.commands {
		if c.cancel != nil {
			c.cancel()
		}
	}
	return true
}

// expire removes the shells idle longer than their idle timeout at now and
// returns how many. A shell with a request being served (a Receive waiting
// for a running command's output) is in use, as on Windows.
func (t *shells) expire(now time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	n := 0
	for _, s := range t.byID {
		if s.inflight == 0 && now.Sub(s.lastUsed) > s.idle && t.removeLocked(s) {
			n++
		}
	}
	return n
}

// closeAll removes every shell.
func (t *shells) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.byID {
		t.removeLocked(s)
	}
}

// count returns the number of open shells.
func (t *shells) count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.byID)
}

// newID returns a random upper-case UUID (version 4), as WinRM's IDs are.
func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := strings.ToUpper(hex.EncodeToString(b[:]))
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
