// Package config loads fleet.yaml: which incident to repair, the remediation
// policy, where the BitLocker keys and the guest credentials come from, and
// the tenants and accounts of the fleet.
//
// Parsing is strict. Unknown keys anywhere are errors that name the full
// path, the valid keys, and the file, line and column; bad values name
// their field; credentials named by reference (an environment variable, a
// file) must resolve. Every problem found is reported at once (the error is
// an errors.Join of *FieldError and other errors). No error ever contains a
// secret's value. See docs/config.md for the user-facing reference.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/keys"
	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// Version is the only fleet.yaml format version this build reads.
const Version = 1

// Default WinRM ports.
const (
	DefaultWinRMPort      = 5985
	DefaultWinRMHTTPSPort = 5986
)

// Validator checks provider names and accounts offline.
// *providers.Registry satisfies it.
type Validator interface {
	// Names lists the provider names that may appear in config.
	Names() []string
	// Validate checks an account's scope and options without network access.
	Validate(providers.Account) error
}

// Config is a loaded, validated fleet.yaml.
type Config struct {
	// File is the path the config was loaded from, as given to Load.
	File string
	// Dir is the directory relative paths in the config are resolved
	// against (the config file's directory).
	Dir string
	// Incident is the resolved incident profile.
	Incident inventory.Incident
	// IncidentSource says where Incident came from: "built-in" or the
	// resolved path of the profile file.
	IncidentSource string
	// PolicyNode is the policy mapping, for remediate/policy to parse; nil
	// when fleet.yaml has no policy (the defaults apply).
	PolicyNode *yaml.Node
	// Keys is the BitLocker recovery-key source; nil when none is
	// configured.
	Keys *keys.Source
	// KeysFile is the resolved path of keys.bitlocker_csv, "" if none.
	KeysFile string
	// Guest is how fixfleet reaches Windows guests over WinRM.
	Guest Guest
	// Tenants are the fleet's owners, in file order.
	Tenants []Tenant
	// Notify are the chat webhooks told of a run's progress, in file
	// order; none when notify is absent.
	Notify []Webhook
}

// Webhook kinds (notify[].kind).
const (
	WebhookSlack = "slack"
	WebhookTeams = "teams"
)

// Webhook is one incoming webhook of notify.
type Webhook struct {
	// Kind is WebhookSlack or WebhookTeams.
	Kind string
	// URL is the webhook's https URL, read from the environment variable
	// URLEnv (it holds a token: never printed).
	URL    secret.Secret
	URLEnv string
}

// Guest is the WinRM access to the guests.
type Guest struct {
	// Username is the local or domain administrator fixfleet logs in as.
	// Empty when guest_access is absent (guest access not configured).
	Username string
	// Password is the WinRM password, resolved from password_env or
	// password_file.
	Password secret.Secret
	// PasswordSource names where the password came from, e.g.
	// "environment variable FIXFLEET_WINRM_PASSWORD"; never the value.
	PasswordSource string
	Port           int
	HTTPS          bool
	// Proxy is host:port of an HTTP CONNECT proxy or bastion through
	// which guests are reached; "" for direct connections.
	Proxy string
}

// Configured reports whether guest access was configured.
func (g Guest) Configured() bool { return g.Username != "" }

// Tenant is one owner of accounts (a customer, for an MSP).
type Tenant struct {
	Name     string
	Accounts []providers.Account
}

// Accounts returns every account of every tenant, in file order, each with
// its Tenant set.
func (c *Config) Accounts() []providers.Account {
	var out []providers.Account
	for _, t := range c.Tenants {
		out = append(out, t.Accounts...)
	}
	return out
}

// Keys of each mapping, in documentation order.
var (
	topKeys      = []string{"version", "incident", "policy", "keys", "guest_access", "tenants", "notify"}
	notifyKeys   = []string{"kind", "url_env"}
	incidentKeys = []string{"profile", "profile_file"}
	keysKeys     = []string{"bitlocker_csv"}
	guestKeys    = []string{"username", "password_env", "password_file", "port", "https", "proxy"}
	tenantKeys   = []string{"name", "accounts"}
	accountKeys  = []string{"name", "provider", "zones", "regions", "options"}
)

// nameRE is what tenant and account names may look like: they become part
// of VM keys (tenant/account/id), file names and report titles.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$`)

// envNameRE is a portable environment variable name.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// Load reads, parses and validates the config at path. reg checks provider
// names and accounts; getenv reads environment variables named by the
// config (os.Getenv when nil). Relative paths inside the config are relative
// to its directory.
func Load(path string, reg Validator, getenv func(string) string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config file %s: cannot read it: %w; pass the path of your fleet.yaml (see docs/config.md)", path, unwrapPathErr(err))
	}
	return parse(b, path, filepath.Dir(path), reg, getenv)
}

// Parse is Load for config text already in memory; name is used in
// messages and dir resolves relative paths.
func Parse(data []byte, name, dir string, reg Validator, getenv func(string) string) (*Config, error) {
	return parse(data, name, dir, reg, getenv)
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func parse(data []byte, name, dir string, reg Validator, getenv func(string) string) (*Config, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	if reg == nil {
		return nil, errors.New("config: no provider registry given")
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("config file %s: empty; see docs/config.md for the format", name)
		}
		return nil, fmt.Errorf("config file %s: %w", name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &FieldError{File: name, Line: extra.Line, Column: extra.Column, Err: errors.New("more than one YAML document; put the whole config in one")}
	} else if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("config file %s: %w", name, err)
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}

	w := &walker{file: name}
	l := &loader{w: w, dir: dir, reg: reg, getenv: getenv}
	c := &Config{File: name, Dir: dir}

	top, ok := w.fields(root, "", topKeys...)
	if !ok {
		return nil, w.err()
	}
	if len(top) == 0 {
		w.errf(root, "", "empty config; see docs/config.md for the format")
		return nil, w.err()
	}

	if v, ok := top["version"]; !ok || isNull(v) {
		at := root
		if ok {
			at = v
		}
		w.errf(at, "version", "required: add `version: %d` at the top", Version)
	} else if got, ok := w.integer(v, "version", 0); ok && got != Version {
		w.errf(v, "version", "%d is not supported; this fixfleet reads version %d", got, Version)
	}

	l.incident(c, root, top["incident"])
	c.PolicyNode = l.policy(top["policy"])
	l.keys(c, top["keys"])
	l.guest(c, top["guest_access"])
	l.tenants(c, root, top["tenants"])
	l.notify(c, top["notify"])

	if err := w.err(); err != nil {
		return nil, err
	}
	return c, nil
}

type loader struct {
	w      *walker
	dir    string
	reg    Validator
	getenv func(string) string
}

// path resolves a config-relative path.
func (l *loader) path(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(l.dir, p)
}

func (l *loader) incident(c *Config, root, n *yaml.Node) {
	w := l.w
	if n == nil || isNull(n) {
		at := root
		if n != nil {
			at = n
		}
		w.errf(at, "incident", "required: set incident.profile to a built-in profile (e.g. %s) or incident.profile_file to a YAML profile", inventory.CrowdStrike20240719)
		return
	}
	f, ok := w.fields(n, "incident", incidentKeys...)
	if !ok {
		return
	}
	profile := strings.TrimSpace(w.str(f["profile"], "incident.profile"))
	file := strings.TrimSpace(w.str(f["profile_file"], "incident.profile_file"))
	switch {
	case profile != "" && file != "":
		w.errf(n, "incident", "set either profile or profile_file, not both")
	case profile == "" && file == "":
		w.errf(n, "incident", "set one of profile (a built-in profile, e.g. %s) or profile_file (a YAML profile)", inventory.CrowdStrike20240719)
	case profile != "":
		p, err := inventory.LookupIncident(profile)
		if err != nil {
			w.add(f["profile"], "incident.profile", err)
			return
		}
		c.Incident, c.IncidentSource = p, "built-in"
	default:
		abs := l.path(file)
		p, err := inventory.LoadIncidentFile(abs)
		if err != nil {
			w.add(f["profile_file"], "incident.profile_file", err)
			return
		}
		c.Incident, c.IncidentSource = p, abs
	}
}

// policy keeps the policy mapping for remediate/policy; only its kind is
// checked here.
func (l *loader) policy(n *yaml.Node) *yaml.Node {
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		l.w.errf(n, "policy", "must be a mapping (see docs/config.md, policy)")
		return nil
	}
	return n
}

func (l *loader) keys(c *Config, n *yaml.Node) {
	w := l.w
	f, ok := w.fields(n, "keys", keysKeys...)
	if !ok {
		return
	}
	v, ok := f["bitlocker_csv"]
	if !ok || isNull(v) {
		return
	}
	file := strings.TrimSpace(w.str(v, "keys.bitlocker_csv"))
	if file == "" {
		w.errf(v, "keys.bitlocker_csv", "must be a path to a CSV file of key_id,recovery_key, or be left out")
		return
	}
	abs := l.path(file)
	src, err := keys.LoadCSV(abs)
	if err != nil {
		w.add(v, "keys.bitlocker_csv", err)
		return
	}
	c.Keys, c.KeysFile = src, abs
}

func (l *loader) guest(c *Config, n *yaml.Node) {
	w := l.w
	if n == nil || isNull(n) {
		return
	}
	f, ok := w.fields(n, "guest_access", guestKeys...)
	if !ok {
		return
	}
	g := &c.Guest
	g.Username = strings.TrimSpace(w.str(f["username"], "guest_access.username"))
	if g.Username == "" {
		at := f["username"]
		if at == nil {
			at = n
		}
		w.errf(at, "guest_access.username", "required: the administrator fixfleet logs in to guests as (e.g. Administrator)")
	}

	env := strings.TrimSpace(w.str(f["password_env"], "guest_access.password_env"))
	file := strings.TrimSpace(w.str(f["password_file"], "guest_access.password_file"))
	switch {
	case env != "" && file != "":
		w.errf(n, "guest_access", "set either password_env or password_file, not both")
	case env == "" && file == "":
		w.errf(n, "guest_access", "set password_env (the name of an environment variable holding the WinRM password) or password_file (a file holding it)")
	case env != "":
		if !envNameRE.MatchString(env) {
			// Do not quote the value: it may be the password itself.
			w.errf(f["password_env"], "guest_access.password_env", "not an environment variable name (letters, digits and _); give the variable's name, not the password")
			break
		}
		v := l.getenv(env)
		if v == "" {
			w.errf(f["password_env"], "guest_access.password_env", "environment variable %s is not set or is empty; export it with the WinRM password of %s, or use password_file", env, orUnnamed(g.Username))
			break
		}
		g.Password, g.PasswordSource = secret.New(v), "environment variable "+env
	default:
		abs := l.path(file)
		b, err := os.ReadFile(abs)
		if err != nil {
			w.errf(f["password_file"], "guest_access.password_file", "cannot read %s: %v; create it holding the WinRM password, readable only by you", abs, unwrapPathErr(err))
			break
		}
		v := strings.TrimRight(string(b), "\r\n")
		if v == "" {
			w.errf(f["password_file"], "guest_access.password_file", "%s is empty; put the WinRM password in it", abs)
			break
		}
		g.Password, g.PasswordSource = secret.New(v), "file "+abs
	}

	g.HTTPS = w.boolean(f["https"], "guest_access.https", false)
	def := DefaultWinRMPort
	if g.HTTPS {
		def = DefaultWinRMHTTPSPort
	}
	g.Port, ok = w.integer(f["port"], "guest_access.port", def)
	if ok && (g.Port < 1 || g.Port > 65535) {
		w.errf(f["port"], "guest_access.port", "%d is not a TCP port (1-65535); WinRM listens on %d (HTTP) or %d (HTTPS)", g.Port, DefaultWinRMPort, DefaultWinRMHTTPSPort)
	}

	g.Proxy = strings.TrimSpace(w.str(f["proxy"], "guest_access.proxy"))
	if g.Proxy != "" {
		if err := checkHostPort(g.Proxy); err != nil {
			w.errf(f["proxy"], "guest_access.proxy", "%v", err)
		}
	}
}

// notify reads the webhooks; each URL comes from an environment variable
// and must be https. Neither the URL nor any part of it is ever quoted in
// an error.
func (l *loader) notify(c *Config, n *yaml.Node) {
	w := l.w
	for i, item := range w.seq(n, "notify", "webhooks (kind, url_env)") {
		p := index("notify", i)
		f, ok := w.fields(item, p, notifyKeys...)
		if !ok {
			continue
		}
		h := Webhook{Kind: strings.TrimSpace(w.str(f["kind"], p+".kind")), URLEnv: strings.TrimSpace(w.str(f["url_env"], p+".url_env"))}
		if h.Kind != WebhookSlack && h.Kind != WebhookTeams {
			at := f["kind"]
			if at == nil {
				at = item
			}
			w.errf(at, p+".kind", "must be %s or %s (an incoming webhook)", WebhookSlack, WebhookTeams)
			continue
		}
		at := f["url_env"]
		if at == nil {
			w.errf(item, p+".url_env", "required: the name of an environment variable holding the %s webhook URL", h.Kind)
			continue
		}
		if !envNameRE.MatchString(h.URLEnv) {
			w.errf(at, p+".url_env", "not an environment variable name (letters, digits and _); give the variable's name, not the URL")
			continue
		}
		v := strings.TrimSpace(l.getenv(h.URLEnv))
		if v == "" {
			w.errf(at, p+".url_env", "environment variable %s is not set or is empty; export it with the %s incoming webhook URL", h.URLEnv, h.Kind)
			continue
		}
		if u, err := url.Parse(v); err != nil || u.Scheme != "https" || u.Host == "" {
			w.errf(at, p+".url_env", "environment variable %s does not hold an https URL; put the %s incoming webhook URL (https://…) in it", h.URLEnv, h.Kind)
			continue
		}
		h.URL = secret.New(v)
		c.Notify = append(c.Notify, h)
	}
}

func orUnnamed(user string) string {
	if user == "" {
		return "guest_access.username"
	}
	return user
}

// checkHostPort accepts host:port with a numeric port; no scheme, no
// credentials (they would end up in logs).
func checkHostPort(s string) error {
	if strings.Contains(s, "://") || strings.Contains(s, "@") {
		return fmt.Errorf("must be host:port of an HTTP CONNECT proxy, without scheme or credentials")
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("%q must be host:port, e.g. bastion.example.com:3128", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%q: port must be 1-65535", s)
	}
	return nil
}

func (l *loader) tenants(c *Config, root, n *yaml.Node) {
	w := l.w
	items := w.seq(n, "tenants", "tenants (name, accounts)")
	if len(items) == 0 {
		if n == nil || isNull(n) || resolve(n).Kind == yaml.SequenceNode {
			at := root
			if n != nil {
				at = n
			}
			w.errf(at, "tenants", "required: list at least one tenant with its accounts")
		}
		return
	}
	tenantLine := map[string]int{}
	for i, tn := range items {
		tp := index("tenants", i)
		f, ok := w.fields(tn, tp, tenantKeys...)
		if !ok {
			continue
		}
		t := Tenant{Name: strings.TrimSpace(w.str(f["name"], tp+".name"))}
		l.checkName(tn, f["name"], tp+".name", t.Name, "tenant", tenantLine)

		accs := w.seq(f["accounts"], tp+".accounts", "accounts (name, provider, zones, regions, options)")
		if len(accs) == 0 {
			if a := f["accounts"]; a == nil || isNull(a) || a.Kind == yaml.SequenceNode {
				at := tn
				if a != nil {
					at = a
				}
				w.errf(at, tp+".accounts", "required: list at least one account")
			}
		}
		accountLine := map[string]int{}
		for j, an := range accs {
			ap := index(tp+".accounts", j)
			if a, ok := l.account(an, ap, t.Name, accountLine); ok {
				t.Accounts = append(t.Accounts, a)
			}
		}
		c.Tenants = append(c.Tenants, t)
	}
}

// checkName validates a tenant or account name and its uniqueness.
func (l *loader) checkName(parent, n *yaml.Node, path, name, what string, seen map[string]int) {
	w := l.w
	at := n
	if at == nil {
		at = parent
	}
	switch {
	case name == "":
		w.errf(at, path, "required: every %s needs a name", what)
	case !nameRE.MatchString(name):
		w.errf(at, path, "%q: use 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit", name)
	case seen[name] != 0:
		w.errf(at, path, "%s name %q is already used on line %d; names must be unique", what, name, seen[name])
	default:
		seen[name] = at.Line
	}
}

func (l *loader) account(n *yaml.Node, path, tenant string, seen map[string]int) (providers.Account, bool) {
	w := l.w
	before := len(w.errs)
	f, ok := w.fields(n, path, accountKeys...)
	if !ok {
		return providers.Account{}, false
	}
	a := providers.Account{
		Tenant:   tenant,
		Name:     strings.TrimSpace(w.str(f["name"], path+".name")),
		Provider: strings.TrimSpace(w.str(f["provider"], path+".provider")),
		Zones:    w.strings(f["zones"], path+".zones"),
		Regions:  w.strings(f["regions"], path+".regions"),
	}
	l.checkName(n, f["name"], path+".name", a.Name, "account", seen)

	valid := l.reg.Names()
	known := false
	for _, p := range valid {
		known = known || p == a.Provider
	}
	switch {
	case a.Provider == "":
		at := f["provider"]
		if at == nil {
			at = n
		}
		w.errf(at, path+".provider", "required: one of %s", strings.Join(valid, ", "))
	case !known:
		w.errf(f["provider"], path+".provider", "unknown provider %q; valid providers are %s", a.Provider, strings.Join(valid, ", "))
	}

	if o := f["options"]; o != nil && !isNull(o) {
		if o.Kind != yaml.MappingNode {
			w.errf(o, path+".options", "must be a mapping of %s options", orProvider(a.Provider))
		} else {
			a.Options = o
		}
	}
	if len(w.errs) > before {
		return a, false
	}
	if err := l.reg.Validate(a); err != nil {
		w.add(n, fmt.Sprintf("%s (%s/%s)", path, tenant, a.Name), err)
		return a, false
	}
	return a, true
}

func orProvider(p string) string {
	if p == "" {
		return "provider"
	}
	return p
}
