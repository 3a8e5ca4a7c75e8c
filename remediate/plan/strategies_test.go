package plan

import (
	"context"
	"slices"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// stepNames lists the names of steps.
func stepNames(steps []step.Step) []string {
	out := make([]string, len(steps))
	for i, s := range steps {
		out[i] = s.Name
	}
	return out
}

// TestEstimateStepsAreStrategySteps: for every registered strategy, the
// estimate is made of exactly the strategy's steps, in order, and its
// figures are the sum of theirs.
func TestEstimateStepsAreStrategySteps(t *testing.T) {
	in := baseInput(vmIn("prod", "a", inventory.StateBootLoop))
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range strategy.Default().All() {
		got := p.Estimate.PerStrategy[u.Name()]
		var names []string
		var secs float64
		for _, sc := range got.Steps {
			names = append(names, sc.Step)
			secs += sc.Seconds
		}
		want := stepNames(u.Steps(&step.Target{}, p.Policy))
		if !slices.Equal(names, want) {
			t.Errorf("%s: estimate's steps %v, strategy's steps %v", u.Name(), names, want)
		}
		if diff := float64(got.Seconds) - secs; diff < 0 || diff >= 1 { // the total is rounded up to the second
			t.Errorf("%s: steps sum to %.1fs, estimate says %ds", u.Name(), secs, got.Seconds)
		}
	}
}

// toy is a strategy added by a test: one file's worth of declarations.
type toy struct{}

func (toy) Name() policy.Strategy                    { return "toy-reset" }
func (toy) Applies() []inventory.State               { return []inventory.State{inventory.StateBootLoop} }
func (toy) NotApplicable(st inventory.State) string  { return "toy: not for " + string(st) }
func (toy) Needs() strategy.Needs                    { return strategy.Needs{Capabilities: []string{"power"}} }
func (toy) Check(*strategy.Candidate) []string       { return nil }
func (toy) Risks(*strategy.Candidate, bool) []string { return []string{"toy risk"} }
func (toy) FailureChance(policy.Policy) float64      { return 0 }
func (toy) Abort(context.Context, *step.Env, *step.Target, step.Facts) (step.Facts, error) {
	return nil, nil
}
func (toy) Steps(*step.Target, policy.Policy) []step.Step {
	return []step.Step{
		{Name: "look", ReadOnly: true, Cost: step.Cost{Calls: 1}},
		{Name: "reset", Cost: step.Cost{Ops: []timing.Op{timing.OpRestart}, Waits: []timing.Op{timing.OpBootToWinRM}}},
	}
}

// TestToyStrategy: adding a strategy is one type plus one registration;
// the planner, the estimate and plan validation pick it up from the
// registry they are given, with no global state.
func TestToyStrategy(t *testing.T) {
	reg, err := strategy.NewRegistry(append([]strategy.Unit{toy{}}, strategy.Default().All()...)...)
	if err != nil {
		t.Fatal(err)
	}
	in := baseInput(vmIn("prod", "a", inventory.StateBootLoop), vmIn("prod", "b", inventory.StateSafeMode))
	in.Strategies = reg
	in.Policy.Strategies = append([]policy.Strategy{"toy-reset"}, in.Policy.Strategies...)
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	a, b := p.VMs[0], p.VMs[1]
	if a.Strategy != "toy-reset" || !slices.Contains(a.Risks, "toy risk") {
		t.Errorf("boot-looping VM: strategy %s, risks %v; want toy-reset with its risk", a.Strategy, a.Risks)
	}
	if b.Strategy == "toy-reset" || !slices.Contains(b.Skipped, "toy-reset: toy: not for safe-mode") {
		t.Errorf("safe-mode VM: strategy %s, skipped %v; want the toy skipped with its own reason", b.Strategy, b.Skipped)
	}
	want := op(timing.OpRestart).add(cost{d: timing.Of(timing.OpBootToWinRM).Mid()}).
		add(cost{d: timing.Of(timing.OpAPICall).Mid(), calls: 1})
	if got := p.Estimate.PerStrategy["toy-reset"]; got.Seconds != ceilSeconds(want.d) || got.APICalls != want.calls ||
		!slices.Equal([]string{got.Steps[0].Step, got.Steps[1].Step}, []string{"look", "reset"}) {
		t.Errorf("toy estimate %+v, want %ds and %d calls over look, reset", got, ceilSeconds(want.d), want.calls)
	}
	if a.EstimateSeconds != ceilSeconds(want.d) {
		t.Errorf("toy VM estimate %ds, want %ds", a.EstimateSeconds, ceilSeconds(want.d))
	}
	// The default registry does not know it: such a plan does not validate.
	if err := p.Validate(); err == nil {
		t.Error("a plan with an unregistered strategy validated against the default registry")
	}
	if err := p.ValidateWith(reg); err != nil {
		t.Errorf("the plan does not validate against its own registry: %v", err)
	}
}
