package simulation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/keys"
	"github.com/fixfleet/fixfleet/internal/memnet"
	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/aws"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sakura"
	"github.com/fixfleet/fixfleet/providers/sim"
	"github.com/fixfleet/fixfleet/providers/sim/ec2api"
	"github.com/fixfleet/fixfleet/providers/sim/sakuraapi"
	"github.com/fixfleet/fixfleet/providers/sim/simapi"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// The faces a world can be reached through.
const (
	FaceSim    = "sim"    // the simulator's own provider, in process
	FaceSakura = "sakura" // the real Sakura Cloud provider against an emulator of its API
	FaceAWS    = aws.Name // the real AWS provider against an emulator of EC2, SSM and STS
	FaceAzure  = "azure"  // the real Azure provider against an emulator of ARM, over HTTPS
)

// Options describe a simulated world and how it is reached.
type Options struct {
	World WorldOptions
	// Faults, when set, replace the world's own fault rates (a scenario
	// file's, or none for a generated world).
	Faults *Faults
	// Face is the face the world is reached through: FaceSim (default),
	// FaceSakura, FaceAWS or FaceAzure.
	Face string
	// Clock makes the world's clock (nil: Scaled(TimeScale)).
	Clock     Clock
	TimeScale float64
	// Network is where the simulated services (the WinRM service and
	// gateway, the cloud API emulators) listen and how the orchestrator's
	// clients (the guest client, the cloud SDKs) reach them: nil is
	// loopback TCP; an in-memory network lets the whole incident run
	// inside a testing/synctest bubble (with a clock.NewOffset Clock).
	Network *memnet.Network
}

// Virtual returns o set to run on virtual time: an offset clock
// (clock.NewOffset) and a fresh in-memory network. The backend must then
// be opened and run inside a testing/synctest bubble (see simtest).
func Virtual(o Options) Options {
	o.Clock = func(origin time.Time) clock.Clock { return clock.NewOffset(origin) }
	o.Network = memnet.New()
	return o
}

// network is where a backend's services listen and how its clients dial
// them: loopback TCP (mem nil) or an in-memory network.
type network struct{ mem *memnet.Network }

// listen listens at name (a memnet address) or on a loopback port.
func (n network) listen(name string) (net.Listener, error) {
	if n.mem != nil {
		return n.mem.Listen(name)
	}
	return net.Listen("tcp", "127.0.0.1:0")
}

// dial is the clients' dial function (nil: TCP).
func (n network) dial() func(ctx context.Context, network, addr string) (net.Conn, error) {
	if n.mem == nil {
		return nil
	}
	return n.mem.Dial
}

// Backend is a simulated world as the orchestrator reaches it: in this
// process (the world, its WinRM service and its face run here: Open), or
// served by another process (`fixfleet sim serve`: Dial).
type Backend struct {
	incident inventory.Incident
	accounts []string
	// tenants maps a world account to its tenant (absent: the account's
	// own name).
	tenants map[string]string
	zones   []string
	clock   clock.Clock
	faults  *Faults // nil: none set
	// provider is the name the world's accounts are opened as (its face),
	// spec its kind, and account fills in an account's options and getenv
	// its credentials.
	provider string
	spec     providers.Spec
	account  func(a *providers.Account)
	getenv   func(string) string
	// worldID maps an ID the provider shows to the world's (the referee
	// speaks world IDs); apiCalls counts the emulator's calls by
	// operation (nil for the simulator's own face).
	worldID      func(id string) string
	apiCalls     func() map[string]int
	apiThrottled func() int
	// apiInstances counts, per batched action, the instances its calls
	// named (nil where the face does not batch).
	apiInstances func() map[string]int
	gateway      string // host:port of the guests' CONNECT gateway
	// dial reaches the gateway (nil: TCP).
	dial     func(ctx context.Context, network, addr string) (net.Conn, error)
	user     string
	password secret.Secret
	keys     map[string]secret.Secret
	// audit asks the world itself for its referee's report.
	audit func(ctx context.Context) (world.Audit, error)
	// world is set for an in-process world only.
	world   *world.World
	closers []func() error
}

// Close stops what the backend started. Idempotent.
func (b *Backend) Close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		_ = b.closers[i]()
	}
	b.closers = nil
}

// Clock is the world's clock (for one reached with Dial, the served
// world's, read on this host).
func (b *Backend) Clock() clock.Clock { return b.clock }

// World is the in-process world (nil for one reached with Dial).
func (b *Backend) World() *world.World { return b.world }

// WorldID maps an ID the face shows (a Sakura resource ID, say) to the
// world's own.
func (b *Backend) WorldID(id string) string { return b.worldID(id) }

// Gateway is the host:port of the guests' WinRM CONNECT gateway.
func (b *Backend) Gateway() string { return b.gateway }

// Audit is the world's own referee report.
func (b *Backend) Audit(ctx context.Context) (world.Audit, error) { return b.audit(ctx) }

// ScheduleOutage starts the control-plane outage of the Faults Open was
// given, if any, Faults.OutageAt from now. Only for an in-process world.
func (b *Backend) ScheduleOutage() error {
	if b.faults == nil {
		return nil
	}
	if b.world == nil {
		return errors.New("simulation: an outage is scheduled where the world runs (sim serve --outage-at)")
	}
	return b.faults.scheduleOutage(b.world)
}

// creds returns the guests' credentials, revealing the password at the
// point of use.
func (b *Backend) creds() guest.Credentials {
	return guest.Credentials{User: b.user, Password: b.password.Reveal()}
}

// Open builds the world o describes, with its fault rates, and runs it
// here behind its face: FaceSim (the simulator's own), FaceSakura or
// FaceAWS (that cloud's API emulated on loopback; an AWS world is generated
// with availability-zone names). Bad options are *InputError. Close it.
func Open(o Options) (*Backend, error) {
	open := map[string]func(*world.World, network) (*Backend, error){"": localBackend, FaceSim: localBackend, FaceSakura: sakuraBackend, FaceAWS: awsBackend, FaceAzure: azureBackend}[o.Face]
	if open == nil {
		return nil, badOption("face", fmt.Errorf("%q: valid values are sim, sakura, aws, azure", o.Face))
	}
	clk := o.Clock
	if clk == nil {
		if o.TimeScale <= 0 {
			return nil, badOption("time-scale", fmt.Errorf("%v must be > 0", o.TimeScale))
		}
		clk = Scaled(o.TimeScale)
	}
	if o.World.Scenario == "" {
		switch o.Face {
		case FaceAWS:
			o.World.Zones = awsZones
		case FaceAzure:
			o.World.Zones = azureZones
		}
	}
	w, err := NewWorld(o.World, clk)
	if err != nil {
		return nil, err
	}
	if o.Faults != nil {
		if err := o.Faults.apply(w); err != nil {
			return nil, err
		}
	}
	b, err := open(w, network{o.Network})
	if err != nil {
		return nil, err
	}
	b.faults = o.Faults
	return b, nil
}

// localBackend runs w here, with its WinRM service on n.
func localBackend(w *world.World, n network) (*Backend, error) {
	wl, err := n.listen("winrm.sim:5985")
	if err != nil {
		return nil, fmt.Errorf("simulator: starting the WinRM service: %w", err)
	}
	tenants := map[string]string{}
	for _, v := range w.Export().VMs {
		tenants[v.Account] = v.Tenant
	}
	gl, err := n.listen("gateway.sim:3128")
	if err != nil {
		_ = wl.Close()
		return nil, fmt.Errorf("simulator: starting the WinRM gateway: %w", err)
	}
	srv := winrmd.Serve(w, wl, gl, winrmd.Options{Clock: w.Clock()})
	return &Backend{dial: n.dial(),
		incident: w.Incident(), accounts: w.Accounts(), tenants: tenants, zones: w.Zones(), clock: w.Clock(),
		provider: FaceSim, spec: sim.Spec(w), getenv: noEnv, worldID: sameID,
		account: func(a *providers.Account) { a.Options = yamlMap("account", a.Name) },
		gateway: srv.GatewayAddr(), user: w.GuestUser(), password: w.GuestPassword(), keys: w.EscrowedKeys(),
		audit: func(context.Context) (world.Audit, error) { return w.Audit(), nil },
		world: w, closers: []func() error{srv.Close},
	}, nil
}

func noEnv(string) string     { return "" }
func sameID(id string) string { return id }

// sakuraBackend runs w here behind an emulator of the Sakura Cloud API on
// n: the world's accounts are opened with the real Sakura provider
// (iaas-api-go over HTTP), each account's access token naming its world
// account. On an in-memory network the emulator is served as an
// httptest.Server, the client library's test-server mode (it takes no
// HTTP client otherwise).
func sakuraBackend(w *world.World, n network) (*Backend, error) {
	b, err := localBackend(w, n)
	if err != nil {
		return nil, err
	}
	ln, err := n.listen("secure.sakura.sim:80")
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("simulator: starting the Sakura Cloud API emulator: %w", err)
	}
	b.provider, b.spec = FaceSakura, sakura.Spec()
	var srv *sakuraapi.Server
	url := ""
	if n.mem == nil {
		srv = sakuraapi.Serve(w, ln, sakuraapi.Options{})
		b.closers = append(b.closers, srv.Close)
		url = srv.URL()
	} else {
		srv = sakuraapi.New(w, sakuraapi.Options{})
		ts := &httptest.Server{Listener: ln, Config: &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}}
		ts.Start()
		ts.Client().Transport.(*http.Transport).DialContext = n.dial()
		b.closers = append(b.closers, func() error { ts.Close(); return nil })
		url = ts.URL + sakuraapi.Root
		b.spec.Open = func(ctx context.Context, a providers.Account, env providers.Env) (*providers.Provider, error) {
			return sakura.OpenVia(ctx, a, env, ts)
		}
	}
	b.apiCalls = srv.Stats
	b.account = func(a *providers.Account) {
		a.Options = yamlMap("api_root_url", url)
	}
	b.getenv = func(k string) string {
		switch k {
		case "SAKURACLOUD_ACCESS_TOKEN":
			return w.Accounts()[0]
		case "SAKURACLOUD_ACCESS_TOKEN_SECRET":
			return "simulator"
		}
		return ""
	}
	if accts := w.Accounts(); len(accts) > 1 {
		// One access token per process environment: several accounts
		// are told apart by usacloud profiles, as an MSP's would be.
		dir, err := sakuraProfiles(accts, srv.URL())
		if err != nil {
			b.Close()
			return nil, err
		}
		b.closers = append(b.closers, func() error { return os.RemoveAll(dir) })
		b.account = func(a *providers.Account) { a.Options = yamlMap("profile", a.Name) }
		b.getenv = func(k string) string {
			if k == "SAKURACLOUD_PROFILE_DIR" {
				return dir
			}
			return ""
		}
	}
	b.worldID = func(id string) string {
		if wid, ok := srv.WorldID(id); ok {
			return wid
		}
		return id
	}
	return b, nil
}

// sakuraProfiles writes a usacloud profile per world account (its access
// token names the account) into a new directory, and returns it.
func sakuraProfiles(accounts []string, root string) (string, error) {
	dir, err := os.MkdirTemp("", "fixfleet-sim-sakura-")
	if err != nil {
		return "", fmt.Errorf("simulator: profiles for the Sakura accounts: %w", err)
	}
	for _, a := range accounts {
		b, _ := json.Marshal(map[string]string{"AccessToken": a, "AccessTokenSecret": "simulator", "APIRootURL": root})
		p := filepath.Join(dir, ".usacloud", a)
		if err := os.MkdirAll(p, 0o700); err != nil {
			return "", err
		}
		if err := os.WriteFile(filepath.Join(p, "config.json"), b, 0o600); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// awsZones are the availability zones of a world served through the EC2
// emulator (one region).
var awsZones = []string{"ap-northeast-1a", "ap-northeast-1c", "ap-northeast-1d"}

// Environment variables the simulated AWS accounts' credentials are read
// from (names only: the backend serves them itself).
const (
	simAWSKeyEnv    = "FIXFLEET_SIM_AWS_ACCESS_KEY_ID"
	simAWSSecretEnv = "FIXFLEET_SIM_AWS_SECRET_ACCESS_KEY"
)

// awsBackend runs w here behind an emulator of the EC2, SSM and STS APIs
// on n: the world's accounts are opened with the real AWS provider
// (aws-sdk-go-v2 over HTTP, dialling n), each access key ID naming its
// world account.
func awsBackend(w *world.World, n network) (*Backend, error) {
	b, err := localBackend(w, n)
	if err != nil {
		return nil, err
	}
	ln, err := n.listen("ec2.sim:80")
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("simulator: starting the EC2 API emulator: %w", err)
	}
	srv := ec2api.Serve(w, ln, ec2api.Options{})
	b.closers = append(b.closers, srv.Close)
	b.provider, b.spec = FaceAWS, aws.Spec()
	if dial := n.dial(); dial != nil {
		b.spec.Open = func(ctx context.Context, a providers.Account, env providers.Env) (*providers.Provider, error) {
			return aws.OpenVia(ctx, a, env, dial)
		}
	}
	b.apiCalls = func() map[string]int { return srv.Stats().Calls }
	b.apiThrottled = func() int { return srv.Stats().Throttled }
	b.apiInstances = func() map[string]int { return srv.Stats().Instances }
	accts := w.Accounts()
	// Each account's access key ID (naming its world account) is read
	// from its own variable: simAWSKeyEnv for the first, then _2, _3, ...
	keyEnv := func(name string) string {
		if i := slices.Index(accts, name); i > 0 {
			return fmt.Sprintf("%s_%d", simAWSKeyEnv, i+1)
		}
		return simAWSKeyEnv
	}
	b.account = func(a *providers.Account) {
		a.Regions, a.Zones = ec2api.Regions(w), nil
		a.Options = yamlMap("endpoint", srv.URL(), "access_key_id_env", keyEnv(a.Name), "secret_access_key_env", simAWSSecretEnv)
	}
	b.worldID = func(id string) string {
		if wid, ok := srv.WorldID(id); ok {
			return wid
		}
		return id
	}
	b.getenv = func(k string) string {
		if k == simAWSSecretEnv {
			return "simulator"
		}
		for _, a := range accts {
			if k == keyEnv(a) {
				return a
			}
		}
		return ""
	}
	return b, nil
}

// yamlMap builds a YAML mapping node of string keys and values.
func yamlMap(kv ...string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map"}
	for _, s := range kv {
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
	}
	return n
}

// DialError is a world that could not be reached, or not used, at the
// URL it names (Dial, AuditAt).
type DialError struct{ Err error }

func (e *DialError) Error() string { return e.Err.Error() }
func (e *DialError) Unwrap() error { return e.Err }

// Dial reaches a world served at url by `fixfleet sim serve`. Close it.
// Its errors are *DialError.
func Dial(ctx context.Context, url string) (*Backend, error) {
	r, err := simapi.Dial(ctx, url)
	if err != nil {
		return nil, &DialError{fmt.Errorf("%s: %w (is `fixfleet sim serve` running there?)", url, err)}
	}
	if r.Info.Gateway == "" {
		r.Close()
		return nil, &DialError{fmt.Errorf("%s: the simulator serves no WinRM gateway", url)}
	}
	return &Backend{
		incident: r.Info.Incident, accounts: r.Info.Accounts, zones: r.Info.Zones, clock: r.Clock,
		provider: FaceSim, spec: simapi.Spec(r), account: func(*providers.Account) {}, getenv: noEnv, worldID: sameID,
		gateway: r.Info.Gateway,
		user:    r.GuestUser, password: r.GuestPassword, keys: r.Keys,
		audit:   r.Audit,
		closers: []func() error{func() error { r.Close(); return nil }},
	}, nil
}

// accountOf is the account of the world's account name as b's face opens
// it.
func (b *Backend) accountOf(name string) providers.Account {
	tenant := b.tenants[name]
	if tenant == "" {
		tenant = name
	}
	a := providers.Account{Tenant: tenant, Name: name, Provider: b.provider, Zones: b.zones}
	b.account(&a)
	return a
}

// OpenFleet opens every account of the world through b's face, with the
// policy defaults, the world's escrowed keys and guest access through its
// gateway. Close the fleet before b.
func (b *Backend) OpenFleet(ctx context.Context) (*fleet.Fleet, error) {
	ks, err := keys.FromSecrets(b.keys)
	if err != nil {
		return nil, fmt.Errorf("simulator: escrowed keys: %w", err)
	}
	reg := providers.NewRegistry()
	if err := reg.Register(b.provider, b.spec); err != nil {
		return nil, err
	}
	cfg := fleet.Config{
		Incident: b.incident, Policy: policy.Default(), Registry: reg, Keys: ks,
		Env: providers.Env{Getenv: b.getenv, Clock: b.clock},
		Guest: &fleet.GuestAccess{
			Client: guest.NewClient(guest.ClientOptions{DialContext: (&guest.ConnectDialer{Proxy: b.gateway, DialProxy: b.dial}).DialContext}),
			Creds:  b.creds(),
		},
	}
	for _, name := range b.accounts {
		cfg.Accounts = append(cfg.Accounts, b.accountOf(name))
	}
	return fleet.Open(ctx, cfg)
}
