package probe

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
)

type fakeEndpoints struct{ err error }

func (f fakeEndpoints) GuestEndpoint(_ context.Context, vm providers.VMRef) (providers.Endpoint, error) {
	return providers.Endpoint{Host: "10.0.0.1", Port: 5985}, f.err
}

type fakeRunner struct {
	res    guest.ProbeResult
	err    error
	gotEP  providers.Endpoint
	params guest.ProbeParams
}

func (f *fakeRunner) Probe(_ context.Context, ep providers.Endpoint, _ guest.Credentials, p guest.ProbeParams) (guest.ProbeResult, error) {
	f.gotEP, f.params = ep, p
	return f.res, f.err
}

func TestProbe(t *testing.T) {
	inc := inventory.BuiltinIncidents()[inventory.CrowdStrike20240719]
	file := inventory.FileFact{Path: `C:\Windows\System32\drivers\CrowdStrike\C-00000291-0.sys`, ModTime: inc.BadFrom}
	tests := []struct {
		name      string
		eps       Endpoints
		noGuests  bool
		runner    *fakeRunner
		port      int
		reachable bool
		errPrefix string
		retryable bool
	}{
		{name: "reachable safe mode", eps: fakeEndpoints{}, runner: &fakeRunner{res: guest.ProbeResult{BootMode: inventory.BootSafeMode, SafeBootFlag: true, Files: []inventory.FileFact{file}}}, reachable: true},
		{name: "port override", eps: fakeEndpoints{}, runner: &fakeRunner{res: guest.ProbeResult{BootMode: inventory.BootNormal}}, port: 5986, reachable: true},
		{name: "auth rejected", eps: fakeEndpoints{}, runner: &fakeRunner{err: fmt.Errorf("host 10.0.0.1: %w", guest.ErrAuth)}, errPrefix: classify.ProbeErrAuth},
		{name: "unreachable", eps: fakeEndpoints{}, runner: &fakeRunner{err: guest.ErrUnreachable}, errPrefix: "nothing answers at 10.0.0.1:5985"},
		{name: "script failed", eps: fakeEndpoints{}, runner: &fakeRunner{err: &guest.ScriptError{Name: guest.Probe, ExitCode: 1}}, errPrefix: "WinRM probe failed"},
		{name: "no address", eps: fakeEndpoints{err: providers.ErrNotFound}, runner: &fakeRunner{}, errPrefix: "no guest address"},
		{name: "control plane down: retryable", eps: fakeEndpoints{err: providers.Errorf(providers.ErrUnavailable, "GuestEndpoint", "vm vm-1", "503")},
			runner: &fakeRunner{}, errPrefix: "no guest address", retryable: true},
		{name: "no guest capability", noGuests: true, runner: &fakeRunner{}, errPrefix: "this cloud account gives no guest address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &Prober{
				Incident: inc, Runner: tt.runner, Creds: guest.Credentials{User: "admin", Password: "s3cret-pw"},
				EndpointsFor: func(inventory.VM) (Endpoints, bool) { return tt.eps, !tt.noGuests },
				Clock:        clock.NewScaled(time.Date(2024, 7, 19, 6, 30, 0, 0, time.UTC), 1),
				Port:         tt.port,
			}
			got := p.Probe(context.Background(), inventory.VM{ID: "vm-1"})
			if got.Reachable != tt.reachable {
				t.Fatalf("Reachable = %v, want %v (error %q)", got.Reachable, tt.reachable, got.Error)
			}
			if !strings.HasPrefix(got.Error, tt.errPrefix) {
				t.Errorf("Error = %q, want prefix %q", got.Error, tt.errPrefix)
			}
			if got.Retryable != tt.retryable {
				t.Errorf("Retryable = %v, want %v", got.Retryable, tt.retryable)
			}
			if strings.Contains(got.Error, "s3cret-pw") {
				t.Errorf("password leaked into %q", got.Error)
			}
			if tt.reachable {
				if tt.runner.params.Dir != inc.RelDirectory() || tt.runner.params.Pattern != inc.Pattern {
					t.Errorf("params = %+v, want the incident's directory and pattern", tt.runner.params)
				}
				if tt.port != 0 && tt.runner.gotEP.Port != tt.port {
					t.Errorf("port = %d, want override %d", tt.runner.gotEP.Port, tt.port)
				}
				if got.BootMode != tt.runner.res.BootMode || len(got.Files) != len(tt.runner.res.Files) {
					t.Errorf("probe = %+v, want the script's result", got)
				}
			}
		})
	}
}
