package fleet

import (
	"context"
	"errors"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// failingLister lists nothing: its cloud answers every List with err.
type failingLister struct{ err error }

func (f failingLister) List(context.Context) ([]inventory.VM, error) { return nil, f.err }

// TestPartialRun: in a 3-tenant fleet where one tenant's account cannot be
// opened (a provider not built) or cannot be listed (the cloud refuses),
// the other two are still planned, every one of their VMs, and the plan
// names the skipped account with why; --strict fails instead.
func TestPartialRun(t *testing.T) {
	mix, err := world.ParseMix("healthy=40,safe-mode=30,boot-loop=30")
	if err != nil {
		t.Fatal(err)
	}
	sc, err := world.GenerateScenario(world.GenOptions{VMs: 30, Seed: 5, Mix: mix, Accounts: []string{"acme", "beta", "corp"}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := world.Load(sc, clock.NewScaled(sc.Now, 1e5))
	if err != nil {
		t.Fatal(err)
	}
	perAccount := map[string]int{}
	for _, v := range sc.VMs {
		perAccount[v.Account]++
	}
	refused := providers.Errorf(providers.ErrPermanent, "List", "account corp", "403 forbidden")
	for _, tt := range []struct {
		name   string
		broken providers.Spec
		why    string
	}{
		{"cannot be opened", providers.Spec{Open: func(context.Context, providers.Account, providers.Env) (*providers.Provider, error) {
			return nil, errors.New("the Azure provider is not built into this version")
		}}, "not built"},
		{"cannot be listed", providers.Spec{Open: func(ctx context.Context, a providers.Account, env providers.Env) (*providers.Provider, error) {
			p := sim.New(w, sim.Options{Account: "corp"})
			p.Enumerator = failingLister{refused}
			return p, nil
		}}, "403 forbidden"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			reg := providers.NewRegistry()
			if err := reg.Register("sim", sim.Spec(w)); err != nil {
				t.Fatal(err)
			}
			if err := reg.Register("broken", tt.broken); err != nil {
				t.Fatal(err)
			}
			opt := func(acct string) *yaml.Node {
				return &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Content: []*yaml.Node{
					{Kind: yaml.ScalarNode, Tag: "!!str", Value: "account"}, {Kind: yaml.ScalarNode, Tag: "!!str", Value: acct}}}
			}
			cfg := Config{Incident: w.Incident(), Policy: policy.Default(), Registry: reg, Env: providers.Env{Clock: w.Clock()},
				Accounts: []providers.Account{
					{Tenant: "acme", Name: "prod", Provider: "sim", Options: opt("acme")},
					{Tenant: "corp", Name: "prod", Provider: "broken"},
					{Tenant: "beta", Name: "prod", Provider: "sim", Options: opt("beta")},
				}}
			f, err := Open(t.Context(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			p, err := f.Plan(t.Context(), f.Policy, AssessOptions{AssessOptions: classify.AssessOptions{Window: 2e9, Samples: 2}})
			if err != nil {
				t.Fatalf("plan with one broken account: %v", err)
			}
			got := map[string]int{}
			for _, v := range p.VMs {
				got[v.Tenant]++
			}
			if got["acme"] != perAccount["acme"] || got["beta"] != perAccount["beta"] || got["corp"] != 0 {
				t.Errorf("VMs planned per tenant %v, want acme %d, beta %d, corp 0", got, perAccount["acme"], perAccount["beta"])
			}
			if len(p.Skipped) != 1 || p.Skipped[0].Tenant != "corp" || !strings.Contains(p.Skipped[0].Reason, tt.why) {
				t.Errorf("skipped %+v, want corp/prod because %q", p.Skipped, tt.why)
			}
			if !strings.Contains(strings.Join(p.Summary.Lines, "\n"), "corp/prod skipped") {
				t.Errorf("the summary does not name the skipped account: %q", p.Summary.Lines)
			}

			cfg.Strict = true
			f, err = Open(t.Context(), cfg)
			if err == nil {
				_, err = f.Plan(t.Context(), f.Policy, AssessOptions{AssessOptions: classify.AssessOptions{Window: 2e9, Samples: 2}, Strict: true})
			}
			if err == nil || !strings.Contains(err.Error(), tt.why) {
				t.Errorf("strict: %v, want an error saying %q", err, tt.why)
			}
		})
	}
}
