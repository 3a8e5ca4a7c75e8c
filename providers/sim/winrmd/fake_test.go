package winrmd_test

import (
	"context"
	"errors"
	"sync"

	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
)

// fakeHosts is a tiny simulated network: guests by address, each with one
// administrator account.
type fakeHosts struct {
	mu        sync.Mutex
	guests    map[string]*fakeGuest
	refused   []string // "host: reason"
	listening map[string]int
}

type fakeGuest struct {
	user, password string
	listening      bool
	machine        winrmd.Machine
}

func newFakeHosts() *fakeHosts {
	return &fakeHosts{guests: map[string]*fakeGuest{}, listening: map[string]int{}}
}

func (h *fakeHosts) add(host, user, password string, listening bool, m winrmd.Machine) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.guests[host] = &fakeGuest{user: user, password: password, listening: listening, machine: m}
}

func (h *fakeHosts) Listening(host string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.listening[host]++
	g, ok := h.guests[host]
	return ok && g.listening
}

func (h *fakeHosts) Authenticate(host, user, password string) (winrmd.Machine, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	g, ok := h.guests[host]
	if !ok || !g.listening || g.user != user || g.password != password {
		return nil, false
	}
	return g.machine, true
}

func (h *fakeHosts) Refused(host, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.refused = append(h.refused, host+": "+reason)
}

func (h *fakeHosts) refusals() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.refused...)
}

func (h *fakeHosts) listeningCalls(host string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.listening[host]
}

// fakeMachine answers every script with canned results and records the
// parameters it was given. hook, if set, runs first and may fail the call.
type fakeMachine struct {
	mu     sync.Mutex
	seen   map[guest.Name]any
	hook   func(ctx context.Context, n guest.Name, params any) error
	probe  guest.ProbeResult
	del    guest.DeleteResult
	clear  guest.SafeBootResult
	facts  guest.ReadinessFactsResult
	hives  guest.CheckHivesResult
	disks  guest.ListDisksResult
	disk   guest.DiskResult
	unlock guest.UnlockResult
}

func (m *fakeMachine) record(ctx context.Context, n guest.Name, p any) error {
	m.mu.Lock()
	if m.seen == nil {
		m.seen = map[guest.Name]any{}
	}
	m.seen[n] = p
	hook := m.hook
	m.mu.Unlock()
	if hook != nil {
		return hook(ctx, n, p)
	}
	return nil
}

func (m *fakeMachine) saw(n guest.Name) any {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.seen[n]
}

func answer[R any](err error, r R) (R, error) {
	if err != nil {
		var zero R
		return zero, err
	}
	return r, nil
}

func (m *fakeMachine) Probe(ctx context.Context, p guest.ProbeParams) (guest.ProbeResult, error) {
	return answer(m.record(ctx, guest.Probe, p), m.probe)
}

func (m *fakeMachine) DeleteFiles(ctx context.Context, p guest.DeleteParams) (guest.DeleteResult, error) {
	return answer(m.record(ctx, guest.DeleteFiles, p), m.del)
}

func (m *fakeMachine) ReadinessFacts(ctx context.Context, p guest.ReadinessFactsParams) (guest.ReadinessFactsResult, error) {
	return answer(m.record(ctx, guest.ReadinessFacts, p), m.facts)
}

func (m *fakeMachine) ClearSafeBoot(ctx context.Context, p guest.ClearSafeBootParams) (guest.SafeBootResult, error) {
	return answer(m.record(ctx, guest.ClearSafeBoot, p), m.clear)
}

func (m *fakeMachine) CheckHives(ctx context.Context, p guest.CheckHivesParams) (guest.CheckHivesResult, error) {
	return answer(m.record(ctx, guest.CheckHives, p), m.hives)
}

func (m *fakeMachine) ListDisks(ctx context.Context, p guest.ListDisksParams) (guest.ListDisksResult, error) {
	return answer(m.record(ctx, guest.ListDisks, p), m.disks)
}

func (m *fakeMachine) OnlineDisk(ctx context.Context, p guest.DiskParams) (guest.DiskResult, error) {
	return answer(m.record(ctx, guest.OnlineDisk, p), m.disk)
}

func (m *fakeMachine) UnlockVolume(ctx context.Context, p guest.UnlockParams) (guest.UnlockResult, error) {
	return answer(m.record(ctx, guest.UnlockVolume, p), m.unlock)
}

func (m *fakeMachine) SetDiskIdentity(ctx context.Context, p guest.SetIdentityParams) (guest.DiskResult, error) {
	return answer(m.record(ctx, guest.SetDiskIdentity, p), m.disk)
}

func (m *fakeMachine) OfflineDisk(ctx context.Context, p guest.DiskParams) (guest.DiskResult, error) {
	return answer(m.record(ctx, guest.OfflineDisk, p), m.disk)
}

var errBoom = errors.New("boom")

func (m *fakeMachine) ClearSafeBootOffline(ctx context.Context, p guest.BCDParams) (guest.SafeBootResult, error) {
	return answer(m.record(ctx, guest.ClearSafeBootOffline, p), m.clear)
}

func (m *fakeMachine) SetSafeBootOffline(ctx context.Context, p guest.BCDParams) (guest.SafeBootResult, error) {
	return answer(m.record(ctx, guest.SetSafeBootOffline, p), m.clear)
}
