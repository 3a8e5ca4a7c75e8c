package simapi

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// Remote is a world served by another process, as Dial found it.
type Remote struct {
	// URL is the server's base URL.
	URL string
	// Info is the world's description at Dial time (Info.Now is stale
	// afterwards: read Clock).
	Info Info
	// Clock runs at the world's scale, synced to the world's clock at Dial
	// (within about half a round trip).
	Clock *clock.Scaled
	// GuestUser and GuestPassword are what the guests accept.
	GuestUser     string
	GuestPassword secret.Secret
	// Keys are the escrowed BitLocker recovery keys, by key ID.
	Keys map[string]secret.Secret

	c *client
}

// info fetches the world's info and builds a clock synced to it: the
// world's time plus half the round trip, at the world's scale.
func (c *client) info(ctx context.Context) (Info, *clock.Scaled, error) {
	var info Info
	start := time.Now()
	if _, err := c.do(ctx, http.MethodGet, "/v1/info", "Info", "simulator "+c.base, nil, &info); err != nil {
		return Info{}, nil, err
	}
	rtt := time.Since(start)
	if info.Version != APIVersion {
		return Info{}, nil, providers.Errorf(providers.ErrPermanent, "Info", "simulator "+c.base,
			"wire version %q, this fixfleet speaks %q", info.Version, APIVersion)
	}
	if info.Scale <= 0 {
		info.Scale = 1
	}
	now := info.Now.Add(time.Duration(float64(rtt/2) * info.Scale))
	return info, clock.NewScaled(now, info.Scale), nil
}

// Dial contacts the world served at baseURL (http:// on loopback): its
// info, a clock synced to it at the moment of the call, and its
// credentials (held as secrets; never logged).
func Dial(ctx context.Context, baseURL string) (*Remote, error) {
	c, err := newClient(baseURL, nil)
	if err != nil {
		return nil, err
	}
	info, clk, err := c.info(ctx)
	if err != nil {
		return nil, err
	}
	var cr credentialsBody
	if _, err := c.do(ctx, http.MethodGet, "/v1/credentials", "Credentials", "simulator "+c.base, nil, &cr); err != nil {
		return nil, err
	}
	r := &Remote{URL: c.base, Info: info, Clock: clk, GuestUser: cr.GuestUser,
		GuestPassword: secret.New(cr.GuestPassword), Keys: make(map[string]secret.Secret, len(cr.BitLockerKeys)), c: c}
	for id, k := range cr.BitLockerKeys {
		r.Keys[id] = secret.New(k)
	}
	return r, nil
}

// Provider returns a provider acting as account (default "sim") on the
// remote world, enumerating zones (all if none), waiting on r.Clock.
func (r *Remote) Provider(account string, zones []string) *providers.Provider {
	return newProvider(r.c, account, zones, r.Clock)
}

// GuestCredentials returns the guests' credentials for the WinRM client.
// It reveals the password: call it at the point of use only.
func (r *Remote) GuestCredentials() guest.Credentials {
	return guest.Credentials{User: r.GuestUser, Password: r.GuestPassword.Reveal()}
}

// Audit returns the world's referee report now.
func (r *Remote) Audit(ctx context.Context) (world.Audit, error) {
	var a world.Audit
	_, err := r.c.do(ctx, http.MethodGet, "/v1/audit", "Audit", "simulator "+r.URL, nil, &a)
	return a, err
}

// SetOutage switches a control-plane outage on or off.
func (r *Remote) SetOutage(ctx context.Context, on bool) error {
	_, err := r.c.do(ctx, http.MethodPut, "/v1/outage", "SetOutage", "simulator "+r.URL, outageBody{On: on}, nil)
	return err
}

// Faults returns the world's fault configuration.
func (r *Remote) Faults(ctx context.Context) (world.Faults, error) {
	var f world.Faults
	_, err := r.c.do(ctx, http.MethodGet, "/v1/faults", "Faults", "simulator "+r.URL, nil, &f)
	return f, err
}

// SetFaults replaces the world's fault configuration; an invalid one is
// ErrPermanent and changes nothing.
func (r *Remote) SetFaults(ctx context.Context, f world.Faults) error {
	_, err := r.c.do(ctx, http.MethodPut, "/v1/faults", "SetFaults", "simulator "+r.URL, f, nil)
	return err
}

// Stats returns the world's call counters and the server's.
func (r *Remote) Stats(ctx context.Context) (Stats, error) {
	var s Stats
	_, err := r.c.do(ctx, http.MethodGet, "/v1/stats", "Stats", "simulator "+r.URL, nil, &s)
	return s, err
}

// Close releases idle connections. The remote world is not affected.
func (r *Remote) Close() { r.c.hc.CloseIdleConnections() }

// optionKeys are the account options the remote simulator accepts.
const optionKeys = "account"

// accountOption decodes an account's options strictly: only "account".
func accountOption(n *yaml.Node) (string, error) {
	if n == nil || n.Kind == 0 {
		return "", nil
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return "", fmt.Errorf("options: must be a mapping with keys %s", optionKeys)
	}
	acct := ""
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Value != "account" {
			return "", fmt.Errorf("options: unknown key %q; valid keys are %s", k.Value, optionKeys)
		}
		if v.Kind != yaml.ScalarNode || v.Value == "" {
			return "", fmt.Errorf("options.account: must be a non-empty string")
		}
		acct = v.Value
	}
	return acct, nil
}

// Spec returns the registry entry of the remote world, to register as
// provider "sim" in place of the in-process one. Validate checks zones and
// options against the world's Info (no network); Open scopes a provider to
// the account's zones (all if none), on r.Clock, not env.Clock.
func Spec(r *Remote) providers.Spec {
	validate := func(a providers.Account) error {
		if err := providers.CheckZones(a, r.Info.Zones); err != nil {
			return err
		}
		if len(a.Regions) > 0 {
			return fmt.Errorf("regions: the simulator has no regions; give zones (%s)", strings.Join(r.Info.Zones, ", "))
		}
		acct, err := accountOption(a.Options)
		if err != nil {
			return err
		}
		if acct != "" && !slices.Contains(r.Info.Accounts, acct) {
			return fmt.Errorf("options.account: the world has no account %q; accounts are %s", acct, strings.Join(r.Info.Accounts, ", "))
		}
		return nil
	}
	return providers.Spec{
		Validate: validate,
		Open: func(_ context.Context, a providers.Account, _ providers.Env) (*providers.Provider, error) {
			if err := validate(a); err != nil {
				return nil, err
			}
			acct, _ := accountOption(a.Options)
			return r.Provider(acct, a.Zones), nil
		},
	}
}
