// Package policy is the operator's remediation policy: which strategies may
// run and in what order, how far fixfleet may go (data loss, helpers of
// another Windows release, forced stops), how much it does at once, and
// when it brakes.
//
// A policy is read from the `policy:` section of fleet.yaml with Parse,
// strictly over Default: keys left out keep their defaults, unknown keys and
// invalid values are errors naming the field path (e.g.
// "policy.reboot_retry.max_restarts") and the valid keys or values.
package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Strategy names a remediation strategy.
type Strategy string

// The remediation strategies, cheapest first.
const (
	// RebootRetry restarts a boot-looping VM a bounded number of times,
	// stopping as soon as it comes up healthy.
	RebootRetry Strategy = "reboot-retry"
	// RaceBoot deletes the bad files over WinRM in the short window after
	// each boot in which a crashing VM's WinRM answers.
	RaceBoot Strategy = "race-the-boot"
	// DeleteFile deletes the bad files over WinRM on a VM in Safe Mode,
	// clears the safe-boot flag and restarts it.
	DeleteFile Strategy = "delete-file"
	// HelperMount repairs the OS disk offline on a helper VM.
	HelperMount Strategy = "helper-mount"
	// CopyAndSwap repairs a copy of the OS disk on a helper VM and swaps
	// it in, where an OS disk cannot be detached (Azure).
	CopyAndSwap Strategy = "copy-and-swap"
	// CrossZone repairs a copy of the OS disk on a helper in another zone
	// of the VM's region, where the VM's own zone has no fitting helper
	// image, and brings the repaired copy back as the VM's boot disk.
	CrossZone Strategy = "cross-zone-mount"
	// SafeModeBoot sets the safe-boot flag in the OS disk's BCD store on
	// a helper (no BitLocker key needed), boots the VM into Safe Mode with
	// Networking and repairs it there over WinRM: for a BitLocker disk
	// whose recovery key is nowhere.
	SafeModeBoot Strategy = "safe-mode-boot"
	// RestoreBackup swaps in a disk restored from the newest pre-incident
	// backup; it loses data written since that backup.
	RestoreBackup Strategy = "restore-backup"
)

// Strategies lists every remediation strategy in the default order.
var Strategies = []Strategy{RebootRetry, RaceBoot, DeleteFile, HelperMount, CopyAndSwap, CrossZone, SafeModeBoot, RestoreBackup}

// HelperVersion says which helper releases helper-mount may use.
type HelperVersion string

// Helper version rules.
const (
	// HelperSame allows only a helper of the same Windows release as the VM.
	HelperSame HelperVersion = "same"
	// HelperAny also allows a helper of another release, flagged as a risk
	// (NTFS, BitLocker and registry-hive tools may differ).
	HelperAny HelperVersion = "any"
)

// StoppedVMs says what becomes of a VM the cloud reports powered off once
// its disk was checked and, where it carried the bad file, repaired
// offline on a helper.
type StoppedVMs string

// Stopped-VM rules.
const (
	// StoppedLeave (the default) puts the checked disk back and leaves the
	// VM powered off, repaired for its next start: someone stopped it, and
	// starting a server nobody asked for (a standby, a decommissioned or
	// licence-bound one) is a change fixfleet has no mandate for. The
	// repair is then verified offline (the bad files deleted, the
	// identity verified), not by a boot.
	StoppedLeave StoppedVMs = "leave-stopped"
	// StoppedStart starts the VM once its disk is back, and verifies the
	// boot as for a running VM.
	StoppedStart StoppedVMs = "start"
)

// StartsStopped reports whether a stopped VM is started after its disk
// was checked offline. An empty value (a plan written before the setting
// existed) is StoppedLeave.
func (p Policy) StartsStopped() bool { return p.StoppedVMs == StoppedStart }

// RebootRetryConfig configures the reboot-retry strategy.
type RebootRetryConfig struct {
	// MaxRestarts bounds the restarts of one VM (1..15; default 3).
	MaxRestarts int `json:"max_restarts" yaml:"max_restarts"`
	// LastResortRestarts bounds them instead where reboot-retry is the
	// VM's last resort: no later strategy in its chain is sure to repair
	// it (race-the-boot needs a window the restarts reveal; safe-mode-boot
	// may leave the VM in Safe Mode, where restarts no longer help).
	// MaxRestarts..15; default 15, Microsoft's advice for the July 2024
	// incident ("reboot up to 15 times"). 0 (a plan written before the
	// setting): MaxRestarts.
	LastResortRestarts int `json:"last_resort_restarts,omitempty" yaml:"last_resort_restarts"`
}

// LastResort is the restart budget of a VM for which reboot-retry is the
// last resort.
func (c RebootRetryConfig) LastResort() int { return max(c.LastResortRestarts, c.MaxRestarts) }

// Concurrency bounds how many VMs are worked on at once. PerAccount is a
// ceiling: each account's VMs in flight are a window that starts at
// brake.WindowStart (or the ceiling, if lower), grows as the cloud
// answers and halves when it throttles (remediate/brake.Window);
// and no VM after the canary starts while the account's calls queue
// (remediate/apply.AdmitBacklog).
type Concurrency struct {
	Total      int `json:"total" yaml:"total"`             // whole run (default 1000)
	PerAccount int `json:"per_account" yaml:"per_account"` // per account, the window's ceiling (default 1000)
}

// Policy is the remediation policy.
type Policy struct {
	// Strategies are tried in this order among those eligible for a VM.
	Strategies  []Strategy        `json:"strategies" yaml:"strategies"`
	RebootRetry RebootRetryConfig `json:"reboot_retry" yaml:"reboot_retry"`
	// AllowDataLoss permits restore-backup (default false).
	AllowDataLoss bool `json:"allow_data_loss" yaml:"allow_data_loss"`
	// HelperVersion is "same" (default) or "any".
	HelperVersion HelperVersion `json:"helper_version" yaml:"helper_version"`
	Concurrency   Concurrency   `json:"concurrency" yaml:"concurrency"`
	// Canary is the number of VMs of the first wave (default 5, >= 1).
	Canary int `json:"canary" yaml:"canary"`
	// WaveSize is the number of VMs per later wave (default 100).
	WaveSize int `json:"wave_size" yaml:"wave_size"`
	// FailureThreshold stops new work when the failed share of finished
	// VMs passes it (0 < x <= 1; default 0.2).
	FailureThreshold float64 `json:"failure_threshold" yaml:"failure_threshold"`
	// ForceStop stops VMs without a guest shutdown (default false).
	ForceStop bool `json:"force_stop" yaml:"force_stop"`
	// StoppedVMs is what becomes of a powered-off VM whose disk was
	// checked offline: "leave-stopped" (default) or "start".
	StoppedVMs StoppedVMs `json:"stopped_vms,omitempty" yaml:"stopped_vms"`
	// APIErrorThreshold stops new work when the failed share of recent API
	// calls passes it (0 < x <= 1; default 0.5).
	APIErrorThreshold float64 `json:"api_error_threshold" yaml:"api_error_threshold"`
	// PlanMaxAgeMinutes is how old a plan apply accepts without
	// --allow-stale (default 60; 0: any age).
	PlanMaxAgeMinutes int `json:"plan_max_age_minutes" yaml:"plan_max_age_minutes"`
	// Tiers order the VMs by dependency (tiers.go): a tier's VMs start
	// once every VM of the tiers before it is fixed, healthy or left to a
	// person, or TierTimeoutMinutes after the tier before it started.
	Tiers []Tier `json:"tiers,omitempty" yaml:"tiers,omitempty"`
	// TierTimeoutMinutes is how long a tier may hold the next one back
	// (default 60; 0: until it is done).
	TierTimeoutMinutes int `json:"tier_timeout_minutes" yaml:"tier_timeout_minutes"`
}

// Default returns the default policy.
func Default() Policy {
	return Policy{
		Strategies:         slices.Clone(Strategies),
		RebootRetry:        RebootRetryConfig{MaxRestarts: 3, LastResortRestarts: 15},
		AllowDataLoss:      false,
		HelperVersion:      HelperSame,
		Concurrency:        Concurrency{Total: 1000, PerAccount: 1000},
		Canary:             5,
		WaveSize:           100,
		FailureThreshold:   0.2,
		ForceStop:          false,
		StoppedVMs:         StoppedLeave,
		APIErrorThreshold:  0.5,
		PlanMaxAgeMinutes:  60,
		TierTimeoutMinutes: 60,
	}
}

// Enabled reports whether s is in the policy's strategy list.
func (p Policy) Enabled(s Strategy) bool { return slices.Contains(p.Strategies, s) }

// Validate checks every field; the error lists every problem, each naming
// the field path and the valid values.
func (p Policy) Validate() error { return p.ValidateWith(Strategies) }

// ValidateWith is Validate where the valid strategies are known (the
// planner's registry).
func (p Policy) ValidateWith(known []Strategy) error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("policy.%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if len(p.Strategies) == 0 {
		bad("strategies", "at least one strategy is required; valid strategies are %s", strategyList(known))
	}
	seen := map[Strategy]bool{}
	for i, s := range p.Strategies {
		switch {
		case !slices.Contains(known, s):
			bad(fmt.Sprintf("strategies[%d]", i), "%q is not a strategy; valid strategies are %s", string(s), strategyList(known))
		case seen[s]:
			bad(fmt.Sprintf("strategies[%d]", i), "%q is listed twice", string(s))
		}
		seen[s] = true
	}
	if m := p.RebootRetry.MaxRestarts; m < 1 || m > 15 {
		bad("reboot_retry.max_restarts", "%d is out of range; valid values are 1 to 15", m)
	}
	if l, m := p.RebootRetry.LastResortRestarts, p.RebootRetry.MaxRestarts; l != 0 && (l < m || l > 15) {
		bad("reboot_retry.last_resort_restarts", "%d is out of range; valid values are reboot_retry.max_restarts (%d) to 15", l, m)
	}
	if p.HelperVersion != HelperSame && p.HelperVersion != HelperAny {
		bad("helper_version", "%q is not valid; valid values are %q (a helper of the VM's own Windows release) and %q (any release, flagged as a risk)",
			string(p.HelperVersion), HelperSame, HelperAny)
	}
	switch p.StoppedVMs {
	case "", StoppedLeave, StoppedStart: // "": a plan written before the setting, StoppedLeave
	default:
		bad("stopped_vms", "%q is not valid; valid values are %q (repair a powered-off VM's disk offline and leave it off) and %q (start it afterwards)",
			string(p.StoppedVMs), StoppedLeave, StoppedStart)
	}
	if p.Concurrency.Total < 1 {
		bad("concurrency.total", "%d must be at least 1", p.Concurrency.Total)
	}
	if p.Concurrency.PerAccount < 1 {
		bad("concurrency.per_account", "%d must be at least 1", p.Concurrency.PerAccount)
	}
	if p.Canary < 1 {
		bad("canary", "%d must be at least 1 (a canary wave always runs first)", p.Canary)
	}
	if p.WaveSize < 1 {
		bad("wave_size", "%d must be at least 1", p.WaveSize)
	}
	if f := p.FailureThreshold; !(f > 0 && f <= 1) {
		bad("failure_threshold", "%v must be greater than 0 and at most 1 (e.g. 0.2 = stop when 20%% of finished VMs failed)", f)
	}
	if f := p.APIErrorThreshold; !(f > 0 && f <= 1) {
		bad("api_error_threshold", "%v must be greater than 0 and at most 1 (e.g. 0.5)", f)
	}
	if p.PlanMaxAgeMinutes < 0 {
		bad("plan_max_age_minutes", "%d must be 0 (any age) or more", p.PlanMaxAgeMinutes)
	}
	p.validateTiers(bad)
	return errors.Join(errs...)
}

func strategyList(known []Strategy) string {
	names := make([]string, len(known))
	for i, s := range known {
		names[i] = string(s)
	}
	return strings.Join(names, ", ")
}

// field is one key of a YAML mapping: either a leaf decoded into target or
// a nested mapping.
type field struct {
	key    string
	target any
	nested []field
	// custom decodes the value itself (a list of mappings), given the
	// field path.
	custom func(v *yaml.Node, path string) error
}

func (p *Policy) fields() []field {
	return []field{
		{key: "strategies", target: &p.Strategies},
		{key: "reboot_retry", nested: []field{
			{key: "max_restarts", target: &p.RebootRetry.MaxRestarts},
			{key: "last_resort_restarts", target: &p.RebootRetry.LastResortRestarts},
		}},
		{key: "allow_data_loss", target: &p.AllowDataLoss},
		{key: "helper_version", target: &p.HelperVersion},
		{key: "concurrency", nested: []field{
			{key: "total", target: &p.Concurrency.Total},
			{key: "per_account", target: &p.Concurrency.PerAccount},
		}},
		{key: "canary", target: &p.Canary},
		{key: "wave_size", target: &p.WaveSize},
		{key: "failure_threshold", target: &p.FailureThreshold},
		{key: "force_stop", target: &p.ForceStop},
		{key: "stopped_vms", target: &p.StoppedVMs},
		{key: "api_error_threshold", target: &p.APIErrorThreshold},
		{key: "plan_max_age_minutes", target: &p.PlanMaxAgeMinutes},
		{key: "tiers", custom: func(v *yaml.Node, path string) error { return decodeTiers(v, path, &p.Tiers) }},
		{key: "tier_timeout_minutes", target: &p.TierTimeoutMinutes},
	}
}

// Parse decodes the `policy:` mapping node strictly over Default and
// validates the result. A nil node (or an empty document) gives Default.
// Errors name the field path ("policy.concurrency.total") and its line.
func Parse(node *yaml.Node) (Policy, error) {
	p := Default()
	if node != nil && node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return p, nil
		}
		node = node.Content[0]
	}
	if node == nil || (node.Kind == yaml.ScalarNode && node.Tag == "!!null") {
		return p, nil
	}
	if err := decode(node, "policy", p.fields()); err != nil {
		return Policy{}, err
	}
	if err := p.Validate(); err != nil {
		return Policy{}, err
	}
	return p, nil
}

func decode(node *yaml.Node, path string, fields []field) error {
	if node.Kind == yaml.AliasNode && node.Alias != nil {
		node = node.Alias
	}
	if node.Kind != yaml.MappingNode {
		return fmt.Errorf("%s (line %d): must be a mapping with keys %s", path, node.Line, keyList(fields))
	}
	var errs []error
	done := map[string]bool{}
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := node.Content[i], node.Content[i+1]
		at := path + "." + k.Value
		idx := slices.IndexFunc(fields, func(f field) bool { return f.key == k.Value })
		if idx < 0 {
			errs = append(errs, fmt.Errorf("%s (line %d): unknown key; valid keys are %s", at, k.Line, keyList(fields)))
			continue
		}
		if done[k.Value] {
			errs = append(errs, fmt.Errorf("%s (line %d): given twice", at, k.Line))
			continue
		}
		done[k.Value] = true
		f := fields[idx]
		if f.custom != nil {
			if err := f.custom(v, at); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if f.nested != nil {
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				continue // "reboot_retry:" with nothing: keep the defaults
			}
			if err := decode(v, at, f.nested); err != nil {
				errs = append(errs, err)
			}
			continue
		}
		if err := decodeLeaf(v, f.target); err != nil {
			errs = append(errs, fmt.Errorf("%s (line %d): %s", at, v.Line, err))
		}
	}
	return errors.Join(errs...)
}

// decodeLeaf decodes one value, requiring the YAML type the field needs so
// that 1.5 is not silently an int nor "yes" a string.
func decodeLeaf(v *yaml.Node, target any) error {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	want := ""
	switch target.(type) {
	case *int:
		if v.Kind != yaml.ScalarNode || v.Tag != "!!int" {
			want = "a whole number"
		}
	case *float64:
		if v.Kind != yaml.ScalarNode || (v.Tag != "!!int" && v.Tag != "!!float") {
			want = "a number"
		}
	case *bool:
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			want = "true or false"
		}
	case *HelperVersion, *StoppedVMs, *string:
		if v.Kind != yaml.ScalarNode || v.Tag != "!!str" {
			want = "a string"
		}
	case *[]Strategy:
		if v.Kind != yaml.SequenceNode {
			want = "a list of strategies, e.g. [reboot-retry, delete-file]"
		}
	}
	if want != "" {
		return fmt.Errorf("%s is not %s", describe(v), want)
	}
	if err := v.Decode(target); err != nil {
		return fmt.Errorf("%s cannot be read: %w", describe(v), err)
	}
	return nil
}

// describe shows a node briefly, for error messages.
func describe(v *yaml.Node) string {
	switch v.Kind {
	case yaml.ScalarNode:
		s := v.Value
		if len(s) > 40 {
			s = s[:40] + "..."
		}
		return fmt.Sprintf("%q", s)
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	}
	return "the value"
}

func keyList(fields []field) string {
	keys := make([]string, len(fields))
	for i, f := range fields {
		keys[i] = f.key
	}
	return strings.Join(keys, ", ")
}
