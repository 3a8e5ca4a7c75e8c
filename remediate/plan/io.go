package plan

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// Write writes the plan as indented JSON.
func Write(w io.Writer, p *Plan) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(p); err != nil {
		return fmt.Errorf("write plan %s: %w", p.ID, err)
	}
	return nil
}

// Read decodes a plan strictly: unknown fields, trailing data, a missing or
// different version, and anything Validate rejects are errors that name the
// VM and field.
func Read(r io.Reader) (*Plan, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("read plan: empty document")
	}
	// The version first, so that another format fails on its version
	// rather than on its fields.
	var head struct {
		Version *string `json:"version"`
	}
	if err := json.Unmarshal(data, &head); err == nil && head.Version != nil && *head.Version != Version {
		return nil, fmt.Errorf("read plan: version: %q is not supported; this fixfleet reads %q", *head.Version, Version)
	}
	var p Plan
	if err := strictDecode(data, &p); err != nil {
		return nil, fmt.Errorf("read plan: %s%w", locate(data), err)
	}
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	return &p, nil
}

// strictDecode decodes exactly one JSON value with no unknown fields.
func strictDecode(data []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("unexpected data after the plan document")
	}
	return nil
}

// locate names the VM or wave a decoding error lies in ("vms[2] (key): "),
// or "" when it is elsewhere.
func locate(data []byte) string {
	var raw struct {
		VMs   []json.RawMessage `json:"vms"`
		Waves []json.RawMessage `json:"waves"`
	}
	if json.Unmarshal(data, &raw) != nil {
		return ""
	}
	for i, m := range raw.VMs {
		var v VMPlan
		if strictDecode(m, &v) != nil {
			var k struct {
				Key string `json:"key"`
			}
			_ = json.Unmarshal(m, &k)
			return fmt.Sprintf("vms[%d] (%s): ", i, k.Key)
		}
	}
	for i, m := range raw.Waves {
		var w Wave
		if strictDecode(m, &w) != nil {
			return fmt.Sprintf("waves[%d]: ", i)
		}
	}
	return ""
}

// Validate checks that the plan is complete and coherent, and that it only
// asks for what its own policy allows: a healthy VM has strategy none and is
// in no wave; a VM acted on is in exactly one wave and its strategy is
// enabled, applies to its state and has what it needs (restore-backup a
// backup and policy.allow_data_loss, helper-mount a helper image).
func (p *Plan) Validate() error { return p.ValidateWith(strategy.Default()) }

// ValidateWith is Validate against the strategies of reg.
func (p *Plan) ValidateWith(reg *strategy.Registry) error {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch p.Version {
	case Version:
	case "":
		add("version: missing; expected %q", Version)
	default:
		add("version: %q is not supported; this fixfleet reads %q", p.Version, Version)
	}
	if strings.TrimSpace(p.ID) == "" {
		add("id: missing")
	}
	if p.CreatedAt.IsZero() {
		add("created_at: missing")
	}
	if err := p.Incident.Validate(); err != nil {
		add("incident: %w", err)
	}
	if err := p.Policy.ValidateWith(reg.Names()); err != nil {
		errs = append(errs, err)
	}
	if p.VMs == nil {
		add("vms: missing")
	}
	index := map[string]int{}
	for i, v := range p.VMs {
		at := fmt.Sprintf("vms[%d]", i)
		if v.Key != "" {
			at += " (" + v.Key + ")"
		}
		if j, dup := index[v.Key]; dup && v.Key != "" {
			add("%s: key %q duplicates vms[%d]", at, v.Key, j)
		} else {
			index[v.Key] = i
		}
		errs = append(errs, v.validate(at, p.Policy, reg)...)
	}
	inWave := map[string]int{}
	for wi, w := range p.Waves {
		at := fmt.Sprintf("waves[%d]", wi)
		if w.Number != wi+1 {
			add("%s: number %d, expected %d", at, w.Number, wi+1)
		}
		if len(w.VMs) == 0 {
			add("%s: no VMs", at)
		}
		for _, k := range w.VMs {
			i, ok := index[k]
			switch {
			case !ok:
				add("%s: VM %q is not in vms", at, k)
			case inWave[k] != 0:
				add("%s: VM %s is already in wave %d", at, k, inWave[k])
			case !p.VMs[i].Acts():
				add("%s: VM %s has strategy %s and must not be in a wave", at, k, p.VMs[i].Strategy)
			case p.VMs[i].Wave != w.Number:
				add("vms[%d] (%s): wave %d, but waves[%d] lists it", i, k, p.VMs[i].Wave, wi)
			}
			if ok && inWave[k] == 0 {
				inWave[k] = w.Number
			}
		}
	}
	for i, v := range p.VMs {
		if v.Acts() && inWave[v.Key] == 0 && v.Key != "" {
			add("vms[%d] (%s): strategy %s but in no wave", i, v.Key, v.Strategy)
		}
		if !v.Acts() && v.Wave != 0 {
			add("vms[%d] (%s): strategy %s must have no wave (has %d)", i, v.Key, v.Strategy, v.Wave)
		}
	}
	p.validateTiers(add)
	return errors.Join(errs...)
}

func (v VMPlan) validate(at string, pol policy.Policy, reg *strategy.Registry) []error {
	var errs []error
	add := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(at+": "+format, args...))
	}
	for _, f := range []struct{ name, val string }{
		{"key", v.Key}, {"id", v.ID}, {"tenant", v.Tenant}, {"account", v.Account},
		{"provider", v.Provider}, {"zone", v.Zone},
	} {
		if strings.TrimSpace(f.val) == "" {
			add("%s: missing", f.name)
		}
	}
	if v.Key != "" && v.ID != "" && v.Key != v.Tenant+"/"+v.Account+"/"+v.ID {
		add("key %q does not match tenant/account/id %q", v.Key, v.Tenant+"/"+v.Account+"/"+v.ID)
	}
	if !v.State.ValidInPlan() {
		add("state %q is not valid; valid states are healthy, safe-mode, boot-loop, stopped, unknown", string(v.State))
	}
	unit, known := reg.Get(v.Strategy)
	if !known && v.Strategy != None && v.Strategy != Manual {
		all := append(append([]policy.Strategy{None}, reg.Names()...), Manual)
		add("strategy %q is not valid; valid strategies are %s", string(v.Strategy), strategyNames(all))
		return errs
	}
	planned := []strategy.Unit{}
	if known {
		planned = append(planned, unit)
	}
	for _, f := range v.Fallbacks {
		u, ok := reg.Get(f)
		if !ok || f == v.Strategy {
			add("fallback %q is not valid; valid fallbacks are %s, other than the strategy", string(f), strategyNames(reg.Names()))
			continue
		}
		planned = append(planned, u)
	}
	switch {
	case v.State == inventory.StateHealthy && v.Strategy != None:
		add("a healthy VM must have strategy none (has %s): fixfleet never touches a healthy VM", v.Strategy)
	case v.State != inventory.StateHealthy && v.State.ValidInPlan() && v.Strategy == None:
		add("strategy none is only for a healthy VM (state %s)", v.State)
	case v.State == inventory.StateUnknown && v.Strategy != Manual:
		add("a VM in state unknown must have strategy manual (has %s)", v.Strategy)
	}
	if v.Acts() {
		if !pol.Enabled(v.Strategy) {
			add("strategy %s is not enabled in the plan's policy.strategies", v.Strategy)
		}
		if v.State.ValidInPlan() && known && !slices.Contains(unit.Applies(), v.State) {
			add("strategy %s does not apply to a %s VM", v.Strategy, v.State)
		}
	}
	for _, u := range planned {
		n := u.Needs()
		if n.Backup && (v.Backup == nil || v.Backup.ID == "") {
			add("%s is planned but backup is missing", u.Name())
		}
		if n.Backup && !pol.AllowDataLoss {
			add("%s is planned but the plan's policy.allow_data_loss is false", u.Name())
		}
		switch {
		case n.Helper && (v.Helper == nil || v.Helper.ImageID == "" || v.Helper.Zone == ""):
			add("%s is planned but helper (zone, image_id) is missing", u.Name())
		case n.Helper && !v.Helper.SameRelease && pol.HelperVersion != policy.HelperAny:
			add("%s uses a helper of another Windows release but the plan's policy.helper_version is %q", u.Name(), pol.HelperVersion)
		case n.Helper && u.Name() == policy.CrossZone && (v.Helper.Zone == v.Zone || !v.Helper.CrossZone):
			add("%s is planned but its helper (zone %s) is not in another zone than the VM's (%s)", u.Name(), v.Helper.Zone, v.Zone)
		case n.Helper && u.Name() != policy.CrossZone && (v.Helper.Zone != v.Zone || v.Helper.CrossZone):
			add("%s is planned with a helper in zone %s, not the VM's zone %s: only %s reaches another zone", u.Name(), v.Helper.Zone, v.Zone, policy.CrossZone)
		}
	}
	if len(v.Reasons) == 0 {
		add("reasons: missing")
	}
	return errs
}
