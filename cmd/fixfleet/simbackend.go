package main

import (
	"context"
	"fmt"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/clock"
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
)

// simBackend is a simulated world as the orchestrator reaches it: in this
// process (the world and its WinRM service run here), or served by another
// process (`fixfleet sim serve`, reached with --sim-endpoint).
type simBackend struct {
	incident inventory.Incident
	accounts []string
	zones    []string
	clock    clock.Clock
	// provider is the name the world's accounts are opened as ("sim", or
	// a cloud whose emulator fronts the world), spec its kind, and
	// account fills in an account's options and getenv its credentials.
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

func (b *simBackend) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		_ = b.closers[i]()
	}
}

// creds returns the guests' credentials, revealing the password at the
// point of use.
func (b *simBackend) creds() guest.Credentials {
	return guest.Credentials{User: b.user, Password: b.password.Reveal()}
}

// openFace builds the world wo describes, with the fault rates of fo, and
// runs it behind the named face: "sim" (the simulator's own), "sakura" or
// "aws" (that cloud's API emulated on loopback; an AWS world is generated
// with availability-zone names). flag names the option for errors.
func openFace(flag, face string, wo *worldOpts, fo *faultOpts) (*world.World, *simBackend, error) {
	open := map[string]func(*world.World) (*simBackend, error){"sim": localBackend, "sakura": sakuraBackend, aws.Name: awsBackend}[face]
	if open == nil {
		return nil, nil, badInput(fmt.Errorf("%s %q: valid values are sim, sakura, aws", flag, face))
	}
	if face == aws.Name && wo.scenario == "" {
		wo.zones = awsZones
	}
	w, err := wo.open(false)
	if err != nil {
		return nil, nil, err
	}
	if err := fo.apply(w); err != nil {
		return nil, nil, err
	}
	b, err := open(w)
	return w, b, err
}

// localBackend runs w here, with its WinRM service on loopback.
func localBackend(w *world.World) (*simBackend, error) {
	srv, err := winrmd.Start(w, winrmd.Options{})
	if err != nil {
		return nil, fmt.Errorf("simulator: starting the WinRM service: %w", err)
	}
	return &simBackend{
		incident: w.Incident(), accounts: w.Accounts(), zones: w.Zones(), clock: w.Clock(),
		provider: "sim", spec: sim.Spec(w), account: func(*providers.Account) {}, getenv: noEnv, worldID: sameID,
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
func sakuraBackend(w *world.World) (*simBackend, error) {
	b, err := localBackend(w)
	if err != nil {
		return nil, err
	}
	srv, err := sakuraapi.Start(w, "127.0.0.1:0", sakuraapi.Options{})
	if err != nil {
		b.close()
		return nil, fmt.Errorf("simulator: starting the Sakura Cloud API emulator: %w", err)
	}
	b.closers = append(b.closers, srv.Close)
	b.provider, b.spec, b.apiCalls = "sakura", sakura.Spec(), srv.Stats
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
// from (names only: the demo serves them itself).
const (
	simAWSKeyEnv    = "FIXFLEET_SIM_AWS_ACCESS_KEY_ID"
	simAWSSecretEnv = "FIXFLEET_SIM_AWS_SECRET_ACCESS_KEY"
)

// awsBackend runs w here behind an emulator of the EC2, SSM and STS APIs
// on loopback: the world's accounts are opened with the real AWS provider
// (aws-sdk-go-v2 over HTTP), each access key ID naming its world account.
func awsBackend(w *world.World) (*simBackend, error) {
	b, err := localBackend(w)
	if err != nil {
		return nil, err
	}
	srv, err := ec2api.Start(w, "127.0.0.1:0", ec2api.Options{})
	if err != nil {
		b.close()
		return nil, fmt.Errorf("simulator: starting the EC2 API emulator: %w", err)
	}
	b.closers = append(b.closers, srv.Close)
	b.provider, b.spec = aws.Name, aws.Spec()
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

// remoteBackend reaches a world served at url by `fixfleet sim serve`.
func remoteBackend(ctx context.Context, url string) (*simBackend, error) {
	r, err := simapi.Dial(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("--sim-endpoint %s: %w (is `fixfleet sim serve` running there?)", url, err)
	}
	if r.Info.Gateway == "" {
		r.Close()
		return nil, fmt.Errorf("--sim-endpoint %s: the simulator serves no WinRM gateway", url)
	}
	return &simBackend{
		incident: r.Info.Incident, accounts: r.Info.Accounts, zones: r.Info.Zones, clock: r.Clock,
		provider: "sim", spec: simapi.Spec(r), account: func(*providers.Account) {}, getenv: noEnv, worldID: sameID,
		gateway: r.Info.Gateway,
		user:    r.GuestUser, password: r.GuestPassword, keys: r.Keys,
		audit:   r.Audit,
		closers: []func() error{func() error { r.Close(); return nil }},
	}, nil
}
