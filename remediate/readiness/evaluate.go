package readiness

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/helperpool"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

const defaultPerHelper = helperpool.DefaultPerHelper

// Report is the readiness report.
type Report struct {
	Version     string    `json:"version"`
	GeneratedAt time.Time `json:"generated_at"`
	// Ready is true when no VM, account, zone or role has a gap.
	Ready bool `json:"ready"`
	// MaxBackupAge is the data-loss limit used, e.g. "24h00m".
	MaxBackupAge string        `json:"max_backup_age"`
	Tenants      []TenantScore `json:"tenants"`
	// Fixes are the gaps grouped by what fixes them, most VMs first.
	Fixes    []Fix            `json:"fixes"`
	Accounts []AccountSummary `json:"accounts"`
	VMs      []VMReadiness    `json:"vms"`
	Estimate Estimate         `json:"estimate"`
	// NotCheckable lists what could not be checked, and why (not gaps).
	NotCheckable []string `json:"not_checkable,omitempty"`
	// NotRunnable lists the enabled strategies an account's provider
	// cannot run (a property of the cloud, such as os-disk-swap; not a
	// gap): their needs are not asked for there.
	NotRunnable []string `json:"not_runnable,omitempty"`
}

// TenantScore is a tenant's share of VMs with a full repair path.
type TenantScore struct {
	Tenant string  `json:"tenant"`
	VMs    int     `json:"vms"`
	Ready  int     `json:"ready"`
	Score  float64 `json:"score"` // Ready / VMs, 1 for a tenant without VMs
}

// Fix is one line of the ranked list: a gap and the VMs it affects.
type Fix struct {
	Kind Kind `json:"kind"`
	// Scope is what to fix: a VM group ("3 VMs"), an account, a zone and
	// release, or a role.
	Scope string `json:"scope"`
	// VMs is how many VMs it leaves without a full repair path.
	VMs  int    `json:"vms"`
	Text string `json:"text"`
	// Keys are the VMs (tenant/account/id), sorted.
	Keys []string `json:"keys"`
}

// AccountSummary is what was checked of one account.
type AccountSummary struct {
	Tenant   string `json:"tenant"`
	Account  string `json:"account"`
	Provider string `json:"provider"`
	VMs      int    `json:"vms"`
	AccountChecks
	// HelpersNeeded is how many helpers the plan would run at once if
	// every VM of the account failed now.
	HelpersNeeded int `json:"helpers_needed"`
}

// VMReadiness is one VM's gaps.
type VMReadiness struct {
	Key     string          `json:"key"`
	Name    string          `json:"name,omitempty"`
	Tenant  string          `json:"tenant"`
	Account string          `json:"account"`
	Zone    string          `json:"zone"`
	Release string          `json:"release"`
	Role    string          `json:"role,omitempty"`
	State   inventory.State `json:"state"`
	Ready   bool            `json:"ready"`
	Gaps    []Kind          `json:"gaps,omitempty"`
	// Details say, per gap in order, what exactly is missing.
	Details []string `json:"details,omitempty"`
	// Strategy is what the hypothetical plan would do if it boot-looped.
	Strategy string `json:"strategy,omitempty"`
}

// Estimate is the planner's estimate of time to a healthy fleet if every
// VM failed at once.
type Estimate struct {
	VMs             int    `json:"vms"`
	Acted           int    `json:"acted"`  // VMs fixfleet would act on
	Manual          int    `json:"manual"` // VMs left to a person
	DurationSeconds int64  `json:"duration_seconds"`
	Duration        string `json:"duration"`
}

// vmState is Evaluate's working copy of one VM.
type vmState struct {
	out VMReadiness
	vm  inventory.VM
	// helperFallback says which fallbacks exist when NoHelperImage.
	helperFallback string
}

func (s *vmState) add(k Kind, detail string) {
	if slices.Contains(s.out.Gaps, k) {
		return
	}
	s.out.Gaps = append(s.out.Gaps, k)
	s.out.Details = append(s.out.Details, detail)
}

// needs is the union of the declared needs of the strategies that can
// run on one account: enabled, and whose capabilities its provider has.
type needs struct {
	actions                      []providers.Action
	backup, helper, key, safeWin bool
	guest                        bool
	// notHere names the enabled strategies the provider cannot run, and
	// why (a cloud property, such as os-disk-swap, not a gap).
	notHere []string
}

func needsOf(in Input, caps []string) needs {
	reg := in.Strategies
	if reg == nil {
		reg = strategy.Default()
	}
	var n needs
	for _, u := range reg.All() {
		if !in.Policy.Enabled(u.Name()) {
			continue
		}
		d := u.Needs()
		if lacking := d.Lacking(func(c string) bool { return slices.Contains(caps, c) }); len(lacking) > 0 {
			n.notHere = append(n.notHere, fmt.Sprintf("%s does not run here (the provider lacks %s)", u.Name(), strings.Join(lacking, ", ")))
			continue
		}
		for _, c := range d.Capabilities {
			for _, a := range providers.ActionsFor(c) {
				if !slices.Contains(n.actions, a) {
					n.actions = append(n.actions, a)
				}
			}
		}
		n.backup = n.backup || d.Backup
		n.helper = n.helper || d.Helper
		n.key = n.key || d.RecoveryKey
		if slices.Contains(d.Capabilities, "guest") {
			n.guest = true
			n.safeWin = n.safeWin || slices.Contains(u.Applies(), inventory.StateSafeMode)
		}
	}
	return n
}

// Evaluate turns what Gather read into a report. It does no I/O.
func Evaluate(in Input) *Report {
	o := in.Options.withDefaults()
	r := &Report{Version: Version, GeneratedAt: in.Now.UTC(), MaxBackupAge: timing.Format(o.MaxBackupAge)}

	facts := map[string]int{} // account key → index in in.Fleet.Accounts
	acctNeeds := map[string]needs{}
	roleBackups := false
	for i, a := range in.Fleet.Accounts {
		key := plan.AccountKey(a.Account.Tenant, a.Account.Name)
		facts[key] = i
		acctNeeds[key] = needsOf(in, a.Capabilities)
		roleBackups = roleBackups || acctNeeds[key].backup
	}
	planned := map[string]plan.VMPlan{}
	if in.Plan != nil {
		for _, v := range in.Plan.VMs {
			planned[v.Key] = v
		}
	}

	var vms []*vmState
	for _, a := range in.Fleet.VMs {
		vm := a.VM
		need := acctNeeds[plan.AccountKey(vm.Tenant, vm.Account)]
		s := &vmState{vm: vm, out: VMReadiness{Key: vm.Key(), Name: vm.Name, Tenant: vm.Tenant, Account: vm.Account,
			Zone: vm.Zone, Release: vm.Windows.Release, Role: vm.Tags[o.RoleTag], State: a.Classification.State,
			Strategy: string(planned[vm.Key()].Strategy)}}
		if a.Classification.State != inventory.StateHealthy {
			s.add(NotHealthy, fmt.Sprintf("%s now: repair it first (fixfleet plan)", a.Classification.State))
		}
		if need.backup {
			backupGap(s, in.Now, o.MaxBackupAge)
		}
		if need.key {
			enc := vm.OSDisk.Encryption
			if g, ok := in.Guest[vm.Key()]; ok && g.Status == GuestOK && g.BitLocker && !enc.BitLocker {
				// The cloud does not know BitLocker (EC2, Sakura): the guest does.
				enc = inventory.Encryption{BitLocker: true, KeyID: g.KeyID}
			}
			if plan.KeyProblem(enc, in.Keys) != "" {
				s.add(KeyNotEscrowed, "BitLocker recovery key "+orUnknown(enc.KeyID)+" is in no configured key source")
			}
		}
		if need.helper {
			helperGap(s, in, facts)
		}
		if need.guest {
			guestGap(s, in.Guest, need.safeWin)
		}
		if n := len(a.Classification.Evidence.Samples); n > 0 && !a.Classification.Evidence.Samples[n-1].ConsoleAvailable {
			s.add(NoConsole, "the cloud shows no console for it")
		}
		vms = append(vms, s)
	}

	r.Accounts = accountSummaries(in, o, acctNeeds, vms, planned)
	for _, acct := range r.Accounts {
		key := plan.AccountKey(acct.Tenant, acct.Account)
		need := acctNeeds[key]
		var denied []string
		for _, p := range acct.Permissions {
			if p.Allowed == providers.AllowedNo && slices.Contains(need.actions, p.Action) {
				denied = append(denied, string(p.Action))
			}
		}
		quotaShort := acct.Quota.Known && !acct.Quota.Unlimited && acct.Quota.Room < acct.HelpersNeeded
		for _, s := range vms {
			if plan.AccountKey(s.vm.Tenant, s.vm.Account) != key {
				continue
			}
			if len(denied) > 0 {
				s.add(PermissionDenied, "the account's credentials are denied "+strings.Join(denied, ", "))
			}
			if quotaShort && planned[s.out.Key].Helper != nil {
				s.add(HelperQuota, fmt.Sprintf("room for %d more helpers, the plan would need %d", acct.Quota.Room, acct.HelpersNeeded))
			}
		}
		r.NotCheckable = append(r.NotCheckable, notCheckable(acct)...)
		for _, s := range need.notHere {
			r.NotRunnable = append(r.NotRunnable, key+" ("+acct.Provider+"): "+s)
		}
	}

	for _, sk := range in.Fleet.Skipped {
		r.NotCheckable = append(r.NotCheckable, fmt.Sprintf("%s (%s): skipped, not assessed: %s", plan.AccountKey(sk.Tenant, sk.Account), sk.Provider, sk.Reason))
	}
	for _, s := range vms {
		s.out.Ready = len(s.out.Gaps) == 0
		r.VMs = append(r.VMs, s.out)
	}
	r.Tenants = scores(r.VMs)
	r.Fixes = fixes(vms, in, o, roleBackups)
	r.Ready = len(r.Fixes) == 0
	if p := in.Plan; p != nil {
		r.Estimate = Estimate{VMs: len(p.VMs), Acted: p.Summary.Act, Manual: p.Summary.ManualN,
			DurationSeconds: p.Estimate.DurationSeconds, Duration: p.Estimate.Duration}
	}
	return r
}

// backupGap adds NoBackup or StaleBackup.
func backupGap(s *vmState, now time.Time, maxAge time.Duration) {
	if len(s.vm.Backups) == 0 {
		s.add(NoBackup, "no backup")
		return
	}
	if age, ok := newestAge(s.vm, now); ok && age > maxAge {
		s.add(StaleBackup, fmt.Sprintf("newest backup is %s old, over the limit of %s", timing.Format(age), timing.Format(maxAge)))
	}
}

// newestAge is the age of vm's newest backup taken at or before now.
func newestAge(vm inventory.VM, now time.Time) (time.Duration, bool) {
	var newest time.Time
	for _, b := range vm.Backups {
		if !b.TakenAt.After(now) && b.TakenAt.After(newest) {
			newest = b.TakenAt
		}
	}
	if newest.IsZero() {
		return 0, false
	}
	return now.Sub(newest), true
}

// helperGap adds NoHelperImage, saying which fallbacks exist.
func helperGap(s *vmState, in Input, facts map[string]int) {
	i, ok := facts[plan.AccountKey(s.vm.Tenant, s.vm.Account)]
	if !ok {
		return
	}
	rel := s.vm.Windows.Release
	var otherRel, otherZone []string
	for _, h := range in.Fleet.Accounts[i].Helpers {
		switch {
		case h.Zone == s.vm.Zone && h.Windows.Release == rel && rel != "":
			return
		case h.Zone == s.vm.Zone:
			otherRel = appendNew(otherRel, h.Windows.Release)
		case h.Windows.Release == rel:
			otherZone = appendNew(otherZone, h.Zone)
		}
	}
	s.helperFallback = fallback(otherRel, otherZone)
	s.add(NoHelperImage, fmt.Sprintf("no Windows Server %s helper image in zone %s; %s", orUnknown(rel), s.vm.Zone, s.helperFallback))
}

func fallback(otherRel, otherZone []string) string {
	var f []string
	if len(otherRel) > 0 {
		f = append(f, "other releases in the zone: "+strings.Join(otherRel, ", ")+" (policy.helper_version any)")
	}
	if len(otherZone) > 0 {
		f = append(f, "same release in zone "+strings.Join(otherZone, ", ")+" (cross-zone: fixfleet does not move disks between zones)")
	}
	if len(f) == 0 {
		return "no fallback"
	}
	return "fallback: " + strings.Join(f, "; ")
}

// guestGap adds the guest check's gap.
func guestGap(s *vmState, checks map[string]GuestCheck, safeWin bool) {
	g, ok := checks[s.out.Key]
	if !ok {
		return // not checked: not healthy
	}
	switch g.Status {
	case GuestNoAccess:
		s.add(NoGuestAccess, g.Detail)
	case GuestUnreachable:
		s.add(WinRMUnreachable, g.Detail)
	case GuestAuth:
		s.add(WinRMAuth, g.Detail)
	case GuestError:
		s.add(GuestCheckFailed, g.Detail)
	case GuestOK:
		if safeWin && !g.SafeModeWinRM {
			s.add(NoSafeModeWinRM, `WinRM is not listed under HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot\Network`)
		}
	}
}

// accountSummaries lists every account with its checks and the helpers
// the hypothetical plan would need there at once: per zone and release,
// the VMs it would mount (up to policy.concurrency.per_account at a time)
// over the disks one helper serves.
func accountSummaries(in Input, o Options, acctNeeds map[string]needs, vms []*vmState, planned map[string]plan.VMPlan) []AccountSummary {
	var out []AccountSummary
	for _, a := range in.Fleet.Accounts {
		key := plan.AccountKey(a.Account.Tenant, a.Account.Name)
		sum := AccountSummary{Tenant: a.Account.Tenant, Account: a.Account.Name, Provider: a.Account.Provider, AccountChecks: in.Accounts[key]}
		groups := map[string]int{}
		for _, s := range vms {
			if plan.AccountKey(s.vm.Tenant, s.vm.Account) != key {
				continue
			}
			sum.VMs++
			if h := planned[s.out.Key].Helper; h != nil {
				groups[h.Zone+"/"+h.Windows.Release]++
			}
		}
		per := max(1, in.Policy.Concurrency.PerAccount)
		for _, n := range groups {
			sum.HelpersNeeded += (min(n, per) + o.PerHelper - 1) / o.PerHelper
		}
		if !acctNeeds[key].helper {
			sum.HelpersNeeded = 0
		}
		out = append(out, sum)
	}
	return out
}

func notCheckable(a AccountSummary) []string {
	at := plan.AccountKey(a.Tenant, a.Account) + " (" + a.Provider + ")"
	switch {
	case !a.Checkable:
		return []string{at + ": permissions and quota: the provider offers no check without effect"}
	case a.Error != "":
		return []string{at + ": permissions and quota: the check failed: " + a.Error}
	}
	var out []string
	for _, p := range a.Permissions {
		if p.Allowed == providers.AllowedUnknown {
			out = append(out, fmt.Sprintf("%s: permission %s: %s", at, p.Action, p.How))
		}
	}
	if !a.Quota.Known {
		out = append(out, at+": helper quota: "+a.Quota.How)
	}
	return out
}

// scores is each tenant's share of ready VMs, by tenant name.
func scores(vms []VMReadiness) []TenantScore {
	by := map[string]*TenantScore{}
	for _, v := range vms {
		t := by[v.Tenant]
		if t == nil {
			t = &TenantScore{Tenant: v.Tenant}
			by[v.Tenant] = t
		}
		t.VMs++
		if v.Ready {
			t.Ready++
		}
	}
	var out []TenantScore
	for _, name := range sortedKeys(by) {
		t := *by[name]
		t.Score = 1
		if t.VMs > 0 {
			t.Score = float64(t.Ready) / float64(t.VMs)
		}
		out = append(out, t)
	}
	return out
}

// fixes groups the gaps by what fixes them and ranks them, most VMs
// first (then by kind and scope); with roleBackups, the role groups'
// backups too.
func fixes(vms []*vmState, in Input, o Options, roleBackups bool) []Fix {
	type group struct {
		kind  Kind
		scope string
		text  func(n int) string
		keys  []string
	}
	groups := map[string]*group{}
	addTo := func(kind Kind, scope string, text func(n int) string, key string) {
		id := string(kind) + "|" + scope
		g := groups[id]
		if g == nil {
			g = &group{kind: kind, scope: scope, text: text}
			groups[id] = g
		}
		if key != "" {
			g.keys = append(g.keys, key)
		}
	}
	perVM := map[Kind]string{
		NotHealthy: "not healthy now (repair first)", NoBackup: "no backup",
		StaleBackup: "no backup newer than " + timing.Format(o.MaxBackupAge), KeyNotEscrowed: "BitLocker key not escrowed",
		NoGuestAccess: "no guest access", WinRMUnreachable: "WinRM not reachable", WinRMAuth: "WinRM credentials rejected",
		GuestCheckFailed: "guest check failed", NoSafeModeWinRM: "WinRM does not start in Safe Mode",
		NoConsole: "no console screenshot",
	}
	for _, s := range vms {
		for i, k := range s.out.Gaps {
			switch k {
			case NoHelperImage:
				scope := fmt.Sprintf("%s zone %s", plan.AccountKey(s.vm.Tenant, s.vm.Account), s.vm.Zone)
				rel := orUnknown(s.out.Release)
				fb := s.helperFallback
				addTo(k, scope+" release "+rel, func(n int) string {
					return fmt.Sprintf("zone %s: no %s image (%s; %s)", s.vm.Zone, rel, vmCount(n), fb)
				}, s.out.Key)
			case PermissionDenied, HelperQuota:
				acct := plan.AccountKey(s.vm.Tenant, s.vm.Account)
				detail := s.out.Details[i]
				addTo(k, "account "+acct, func(n int) string {
					return fmt.Sprintf("account %s: %s (%s)", acct, detail, vmCount(n))
				}, s.out.Key)
			default:
				label := perVM[k]
				addTo(k, "VMs", func(n int) string { return vmCount(n) + ": " + label }, s.out.Key)
			}
		}
	}
	for _, role := range o.RoleGroups {
		if !roleBackups {
			break
		}
		var members, short []string
		for _, s := range vms {
			if s.out.Role != role {
				continue
			}
			members = append(members, s.out.Key)
			if age, ok := newestAge(s.vm, in.Now); !ok || age > o.MaxBackupAge {
				short = append(short, s.out.Key)
			}
		}
		if len(short) > 0 {
			total := len(members)
			addTo(RoleBackup, "role "+role, func(n int) string {
				return fmt.Sprintf("role %s: %d of %s have no backup newer than %s (all of them must)", role, n, vmCount(total), timing.Format(o.MaxBackupAge))
			}, "")
			groups[string(RoleBackup)+"|role "+role].keys = short
		}
	}
	var out []Fix
	for _, g := range groups {
		sort.Strings(g.keys)
		out = append(out, Fix{Kind: g.kind, Scope: g.scope, VMs: len(g.keys), Text: g.text(len(g.keys)), Keys: g.keys})
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.VMs != b.VMs {
			return a.VMs > b.VMs
		}
		if a.Kind != b.Kind {
			return a.Kind < b.Kind
		}
		return a.Scope < b.Scope
	})
	return out
}

func vmCount(n int) string {
	if n == 1 {
		return "1 VM"
	}
	return fmt.Sprintf("%d VMs", n)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

func appendNew(s []string, v string) []string {
	if v == "" || slices.Contains(s, v) {
		return s
	}
	s = append(s, v)
	sort.Strings(s)
	return s
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// NotReadyError is a readiness report with gaps left: Fixes is how many
// fixes remain.
type NotReadyError struct{ Fixes int }

func (e *NotReadyError) Error() string {
	return fmt.Sprintf("not ready: %d fixes remain (see the list above)", e.Fixes)
}

// Err is nil when the fleet is ready, a *NotReadyError otherwise.
func (r *Report) Err() error {
	if r.Ready {
		return nil
	}
	return &NotReadyError{Fixes: len(r.Fixes)}
}
