package plan

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
)

// needs lists the provider capabilities each strategy uses.
var needs = map[policy.Strategy][]string{
	policy.RebootRetry:   {"power"},
	policy.DeleteFile:    {"guest", "power", "disks"},
	policy.HelperMount:   {"power", "disks", "helpers"},
	policy.RestoreBackup: {"backups", "power", "disks"},
}

// applies lists the states each strategy can repair.
var applies = map[policy.Strategy][]inventory.State{
	policy.RebootRetry: {inventory.StateBootLoop},
	policy.DeleteFile:  {inventory.StateSafeMode},
	// Not safe-mode: its safe-boot flag lives in the boot configuration,
	// which only a live guest can clear; a disk repaired offline would boot
	// into Safe Mode again.
	policy.HelperMount:   {inventory.StateBootLoop},
	policy.RestoreBackup: {inventory.StateBootLoop, inventory.StateSafeMode},
}

// vmFacts are what eligibility rests on, worked out once per VM.
type vmFacts struct {
	in       Input
	vm       inventory.VM
	state    inventory.State
	acct     Account
	acctOK   bool
	caps     map[string]bool
	cutoff   time.Time
	backup   *inventory.Backup  // newest backup before cutoff
	ignored  []inventory.Backup // backups at or after cutoff
	helper   *providers.HelperImage
	sameHelp bool     // helper is of the VM's release
	zoneRels []string // releases with helper images in the VM's zone
}

func factsFor(in Input, a inventory.Assessed) vmFacts {
	f := vmFacts{in: in, vm: a.VM, state: a.Classification.State, caps: map[string]bool{}}
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

	var same, other []providers.HelperImage
	rels := map[string]bool{}
	for _, h := range f.acct.Helpers {
		if h.Zone != a.VM.Zone {
			continue
		}
		rels[h.Windows.Release] = true
		if a.VM.Windows.Release != "" && h.Windows.Release == a.VM.Windows.Release {
			same = append(same, h)
		} else {
			other = append(other, h)
		}
	}
	for r := range rels {
		f.zoneRels = append(f.zoneRels, r)
	}
	sort.Strings(f.zoneRels)
	byID := func(s []providers.HelperImage) {
		sort.Slice(s, func(i, j int) bool { return s[i].ImageID < s[j].ImageID })
	}
	byID(same)
	// Among other releases prefer the newest release (then image ID).
	sort.Slice(other, func(i, j int) bool {
		if other[i].Windows.Release != other[j].Windows.Release {
			return other[i].Windows.Release > other[j].Windows.Release
		}
		return other[i].ImageID < other[j].ImageID
	})
	switch {
	case len(same) > 0:
		f.helper, f.sameHelp = &same[0], true
	case len(other) > 0 && in.Policy.HelperVersion == policy.HelperAny && a.VM.Windows.Release != "":
		f.helper = &other[0]
	}
	return f
}

// check says whether strategy s is eligible for the VM, and if not why, as
// one sentence starting with the strategy's name.
func (f vmFacts) check(s policy.Strategy) (bool, string) {
	var why []string
	if !slices.Contains(applies[s], f.state) {
		return false, string(s) + ": " + notApplicable(s, f.state)
	}
	if !f.in.Policy.Enabled(s) {
		return false, string(s) + ": not enabled in policy.strategies"
	}
	if !f.acctOK {
		return false, fmt.Sprintf("%s: nothing is known of account %s (was it opened?)", s, AccountKey(f.vm.Tenant, f.vm.Account))
	}
	var lacking []string
	for _, c := range needs[s] {
		if !f.caps[c] {
			lacking = append(lacking, c)
		}
	}
	if len(lacking) > 0 {
		why = append(why, fmt.Sprintf("provider %s of account %s lacks the %s capability",
			f.vm.Provider, AccountKey(f.vm.Tenant, f.vm.Account), strings.Join(lacking, ", ")))
	}
	switch s {
	case policy.HelperMount:
		if w := f.helperProblem(); w != "" {
			why = append(why, w)
		}
		if w := f.keyProblem(); w != "" {
			why = append(why, w+": the disk cannot be unlocked on a helper")
		}
	case policy.RestoreBackup:
		switch {
		case f.backup == nil:
			w := "no backup taken before the incident began (" + f.cutoff.UTC().Format(time.RFC3339) + ")"
			if n := len(f.ignored); n > 0 {
				w += fmt.Sprintf("; %d later backup(s) ignored", n)
			}
			why = append(why, w)
		case !f.in.Policy.AllowDataLoss:
			why = append(why, fmt.Sprintf("policy.allow_data_loss is false (backup %s of %s would lose %s of data)",
				f.backup.ID, f.backup.TakenAt.UTC().Format(time.RFC3339), fmtDur(f.dataLoss())))
		}
	}
	if len(why) > 0 {
		return false, string(s) + ": " + strings.Join(why, "; ")
	}
	return true, ""
}

func notApplicable(s policy.Strategy, st inventory.State) string {
	switch {
	case s == policy.RebootRetry && st == inventory.StateSafeMode:
		return "the VM runs in Safe Mode and is not crashing; restarting does not remove the bad file"
	case s == policy.HelperMount && st == inventory.StateSafeMode:
		return "the VM's safe-boot flag can only be cleared on the running guest; repaired offline it would boot into Safe Mode again"
	case s == policy.DeleteFile && st == inventory.StateBootLoop:
		return "the VM is not in Safe Mode, so WinRM cannot reach it to delete the file"
	}
	return "does not apply to a " + string(st) + " VM"
}

// helperProblem says why no helper can be used, or "".
func (f vmFacts) helperProblem() string {
	if f.helper != nil {
		return ""
	}
	if f.vm.Windows.Release == "" {
		return "the VM's Windows release is unknown, so no helper can be matched to it"
	}
	w := fmt.Sprintf("no same-version helper image in zone %s for Windows %s", f.vm.Zone, f.vm.Windows.Release)
	if len(f.zoneRels) == 0 {
		return w + " (no helper images in that zone)"
	}
	return w + fmt.Sprintf(" (zone has Windows %s; set policy.helper_version: any to allow a different release)",
		strings.Join(f.zoneRels, ", "))
}

// keyProblem says why a BitLocker disk cannot be unlocked offline, or "".
func (f vmFacts) keyProblem() string {
	enc := f.vm.OSDisk.Encryption
	switch {
	case !enc.BitLocker:
		return ""
	case enc.KeyID == "":
		return "BitLocker is on but the recovery key ID is unknown"
	case f.in.Keys == nil || !f.in.Keys.HasKey(enc.KeyID):
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
func decide(in Input, a inventory.Assessed) VMPlan {
	vm := a.VM
	c := a.Classification
	v := VMPlan{
		Key:      vm.Key(),
		Location: vm.Location,
		ID:       vm.ID,
		Name:     vm.Name,
		Windows:  vm.Windows,
		OSDisk:   vm.OSDisk,
		Power:    vm.Power,
		State:    c.State,
		Evidence: evidenceSummary(c),
	}
	if n := len(c.Evidence.Samples); n > 0 && c.Evidence.Samples[n-1].Power != "" {
		v.Power = c.Evidence.Samples[n-1].Power // the latest the cloud said
	}
	reasons := slices.Clone(c.Reasons)
	switch c.State {
	case inventory.StateHealthy:
		v.Strategy = None
		v.Reasons = append(reasons, "healthy: fixfleet never touches it")
		return v
	case inventory.StateUnknown:
		v.Strategy = Manual
		v.Reasons = append(reasons, "state unknown: fixfleet will not act on it; resolve the doubt above, then assess and plan again")
		f := factsFor(in, a)
		v.Risks = f.risks(nil)
		return v
	}

	f := factsFor(in, a)
	order := slices.Clone(in.Policy.Strategies)
	for _, s := range policy.Strategies {
		if !slices.Contains(order, s) {
			order = append(order, s)
		}
	}
	var eligible []policy.Strategy
	var skipped []string
	var whyNot []string
	for _, s := range order {
		ok, why := f.check(s)
		if ok {
			eligible = append(eligible, s)
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
		v.Risks = f.risks(nil)
		return v
	}
	v.Strategy = eligible[0]
	v.Fallbacks = eligible[1:]
	v.Skipped = skipped
	v.Reasons = append(reasons, fmt.Sprintf("%s: the first eligible strategy in policy order", v.Strategy))
	v.Risks = f.risks(eligible)
	if slices.Contains(eligible, policy.RestoreBackup) {
		b := f.backup
		loss := f.dataLoss()
		v.Backup = &PlannedBackup{ID: b.ID, Kind: b.Kind, TakenAt: b.TakenAt.UTC(), SizeGB: b.SizeGB,
			DataLossSeconds: int64(loss / time.Second), DataLoss: fmtDur(loss)}
	}
	if slices.Contains(eligible, policy.HelperMount) {
		h := f.helper
		v.Helper = &PlannedHelper{Zone: h.Zone, Windows: h.Windows, ImageID: h.ImageID, SameRelease: f.sameHelp}
	}
	return v
}

// risks lists what could go wrong or what is missing, given the strategies
// planned (chosen and fallbacks; nil for a VM left to a person).
func (f vmFacts) risks(planned []policy.Strategy) []string {
	var r []string
	relevant := func(s policy.Strategy) bool {
		return f.in.Policy.Enabled(s) && slices.Contains(applies[s], f.state) || f.state == inventory.StateUnknown
	}
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
	if relevant(policy.HelperMount) && f.vm.Windows.Release != "" && !f.sameHelp {
		r = append(r, fmt.Sprintf("no same-version helper image in zone %s for Windows %s", f.vm.Zone, f.vm.Windows.Release))
	}
	if slices.Contains(planned, policy.HelperMount) && !f.sameHelp {
		r = append(r, fmt.Sprintf("helper of a different Windows release (%s for a %s VM): NTFS, BitLocker and hive tools may differ",
			f.helper.Windows.Release, f.vm.Windows.Release))
	}
	if slices.Contains(planned, policy.RestoreBackup) {
		r = append(r, fmt.Sprintf("restore loses data written since %s (window: %s)",
			f.backup.TakenAt.UTC().Format(time.RFC3339), fmtDur(f.dataLoss())))
	}
	return r
}
