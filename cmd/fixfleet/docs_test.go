package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/internal/config"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/source"
)

// TestDocsConfigSnippets runs every fleet.yaml snippet of the docs (a yaml
// block with tenants: or version:) through the validator `plan` uses:
// config.Load's parser with this build's providers, then the policy. A
// fragment gets the version and incident lines it leaves out; every
// variable it names holds an https URL (a webhook wants one; a credential
// takes any text); files it names exist (empty) beside it.
func TestDocsConfigSnippets(t *testing.T) {
	files, _ := filepath.Glob("../../docs/*.md")
	more, _ := filepath.Glob("../../docs/*/*.md")
	files = append(append(files, more...), "../../README.md")
	block := regexp.MustCompile("(?s)```yaml\n(.*?)```")
	fileRef := regexp.MustCompile(`(?m)(?:_file|_csv): *(\S+)`)
	n := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range block.FindAllSubmatchIndex(b, -1) {
			text := string(b[m[2]:m[3]])
			line := strings.Count(string(b[:m[0]]), "\n") + 1
			if !regexp.MustCompile(`(?m)^(tenants|version|accounts):`).MatchString(text) || strings.Contains(text, "  - ...") {
				continue // not a fleet.yaml (an incident profile, a fragment of another file)
			}
			n++
			name := fmt.Sprintf("%s:%d", filepath.Base(f), line)
			t.Run(name, func(t *testing.T) {
				if !strings.Contains(text, "version:") {
					text = "version: 1\n" + text
				}
				if !strings.Contains(text, "incident:") {
					text += "incident:\n  profile: crowdstrike-2024-07-19\n"
				}
				dir := t.TempDir()
				for _, r := range fileRef.FindAllStringSubmatch(text, -1) {
					p := filepath.Join(dir, r[1])
					if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(p, []byte(stub(r[1])), 0o600); err != nil {
						t.Fatal(err)
					}
				}
				cfg, err := config.Parse([]byte(text), name, dir, source.Registry(), func(string) string { return "https://example.invalid/set" })
				if err != nil {
					t.Fatalf("%s does not pass the config validator: %v\n%s", name, err, text)
				}
				if _, err := policy.Parse(cfg.PolicyNode); err != nil {
					t.Errorf("%s: policy: %v", name, err)
				}
			})
		}
	}
	if n < 5 {
		t.Errorf("found %d fleet.yaml snippets in the docs, expected at least 5: is the glob right?", n)
	}
}

// stub is the content of a file a snippet names: a keys CSV header, a
// password, or nothing.
func stub(name string) string {
	switch {
	case strings.HasSuffix(name, ".csv"):
		return "key_id,recovery_key\n"
	case strings.Contains(name, "password"):
		return "secret\n"
	}
	return ""
}
