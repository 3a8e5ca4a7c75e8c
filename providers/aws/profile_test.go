package aws

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/providers"
)

// TestMissingProfileHint: a profile that is in no shared config file is
// named, with where it was looked for and how to create it, not the SDK's
// raw chain.
func TestMissingProfileHint(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	var opts yaml.Node
	if err := yaml.Unmarshal([]byte("profile: acme-missing"), &opts); err != nil {
		t.Fatal(err)
	}
	a := providers.Account{Tenant: "acme", Name: "prod", Provider: Name, Regions: []string{"ap-northeast-1"}, Options: opts.Content[0]}
	_, err := Open(t.Context(), a, providers.Env{Getenv: os.Getenv})
	if err == nil {
		t.Fatal("opened an account with a missing profile")
	}
	for _, want := range []string{`no AWS profile "acme-missing"`, "aws configure --profile acme-missing", "~/.aws/config"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v\ndoes not say %q", err, want)
		}
	}
}
