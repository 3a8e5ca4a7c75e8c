package plan

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/step"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

// vmFacts are what eligibility rests on, worked out once per VM.
type vmFacts struct {
	in       Input
	vm       inventory.VM
	state    inventory.State
	class    inventory.Classification
	acct     Account
	acctOK   bool
	caps     map[string]bool
	cutoff   time.Time
	backup   *inventory.Backup  // newest backup before cutoff
	ignored  []inventory.Backup // backups at or after cutoff
	helper   *providers.HelperImage
	sameHelp bool     // helper is of the VM's release
	zoneRels []string // releases with helper images in the VM's zone
	answers  bool     // the assessment's probe reached the guest
}

func factsFor(in Input, a inventory.Assessed) vmFacts {
	f := vmFacts{in: in, vm: a.VM, state: a.Classification.State, class: a.Classification, caps: map[string]bool{}}
	f.answers = a.Classification.Evidence.Probe != nil && a.Classification.Evidence.Probe.Reachable
	f.acct, f.acctOK = in.Accounts[AccountKey(a.VM.Tenant, a.VM.Account)]
	for _, c := range f.acct.Capabilities {
		f.caps[c] = true
	}
	f.cutoff = in.Incident.StartedAt
	if !in.Incident.BadFrom.IsZero() && in.Incident.BadFrom.Before(f.cutoff) {
		f.cutoff = in.Incident.BadFrom
	}
	for _, b := range a.VM.Backups {
		switch {
		case b.TakenAt.IsZero():
			continue
		case b.TakenAt.Before(f.cutoff):
			if f.backup == nil || b.TakenAt.After(f.backup.TakenAt) ||
				(b.TakenAt.Equal(f.backup.TakenAt) && b.ID < f.backup.ID) {
				f.backup = &b
			}
		default:
			f.ignored = append(f.ignored, b)
		}
	}
	sort.Slice(f.ignored, func(i, j int) bool { return f.ignored[i].TakenAt.Before(f.ignored[j].TakenAt) })

	var same, other, remoteSame, remoteOther []providers.HelperImage
	rels := map[string]bool{}
	for _, h := range f.acct.Helpers {
		sameRel := a.VM.Windows.Release != "" && h.Windows.Release == a.VM.Windows.Release
		switch {
		case h.Zone == a.VM.Zone && sameRel:
			same = append(same, h)
		case h.Zone == a.VM.Zone:
			other = append(other, h)
		case h.Region != a.VM.Region:
			continue
		case sameRel:
			remoteSame = append(remoteSame, h)
		default:
			remoteOther = append(remoteOther, h)
		}
		if h.Zone == a.VM.Zone {
			rels[h.Windows.Release] = true
		}
	}
	for r := range rels {
		f.zoneRels = append(f.zoneRels, r)
	}
	sort.Strings(f.zoneRels)
	// Same release: by zone, then image ID. Among other releases prefer
	// the newest release (then zone, image ID).
	for _, s := range [][]providers.HelperImage{same, remoteSame} {
		sort.Slice(s, func(i, j int) bool { return s[i].Zone+"\x00"+s[i].ImageID < s[j].Zone+"\x00"+s[j].ImageID })
	}
	for _, s := range [][]providers.HelperImage{other, remoteOther} {
		sort.Slice(s, func(i, j int) bool {
			if s[i].Windows.Release != s[j].Windows.Release {
				return s[i].Windows.Release > s[j].Windows.Release
			}
			return s[i].Zone+"\x00"+s[i].ImageID < s[j].Zone+"\x00"+s[j].ImageID
		})
	}
	// A helper in another zone only where a disk copy can reach it: the
	// cloud copies across zones and the policy runs cross-zone-mount. A
	// helper of the VM's own release elsewhere is preferred to one of
	// another release here.
	remote := f.caps["cross-zone-copy"] && in.Policy.Enabled(policy.CrossZone)
	anyRelease := in.Policy.HelperVersion == policy.HelperAny && a.VM.Windows.Release != ""
	switch {
	case len(same) > 0:
		f.helper, f.sameHelp = &same[0], true
	case remote && len(remoteSame) > 0:
		f.helper, f.sameHelp = &remoteSame[0], true
	case anyRelease && len(other) > 0:
		f.helper = &other[0]
	case anyRelease && remote && len(remoteOther) > 0:
		f.helper = &remoteOther[0]
	}
	return f
}

// candidate is what a strategy's Check and Risks read.
func (f vmFacts) candidate() *strategy.Candidate {
	return &strategy.Candidate{VM: f.vm, State: f.state, Classification: f.class, Policy: f.in.Policy, Cutoff: f.cutoff, Backup: f.backup,
		Ignored: len(f.ignored), DataLoss: f.dataLoss(), Helper: f.helper, SameHelper: f.sameHelp,
		ZoneReleases: f.zoneRels, KeyProblem: f.keyProblem(), GuestAnswers: f.answers}
}

// check says whether strategy u is eligible for the VM after the eligible
// strategies before, and if not why, as one sentence starting with the
// strategy's name.
func (f vmFacts) check(u strategy.Unit, before []policy.Strategy) (bool, string) {
	s := u.Name()
	if !slices.Contains(u.Applies(), f.state) {
		return false, string(s) + ": " + u.NotApplicable(f.state)
	}
	if !f.in.Policy.Enabled(s) {
		return false, string(s) + ": not enabled in policy.strategies"
	}
	if !f.acctOK {
		return false, fmt.Sprintf("%s: nothing is known of account %s (was it opened?)", s, AccountKey(f.vm.Tenant, f.vm.Account))
	}
	var why []string
	if lacking := u.Needs().Lacking(func(c string) bool { return f.caps[c] }); len(lacking) > 0 {
		why = append(why, fmt.Sprintf("provider %s of account %s lacks the %s capability",
			f.vm.Provider, AccountKey(f.vm.Tenant, f.vm.Account), strings.Join(lacking, ", ")))
	}
	c := f.candidate()
	c.Before = before
	why = append(why, u.Check(c)...)
	if len(why) > 0 {
		return false, string(s) + ": " + strings.Join(why, "; ")
	}
	return true, ""
}

// keyProblem says why the VM's BitLocker disk cannot be unlocked offline,
// or "".
func (f vmFacts) keyProblem() string { return KeyProblem(f.vm.OSDisk.Encryption, f.in.Keys) }

// KeyProblem says why a disk encrypted as enc cannot be unlocked offline
// with the recovery keys of keys (nil: none), or "" when it can (or is not
// BitLocker-encrypted).
func KeyProblem(enc inventory.Encryption, keys KeyChecker) string {
	switch {
	case !enc.BitLocker:
		return ""
	case enc.KeyID == "":
		return "BitLocker is on but the recovery key ID is unknown"
	case keys == nil || !keys.HasKey(enc.KeyID):
		return "BitLocker recovery key missing for key ID " + enc.KeyID
	}
	return ""
}

func (f vmFacts) dataLoss() time.Duration {
	if f.backup == nil {
		return 0
	}
	return max(0, f.in.Incident.StartedAt.Sub(f.backup.TakenAt))
}

// decide plans one VM (estimates are filled in later).
func decide(in Input, reg *strategy.Registry, a inventory.Assessed) VMPlan {
	vm := a.VM
	c := a.Classification
	v := VMPlan{
		Key:      vm.Key(),
		Location: vm.Location,
		ID:       vm.ID,
		Name:     vm.Name,
		Tags:     vm.Tags,
		Windows:  vm.Windows,
		OSDisk:   vm.OSDisk,
		Power:    vm.Power,
		State:    c.State,
		Evidence: evidenceSummary(c),
		// Strategy-independent: the plan records what the assessment saw.
		WinRMWindowSeen: strategy.WindowSeen(c),
	}
	if n := len(c.Evidence.Samples); n > 0 && c.Evidence.Samples[n-1].Power != "" {
		v.Power = c.Evidence.Samples[n-1].Power // the latest the cloud said
	}
	reasons := slices.Clone(c.Reasons)
	state := c.State
	if state == inventory.StateUnknown && v.Power == inventory.PowerStopped {
		// Powered off: the doubt is what its disk holds, which a
		// strategy can read offline without starting it.
		state = inventory.StateStopped
		v.State = state
		reasons = append(reasons, "stopped: its disk can be checked offline, without starting it; the bad file, if there, is deleted and the VM is "+
			stoppedEnd(in.Policy))
	}
	switch state {
	case inventory.StateHealthy:
		v.Strategy = None
		v.Reasons = append(reasons, "healthy: fixfleet never touches it")
		return v
	case inventory.StateUnknown:
		v.Strategy = Manual
		v.Reasons = append(reasons, "state unknown: fixfleet will not act on it; resolve the doubt above, then assess and plan again")
		f := factsFor(in, a)
		v.Risks = f.risks(reg, nil)
		return v
	}

	f := factsFor(in, a)
	f.state = state
	order := slices.Clone(in.Policy.Strategies)
	for _, s := range reg.Names() {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	var eligible []policy.Strategy
	var skipped []string
	var whyNot []string
	needs := strategy.Needs{}
	for _, s := range order {
		u, known := reg.Get(s)
		if !known {
			continue // policy validation rejects it before
		}
		ok, why := f.check(u, eligible)
		if ok {
			eligible = append(eligible, s)
			needs.Backup = needs.Backup || u.Needs().Backup
			needs.Helper = needs.Helper || u.Needs().Helper
			continue
		}
		whyNot = append(whyNot, why)
		if len(eligible) == 0 && in.Policy.Enabled(s) {
			skipped = append(skipped, why)
		}
	}
	if len(eligible) == 0 {
		v.Strategy = Manual
		v.Reasons = append(reasons, "no strategy is eligible; a person must repair it:")
		v.Reasons = append(v.Reasons, whyNot...)
		v.Risks = f.risks(reg, nil)
		return v
	}
	v.Strategy = eligible[0]
	v.Fallbacks = eligible[1:]
	v.Skipped = skipped
	v.Reasons = append(reasons, fmt.Sprintf("%s: the first eligible strategy in policy order", v.Strategy))
	t := v.Target()
	if n, m := in.Policy.RebootRetry.LastResort(), in.Policy.RebootRetry.MaxRestarts; v.Strategy == policy.RebootRetry && n > m {
		if noSurePath(reg, t, v.Fallbacks) {
			v.LastResort, t.LastResort = true, true
			v.Reasons = append(v.Reasons, fmt.Sprintf("reboot-retry: the last resort (no other strategy is sure to repair it: each runs only if the restarts reveal a way, or may leave it where restarts no longer help): up to %d restarts, not %d (policy.reboot_retry.last_resort_restarts)",
				n, m))
		} else if s, ok := lateRestarts(reg, t, v.Fallbacks); ok {
			v.LateRestarts, t.LateRestarts = true, true
			v.Reasons = append(v.Reasons, fmt.Sprintf("reboot-retry: %d restarts, as a fallback looks sure; should %s run (see its condition), it first restarts the VM up to %d times in all (policy.reboot_retry.last_resort_restarts), since it may leave the VM where restarts no longer help",
				m, s, n))
		}
	}
	for _, s := range eligible {
		u, _ := reg.Get(s)
		if cond := step.ConditionOf(u, t); cond != "" {
			v.Reasons = append(v.Reasons, fmt.Sprintf("%s: %s", s, cond))
		}
	}
	v.Risks = f.risks(reg, eligible)
	if needs.Backup {
		b := f.backup
		loss := f.dataLoss()
		v.Backup = &PlannedBackup{ID: b.ID, Kind: b.Kind, TakenAt: b.TakenAt.UTC(), SizeGB: b.SizeGB,
			DataLossSeconds: int64(loss / time.Second), DataLoss: timing.Format(loss)}
	}
	if needs.Helper {
		h := f.helper
		v.Helper = &PlannedHelper{Zone: h.Zone, CrossZone: h.Zone != vm.Zone, Windows: h.Windows, ImageID: h.ImageID, SameRelease: f.sameHelp}
	}
	return v
}

// restartsFirst is a strategy that, where it fails, may leave its VM where
// restarts no longer help (strategy.SafeModeBoot leaves it in Safe Mode):
// it runs after reboot-retry's whole last-resort budget.
type restartsFirst interface{ RestartsFirst() bool }

// noSurePath reports whether none of fallbacks is sure to repair t: each
// runs only on a condition (step.Conditional) that the strategy before it
// may reveal, or is restartsFirst.
func noSurePath(reg *strategy.Registry, t *step.Target, fallbacks []policy.Strategy) bool {
	for _, s := range fallbacks {
		u, _ := reg.Get(s)
		if rf, ok := u.(restartsFirst); ok && rf.RestartsFirst() {
			continue
		}
		if step.ConditionOf(u, t) == "" {
			return false
		}
	}
	return true
}

// lateRestarts returns the first of fallbacks that is restartsFirst and
// conditional (step.Conditional) for t, and whether none after it is sure:
// where its condition comes true, it runs with nothing sure behind it.
func lateRestarts(reg *strategy.Registry, t *step.Target, fallbacks []policy.Strategy) (policy.Strategy, bool) {
	for i, s := range fallbacks {
		u, _ := reg.Get(s)
		if rf, ok := u.(restartsFirst); ok && rf.RestartsFirst() && step.ConditionOf(u, t) != "" {
			return s, noSurePath(reg, t, fallbacks[i+1:])
		}
	}
	return "", false
}

// stoppedEnd says what becomes of a stopped VM after its disk is checked,
// as policy.stopped_vms says.
func stoppedEnd(pol policy.Policy) string {
	if pol.StartsStopped() {
		return "then started and verified (policy.stopped_vms: start)"
	}
	return "left stopped, repaired for its next start (policy.stopped_vms: leave-stopped)"
}

// risks lists what could go wrong or what is missing, given the strategies
// planned (chosen and fallbacks; nil for a VM left to a person): the VM's
// own, then each relevant strategy's (enabled and applicable, or any when
// the VM's state is unknown), in registry order.
func (f vmFacts) risks(reg *strategy.Registry, planned []policy.Strategy) []string {
	var r []string
	if f.backup == nil {
		r = append(r, "no pre-incident backup")
	}
	for _, b := range f.ignored {
		where := "inside the bad window"
		if !f.in.Incident.BadUntil.IsZero() && !b.TakenAt.Before(f.in.Incident.BadUntil) {
			where = "after the incident began"
		}
		r = append(r, fmt.Sprintf("backup %s taken %s %s ignored (it may carry the bad file)",
			b.ID, b.TakenAt.UTC().Format(time.RFC3339), where))
	}
	if w := f.keyProblem(); w != "" {
		r = append(r, w)
	}
	c := f.candidate()
	for _, u := range reg.All() {
		s := u.Name()
		if isPlanned := slices.Contains(planned, s); isPlanned ||
			f.in.Policy.Enabled(s) && slices.Contains(u.Applies(), f.state) || f.state == inventory.StateUnknown {
			r = append(r, u.Risks(c, isPlanned)...)
		}
	}
	return r
}
