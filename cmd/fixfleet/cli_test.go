package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// runCLI runs one command line in-process and returns its exit code and
// outputs.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

// TestConfigErrors: each broken config fails with exit code 2 and an error
// that names the culprit.
func TestConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		naming []string
	}{
		{name: "unreadable file", args: []string{"plan", "--config", "testdata/no-such-file.yaml"}, code: exitUsage,
			naming: []string{"testdata/no-such-file.yaml"}},
		{name: "unknown key", args: []string{"plan", "--config", "testdata/unknown-key.yaml"}, code: exitUsage,
			naming: []string{"unknown-key.yaml", "zone", "valid keys"}},
		{name: "bad zone", args: []string{"inventory", "--config", "testdata/bad-zone.yaml"}, code: exitUsage,
			naming: []string{"is9z", "is1a"}},
		{name: "missing credential reference", args: []string{"plan", "--config", "testdata/missing-credential.yaml"}, code: exitUsage,
			naming: []string{"FIXFLEET_TEST_UNSET_PASSWORD"}},
		{name: "bad policy value", args: []string{"plan", "--config", "testdata/bad-policy.yaml"}, code: exitUsage,
			naming: []string{"bad-policy.yaml", "max_restarts"}},
		{name: "provider not built says so", args: []string{"plan", "--config", "testdata/valid-sakura.yaml"}, code: exitProvider,
			naming: []string{"Sakura Cloud", "not built", "--sim"}},
		{name: "bad format", args: []string{"plan", "--sim", "--format", "xml"}, code: exitUsage,
			naming: []string{"--format", "xml", "json"}},
		{name: "bad mix", args: []string{"plan", "--sim", "--mix", "healthy=x"}, code: exitUsage,
			naming: []string{"--mix", "healthy"}},
		{name: "unknown flag", args: []string{"plan", "--vm", "3"}, code: exitUsage, naming: []string{"--vm"}},
		{name: "missing scenario", args: []string{"plan", "--sim", "--scenario", "testdata/nope.json"}, code: exitUsage,
			naming: []string{"testdata/nope.json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("FIXFLEET_TEST_UNSET_PASSWORD", "")
			code, _, stderr := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit code %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			for _, n := range tt.naming {
				if !strings.Contains(stderr, n) {
					t.Errorf("error does not name %q: %s", n, stderr)
				}
			}
		})
	}
}
