package simulation

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory/invdoc"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/fleet"
	"github.com/fixfleet/fixfleet/remediate/plan"
)

// planOf opens o's world through the sim face and plans it; it also
// returns the world's inventory document.
func planOf(t *testing.T, o Options) (*plan.Plan, invdoc.Document, *Backend) {
	t.Helper()
	b, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	ctx := context.Background()
	f, err := b.OpenFleet(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	_, doc, err := f.Inventory(ctx, fleet.AssessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.Plan(ctx, f.Policy, fleet.AssessOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p, doc, b
}

// TestFromInventoryReplaysThePlan: a simulated fleet's inventory, turned
// back into a scenario as it was found, plans the same: the same VMs, the
// same strategy and fallbacks, the same risks. Neither the inventory nor
// the scenario holds a secret of the original world.
func TestFromInventoryReplaysThePlan(t *testing.T) {
	// The default mix, where no VM recovers by itself between the
	// inventory and the plan (both are assessments minutes apart).
	gen, err := world.GenerateScenario(world.GenOptions{VMs: 40, Seed: 15, Mix: world.DefaultMix()})
	if err != nil {
		t.Fatal(err)
	}
	for i := range gen.VMs {
		gen.VMs[i].Condition.RecoverAfterBoots = 0
	}
	origFile, err := world.MarshalScenario(gen)
	if err != nil {
		t.Fatal(err)
	}
	origPath := filepath.Join(t.TempDir(), "orig.json")
	if err := os.WriteFile(origPath, origFile, 0o600); err != nil {
		t.Fatal(err)
	}
	orig, doc, b := planOf(t, Options{World: WorldOptions{Scenario: origPath}, TimeScale: 2000})
	var inv bytes.Buffer
	if err := json.NewEncoder(&inv).Encode(doc); err != nil {
		t.Fatal(err)
	}
	back, err := invdoc.Read(bytes.NewReader(inv.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	sc, err := world.FromInventory(back, world.InventoryOptions{Seed: 99, Profile: world.ProfileAsIs})
	if err != nil {
		t.Fatal(err)
	}
	file, err := world.MarshalScenario(sc)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{b.password.Reveal()}
	for _, k := range b.keys {
		secrets = append(secrets, k.Reveal())
	}
	for _, v := range b.world.Export().VMs {
		if bl := v.OSDisk.BitLocker; bl != nil {
			secrets = append(secrets, bl.RecoveryKey)
		}
	}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		if strings.Contains(inv.String(), s) {
			t.Errorf("the inventory holds a secret of the original world")
		}
		if strings.Contains(string(file), s) {
			t.Errorf("the scenario holds a secret of the original world")
		}
	}
	path := filepath.Join(t.TempDir(), "copy.json")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	copyPlan, _, _ := planOf(t, Options{World: WorldOptions{Scenario: path}, TimeScale: 2000})
	strategies := map[string]bool{}
	for _, v := range orig.VMs {
		strategies[string(v.Strategy)] = true
	}
	if len(strategies) < 4 {
		t.Fatalf("the original plan uses only %v: too few strategies to compare", strategies)
	}
	if len(copyPlan.VMs) != len(orig.VMs) {
		t.Fatalf("copy plans %d VMs, the original %d", len(copyPlan.VMs), len(orig.VMs))
	}
	for i, o := range orig.VMs {
		c := copyPlan.VMs[i]
		if c.Key != o.Key || c.Strategy != o.Strategy || !slices.Equal(c.Fallbacks, o.Fallbacks) || !slices.Equal(c.Risks, o.Risks) {
			t.Errorf("%s: original %s %v risks %q; copy %s %s %v risks %q", o.Key, o.Strategy, o.Fallbacks, o.Risks,
				c.Key, c.Strategy, c.Fallbacks, c.Risks)
		}
	}
}
