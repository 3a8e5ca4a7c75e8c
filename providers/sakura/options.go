package sakura

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/providers"
)

// Name is the provider name to register Sakura Cloud under.
const Name = "sakura"

// Zones are Sakura Cloud's zones fixfleet accepts; tk1v is the sandbox.
var zoneNames = []string{"is1a", "is1b", "is1c", "tk1a", "tk1b", "tk1v"}

// Zones returns the zones an account may name.
func Zones() []string { return append([]string(nil), zoneNames...) }

// DefaultAPIRoot is the real API's root (iaas-api-go's default).
const DefaultAPIRoot = "https://secure.sakura.ad.jp/cloud/zone"

// Environment variables the provider reads (through providers.Env).
const (
	EnvAccessToken       = "SAKURACLOUD_ACCESS_TOKEN"
	EnvAccessTokenSecret = "SAKURACLOUD_ACCESS_TOKEN_SECRET" //nolint:gosec // a variable name, not a secret
)

// Options are an account's provider-specific keys.
type Options struct {
	// Profile names a usacloud profile (~/.usacloud/NAME/config.json, or
	// under $SAKURA_PROFILE_DIR / $SAKURACLOUD_PROFILE_DIR /
	// $USACLOUD_PROFILE_DIR) to take the API key from instead of the
	// environment.
	Profile string
	// APIRootURL replaces the API root (for drills against an emulator),
	// e.g. http://127.0.0.1:8080/cloud/zone. Default DefaultAPIRoot (or
	// the profile's APIRootURL).
	APIRootURL string
	// Rate is fixfleet's request rate for the account, requests per
	// second of the run's clock (default 5), with bursts of Burst (default
	// 10).
	Rate  float64
	Burst int
	// ClientRetries is how many times iaas-api-go itself retries a
	// request answered 503 or 423 (default 3; 0 disables). It never
	// retries a dropped connection: the outcome of that is unknown and
	// fixfleet re-reads state first.
	ClientRetries int
	// Poll is how often to look while waiting for an operation (default
	// 5s of the run's clock).
	Poll time.Duration
}

var optionKeys = []string{"api_root_url", "burst", "client_retries", "poll_interval", "profile", "rate"}

func defaults() Options {
	return Options{Rate: 5, Burst: 10, ClientRetries: 3, Poll: 5 * time.Second}
}

// ParseOptions decodes an account's options strictly: an unknown key is an
// error listing the valid ones.
func ParseOptions(n *yaml.Node) (Options, error) {
	o := defaults()
	if n == nil || n.Kind == 0 {
		return o, nil
	}
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return o, fmt.Errorf("options: must be a mapping with keys %s", strings.Join(optionKeys, ", "))
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return o, fmt.Errorf("options.%s: must be a scalar", k.Value)
		}
		switch k.Value {
		case "profile":
			if v.Value == "" || strings.ContainsAny(v.Value, `/\`) || v.Value == "." || v.Value == ".." {
				return o, fmt.Errorf("options.profile: %q is not a usacloud profile name", v.Value)
			}
			o.Profile = v.Value
		case "api_root_url":
			if !strings.HasPrefix(v.Value, "https://") && !strings.HasPrefix(v.Value, "http://") {
				return o, fmt.Errorf("options.api_root_url: %q must be an http(s) URL such as %s", v.Value, DefaultAPIRoot)
			}
			o.APIRootURL = strings.TrimRight(v.Value, "/")
		case "rate":
			f, err := strconv.ParseFloat(v.Value, 64)
			if err != nil || f <= 0 {
				return o, fmt.Errorf("options.rate: %q must be a positive number of requests per second", v.Value)
			}
			o.Rate = f
		case "burst":
			b, err := strconv.Atoi(v.Value)
			if err != nil || b < 1 {
				return o, fmt.Errorf("options.burst: %q must be a positive integer", v.Value)
			}
			o.Burst = b
		case "client_retries":
			r, err := strconv.Atoi(v.Value)
			if err != nil || r < 0 || r > 20 {
				return o, fmt.Errorf("options.client_retries: %q must be an integer from 0 to 20", v.Value)
			}
			o.ClientRetries = r
		case "poll_interval", "poll": // poll: this option's first name, still accepted
			d, err := time.ParseDuration(v.Value)
			if err != nil || d <= 0 {
				return o, fmt.Errorf("options.%s: %q must be a positive duration such as 5s", k.Value, v.Value)
			}
			o.Poll = d
		default:
			return o, fmt.Errorf("options: unknown key %q; valid keys are %s", k.Value, strings.Join(optionKeys, ", "))
		}
	}
	return o, nil
}

// validate checks an account offline.
func validate(a providers.Account) error {
	if err := providers.CheckZones(a, zoneNames); err != nil {
		return err
	}
	if len(a.Regions) > 0 {
		return fmt.Errorf("regions: Sakura Cloud has no regions; give zones (%s)", strings.Join(zoneNames, ", "))
	}
	_, err := ParseOptions(a.Options)
	return err
}

// credentials returns the API key: from the profile when one is named,
// else from the environment. Errors never contain the key.
func credentials(o Options, env providers.Env) (token, secret, root string, err error) {
	getenv := env.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	if o.Profile != "" {
		base := ""
		for _, k := range []string{"SAKURA_PROFILE_DIR", "SAKURACLOUD_PROFILE_DIR", "USACLOUD_PROFILE_DIR"} {
			if base = getenv(k); base != "" {
				break
			}
		}
		if base == "" {
			base = getenv("HOME")
		}
		if base == "" {
			return "", "", "", fmt.Errorf("options.profile %q: no profile directory (set HOME or SAKURACLOUD_PROFILE_DIR)", o.Profile)
		}
		path := filepath.Join(base, ".usacloud", o.Profile, "config.json")
		b, rerr := os.ReadFile(path)
		if rerr != nil {
			return "", "", "", fmt.Errorf("options.profile %q: cannot read %s: %v", o.Profile, path, rerr)
		}
		var p struct {
			AccessToken       string
			AccessTokenSecret string
			APIRootURL        string
		}
		if jerr := json.Unmarshal(b, &p); jerr != nil {
			return "", "", "", fmt.Errorf("options.profile %q: %s is not a usacloud profile (JSON)", o.Profile, path)
		}
		if p.AccessToken == "" || p.AccessTokenSecret == "" {
			return "", "", "", fmt.Errorf("options.profile %q: %s has no AccessToken/AccessTokenSecret", o.Profile, path)
		}
		return p.AccessToken, p.AccessTokenSecret, p.APIRootURL, nil
	}
	token, secret = getenv(EnvAccessToken), getenv(EnvAccessTokenSecret)
	if token == "" || secret == "" {
		return "", "", "", fmt.Errorf("no API key: set %s and %s, or options.profile: %w", EnvAccessToken, EnvAccessTokenSecret, providers.ErrPermanent)
	}
	return token, secret, "", nil
}
