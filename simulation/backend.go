package simulation

import (
	"context"
	"errors"
	"fmt"
	"net"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/keys"
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
)

// Network is where the simulated services (the WinRM gateway, the cloud
// API emulators) listen, and how the orchestrator's clients reach them.
type Network struct {
	Listen      func() (net.Listener, error)
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Options describe a simulated world and how it is reached.
type Options struct {
	World WorldOptions
	// Faults, when set, replace the world's own fault rates (a scenario
	// file's, or none for a generated world).
	Faults *Faults
	// Face is the face the world is reached through: FaceSim (default),
	// FaceSakura or FaceAWS.
	Face string
	// Clock makes the world's clock (nil: Scaled(TimeScale)).
	Clock     Clock
	TimeScale float64
	// Network, nil, is loopback TCP. Another network is not wired yet: the
	// WinRM gateway, the guest dialer and the cloud providers' HTTP clients
	// still open loopback TCP themselves, so Open refuses one.
	Network *Network
}

// Backend is a simulated world as the orchestrator reaches it: in this
// process (the world, its WinRM service and its face run here: Open), or
// served by another process (`fixfleet sim serve`: Dial).
type Backend struct {
	incident inventory.Incident
	accounts []string
	zones    []string
	clock    clock.Clock
	faults   *Faults // nil: none set
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
	user         string
	password     secret.Secret
	keys         map[string]secret.Secret
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
	open := map[string]func(*world.World) (*Backend, error){"": localBackend, FaceSim: localBackend, FaceSakura: sakuraBackend, FaceAWS: awsBackend}[o.Face]
	if open == nil {
		return nil, badOption("face", fmt.Errorf("%q: valid values are sim, sakura, aws", o.Face))
	}
	if o.Network != nil {
		return nil, errors.New("simulation: Options.Network is not wired yet: the WinRM gateway, the guest dialer and the cloud providers' HTTP clients still open loopback TCP themselves")
	}
	clk := o.Clock
	if clk == nil {
		if o.TimeScale <= 0 {
			return nil, badOption("time-scale", fmt.Errorf("%v must be > 0", o.TimeScale))
		}
		clk = Scaled(o.TimeScale)
	}
	if o.Face == FaceAWS && o.World.Scenario == "" {
		o.World.Zones = awsZones
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
	b, err := open(w)
	if err != nil {
		return nil, err
	}
	b.faults = o.Faults
	return b, nil
}

// localBackend runs w here, with its WinRM service on loopback.
func localBackend(w *world.World) (*Backend, error) {
	srv, err := winrmd.Start(w, winrmd.Options{})
	if err != nil {
		return nil, fmt.Errorf("simulator: starting the WinRM service: %w", err)
	}
	return &Backend{
		incident: w.Incident(), accounts: w.Accounts(), zones: w.Zones(), clock: w.Clock(),
		provider: FaceSim, spec: sim.Spec(w), account: func(*providers.Account) {}, getenv: noEnv, worldID: sameID,
		gateway: srv.GatewayAddr(), user: w.GuestUser(), password: w.GuestPassword(), keys: w.EscrowedKeys(),
		audit: func(context.Context) (world.Audit, error) { return w.Audit(), nil },
		world: w, closers: []func() error{srv.Close},
	}, nil
}

func noEnv(string) string     { return "" }
func sameID(id string) string { return id }

// sakuraBackend runs w here behind an emulator of the Sakura Cloud API on
// loopback: the world's accounts are opened with the real Sakura provider
// (iaas-api-go over HTTP), each account's access token naming its world
// account.
func sakuraBackend(w *world.World) (*Backend, error) {
	b, err := localBackend(w)
	if err != nil {
		return nil, err
	}
	srv, err := sakuraapi.Start(w, "127.0.0.1:0", sakuraapi.Options{})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("simulator: starting the Sakura Cloud API emulator: %w", err)
	}
	b.closers = append(b.closers, srv.Close)
	b.provider, b.spec, b.apiCalls = FaceSakura, sakura.Spec(), srv.Stats
	b.account = func(a *providers.Account) {
		a.Options = yamlMap("api_root_url", srv.URL())
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
	b.worldID = func(id string) string {
		if wid, ok := srv.WorldID(id); ok {
			return wid
		}
		return id
	}
	return b, nil
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
// on loopback: the world's accounts are opened with the real AWS provider
// (aws-sdk-go-v2 over HTTP), each access key ID naming its world account.
func awsBackend(w *world.World) (*Backend, error) {
	b, err := localBackend(w)
	if err != nil {
		return nil, err
	}
	srv, err := ec2api.Start(w, "127.0.0.1:0", ec2api.Options{})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("simulator: starting the EC2 API emulator: %w", err)
	}
	b.closers = append(b.closers, srv.Close)
	b.provider, b.spec = FaceAWS, aws.Spec()
	b.apiCalls = func() map[string]int { return srv.Stats().Calls }
	b.apiThrottled = func() int { return srv.Stats().Throttled }
	b.apiInstances = func() map[string]int { return srv.Stats().Instances }
	b.account = func(a *providers.Account) {
		a.Regions, a.Zones = ec2api.Regions(w), nil
		a.Options = yamlMap("endpoint", srv.URL(), "access_key_id_env", simAWSKeyEnv, "secret_access_key_env", simAWSSecretEnv)
	}
	b.getenv = func(k string) string {
		switch k {
		case simAWSKeyEnv:
			return w.Accounts()[0]
		case simAWSSecretEnv:
			return "simulator"
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

// Dial reaches a world served at url by `fixfleet sim serve`. Close it.
func Dial(ctx context.Context, url string) (*Backend, error) {
	r, err := simapi.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (is `fixfleet sim serve` running there?)", url, err)
	}
	if r.Info.Gateway == "" {
		r.Close()
		return nil, fmt.Errorf("%s: the simulator serves no WinRM gateway", url)
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
	a := providers.Account{Tenant: name, Name: name, Provider: b.provider, Zones: b.zones}
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
			Client: guest.NewClient(guest.ClientOptions{Dial: guest.NewConnectDialer(b.gateway)}),
			Creds:  b.creds(),
		},
	}
	for _, name := range b.accounts {
		cfg.Accounts = append(cfg.Accounts, b.accountOf(name))
	}
	return fleet.Open(ctx, cfg)
}
