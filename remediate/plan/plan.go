// Package plan turns an assessed fleet into a remediation plan: one strategy
// per VM with its reasons, fallbacks and risks, the waves the VMs run in, and
// an estimate of how long the whole run takes and how many API calls it makes.
//
// A plan is a versioned JSON document (Version) that `apply` later consumes
// unchanged: Build makes it, Write stores it, Read loads it back strictly, so
// that a malformed or tampered plan fails with an error naming the VM and
// field. The planner knows nothing of HTTP or clouds beyond the capability
// names of providers.Provider and the helper images a provider offers; it
// never sees a BitLocker key, only whether the key source has one
// (KeyChecker).
//
// # Eligibility
//
// A healthy VM gets strategy "none" and is never touched. An unknown VM gets
// "manual" with its classification's reasons, except one the cloud reports
// powered off (its latest sample): that doubt is the disk's content, which
// a strategy can read offline without starting the VM, so it is planned as
// inventory.StateStopped. Otherwise the policy's
// strategies are tried in order and the first eligible one is chosen; the
// later eligible ones are its fallbacks:
//
//   - reboot-retry: boot-loop; the account has power.
//   - delete-file: safe-mode; guest, power and disks (a snapshot is taken
//     before the change).
//   - helper-mount: boot-loop, safe-mode or stopped; power, disks and helpers; a helper
//     image of the VM's Windows release in the VM's zone (or of any release
//     when policy.helper_version is "any", flagged as a risk); and, for a
//     BitLocker disk, a recovery key the key source knows.
//   - restore-backup: boot-loop or safe-mode; backups, power and disks;
//     policy.allow_data_loss; and a backup taken before the incident began
//     (before both Incident.StartedAt and Incident.BadFrom). Backups taken
//     at or after that instant are ignored (they may carry the bad file).
//     The data-loss window is StartedAt minus the backup's time.
//
// When none is eligible the VM is "manual" with one reason per strategy
// saying why not, so that a person can act on it.
//
// # Waves
//
// The VMs to act on (strategy other than none and manual) run in waves: a
// canary wave of policy.canary VMs, picked round-robin across
// (strategy, account) groups so the canary exercises as many of them as
// possible, then waves of policy.wave_size in fleet order. Each wave starts
// when the previous one has finished.
//
// # Estimate
//
// See estimate.go for the duration and API-call formulas per strategy. The
// makespan list-schedules each wave's VMs, longest first, on
// policy.concurrency.total slots of which at most
// policy.concurrency.per_account serve one account at a time.
package plan

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/classify"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// Version is the plan document format this package writes and reads.
const Version = "fixfleet.plan/v1"

// Strategies a plan gives besides the remediation strategies of package
// policy.
const (
	// None: the VM is healthy and is never touched.
	None policy.Strategy = "none"
	// Manual: fixfleet will not act on the VM; a person must.
	Manual policy.Strategy = "manual"
)

// AllStrategies lists every strategy a plan may give, in display order.
var AllStrategies = append(append([]policy.Strategy{None}, policy.Strategies...), Manual)

// KeyChecker tells whether the recovery-key source holds the BitLocker
// recovery key with protector ID keyID. It must not reveal the key.
type KeyChecker interface {
	HasKey(keyID string) bool
}

// Account is what the planner knows of one account scope.
type Account struct {
	// Capabilities as (*providers.Provider).Capabilities lists them.
	Capabilities []string
	// Helpers are the helper images the account offers (Helpers.Images).
	Helpers []providers.HelperImage
}

// AccountKey is the key of Input.Accounts for a VM's tenant and account.
func AccountKey(tenant, account string) string { return tenant + "/" + account }

// Input is everything Build needs.
type Input struct {
	ID       string
	Now      time.Time
	Incident inventory.Incident
	Policy   policy.Policy
	// Fleet is the assessed VMs, with VM.Backups filled.
	Fleet []inventory.Assessed
	// Accounts by AccountKey. A VM whose account is missing gets no strategy
	// needing a capability.
	Accounts map[string]Account
	// Keys is the recovery-key source; nil knows no key.
	Keys KeyChecker
	// Strategies are the strategies to plan with; nil is
	// strategy.Default().
	Strategies *strategy.Registry
	// Skipped are the accounts the assessment left out: the plan names
	// them, since it covers none of their VMs.
	Skipped []classify.SkippedAccount
}

// Plan is the plan document.
type Plan struct {
	Version   string             `json:"version"`
	ID        string             `json:"id"`
	CreatedAt time.Time          `json:"created_at"`
	Incident  inventory.Incident `json:"incident"`
	Policy    policy.Policy      `json:"policy"`
	VMs       []VMPlan           `json:"vms"`
	Waves     []Wave             `json:"waves"`
	// Tiers are the policy's dependency tiers with their counts, the last
	// being "rest" (tiers.go); empty when the policy has none.
	Tiers    []Tier   `json:"tiers,omitempty"`
	Estimate Estimate `json:"estimate"`
	Summary  Summary  `json:"summary"`
	// Skipped are the accounts this plan does not cover (they could not
	// be opened or listed), and why.
	Skipped []classify.SkippedAccount `json:"skipped_accounts,omitempty"`
}

// VMPlan is the plan for one VM, with everything apply needs to find it.
type VMPlan struct {
	// Key is tenant/account/id (inventory.VM.Key), unique in the plan.
	Key string `json:"key"`
	inventory.Location
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	// Tags are the VM's tags as listed (for --selector on apply).
	Tags    map[string]string        `json:"tags,omitempty"`
	Windows inventory.WindowsVersion `json:"windows"`
	// OSDisk is the OS disk as assessed: ID, identity (to verify before the
	// disk is returned), encryption and BitLocker key ID.
	OSDisk inventory.Disk       `json:"os_disk"`
	Power  inventory.PowerState `json:"power"`
	State  inventory.State      `json:"state"`
	// Strategy is none, manual, or one of policy.Strategies.
	Strategy policy.Strategy `json:"strategy"`
	// Reasons explain the state and the strategy; for manual, what a
	// person must look at.
	Reasons []string `json:"reasons"`
	// Skipped says why each strategy before the chosen one in policy order
	// was not eligible.
	Skipped []string `json:"skipped,omitempty"`
	// Fallbacks are the next eligible strategies, in policy order.
	Fallbacks []policy.Strategy `json:"fallbacks,omitempty"`
	Risks     []string          `json:"risks,omitempty"`
	// Backup is the restore point restore-backup would use, when it is the
	// strategy or a fallback.
	Backup *PlannedBackup `json:"backup,omitempty"`
	// Helper is the helper image helper-mount would use, when it is the
	// strategy or a fallback.
	Helper *PlannedHelper `json:"helper,omitempty"`
	// Evidence summarises the classification's evidence.
	Evidence string `json:"evidence"`
	// WinRMWindowSeen: the assessment's probe reached the guest in a
	// normal boot while it carried a bad file (strategy.WindowSeen):
	// race-the-boot runs unconditionally.
	WinRMWindowSeen bool `json:"winrm_window_seen,omitempty"`
	// LastResort: the strategy is reboot-retry and every fallback is
	// conditional on what reboot-retry reveals (step.Conditional) or may
	// leave the VM where restarts no longer help (safe-mode-boot), so
	// nothing else is sure to repair it: reboot-retry restarts it up to
	// policy.reboot_retry.last_resort_restarts times, not max_restarts.
	LastResort bool `json:"last_resort,omitempty"`
	// LateRestarts: reboot-retry restarts only max_restarts times because
	// a fallback looks sure, but that fallback may reveal a condition
	// (helper-mount: the BitLocker key missing) under which the next one
	// runs that may leave the VM where restarts no longer help
	// (safe-mode-boot), with nothing sure after it: that one restarts the
	// VM first, up to last_resort_restarts in all.
	LateRestarts bool `json:"late_restarts,omitempty"`
	// Wave is the 1-based wave the VM runs in (1 is the canary); 0 when
	// the VM is not acted on.
	Wave int `json:"wave,omitempty"`
	// Tier is the 1-based tier of the VM (Plan.Tiers); 0 when the policy
	// has no tiers.
	Tier int `json:"tier,omitempty"`
	// EstimateSeconds is the expected time to repair the VM, fallback
	// included where the strategy may fail; APICalls the expected
	// control-plane calls.
	EstimateSeconds int64 `json:"estimate_seconds"`
	APICalls        int   `json:"api_calls"`
}

// Acts reports whether apply acts on the VM.
func (v VMPlan) Acts() bool { return v.Strategy != None && v.Strategy != Manual }

// PlannedBackup is the chosen restore point and what restoring it loses.
type PlannedBackup struct {
	ID      string    `json:"id"`
	Kind    string    `json:"kind"`
	TakenAt time.Time `json:"taken_at"`
	SizeGB  int       `json:"size_gb,omitempty"`
	// DataLossSeconds is the incident start minus TakenAt: data written in
	// between is lost by a restore.
	DataLossSeconds int64  `json:"data_loss_seconds"`
	DataLoss        string `json:"data_loss"` // e.g. "4h09m"
}

// PlannedHelper is the helper image the VM's strategies would use: in the
// VM's zone, or, for cross-zone-mount only, in another zone of its region
// (CrossZone).
type PlannedHelper struct {
	Zone string `json:"zone"`
	// CrossZone: Zone is not the VM's; the disk reaches the helper as a
	// copy made from a snapshot, and comes back the same way.
	CrossZone   bool                     `json:"cross_zone,omitempty"`
	Windows     inventory.WindowsVersion `json:"windows"`
	ImageID     string                   `json:"image_id"`
	SameRelease bool                     `json:"same_release"`
}

// String says which helper a VM gets, for people: its zone and release,
// and whether it is reached through a disk copy or of another release;
// "" for none.
func (h *PlannedHelper) String() string {
	if h == nil {
		return ""
	}
	s := h.Zone + " Windows " + h.Windows.Release
	if h.CrossZone {
		s += " (another zone: through a disk copy)"
	}
	if !h.SameRelease {
		s += " (another release)"
	}
	return s
}

// Target is what the plan entry's steps need to know about the VM.
func (v *VMPlan) Target() *step.Target {
	t := &step.Target{Key: v.Key, Location: v.Location, ID: v.ID, Name: v.Name, Windows: v.Windows, OSDisk: v.OSDisk, Power: v.Power, State: v.State,
		WindowSeen: v.WinRMWindowSeen, LastResort: v.LastResort, LateRestarts: v.LateRestarts}
	if b := v.Backup; b != nil {
		t.Backup = &inventory.Backup{ID: b.ID, VMID: v.ID, Kind: b.Kind, TakenAt: b.TakenAt, SizeGB: b.SizeGB}
	}
	if v.Helper != nil {
		t.HelperWindows, t.HelperZone = v.Helper.Windows, v.Helper.Zone
	}
	return t
}

// Wave is a group of VMs started together.
type Wave struct {
	Number int      `json:"number"` // 1-based; 1 is the canary
	Name   string   `json:"name"`   // "canary", "wave 2", ...
	VMs    []string `json:"vms"`    // VM keys
	// Tier is the tier of every VM of the wave (0 without tiers).
	Tier int `json:"tier,omitempty"`
	// StartSeconds and EndSeconds place the wave in the estimate, from the
	// start of the run.
	StartSeconds int64 `json:"start_seconds"`
	EndSeconds   int64 `json:"end_seconds"`
}

// Summary highlights what an operator must know first.
type Summary struct {
	VMs      int `json:"vms"`
	Act      int `json:"act"`       // VMs apply will act on
	Healthy  int `json:"healthy"`   // never touched
	ManualN  int `json:"manual"`    // left to a person
	WithRisk int `json:"with_risk"` // VMs with at least one risk
	// ManualVMs and NoFallback list VM keys: those left to a person, and
	// those acted on with no fallback if their strategy fails.
	ManualVMs  []string `json:"manual_vms,omitempty"`
	NoFallback []string `json:"no_fallback,omitempty"`
	Lines      []string `json:"lines"`
}

// Build makes the plan. It fails on an invalid input (missing ID or time,
// invalid incident or policy, duplicate VM keys, an invalid verdict); a VM
// that cannot be planned is not an error but a manual VM.
func Build(in Input) (*Plan, error) {
	var errs []error
	if strings.TrimSpace(in.ID) == "" {
		errs = append(errs, errors.New("plan ID is required"))
	}
	if in.Now.IsZero() {
		errs = append(errs, errors.New("plan time (Now) is required"))
	}
	if err := in.Incident.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("incident: %w", err))
	}
	reg := in.Strategies
	if reg == nil {
		reg = strategy.Default()
	}
	if err := in.Policy.ValidateWith(reg.Names()); err != nil {
		errs = append(errs, err)
	}
	seen := map[string]bool{}
	for i, a := range in.Fleet {
		k := a.VM.Key()
		if seen[k] {
			errs = append(errs, fmt.Errorf("fleet[%d]: VM %s appears twice", i, k))
		}
		seen[k] = true
		if !a.Classification.State.Valid() {
			errs = append(errs, fmt.Errorf("fleet[%d]: VM %s has no valid state (%q)", i, k, string(a.Classification.State)))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("plan: %w", err)
	}

	p := &Plan{
		Version:   Version,
		ID:        in.ID,
		CreatedAt: in.Now.UTC(),
		Incident:  in.Incident,
		Policy:    in.Policy,
		VMs:       make([]VMPlan, len(in.Fleet)),
		Skipped:   in.Skipped,
	}
	for i, a := range in.Fleet {
		p.VMs[i] = decide(in, reg, a)
	}
	p.Tiers = assignTiers(p.VMs, in.Policy)
	p.Waves = makeWaves(p.VMs, in.Policy, reg)
	p.Estimate = estimate(p, reg)
	p.Summary = summarize(p)
	if err := p.ValidateWith(reg); err != nil {
		return nil, fmt.Errorf("plan: internal error, the plan built does not validate: %w", err)
	}
	return p, nil
}

// makeWaves assigns the VMs acted on to waves and fills VMPlan.Wave: the
// canary from the first tier with VMs to act on, then waves of each tier
// in tier order (one tier, 0, without policy tiers); within a tier, the
// longest possible chains first (longestFirst), each rank in fleet order.
func makeWaves(vms []VMPlan, pol policy.Policy, reg *strategy.Registry) []Wave {
	var all []int
	for i := range vms {
		if vms[i].Acts() {
			all = append(all, i)
		}
	}
	if len(all) == 0 {
		return []Wave{}
	}
	tiers := byTier(vms, all)
	act := tiers[0]
	// Canary: round-robin over canary groups (CanaryGroup) in order of
	// first appearance.
	type group struct{ members []int }
	var order []string
	groups := map[string]*group{}
	for _, i := range act {
		g := CanaryGroup(vms[i])
		if groups[g] == nil {
			groups[g] = &group{}
			order = append(order, g)
		}
		groups[g].members = append(groups[g].members, i)
	}
	n := min(pol.Canary, len(act))
	inCanary := map[int]bool{}
	var canary []int
	for round := 0; len(canary) < n; round++ {
		for _, g := range order {
			if m := groups[g].members; round < len(m) && len(canary) < n {
				canary = append(canary, m[round])
				inCanary[m[round]] = true
			}
		}
	}
	sort.Ints(canary)
	waves := []Wave{newWave(1, "canary", vms, canary)}
	for _, tier := range tiers {
		var rest []int
		for _, i := range tier {
			if !inCanary[i] {
				rest = append(rest, i)
			}
		}
		rank := make(map[int]int, len(rest))
		for _, i := range rest {
			rank[i] = longestFirst(reg, &vms[i])
		}
		sort.SliceStable(rest, func(a, b int) bool { return rank[rest[a]] < rank[rest[b]] })
		for lo := 0; lo < len(rest); lo += pol.WaveSize {
			hi := min(lo+pol.WaveSize, len(rest))
			num := len(waves) + 1
			waves = append(waves, newWave(num, fmt.Sprintf("wave %d", num), vms, rest[lo:hi]))
		}
	}
	return waves
}

// longestFirst ranks v within its tier, lowest first, by the longest
// chain it may run: last resorts (up to last_resort_restarts restarts,
// which take little of the account's API calls and no helper); then the
// VMs that may end in a restore (restore-backup the strategy or a
// fallback: a restore takes 10 to 45 minutes after whatever failed before
// it), first those where a strategy that may leave the VM unrepaired
// (restartsFirst: safe-mode-boot, whose WinRM runs in Safe Mode only
// where listed under SafeBoot\Network) runs unconditionally before it;
// then the rest. Started last, the few VMs whose restore is needed set the
// makespan.
func longestFirst(reg *strategy.Registry, v *VMPlan) int {
	chain := append([]policy.Strategy{v.Strategy}, v.Fallbacks...)
	restore := slices.Index(chain, policy.RestoreBackup)
	switch {
	case v.LastResort:
		return 0
	case restore < 0:
		return 3
	}
	t := v.Target()
	for _, s := range chain[:restore] {
		u, _ := reg.Get(s)
		if rf, ok := u.(restartsFirst); ok && rf.RestartsFirst() && step.ConditionOf(u, t) == "" {
			return 1
		}
	}
	return 2
}

// CanaryGroup is v's group for the canary: its first strategy and its
// account. The canary takes its VMs round-robin over the groups, and apply
// starts a group's other VMs once its canary VMs have ended well.
func CanaryGroup(v VMPlan) string {
	return string(v.Strategy) + "|" + AccountKey(v.Tenant, v.Account)
}

func newWave(num int, name string, vms []VMPlan, idx []int) Wave {
	w := Wave{Number: num, Name: name, VMs: make([]string, len(idx)), Tier: vms[idx[0]].Tier}
	for j, i := range idx {
		w.VMs[j] = vms[i].Key
		vms[i].Wave = num
	}
	return w
}

func summarize(p *Plan) Summary {
	s := Summary{VMs: len(p.VMs)}
	for _, v := range p.VMs {
		switch {
		case v.Strategy == None:
			s.Healthy++
		case v.Strategy == Manual:
			s.ManualN++
			s.ManualVMs = append(s.ManualVMs, v.Key)
		default:
			s.Act++
			if len(v.Fallbacks) == 0 {
				s.NoFallback = append(s.NoFallback, v.Key)
			}
		}
		if len(v.Risks) > 0 {
			s.WithRisk++
		}
	}
	e := p.Estimate
	var states []string
	for _, st := range inventory.PlanStates {
		if n := e.ByState[st]; n > 0 {
			states = append(states, fmt.Sprintf("%d %s", n, st))
		}
	}
	var strats []string
	for _, st := range AllStrategies {
		if n := e.ByStrategy[st]; n > 0 {
			strats = append(strats, fmt.Sprintf("%d %s", n, st))
		}
	}
	s.Lines = append(s.Lines,
		fmt.Sprintf("%d VMs: %s", s.VMs, orNone(strings.Join(states, ", "))),
		fmt.Sprintf("strategies: %s", orNone(strings.Join(strats, ", "))),
		fmt.Sprintf("%d VMs acted on in %d wave(s) (canary %d), %d healthy never touched, %d left to a person",
			s.Act, len(p.Waves), canarySize(p.Waves), s.Healthy, s.ManualN),
	)
	if l := tierLine(p); l != "" {
		s.Lines = append(s.Lines, l)
	}
	for _, a := range p.Skipped {
		s.Lines = append(s.Lines, fmt.Sprintf("account %s/%s skipped, none of its VMs planned: %s", a.Tenant, a.Account, a.Reason))
	}
	if len(s.NoFallback) > 0 {
		s.Lines = append(s.Lines, fmt.Sprintf("%d VMs have no fallback if their strategy fails", len(s.NoFallback)))
	}
	if s.WithRisk > 0 {
		s.Lines = append(s.Lines, fmt.Sprintf("%d VMs carry risks: read their risks before approving", s.WithRisk))
	}
	s.Lines = append(s.Lines, fmt.Sprintf("estimated duration %s (canary %s) at concurrency %d, %d per account; about %d API calls",
		timing.Format(time.Duration(e.DurationSeconds)*time.Second), timing.Format(time.Duration(e.CanarySeconds)*time.Second),
		e.Concurrency.Total, e.Concurrency.PerAccount, e.APICallsTotal))
	return s
}

func canarySize(ws []Wave) int {
	if len(ws) == 0 {
		return 0
	}
	return len(ws[0].VMs)
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// summary of the evidence, for VMPlan.Evidence.
func evidenceSummary(c inventory.Classification) string {
	s := classify.Summarize(c.Evidence)
	if len(c.BadFiles) > 0 {
		s += fmt.Sprintf("; %d bad file(s)", len(c.BadFiles))
	}
	return s
}

func strategyNames(ss []policy.Strategy) string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = string(s)
	}
	return strings.Join(out, ", ")
}
