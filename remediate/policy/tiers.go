package policy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Tier is one dependency tier of the policy: the VMs whose tags match
// Selector. Tiers run in policy order (domain controllers before
// databases, say); VMs no tier selects form a last tier, RestTier. A VM
// matching several tiers is in the first.
type Tier struct {
	// Name names the tier in plans, events and reports.
	Name string `json:"name" yaml:"name"`
	// Selector is key=value[,key=value...] on the VM's tags, all of which
	// must hold (e.g. "role=dc").
	Selector string `json:"selector" yaml:"selector"`
}

// RestTier names the last tier: the VMs no policy tier selects.
const RestTier = "rest"

// tierName is what a tier's name may be: it shows in events and reports.
var tierName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)

// ParseSelector reads a tier selector, key=value[,key=value...], into
// the tags it requires.
func ParseSelector(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || k == "" || v == "":
			return nil, fmt.Errorf("%q is not key=value (e.g. role=dc or role=db,env=prod)", strings.TrimSpace(kv))
		case out[k] != "":
			return nil, fmt.Errorf("tag %q is given twice: a VM has one value per tag", k)
		}
		out[k] = v
	}
	return out, nil
}

// TierOf returns the 1-based tier of a VM with these tags: the first
// policy tier whose selector they match, else len(p.Tiers)+1 (RestTier).
// It returns 0 when the policy has no tiers.
func (p Policy) TierOf(tags map[string]string) int {
	if len(p.Tiers) == 0 {
		return 0
	}
	for i, t := range p.Tiers {
		want, err := ParseSelector(t.Selector)
		if err != nil {
			continue // Validate refuses it
		}
		match := true
		for k, v := range want {
			match = match && tags[k] == v
		}
		if match {
			return i + 1
		}
	}
	return len(p.Tiers) + 1
}

// TierNames lists the names of the policy's tiers followed by RestTier;
// empty when it has none.
func (p Policy) TierNames() []string {
	if len(p.Tiers) == 0 {
		return nil
	}
	out := make([]string, 0, len(p.Tiers)+1)
	for _, t := range p.Tiers {
		out = append(out, t.Name)
	}
	return append(out, RestTier)
}

// validateTiers checks the tiers and their timeout.
func (p Policy) validateTiers(bad func(field, format string, args ...any)) {
	seen := map[string]int{}
	for i, t := range p.Tiers {
		at := fmt.Sprintf("tiers[%d]", i)
		switch {
		case t.Name == "":
			bad(at+".name", "is required (e.g. domain-controllers)")
		case t.Name == RestTier:
			bad(at+".name", "%q is the name of the last tier (the VMs no tier selects); choose another", RestTier)
		case !tierName.MatchString(t.Name):
			bad(at+".name", "%q is not valid: use lower-case letters, digits, '-', '_' or '.' (at most 63)", t.Name)
		default:
			if j, dup := seen[t.Name]; dup {
				bad(at+".name", "%q is already the name of tiers[%d]", t.Name, j)
			}
			seen[t.Name] = i
		}
		if t.Selector == "" {
			bad(at+".selector", "is required: key=value on the VM's tags (e.g. role=dc)")
		} else if _, err := ParseSelector(t.Selector); err != nil {
			bad(at+".selector", "%v", err)
		}
	}
	if p.TierTimeoutMinutes < 0 {
		bad("tier_timeout_minutes", "%d must be 0 (wait until the tier before is done) or more", p.TierTimeoutMinutes)
	}
}

// decodeTiers reads `tiers:`, a list of {name, selector} mappings, each
// strictly.
func decodeTiers(v *yaml.Node, path string, tiers *[]Tier) error {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
		*tiers = nil
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		return fmt.Errorf("%s (line %d): %s is not a list of tiers, e.g. [{name: domain-controllers, selector: role=dc}]", path, v.Line, describe(v))
	}
	out := make([]Tier, len(v.Content))
	var errs []error
	for i, item := range v.Content {
		t := &out[i]
		if err := decode(item, fmt.Sprintf("%s[%d]", path, i), []field{
			{key: "name", target: &t.Name},
			{key: "selector", target: &t.Selector},
		}); err != nil {
			errs = append(errs, err)
		}
	}
	*tiers = out
	return errors.Join(errs...)
}
