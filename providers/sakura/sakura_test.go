package sakura

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sacloud/iaas-api-go"
	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/providers"
)

func node(t *testing.T, doc string) *yaml.Node {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(doc), &n); err != nil {
		t.Fatal(err)
	}
	return &n
}

func TestParseOptions(t *testing.T) {
	cases := []struct {
		doc, err string
	}{
		{"profile: prod\nrate: 2.5\nburst: 4\npoll: 10s\nclient_retries: 0\napi_root_url: http://127.0.0.1:1/cloud/zone/", ""},
		{"token: abc", `unknown key "token"; valid keys are api_root_url, burst, client_retries, poll_interval, profile, rate`},
		{"poll_interval: 2s", ""},
		{"poll_interval: soon", "options.poll_interval"},
		{"rate: -1", "options.rate"},
		{"api_root_url: ftp://x", "options.api_root_url"},
		{"profile: ../etc", "options.profile"},
		{"- a", "must be a mapping"},
	}
	for _, c := range cases {
		_, err := ParseOptions(node(t, c.doc))
		if c.err == "" && err != nil || c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)) {
			t.Errorf("%q: error %v, want %q", c.doc, err, c.err)
		}
	}
	o, _ := ParseOptions(node(t, "api_root_url: http://127.0.0.1:1/cloud/zone/"))
	if o.APIRootURL != "http://127.0.0.1:1/cloud/zone" || o.Rate != 5 {
		t.Errorf("options %+v", o)
	}
}

func TestValidate(t *testing.T) {
	if err := validate(providers.Account{Provider: Name, Zones: []string{"is1a", "tk1v"}}); err != nil {
		t.Error(err)
	}
	err := validate(providers.Account{Provider: Name, Zones: []string{"us-east-1a"}})
	if err == nil || !strings.Contains(err.Error(), "is1a, is1b, is1c, tk1a, tk1b, tk1v") {
		t.Errorf("bad zone: %v", err)
	}
}

func TestCredentials(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, ".usacloud", "prod"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ".usacloud", "prod", "config.json"),
		[]byte(`{"AccessToken":"tok-p","AccessTokenSecret":"sec-p","Zone":"is1a","APIRootURL":"http://127.0.0.1:9/cloud/zone"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	envOf := func(m map[string]string) providers.Env {
		return providers.Env{Getenv: func(k string) string { return m[k] }}
	}
	cases := []struct {
		name     string
		o        Options
		env      map[string]string
		tok, err string
	}{
		{"environment", Options{}, map[string]string{EnvAccessToken: "tok-e", EnvAccessTokenSecret: "sec-e"}, "tok-e", ""},
		{"profile", Options{Profile: "prod"}, map[string]string{"SAKURACLOUD_PROFILE_DIR": dir, EnvAccessToken: "tok-e", EnvAccessTokenSecret: "sec-e"}, "tok-p", ""},
		{"missing", Options{}, map[string]string{EnvAccessToken: "tok-e"}, "", "set SAKURACLOUD_ACCESS_TOKEN and SAKURACLOUD_ACCESS_TOKEN_SECRET"},
		{"no profile", Options{Profile: "dev"}, map[string]string{"HOME": dir}, "", `options.profile "dev": cannot read`},
	}
	for _, c := range cases {
		tok, sec, _, err := credentials(c.o, envOf(c.env))
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: error %v, want %q", c.name, err, c.err)
			}
			if err != nil && (strings.Contains(err.Error(), "tok-") || strings.Contains(err.Error(), "sec-")) {
				t.Errorf("%s: error names a credential: %v", c.name, err)
			}
			continue
		}
		if err != nil || tok != c.tok || sec == "" {
			t.Errorf("%s: got %q, %v; want %q", c.name, tok, err, c.tok)
		}
	}
}

func TestClassify(t *testing.T) {
	u, _ := url.Parse("https://secure.sakura.ad.jp/cloud/zone/is1a/api/cloud/1.1/server/1")
	cases := []struct {
		err   error
		class error
	}{
		{iaas.NewAPIError("GET", u, 404, &iaas.APIErrorResponse{ErrorCode: "not_found"}), providers.ErrNotFound},
		{iaas.NewAPIError("PUT", u, 409, &iaas.APIErrorResponse{ErrorCode: "conflict"}), providers.ErrConflict},
		{iaas.NewAPIError("GET", u, 429, &iaas.APIErrorResponse{}), providers.ErrThrottled},
		{iaas.NewAPIError("GET", u, 503, &iaas.APIErrorResponse{}), providers.ErrUnavailable},
		{iaas.NewAPIError("GET", u, 403, &iaas.APIErrorResponse{}), providers.ErrPermanent},
		{errors.New("read tcp: connection reset by peer"), providers.ErrUnavailable},
	}
	for _, c := range cases {
		err := classify("Op", "server 1", c.err)
		if !errors.Is(err, c.class) || !strings.Contains(err.Error(), "server 1") {
			t.Errorf("%v: classified %v, want %v naming the server", c.err, err, c.class)
		}
	}
	if !errors.Is(classify("Op", "x", context.Canceled), context.Canceled) {
		t.Error("a cancelled context must stay one")
	}
}
