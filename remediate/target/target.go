// Package target is the operator's selection of what a command works on:
// tenants, accounts, VMs by ID or name (only, exclude) and VMs by tag
// (selector). Inventory, plan, apply and report all select the same way.
package target

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// Selector selects accounts and VMs. Its zero value selects everything.
// Within a field the values are alternatives (any one matches); the
// fields together must all hold, and Exclude wins over everything.
type Selector struct {
	// Tenants are tenant names.
	Tenants []string
	// Accounts are account names, or TENANT/ACCOUNT.
	Accounts []string
	// Only are VM IDs or names: nothing else is selected.
	Only []string
	// Exclude are VM IDs or names never selected.
	Exclude []string
	// Tags must all be on a VM, with these values (key=value,...).
	Tags map[string]string
}

// ParseTags parses a --selector value: key=value pairs separated by
// commas, each key once. Keys and values are matched exactly.
func ParseTags(s string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range strings.Split(s, ",") {
		kv = strings.TrimSpace(kv)
		if kv == "" {
			continue
		}
		k, v, ok := strings.Cut(kv, "=")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		switch {
		case !ok || k == "":
			return nil, fmt.Errorf("%q is not key=value (e.g. role=web,env=prod)", kv)
		case out[k] != "" && out[k] != v:
			return nil, fmt.Errorf("tag %q is given twice (%q and %q): a VM has one value per tag", k, out[k], v)
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil, errors.New("no key=value pair (e.g. role=web,env=prod)")
	}
	return out, nil
}

// Empty reports whether s selects everything.
func (s Selector) Empty() bool {
	return len(s.Tenants) == 0 && len(s.Accounts) == 0 && len(s.Only) == 0 && len(s.Exclude) == 0 && len(s.Tags) == 0
}

// Account reports whether an account of tenant may hold selected VMs
// (the tenant and account filters).
func (s Selector) Account(tenant, account string) bool {
	if len(s.Tenants) > 0 && !slices.Contains(s.Tenants, tenant) {
		return false
	}
	if len(s.Accounts) == 0 {
		return true
	}
	return slices.Contains(s.Accounts, account) || slices.Contains(s.Accounts, tenant+"/"+account)
}

// SelectAccounts returns the accounts of as that s selects, in order.
func (s Selector) SelectAccounts(as []providers.Account) []providers.Account {
	var out []providers.Account
	for _, a := range as {
		if s.Account(a.Tenant, a.Name) {
			out = append(out, a)
		}
	}
	return out
}

// VM reports whether s selects the VM of tenant and account with this ID,
// name and tags.
func (s Selector) VM(tenant, account, id, name string, tags map[string]string) bool {
	named := func(list []string) bool {
		return slices.Contains(list, id) || (name != "" && slices.Contains(list, name))
	}
	if named(s.Exclude) || !s.Account(tenant, account) {
		return false
	}
	if len(s.Only) > 0 && !named(s.Only) {
		return false
	}
	for k, v := range s.Tags {
		if got, ok := tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// InventoryVM is VM for an inventory VM.
func (s Selector) InventoryVM(v inventory.VM) bool {
	return s.VM(v.Tenant, v.Account, v.ID, v.Name, v.Tags)
}

// Error is a selection that cannot be what the operator meant.
type Error struct{ Err error }

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Check reports, as an *Error, Tenants or Accounts naming none of the
// known accounts (a typo would otherwise select nothing, silently).
func (s Selector) Check(known []providers.Account) error {
	var errs []error
	tenants, accounts := map[string]bool{}, map[string]bool{}
	for _, a := range known {
		tenants[a.Tenant], accounts[a.Name], accounts[a.Tenant+"/"+a.Name] = true, true, true
	}
	for _, t := range s.Tenants {
		if !tenants[t] {
			errs = append(errs, fmt.Errorf("--tenant %q: no such tenant; tenants are %s", t, strings.Join(sorted(tenants), ", ")))
		}
	}
	for _, a := range s.Accounts {
		if !accounts[a] {
			errs = append(errs, fmt.Errorf("--account %q: no such account; accounts are %s", a, strings.Join(sortedAccounts(known), ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return &Error{err}
	}
	return nil
}

// Unmatched returns the Only names (not also excluded) that match none of
// vms (the selected ones), so that a typo is reported instead of silently
// selecting nothing.
func (s Selector) Unmatched(vms []inventory.VM) []string {
	var out []string
	for _, x := range s.Only {
		if !slices.Contains(s.Exclude, x) && !slices.ContainsFunc(vms, func(v inventory.VM) bool { return v.ID == x || v.Name == x }) {
			out = append(out, x)
		}
	}
	return out
}

// String describes the selection for people ("" when empty).
func (s Selector) String() string {
	var parts []string
	add := func(flag string, vs []string) {
		if len(vs) > 0 {
			parts = append(parts, flag+" "+strings.Join(vs, ","))
		}
	}
	add("--tenant", s.Tenants)
	add("--account", s.Accounts)
	add("--only", s.Only)
	add("--exclude", s.Exclude)
	if len(s.Tags) > 0 {
		var kv []string
		for _, k := range slices.Sorted(maps.Keys(s.Tags)) {
			kv = append(kv, k+"="+s.Tags[k])
		}
		add("--selector", []string{strings.Join(kv, ",")})
	}
	return strings.Join(parts, " ")
}

func sorted(m map[string]bool) []string {
	out := slices.Collect(maps.Keys(m))
	sort.Strings(out)
	return out
}

func sortedAccounts(as []providers.Account) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.Tenant+"/"+a.Name)
	}
	sort.Strings(out)
	return out
}

// Plan returns the plan of the VMs of p that s selects, for an apply
// limited to them (plan.Subset): the others are not in it, so apply never
// touches them. Selecting none is an *Error.
func (s Selector) Plan(p *plan.Plan) (*plan.Plan, error) {
	sub := plan.Subset(p, func(v plan.VMPlan) bool { return s.VM(v.Tenant, v.Account, v.ID, v.Name, v.Tags) }, s.Label())
	if sub == nil {
		return nil, &Error{fmt.Errorf("%s selects none of the %d VMs of plan %s", s, len(p.VMs), p.ID)}
	}
	return sub, nil
}

// Label is a short stable name of the selection, fit for a plan or run ID
// ("sel-" and 8 hex digits of its description).
func (s Selector) Label() string {
	h := sha256.Sum256([]byte(s.String()))
	return "sel-" + hex.EncodeToString(h[:4])
}
