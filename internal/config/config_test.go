package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// fakeRegistry is a tiny Validator: sakura checks zones, sim checks its
// options strictly, aws and azure accept anything.
type fakeRegistry struct{}

var errBadOption = errors.New("bad option")

func (fakeRegistry) Names() []string { return []string{"aws", "azure", "sakura", "sim"} }

func (fakeRegistry) Validate(a providers.Account) error {
	switch a.Provider {
	case "sakura":
		return providers.CheckZones(a, []string{"is1a", "is1b", "is1c", "tk1a", "tk1b"})
	case "sim":
		if a.Options == nil {
			return nil
		}
		var o struct {
			VMs  int   `yaml:"vms"`
			Seed int64 `yaml:"seed"`
		}
		for i := 0; i+1 < len(a.Options.Content); i += 2 {
			if k := a.Options.Content[i].Value; k != "vms" && k != "seed" {
				return fmt.Errorf("options.%s: %w: unknown key; valid keys are vms, seed", k, errBadOption)
			}
		}
		return a.Options.Decode(&o)
	case "aws", "azure":
		return nil
	}
	return fmt.Errorf("unknown provider %q", a.Provider)
}

const (
	password     = "Sup3r-S3cret-WinRM"
	filePassword = "S3cret-From-File!"
)

func env(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

var withPassword = env(map[string]string{"FIXFLEET_WINRM_PASSWORD": password})

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		file   string
		getenv func(string) string
		want   []string // every substring must appear
		is     error    // errors.Is target, optional
	}{
		{file: "does_not_exist.yaml", want: []string{"config file testdata/does_not_exist.yaml", "cannot read", "no such file"}},
		{file: "empty.yaml", want: []string{"testdata/empty.yaml", "empty"}},
		{file: "syntax_error.yaml", want: []string{"testdata/syntax_error.yaml", "line 4"}},
		{file: "two_docs.yaml", want: []string{"testdata/two_docs.yaml:4:1:", "more than one YAML document"}},
		{file: "not_mapping.yaml", want: []string{"testdata/not_mapping.yaml:1:1:", "must be a mapping with keys version, incident"}},
		{file: "duplicate_key.yaml", want: []string{"testdata/duplicate_key.yaml:2:1: version: given twice"}},
		{file: "unknown_key_account.yaml", want: []string{
			"testdata/unknown_key_account.yaml:11:9: tenants[0].accounts[1].zone: unknown key; valid keys are name, provider, zones, regions, options",
		}},
		{file: "unknown_key_top.yaml", want: []string{
			"unknown_key_top.yaml:3:1: tenant: unknown key; valid keys are version, incident, policy, keys, guest_access, tenants, notify",
			"unknown_key_top.yaml:1:1: tenants: required",
		}},
		{file: "unknown_key_nested.yaml", getenv: withPassword, want: []string{
			":2:45: incident.profil_file: unknown key; valid keys are profile, profile_file",
			":3:8: keys.bitlocker: unknown key; valid keys are bitlocker_csv",
			"guest_access.passwd: unknown key; valid keys are username, password_env, password_file, port, https, proxy",
			"tenants[0].account: unknown key; valid keys are name, accounts",
			"tenants[0].accounts: required",
		}},
		{file: "version_2.yaml", want: []string{"version_2.yaml:1:10: version: 2 is not supported; this fixfleet reads version 1"}},
		{file: "version_missing.yaml", want: []string{"version: required"}},
		{file: "version_string.yaml", want: []string{"version_string.yaml:1:10: version: must be an integer"}},
		{file: "incident_both.yaml", want: []string{"incident: set either profile or profile_file, not both"}},
		{file: "incident_neither.yaml", want: []string{"incident: set one of profile", "crowdstrike-2024-07-19"}},
		{file: "incident_missing.yaml", want: []string{"incident: required"}},
		{file: "incident_unknown_builtin.yaml", want: []string{"incident.profile: unknown incident profile \"crowdstrike-2024-07-20\"", "crowdstrike-2024-07-19"}},
		{file: "incident_bad_file.yaml", want: []string{"incident.profile_file:\n    incident profile", "incident_invalid.yaml", "\n    bad_from/bad_until", "directory:", "bad_from/bad_until"}},
		{file: "incident_no_file.yaml", want: []string{"incident.profile_file:", "nowhere.yaml"}},
		{file: "empty_names.yaml", want: []string{
			"tenants[0].name: required: every tenant needs a name",
			"tenants[0].accounts[0].name: required: every account needs a name",
			`tenants[1].name: "bad/name": use 1-63 letters`,
		}},
		{file: "duplicate_names.yaml", want: []string{
			`duplicate_names.yaml:7:16: tenants[0].accounts[1].name: account name "prod" is already used on line 6`,
			`duplicate_names.yaml:8:11: tenants[1].name: tenant name "acme" is already used on line 4`,
		}},
		{file: "bad_port.yaml", getenv: withPassword, want: []string{"bad_port.yaml:6:9: guest_access.port: 70000 is not a TCP port"}},
		{file: "port_string.yaml", getenv: withPassword, want: []string{
			`guest_access.port: must be an integer, got "winrm"`,
			`guest_access.https: must be true or false, got "yes please"`,
		}},
		{file: "bad_zone.yaml", is: nil, want: []string{
			"bad_zone.yaml:6:9: tenants[0].accounts[0] (acme/prod): zones: \"xx9z\" is not a sakura zone; valid zones are is1a, is1b, is1c, tk1a, tk1b",
		}},
		{file: "unknown_provider.yaml", want: []string{
			`tenants[0].accounts[0].provider: unknown provider "gcp"; valid providers are aws, azure, sakura, sim`,
			"tenants[0].accounts[1].provider: required: one of aws, azure, sakura, sim",
		}},
		{file: "bad_options.yaml", is: errBadOption, want: []string{
			"tenants[0].accounts[0] (acme/prod): options.colour: bad option: unknown key",
			"tenants[0].accounts[1].options: must be a mapping of sim options",
		}},
		{file: "password_env_unset.yaml", getenv: env(nil), want: []string{
			"password_env_unset.yaml:5:17: guest_access.password_env: environment variable FIXFLEET_WINRM_PASSWORD is not set or is empty; export it with the WinRM password of Administrator, or use password_file",
		}},
		{file: "password_env_unset.yaml", getenv: env(map[string]string{"FIXFLEET_WINRM_PASSWORD": ""}), want: []string{"FIXFLEET_WINRM_PASSWORD is not set or is empty"}},
		{file: "password_env_value.yaml", want: []string{"password_env_value.yaml:5:17: guest_access.password_env: not an environment variable name", "give the variable's name, not the password"}},
		{file: "password_both.yaml", getenv: withPassword, want: []string{"guest_access: set either password_env or password_file, not both"}},
		{file: "password_none.yaml", want: []string{"guest_access.username: required", "guest_access: set password_env"}},
		{file: "password_file_missing.yaml", want: []string{"guest_access.password_file: cannot read", filepath.Join("testdata", "secrets", "winrm.txt"), "create it"}},
		{file: "password_file_empty.yaml", want: []string{"guest_access.password_file:", "empty_password.txt is empty"}},
		{file: "bad_proxy.yaml", getenv: withPassword, want: []string{"guest_access.proxy: must be host:port of an HTTP CONNECT proxy, without scheme or credentials"}},
		{file: "keys_missing.yaml", want: []string{"keys.bitlocker_csv: BitLocker key file", filepath.Join("testdata", "escrow", "keys.csv"), "no such file"}},
		{file: "keys_invalid.yaml", want: []string{"keys.bitlocker_csv:", "keys_bad.csv:2: key ID", "keys_bad.csv:6:"}},
		{file: "tenants_missing.yaml", want: []string{"tenants_missing.yaml:3:10: tenants: required"}},
		{file: "accounts_missing.yaml", want: []string{"tenants[0].accounts: required: list at least one account"}},
		{file: "policy_not_mapping.yaml", want: []string{"policy_not_mapping.yaml:3:9: policy: must be a mapping"}},
		{file: "zones_bad.yaml", want: []string{
			"tenants[0].accounts[0].zones: must be a list of strings",
			`tenants[0].accounts[1].zones[1]: "is1a" is listed twice`,
			"tenants[0].accounts[1].zones[2]: must not be empty",
		}},
		{file: "many_errors.yaml", getenv: withPassword, want: []string{
			"version: 3 is not supported",
			"incident: set either profile or profile_file, not both",
			"guest_access.port: 0 is not a TCP port",
			`tenants[0].accounts[0] (acme/prod): zones: "xx1a" is not a sakura zone`,
			"tenants[0].accounts[1].zone: unknown key",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			getenv := tt.getenv
			if getenv == nil {
				getenv = env(nil)
			}
			c, err := Load(filepath.Join("testdata", tt.file), fakeRegistry{}, getenv)
			if err == nil {
				t.Fatalf("want error, got %+v", c)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error lacks %q:\n%s", w, msg)
				}
			}
			for _, leak := range []string{password, filePassword, "Tr0ub4dor", "hunter2", "user:pw"} {
				if strings.Contains(msg, leak) {
					t.Errorf("error leaks %q:\n%s", leak, msg)
				}
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("errors.Is(%v) = false", tt.is)
			}
		})
	}
}

func TestLoadFull(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "full.yaml"), fakeRegistry{}, withPassword)
	if err != nil {
		t.Fatal(err)
	}
	if c.Incident.Name != inventory.CrowdStrike20240719 || c.IncidentSource != "built-in" {
		t.Errorf("incident: %+v from %s", c.Incident.Name, c.IncidentSource)
	}
	if c.PolicyNode == nil || c.PolicyNode.Kind != yaml.MappingNode || c.PolicyNode.Line != 6 {
		t.Fatalf("policy node: %+v", c.PolicyNode)
	}
	var pol struct {
		Strategies []string `yaml:"strategies"`
		Canary     int      `yaml:"canary"`
	}
	if err := c.PolicyNode.Decode(&pol); err != nil || len(pol.Strategies) != 4 || pol.Canary != 5 {
		t.Errorf("policy decode: %v %+v", err, pol)
	}
	if c.Keys == nil || c.Keys.Len() != 3 || c.KeysFile != filepath.Join("testdata", "keys.csv") {
		t.Errorf("keys: %v %q", c.Keys.IDs(), c.KeysFile)
	}
	if !c.Keys.HasKey("{1a2b3c4d-0000-4000-8000-00000000000a}") {
		t.Error("key not found")
	}
	g := c.Guest
	if !g.Configured() || g.Username != "Administrator" || g.Password.Reveal() != password ||
		g.Port != 5985 || g.HTTPS || g.Proxy != "bastion.example.com:3128" ||
		g.PasswordSource != "environment variable FIXFLEET_WINRM_PASSWORD" {
		t.Errorf("guest: %+v", g)
	}
	if s := fmt.Sprintf("%+v %#v", c, c.Guest); strings.Contains(s, password) {
		t.Errorf("config printing leaks the password: %s", s)
	}
	accts := c.Accounts()
	want := []string{"acme/prod (sakura)", "acme/aws-prod (aws)", "globex/prod (azure)"}
	if len(accts) != len(want) {
		t.Fatalf("accounts: %v", accts)
	}
	for i, a := range accts {
		if a.String() != want[i] {
			t.Errorf("account %d = %s, want %s", i, a, want[i])
		}
	}
	if z := accts[0].Zones; len(z) != 2 || z[0] != "is1a" || z[1] != "tk1b" {
		t.Errorf("zones: %v", z)
	}
	if accts[0].Options == nil || accts[0].Options.Kind != yaml.MappingNode {
		t.Error("options node not kept")
	}
	if accts[1].Zones != nil || len(accts[1].Regions) != 1 || accts[2].Options != nil {
		t.Errorf("aws/azure account: %+v %+v", accts[1], accts[2])
	}
	if len(c.Tenants) != 2 || c.Tenants[1].Name != "globex" {
		t.Errorf("tenants: %+v", c.Tenants)
	}
}

func TestLoadValidVariants(t *testing.T) {
	tests := []struct {
		file  string
		check func(t *testing.T, c *Config)
	}{
		{"minimal.yaml", func(t *testing.T, c *Config) {
			if c.Guest.Configured() || c.Keys != nil || c.PolicyNode != nil || len(c.Accounts()) != 1 {
				t.Errorf("minimal: %+v", c)
			}
		}},
		{"profile_file.yaml", func(t *testing.T, c *Config) {
			if c.Incident.Name != "acme-edr-2025-01" || c.IncidentSource != filepath.Join("testdata", "incident.yaml") {
				t.Errorf("incident: %+v", c.Incident)
			}
			if c.Guest.Password.Reveal() != filePassword || c.Guest.Port != DefaultWinRMHTTPSPort || !c.Guest.HTTPS {
				t.Errorf("guest: %+v", c.Guest)
			}
		}},
		{"anchors.yaml", func(t *testing.T, c *Config) {
			a := c.Accounts()
			if len(a) != 2 || len(a[1].Zones) != 2 || a[1].Zones[1] != "is1b" {
				t.Errorf("aliases: %+v", a)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", tt.file), fakeRegistry{}, env(nil))
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, c)
		})
	}
}

func TestFieldErrorsAreStructured(t *testing.T) {
	_, err := Load(filepath.Join("testdata", "unknown_key_account.yaml"), fakeRegistry{}, env(nil))
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Fatalf("not a FieldError: %T %v", err, err)
	}
	if fe.Path != "tenants[0].accounts[1].zone" || fe.Line != 11 || fe.Column != 9 {
		t.Errorf("got %+v", fe)
	}
}

func TestRealRegistrySatisfiesValidator(t *testing.T) {
	var _ Validator = providers.NewRegistry()
}

func TestParseInMemory(t *testing.T) {
	src := "version: 1\nincident: {profile: crowdstrike-2024-07-19}\ntenants: [{name: t, accounts: [{name: a, provider: sim}]}]\n"
	c, err := Parse([]byte(src), "inline", ".", fakeRegistry{}, nil)
	if err != nil || len(c.Accounts()) != 1 {
		t.Fatalf("%v %+v", err, c)
	}
	if _, err := Parse([]byte(src), "inline", ".", nil, nil); err == nil {
		t.Error("nil registry: want error")
	}
}

// TestDocsExampleParses keeps docs/config.md's complete example valid.
func TestDocsExampleParses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "config.md"))
	if err != nil {
		t.Skipf("docs not present: %v", err)
	}
	doc := string(b)
	i := strings.Index(doc, "## A complete example")
	if i < 0 {
		t.Fatal("docs/config.md has no complete example section")
	}
	doc = doc[i:]
	start := strings.Index(doc, "```yaml\n")
	end := strings.Index(doc[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no yaml block in the complete example")
	}
	example := doc[start+8 : start+8+end]
	// Relative paths resolve against testdata, which holds keys.csv.
	getenv := env(map[string]string{"FIXFLEET_WINRM_PASSWORD": password,
		"FIXFLEET_SLACK_WEBHOOK": "https://hooks.slack.example/services/T0/B0/X", "FIXFLEET_TEAMS_WEBHOOK": "https://teams.webhook.example/X"})
	c, err := Parse([]byte(example), "docs/config.md", "testdata", fakeRegistry{}, getenv)
	if err != nil {
		t.Fatalf("the documented example does not load:\n%v", err)
	}
	if len(c.Accounts()) != 3 || c.PolicyNode == nil || c.Keys == nil || !c.Guest.Configured() || len(c.Notify) != 2 {
		t.Errorf("example parsed incompletely: %+v", c)
	}
}
