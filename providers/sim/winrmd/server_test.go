package winrmd_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/masterzen/winrm"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
)

const (
	hostA     = "10.0.0.5"
	hostDown  = "10.0.0.6"
	adminUser = "Administrator"
	// Secrets that must never surface in errors or logs.
	adminPass   = "S3cret-P@ssw0rd!"
	recoveryKey = "111111-222222-333333-444444-555555-666666-777777-888888"
)

var creds = guest.Credentials{User: adminUser, Password: adminPass}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	srv    *winrmd.Server
	hosts  *fakeHosts
	m      *fakeMachine
	client *guest.Client
	logs   *syncBuffer
}

func (e *env) ep(host string) providers.Endpoint { return providers.Endpoint{Host: host, Port: 5985} }

func newEnv(t *testing.T, opts winrmd.Options) *env {
	t.Helper()
	e := &env{hosts: newFakeHosts(), m: cannedMachine(), logs: &syncBuffer{}}
	e.hosts.add(hostA, adminUser, adminPass, true, e.m)
	e.hosts.add(hostDown, adminUser, adminPass, false, e.m)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv, err := winrmd.Start(e.hosts, opts)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = srv
	e.client = guest.NewClient(guest.ClientOptions{
		Dial:             guest.NewConnectDialer(srv.GatewayAddr()),
		OperationTimeout: 2 * time.Second,
	})
	t.Cleanup(func() {
		e.client.CloseIdleConnections()
		if err := srv.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		assertNoSecret(t, "log output", e.logs.String())
	})
	return e
}

func assertNoSecret(t *testing.T, what, s string) {
	t.Helper()
	for _, sec := range []string{adminPass, recoveryKey} {
		if strings.Contains(s, sec) {
			t.Errorf("%s contains a secret: %q", what, s)
		}
	}
}

func cannedMachine() *fakeMachine {
	at := time.Date(2024, 7, 19, 4, 9, 0, 0, time.UTC)
	file := inventory.FileFact{Path: `C:\Windows\System32\drivers\CrowdStrike\C-00000291-00000000-00000032.sys`, Size: 41000, ModTime: at, Header: "AAAAAAAA01002301"}
	disk := guest.Disk{
		Number: 1, Serial: "vol-0abc", SizeGB: 64,
		Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "1A2B3C4D"},
		Volumes:  []guest.Volume{{DriveLetter: "E:", FileSystem: "NTFS", BitLocker: "locked", KeyID: "6F2A0C1D-0000-4000-8000-000000000001", HasWindows: true}},
	}
	return &fakeMachine{
		probe: guest.ProbeResult{Hostname: "WEB01", BootMode: inventory.BootSafeMode, SafeBootFlag: true, OSRelease: "2019", OSBuild: "17763", Files: []inventory.FileFact{file}},
		del:   guest.DeleteResult{Deleted: []inventory.FileFact{file}, Kept: []inventory.FileFact{}},
		clear: guest.SafeBootResult{WasSet: true},
		facts: guest.ReadinessFactsResult{SafeModeWinRM: true, BitLocker: true, KeyID: "0A1B2C3D-0000-4000-8000-000000000001"},
		hives: guest.CheckHivesResult{Hives: []guest.HiveStatus{{Name: "SYSTEM", OK: true}, {Name: "SOFTWARE", OK: false, Detail: "hive does not load"}}},
		disks: guest.ListDisksResult{Disks: []guest.Disk{
			{Number: 0, Serial: "vol-helper", SizeGB: 30, IsBoot: true, Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "1A2B3C4D"}, Volumes: []guest.Volume{{DriveLetter: "C:", BitLocker: "none", HasWindows: true}}},
			{Number: 1, Serial: "vol-0abc", SizeGB: 64, Offline: true, OfflineReason: "signature-collision", Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "1A2B3C4D"}},
		}},
		disk:   guest.DiskResult{Disk: disk},
		unlock: guest.UnlockResult{Unlocked: true},
	}
}

// TestCatalogRoundTrip runs every catalog script through the real
// masterzen client, the CONNECT gateway and the WS-Management server, and
// checks the typed parameters reach the Machine and the typed result comes
// back.
func TestCatalogRoundTrip(t *testing.T) {
	e := newEnv(t, winrmd.Options{})
	ctx := context.Background()
	ep, c, m := e.ep(hostA), e.client, e.m
	crit := guest.FileCriteria{
		Dir: `Windows\System32\drivers\CrowdStrike`, Pattern: "C-00000291*.sys",
		BadFrom:  time.Date(2024, 7, 19, 4, 9, 0, 0, time.UTC),
		BadUntil: time.Date(2024, 7, 19, 5, 27, 0, 0, time.UTC), Header: "AAAAAAAA01002301",
	}
	diskP := guest.DiskParams{Number: 1, Serial: "vol-0abc"}
	bcdP := guest.BCDParams{Number: 1, Serial: "vol-0abc", Store: guest.BCDStoreBIOS}
	tests := []struct {
		name   guest.Name
		params any
		run    func() (any, error)
		want   any
	}{
		{guest.Probe, guest.ProbeParams{Dir: crit.Dir, Pattern: crit.Pattern},
			func() (any, error) {
				return c.Probe(ctx, ep, creds, guest.ProbeParams{Dir: crit.Dir, Pattern: crit.Pattern})
			}, m.probe},
		{guest.DeleteFiles, guest.DeleteParams{Root: "C:", Criteria: crit},
			func() (any, error) {
				return c.DeleteFiles(ctx, ep, creds, guest.DeleteParams{Root: "C:", Criteria: crit})
			}, m.del},
		{guest.ClearSafeBoot, guest.ClearSafeBootParams{},
			func() (any, error) { return c.ClearSafeBoot(ctx, ep, creds) }, m.clear},
		{guest.CheckHives, guest.CheckHivesParams{Root: "E:"},
			func() (any, error) { return c.CheckHives(ctx, ep, creds, guest.CheckHivesParams{Root: "E:"}) }, m.hives},
		{guest.ListDisks, guest.ListDisksParams{},
			func() (any, error) { return c.ListDisks(ctx, ep, creds) }, m.disks},
		{guest.OnlineDisk, diskP,
			func() (any, error) { return c.OnlineDisk(ctx, ep, creds, diskP) }, m.disk},
		{guest.UnlockVolume, guest.UnlockParams{DriveLetter: "E:", RecoveryKey: recoveryKey},
			func() (any, error) {
				return c.UnlockVolume(ctx, ep, creds, guest.UnlockParams{DriveLetter: "E:", RecoveryKey: recoveryKey})
			}, m.unlock},
		{guest.SetDiskIdentity, guest.SetIdentityParams{Number: 1, Serial: "vol-0abc", Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "1A2B3C4D"}},
			func() (any, error) {
				return c.SetDiskIdentity(ctx, ep, creds, guest.SetIdentityParams{Number: 1, Serial: "vol-0abc", Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "1A2B3C4D"}})
			}, m.disk},
		{guest.OfflineDisk, diskP,
			func() (any, error) { return c.OfflineDisk(ctx, ep, creds, diskP) }, m.disk},
		{guest.ClearSafeBootOffline, bcdP,
			func() (any, error) { return c.ClearSafeBootOffline(ctx, ep, creds, bcdP) }, m.clear},
		{guest.SetSafeBootOffline, bcdP,
			func() (any, error) { return c.SetSafeBootOffline(ctx, ep, creds, bcdP) }, m.clear},
		{guest.ReadinessFacts, guest.ReadinessFactsParams{},
			func() (any, error) { return c.ReadinessFacts(ctx, ep, creds) }, m.facts},
	}
	if len(tests) != len(guest.Names) {
		t.Fatalf("test covers %d scripts, the catalog has %d", len(tests), len(guest.Names))
	}
	for _, tc := range tests {
		t.Run(string(tc.name), func(t *testing.T) {
			got, err := tc.run()
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("result\n got %+v\nwant %+v", got, tc.want)
			}
			if seen := m.saw(tc.name); !reflect.DeepEqual(seen, tc.params) {
				t.Errorf("machine saw %+v, want %+v", seen, tc.params)
			}
		})
	}
	if r := e.hosts.refusals(); len(r) != 0 {
		t.Errorf("refusals: %q", r)
	}
	waitFor(t, "shells to close", func() bool { return e.srv.OpenShells() == 0 })
}

// rawClient is a plain masterzen client through the gateway.
func rawClient(t *testing.T, e *env, host, user, pass string) *winrm.Client {
	t.Helper()
	p := winrm.NewParameters("PT2S", "en-US", 153600)
	p.Dial = guest.NewConnectDialer(e.srv.GatewayAddr())
	c, err := winrm.NewClientWithParameters(winrm.NewEndpoint(host, 5985, false, false, nil, nil, nil, 5*time.Second), user, pass, p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestForeignCommandsRefused(t *testing.T) {
	e := newEnv(t, winrmd.Options{})
	probe, err := guest.CommandLine(guest.Probe)
	if err != nil {
		t.Fatal(err)
	}
	unlock, err := guest.CommandLine(guest.UnlockVolume)
	if err != nil {
		t.Fatal(err)
	}
	other := "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand " + guest.EncodeCommand("Get-Process")
	tests := []struct{ name, cmd, stdin string }{
		{"cmd", "whoami", ""},
		{"other script", other, "{}"},
		{"catalog line plus space", probe + " ", `{"dir":"x","pattern":"y"}`},
		{"catalog line with a suffix", probe + " & whoami", `{"dir":"x","pattern":"y"}`},
		{"probe with an unknown field", probe, `{"dir":"x","pattern":"y","evil":"Remove-Item C:\\"}`},
		{"probe with a list", probe, `[{"dir":"x"}]`},
		{"probe with two documents", probe, `{"dir":"x","pattern":"y"}{"dir":"x"}`},
		{"probe with the wrong type", probe, `{"dir":7,"pattern":"y"}`},
		{"probe with no JSON", probe, `Get-ChildItem`},
		{"unlock with an unknown field", unlock, `{"drive_letter":"E:","recovery_key":"` + recoveryKey + `","note":"x"}`},
		{"unlock with a bad type", unlock, `{"drive_letter":"E:","recovery_key":["` + recoveryKey + `"]}`},
		{"unlock with bad JSON", unlock, `{"drive_letter":"E:","recovery_key":"` + recoveryKey + `"`},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := rawClient(t, e, hostA, adminUser, adminPass)
			stdout, stderr, code, err := c.RunWithContextWithString(context.Background(), tc.cmd, tc.stdin)
			if err != nil {
				t.Fatalf("run: %v", err)
			}
			if code != guest.ExitRefused {
				t.Errorf("exit code %d, want %d (stdout %q)", code, guest.ExitRefused, stdout)
			}
			if !strings.Contains(stderr, "refused") {
				t.Errorf("stderr %q does not say refused", stderr)
			}
			if stdout != "" {
				t.Errorf("stdout %q", stdout)
			}
			assertNoSecret(t, "stderr", stderr)
			if r := e.hosts.refusals(); len(r) != i+1 {
				t.Errorf("%d refusals recorded, want %d: %q", len(r), i+1, r)
			}
		})
	}
	if e.m.saw(guest.Probe) != nil {
		t.Error("the machine ran a refused probe")
	}
	if e.m.saw(guest.UnlockVolume) != nil {
		t.Error("the machine ran a refused unlock")
	}
	for _, r := range e.hosts.refusals() {
		if strings.Contains(r, "Remove-Item") || strings.Contains(r, "whoami") {
			t.Errorf("refusal reason quotes the input: %q", r)
		}
		assertNoSecret(t, "refusal reason", r)
	}
}

func TestErrorClasses(t *testing.T) {
	e := newEnv(t, winrmd.Options{})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	_ = closed.Close()
	tests := []struct {
		name   string
		client *guest.Client
		ep     providers.Endpoint
		cr     guest.Credentials
		params any
		want   error
	}{
		{"wrong password", e.client, e.ep(hostA), guest.Credentials{User: adminUser, Password: "wrong-" + adminPass}, guest.ProbeParams{}, guest.ErrAuth},
		{"wrong user", e.client, e.ep(hostA), guest.Credentials{User: "guest", Password: adminPass}, guest.ProbeParams{}, guest.ErrAuth},
		{"not listening", e.client, e.ep(hostDown), creds, guest.ProbeParams{}, guest.ErrUnreachable},
		{"unknown address", e.client, e.ep("10.9.9.9"), creds, guest.ProbeParams{}, guest.ErrUnreachable},
		{"port not open", e.client, providers.Endpoint{Host: hostA, Port: 3389}, creds, guest.ProbeParams{}, guest.ErrUnreachable},
		{"proxy down", guest.NewClient(guest.ClientOptions{Dial: guest.NewConnectDialer(closedAddr)}), e.ep(hostA), creds, guest.ProbeParams{}, guest.ErrUnreachable},
		{"no route, direct", guest.NewClient(guest.ClientOptions{}), providers.Endpoint{Host: "127.0.0.1", Port: port(t, closedAddr)}, creds, guest.ProbeParams{}, guest.ErrUnreachable},
		{"unlock, wrong password", e.client, e.ep(hostA), guest.Credentials{User: adminUser, Password: "nope"}, guest.UnlockParams{DriveLetter: "E:", RecoveryKey: recoveryKey}, guest.ErrAuth},
		{"unlock, not listening", e.client, e.ep(hostDown), creds, guest.UnlockParams{DriveLetter: "E:", RecoveryKey: recoveryKey}, guest.ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			name := guest.Probe
			if _, ok := tc.params.(guest.UnlockParams); ok {
				name = guest.UnlockVolume
			}
			err := tc.client.Run(context.Background(), tc.ep, tc.cr, name, tc.params, nil)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			for _, other := range []error{guest.ErrAuth, guest.ErrUnreachable, guest.ErrRefused} {
				if other != tc.want && errors.Is(err, other) {
					t.Errorf("error %v also matches %v", err, other)
				}
			}
			assertNoSecret(t, "error", fmt.Sprintf("%v %+v %#v", err, err, err))
			if !strings.Contains(err.Error(), tc.ep.Host) {
				t.Errorf("error %q does not name the guest", err)
			}
		})
	}
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	fmt.Sscan(p, &n)
	return n
}

func TestMachineErrors(t *testing.T) {
	e := newEnv(t, winrmd.Options{})
	e.m.hook = func(_ context.Context, n guest.Name, p any) error {
		switch n {
		case guest.UnlockVolume:
			// A misbehaving machine that echoes the key: the server must
			// scrub it.
			return fmt.Errorf("wrong key %s for E:", p.(guest.UnlockParams).RecoveryKey)
		case guest.OnlineDisk:
			return fmt.Errorf("disk 1 carries another serial: %w", guest.ErrRefused)
		}
		return errBoom
	}
	ctx := context.Background()
	_, err := e.client.UnlockVolume(ctx, e.ep(hostA), creds, guest.UnlockParams{DriveLetter: "E:", RecoveryKey: recoveryKey})
	var se *guest.ScriptError
	if !errors.As(err, &se) || se.ExitCode != 1 || se.Name != guest.UnlockVolume || errors.Is(err, guest.ErrRefused) {
		t.Fatalf("unlock error %#v", err)
	}
	if !strings.Contains(se.Stderr, "wrong key") {
		t.Errorf("stderr %q", se.Stderr)
	}
	assertNoSecret(t, "unlock error", fmt.Sprintf("%v %+v %s", err, se, se.Stderr))

	_, err = e.client.OnlineDisk(ctx, e.ep(hostA), creds, guest.DiskParams{Number: 1, Serial: "vol-other"})
	if !errors.Is(err, guest.ErrRefused) || !errors.As(err, &se) || se.ExitCode != guest.ExitRefused {
		t.Fatalf("online error %v, want a refusal", err)
	}
	if r := e.hosts.refusals(); len(r) != 0 {
		t.Errorf("a script's own refusal was counted as a foreign script: %q", r)
	}

	_, err = e.client.Probe(ctx, e.ep(hostA), creds, guest.ProbeParams{Dir: "d", Pattern: "p"})
	if !errors.As(err, &se) || se.ExitCode != 1 || !strings.Contains(err.Error(), "boom") {
		t.Fatalf("probe error %v", err)
	}
}

// TestLongRunningScript makes the client poll: the server answers Receive
// with the TimedOut fault until the script ends.
func TestLongRunningScript(t *testing.T) {
	e := newEnv(t, winrmd.Options{ReceiveWait: 10 * time.Millisecond})
	e.m.hook = func(ctx context.Context, _ guest.Name, _ any) error {
		// Finish only once the server has timed out a few Receives.
		for e.srv.Stats().ReceiveTimeouts < 3 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(2 * time.Millisecond)
		}
		return nil
	}
	got, err := e.client.ClearSafeBoot(context.Background(), e.ep(hostA), creds)
	if err != nil || !got.WasSet {
		t.Fatalf("got %+v, %v", got, err)
	}
}

// TestCancel ends the caller's context while the script runs: the client
// returns the context's error, the machine's context ends and the shell is
// freed.
func TestCancel(t *testing.T) {
	e := newEnv(t, winrmd.Options{ReceiveWait: 20 * time.Millisecond})
	started := make(chan struct{})
	stopped := make(chan struct{})
	e.m.hook = func(ctx context.Context, _ guest.Name, _ any) error {
		close(started)
		<-ctx.Done()
		close(stopped)
		return ctx.Err()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-started; cancel() }()
	_, err := e.client.ListDisks(ctx, e.ep(hostA), creds)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the machine's context did not end")
	}
	waitFor(t, "shells to close", func() bool { return e.srv.OpenShells() == 0 })
}

func TestShellQuota(t *testing.T) {
	e := newEnv(t, winrmd.Options{MaxShellsPerHost: 1})
	sh, err := rawClient(t, e, hostA, adminUser, adminPass).CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.client.ListDisks(context.Background(), e.ep(hostA), creds)
	if !errors.Is(err, guest.ErrBusy) || !guest.Transient(err) || !strings.Contains(err.Error(), "QuotaLimit") {
		t.Fatalf("error %v, want guest.ErrBusy from a QuotaLimit fault", err)
	}
	if err := sh.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.ListDisks(context.Background(), e.ep(hostA), creds); err != nil {
		t.Fatalf("after the shell closed: %v", err)
	}
}

func TestIdleShellsExpire(t *testing.T) {
	e := newEnv(t, winrmd.Options{ShellIdleTimeout: 50 * time.Millisecond})
	if _, err := rawClient(t, e, hostA, adminUser, adminPass).CreateShell(); err != nil {
		t.Fatal(err)
	}
	if e.srv.OpenShells() == 0 && e.srv.Stats().Shells == 0 {
		t.Fatal("no shell was opened")
	}
	waitFor(t, "the idle shell to expire", func() bool { return e.srv.OpenShells() == 0 })
}

// manualClock is a clock that moves only when told; its Sleep returns
// after a millisecond of real time, so that a loop on it keeps checking.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Sleep(ctx context.Context, _ time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Millisecond):
		return nil
	}
}

func (c *manualClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// cutDialer dials through the gateway until cut, which closes every
// connection it made and refuses new ones: to the guest, the client is
// gone, as a killed process is.
type cutDialer struct {
	base  func(network, addr string) (net.Conn, error)
	mu    sync.Mutex
	conns []net.Conn
	cut   bool
}

func (d *cutDialer) dial(network, addr string) (net.Conn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cut {
		return nil, errors.New("cut")
	}
	c, err := d.base(network, addr)
	if err == nil {
		d.conns = append(d.conns, c)
	}
	return c, err
}

func (d *cutDialer) cutAll() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cut = true
	for _, c := range d.conns {
		_ = c.Close()
	}
}

// TestAbandonedShellExpires: a client that vanishes mid-command (a killed
// process) leaves its shell open; the server deletes it once unused for
// the IdleTimeOut the fixfleet client asked for at Create, on the server's
// clock, while a shell opened without one (masterzen's) waits for the
// server's default.
func TestAbandonedShellExpires(t *testing.T) {
	clk := &manualClock{now: time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)}
	e := newEnv(t, winrmd.Options{Clock: clk, ShellIdleTimeout: 3 * time.Minute, ReceiveWait: 20 * time.Millisecond})
	if _, err := rawClient(t, e, hostA, adminUser, adminPass).CreateShell(); err != nil {
		t.Fatal(err)
	}
	d := &cutDialer{base: guest.NewConnectDialer(e.srv.GatewayAddr())}
	c := guest.NewClient(guest.ClientOptions{Dial: d.dial, OperationTimeout: 2 * time.Second, ShellIdleTimeout: 5 * time.Minute})
	defer c.CloseIdleConnections()
	started := make(chan struct{})
	e.m.hook = func(ctx context.Context, _ guest.Name, _ any) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.ListDisks(context.Background(), e.ep(hostA), creds)
		done <- err
	}()
	<-started
	d.cutAll()
	if err := <-done; !errors.Is(err, guest.ErrUnreachable) {
		t.Fatalf("the cut client's error %v, want guest.ErrUnreachable", err)
	}
	if n := e.srv.OpenShells(); n != 2 {
		t.Fatalf("%d shells open after the client vanished, want 2 (its and the raw client's)", n)
	}
	// 4 minutes on, the raw client's shell is past the server's default
	// (3) and goes; the abandoned one, which asked for 5, stays. Both go
	// in one janitor pass if the server ignores the client's IdleTimeOut,
	// and neither if it times shells on another clock.
	clk.advance(4 * time.Minute)
	waitFor(t, "the raw client's shell to expire at the server's default, the abandoned one staying", func() bool { return e.srv.OpenShells() == 1 })
	// A Receive of the vanished client's may still have been in flight
	// when the clock moved (the server answers it after ReceiveWait):
	// the shell is idle only from its end, at most 4 minutes on.
	clk.advance(6 * time.Minute)
	waitFor(t, "the abandoned shell to expire", func() bool { return e.srv.OpenShells() == 0 })
}

// TestReceivingShellIsNotIdle: a shell whose client waits on a Receive for
// a running script is in use, however long the script runs on the
// server's clock; it is idle only from the end of its last request.
func TestReceivingShellIsNotIdle(t *testing.T) {
	clk := &manualClock{now: time.Date(2024, 7, 19, 5, 0, 0, 0, time.UTC)}
	e := newEnv(t, winrmd.Options{Clock: clk, ShellIdleTimeout: 3 * time.Minute, ReceiveWait: time.Minute})
	e.m.hook = func(ctx context.Context, _ guest.Name, _ any) error {
		for e.srv.Stats().Receives == 0 {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			time.Sleep(time.Millisecond)
		}
		// The client now waits on its Receive. Ten minutes pass on the
		// server's clock, and the janitor (every real millisecond on
		// this clock) has many passes to expire the shell, which would
		// cancel this script.
		clk.advance(10 * time.Minute)
		time.Sleep(50 * time.Millisecond)
		return ctx.Err()
	}
	if _, err := e.client.ListDisks(context.Background(), e.ep(hostA), creds); err != nil {
		t.Fatalf("a script running past the shell's idle timeout, its output awaited: %v", err)
	}
}

// TestFleetThroughOneGateway runs many scripts on many guests at once and
// checks that connections to a guest are reused between runs.
func TestFleetThroughOneGateway(t *testing.T) {
	e := newEnv(t, winrmd.Options{})
	const guests, runs = 30, 3
	for i := range guests {
		e.hosts.add(fmt.Sprintf("10.1.0.%d", i), adminUser, adminPass, true, cannedMachine())
	}
	var wg sync.WaitGroup
	errs := make(chan error, guests*runs)
	for i := range guests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			host := fmt.Sprintf("10.1.0.%d", i)
			for range runs {
				if _, err := e.client.Probe(context.Background(), e.ep(host), creds, guest.ProbeParams{Dir: "d", Pattern: "p"}); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	// Sequential runs on one guest reuse pooled tunnels.
	const seq = 10
	before := e.hosts.listeningCalls(hostA)
	for range seq {
		if _, err := e.client.ListDisks(context.Background(), e.ep(hostA), creds); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("stats %+v; %d tunnels for %d sequential runs", e.srv.Stats(), e.hosts.listeningCalls(hostA)-before, seq)
	if opened := e.hosts.listeningCalls(hostA) - before; opened >= seq {
		t.Errorf("%d tunnels opened for %d sequential runs: connections are not reused", opened, seq)
	}
	waitFor(t, "shells to close", func() bool { return e.srv.OpenShells() == 0 })
}

// TestTunnelHostMismatch: a request through a tunnel to one guest cannot
// address another guest with its Host header.
func TestTunnelHostMismatch(t *testing.T) {
	e := newEnv(t, winrmd.Options{})
	e.hosts.add("10.0.0.7", adminUser, adminPass, true, cannedMachine())
	conn, err := guest.NewConnectDialer(e.srv.GatewayAddr())("tcp", hostA+":5985")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req, _ := http.NewRequest(http.MethodPost, "http://10.0.0.7:5985/wsman", strings.NewReader("<x/>"))
	req.SetBasicAuth(adminUser, adminPass)
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("status %d, want 400", resp.StatusCode)
	}
}

func TestGatewayRejectsNonConnect(t *testing.T) {
	e := newEnv(t, winrmd.Options{})
	resp, err := http.Get("http://" + e.srv.GatewayAddr() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("status %d, want 405", resp.StatusCode)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestDroppedReply: a machine that reports winrmd.ErrDropped (the script
// ran, the network lost its reply) makes the client see a broken
// connection, not a script result or a script error.
func TestDroppedReply(t *testing.T) {
	e := newEnv(t, winrmd.Options{})
	e.m.hook = func(context.Context, guest.Name, any) error {
		return fmt.Errorf("after the script ran: %w", winrmd.ErrDropped)
	}
	_, err := e.client.ClearSafeBoot(context.Background(), e.ep(hostA), creds)
	var se *guest.ScriptError
	if err == nil || errors.As(err, &se) {
		t.Fatalf("error %v (script error %v), want a dropped connection", err, se)
	}
	if e.m.saw(guest.ClearSafeBoot) == nil {
		t.Fatal("the script never reached the machine")
	}
}
