package target

import (
	"errors"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

func TestSelectorVM(t *testing.T) {
	type vm struct {
		tenant, account, id, name string
		tags                      map[string]string
	}
	web := vm{"acme", "prod", "vm-1", "web-1", map[string]string{"role": "web", "env": "prod"}}
	db := vm{"acme", "dev", "vm-2", "db-2", map[string]string{"role": "db", "env": "dev"}}
	other := vm{"beta", "prod", "vm-3", "web-3", map[string]string{"role": "web", "env": "prod"}}
	all := []vm{web, db, other}
	tests := []struct {
		name string
		sel  Selector
		want []string // IDs selected
	}{
		{"empty selects all", Selector{}, []string{"vm-1", "vm-2", "vm-3"}},
		{"tenant", Selector{Tenants: []string{"acme"}}, []string{"vm-1", "vm-2"}},
		{"account by name", Selector{Accounts: []string{"prod"}}, []string{"vm-1", "vm-3"}},
		{"account by tenant/name", Selector{Accounts: []string{"beta/prod"}}, []string{"vm-3"}},
		{"tenant and account must both hold", Selector{Tenants: []string{"beta"}, Accounts: []string{"acme/prod"}}, nil},
		{"only by ID", Selector{Only: []string{"vm-2"}}, []string{"vm-2"}},
		{"only by name", Selector{Only: []string{"web-3", "web-1"}}, []string{"vm-1", "vm-3"}},
		{"exclude by name", Selector{Exclude: []string{"db-2"}}, []string{"vm-1", "vm-3"}},
		{"exclude by ID wins over tenant", Selector{Tenants: []string{"acme"}, Exclude: []string{"vm-1"}}, []string{"vm-2"}},
		{"selector one tag", Selector{Tags: map[string]string{"role": "web"}}, []string{"vm-1", "vm-3"}},
		{"selector all tags must hold", Selector{Tags: map[string]string{"role": "web", "env": "dev"}}, nil},
		{"selector missing tag", Selector{Tags: map[string]string{"owner": "x"}}, nil},
		{"selector with exclude", Selector{Tags: map[string]string{"env": "prod"}, Exclude: []string{"web-3"}}, []string{"vm-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, v := range all {
				if tt.sel.VM(v.tenant, v.account, v.id, v.name, v.tags) {
					got = append(got, v.id)
				}
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("selected %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseTags(t *testing.T) {
	tests := []struct {
		in     string
		want   map[string]string
		errHas string
	}{
		{in: "role=web", want: map[string]string{"role": "web"}},
		{in: " role = web , env=prod,", want: map[string]string{"role": "web", "env": "prod"}},
		{in: "role=", want: map[string]string{"role": ""}},
		{in: "role", errHas: "not key=value"},
		{in: "=web", errHas: "not key=value"},
		{in: "role=web,role=db", errHas: "given twice"},
		{in: ",", errHas: "no key=value"},
	}
	for _, tt := range tests {
		got, err := ParseTags(tt.in)
		if tt.errHas != "" {
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("ParseTags(%q) error %v, want %q", tt.in, err, tt.errHas)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("ParseTags(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			continue
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("ParseTags(%q)[%s] = %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}

func TestCheckAndUnmatched(t *testing.T) {
	known := []providers.Account{{Tenant: "acme", Name: "prod"}, {Tenant: "beta", Name: "prod"}}
	tests := []struct {
		name   string
		sel    Selector
		errHas string
	}{
		{"fine", Selector{Tenants: []string{"beta"}, Accounts: []string{"acme/prod"}}, ""},
		{"unknown tenant lists the tenants", Selector{Tenants: []string{"acne"}}, `--tenant "acne": no such tenant; tenants are acme, beta`},
		{"unknown account", Selector{Accounts: []string{"acme/dev"}}, `--account "acme/dev"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.sel.Check(known)
			if tt.errHas == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var te *Error
			if !errors.As(err, &te) || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error %v, want a *target.Error containing %q", err, tt.errHas)
			}
		})
	}
	s := Selector{Only: []string{"web-1", "vm-9", "vm-2"}}
	vms := []inventory.VM{{ID: "vm-1", Name: "web-1"}, {ID: "vm-2"}}
	if got := s.Unmatched(vms); len(got) != 1 || got[0] != "vm-9" {
		t.Errorf("Unmatched = %v, want [vm-9]", got)
	}
	if a, b := (Selector{Tenants: []string{"a"}}).Label(), (Selector{Tenants: []string{"b"}}).Label(); a == b || !strings.HasPrefix(a, "sel-") {
		t.Errorf("labels %q and %q: want distinct sel-… labels", a, b)
	}
}
