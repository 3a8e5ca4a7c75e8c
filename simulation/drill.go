package simulation

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// WriteDrill writes what a drill against a served world needs, so that the
// ordinary fleet.yaml path (not --sim-endpoint) is exercised: fleet.yaml
// (its accounts opened as b's cloud face, guests reached through the
// world's WinRM gateway), keys.csv (the escrowed BitLocker keys), the WinRM
// password file and an env file with the cloud credentials the face
// accepts. Secret files are written readable by the owner only. These are
// a simulator's test credentials, never a real fleet's. The simulator's own
// face is not a fleet.yaml provider: an *InputError.
func (b *Backend) WriteDrill(dir string) error {
	if b.provider == FaceSim {
		return badOption("drill-dir", errors.New("needs --face sakura, aws or azure: the simulator's own face is not a fleet.yaml provider (use --sim-endpoint)"))
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("drill directory %s: %w", dir, err)
	}
	var keys strings.Builder
	keys.WriteString("key_id,recovery_key\n")
	ids := make([]string, 0, len(b.keys))
	for id := range b.keys {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		fmt.Fprintf(&keys, "%s,%s\n", id, b.keys[id].Reveal())
	}
	var env strings.Builder
	env.WriteString("# Test credentials of a simulated world (fixfleet sim serve); never real ones.\n")
	byTenant := map[string][]any{}
	var tenants []string
	envKeys := []string{"SAKURACLOUD_ACCESS_TOKEN", "SAKURACLOUD_ACCESS_TOKEN_SECRET", "SAKURACLOUD_PROFILE_DIR", simAWSKeyEnv, simAWSSecretEnv}
	for _, k := range slices.Sorted(maps.Keys(simAzureEnv)) {
		envKeys = append(envKeys, k)
	}
	for i, name := range b.accounts {
		a := map[string]any{"name": name, "provider": b.provider}
		acct := b.accountOf(name)
		if i > 0 {
			envKeys = append(envKeys, fmt.Sprintf("%s_%d", simAWSKeyEnv, i+1))
		}
		if _, ok := byTenant[acct.Tenant]; !ok {
			tenants = append(tenants, acct.Tenant)
		}
		if len(acct.Zones) > 0 {
			a["zones"] = acct.Zones
		}
		if len(acct.Regions) > 0 {
			a["regions"] = acct.Regions
		}
		if acct.Options != nil {
			a["options"] = acct.Options
		}
		byTenant[acct.Tenant] = append(byTenant[acct.Tenant], a)
	}
	var tenantList []any
	for _, t := range tenants {
		tenantList = append(tenantList, map[string]any{"name": t, "accounts": byTenant[t]})
	}
	for _, k := range envKeys {
		if v := b.getenv(k); v != "" {
			fmt.Fprintf(&env, "export %s=%s\n", k, v)
		}
	}
	cfg := map[string]any{
		"version":  1,
		"incident": map[string]any{"profile": b.incident.Name},
		"keys":     map[string]any{"bitlocker_csv": "keys.csv"},
		"guest_access": map[string]any{
			"username": b.user, "password_file": "winrm-password", "proxy": b.gateway,
		},
		"tenants": tenantList,
	}
	y, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	for _, f := range []struct {
		name string
		data string
		mode os.FileMode
	}{
		{"fleet.yaml", "# A drill against a simulated world served by `fixfleet sim serve`.\n" + string(y), 0o644},
		{"keys.csv", keys.String(), 0o600},
		{"winrm-password", b.password.Reveal() + "\n", 0o600},
		{"env", env.String(), 0o600},
	} {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), f.mode); err != nil {
			return fmt.Errorf("drill directory %s: %w", dir, err)
		}
	}
	return nil
}
