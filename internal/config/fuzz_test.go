package config

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fuzzPassword and fuzzFilePassword are the WinRM passwords FuzzParse's
// configs can reach (an environment variable, a password file). They are
// short on purpose: a library that quotes the first bytes of a value would
// quote all of them.
const (
	fuzzPassword     = "pw+Env7"
	fuzzFilePassword = "pw+Fil7"
)

// FuzzParse: Parse never panics; no error contains a WinRM password or a
// BitLocker recovery key the config can reach; an accepted config holds
// only valid, unique names, known providers, a valid incident profile and a
// usable port.
func FuzzParse(f *testing.F) {
	// Seeds: testdata/fuzz/FuzzParse, made from testdata/*.yaml.
	// The config's files live in a copy of testdata whose password file
	// holds fuzzFilePassword.
	dir := f.TempDir()
	files, _ := filepath.Glob("testdata/*")
	for _, s := range files {
		if st, err := os.Stat(s); err != nil || st.IsDir() {
			continue
		}
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(s)), b, 0o600); err != nil {
			f.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "winrm_password.txt"), []byte(fuzzFilePassword+"\n"), 0o600); err != nil {
		f.Fatal(err)
	}
	keyFile, err := os.ReadFile(filepath.Join(dir, "keys.csv"))
	if err != nil {
		f.Fatal(err)
	}
	secrets := []string{fuzzPassword, fuzzFilePassword}
	for _, line := range strings.Split(string(keyFile), "\n") {
		if _, key, ok := strings.Cut(line, ","); ok && strings.Count(key, "-") == 7 {
			secrets = append(secrets, strings.TrimSpace(key)[:13]) // two groups are already too many to show
		}
	}
	getenv := func(string) string { return fuzzPassword }
	reg := fakeRegistry{}

	f.Fuzz(func(t *testing.T, data []byte) {
		// Paths a config may name are read: keep the fuzzer away from
		// devices and kernel files (/dev/zero would never end), including
		// through YAML escapes.
		for _, s := range []string{"dev", "proc", "sys", `\`} {
			if bytes.Contains(data, []byte(s)) {
				t.Skip()
			}
		}
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) {
				t.Skip() // a config that holds the secret may quote itself
			}
		}
		c, err := Parse(data, "fleet.yaml", dir, reg, getenv)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and an error: %v", err)
			}
			msg := err.Error()
			for _, s := range secrets {
				if strings.Contains(msg, s) {
					t.Fatalf("error contains a secret (%q...): %s", s[:3], msg)
				}
			}
			if !strings.Contains(msg, "fleet.yaml") {
				t.Fatalf("error does not name the file: %s", msg)
			}
			return
		}
		if err := c.Incident.Validate(); err != nil {
			t.Fatalf("accepted config with an invalid incident profile: %v", err)
		}
		if c.Guest.Configured() && (c.Guest.Password.IsZero() || c.Guest.Port < 1 || c.Guest.Port > 65535) {
			t.Fatalf("accepted guest access without a password or with port %d", c.Guest.Port)
		}
		if len(c.Tenants) == 0 {
			t.Fatal("accepted config without tenants")
		}
		tenants := map[string]bool{}
		for _, tn := range c.Tenants {
			if !nameRE.MatchString(tn.Name) || tenants[tn.Name] {
				t.Fatalf("accepted tenant name %q (invalid or repeated)", tn.Name)
			}
			tenants[tn.Name] = true
			if len(tn.Accounts) == 0 {
				t.Fatalf("accepted tenant %q without accounts", tn.Name)
			}
			accounts := map[string]bool{}
			for _, a := range tn.Accounts {
				if !nameRE.MatchString(a.Name) || accounts[a.Name] {
					t.Fatalf("accepted account name %q (invalid or repeated)", a.Name)
				}
				accounts[a.Name] = true
				if !slices.Contains(reg.Names(), a.Provider) || a.Tenant != tn.Name {
					t.Fatalf("accepted account %+v", a)
				}
			}
		}
	})
}
