package conformance

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// otherAccount owns the half of the default world that the provider under
// test must never see.
const otherAccount = "conformance-other"

// suiteMix is the fleet every scenario starts from: every kind of VM, with
// enough broken ones to act on.
const suiteMix = "healthy=20,boot-loop=30,stuck=15,safe-mode=10,stopped=15,winrm-blocked=5,bad-credentials=5"

// maxSeeds bounds the search for a world rich enough for every scenario.
const maxSeeds = 500

// suiteFaults is the fault configuration of a scenario's world: calibrated
// latency (so that asynchronous operations really are), no throttling and
// no injected errors. Scenarios that want faults set them.
func suiteFaults() world.Faults { return world.Faults{Throttle: world.ThrottleOff, Latency: 1} }

// chooseWorld returns the generation options every scenario's world is
// made from (without its clock): the suite's defaults, the harness's
// tweaks, and the first seed from 1 whose world has, in the provider's
// account, every kind of VM the scenarios need (see rich).
func chooseWorld(h Harness) (world.GenOptions, error) {
	mix, err := world.ParseMix(suiteMix)
	if err != nil {
		return world.GenOptions{}, err
	}
	o := world.GenOptions{
		VMs:      48,
		Mix:      mix,
		Zones:    append([]string(nil), world.DefaultZones...),
		Accounts: []string{world.DefaultAccount, otherAccount},
		Origin:   world.DefaultOrigin,
	}
	if h.World != nil {
		h.World(&o)
	}
	f := suiteFaults()
	o.Faults, o.Clock = &f, nil
	if len(o.Zones) < 2 {
		return o, fmt.Errorf("the world needs at least two zones (cross-zone scenarios); Harness.World left %v", o.Zones)
	}
	if len(o.Accounts) == 0 {
		o.Accounts = []string{world.DefaultAccount}
	}
	acct := accountOf(h, o)
	if !slices.Contains(o.Accounts, acct) {
		return o, fmt.Errorf("Harness.Account %q is not one of the world's accounts %v", acct, o.Accounts)
	}
	for seed := int64(1); seed <= maxSeeds; seed++ {
		o.Seed = seed
		sc, err := exported(o)
		if err != nil {
			return o, err
		}
		if rich(sc, acct) == nil {
			return o, nil
		}
	}
	o.Seed = 1
	sc, _ := exported(o)
	return o, fmt.Errorf("no seed in 1-%d makes a world rich enough (seed 1: %v); give more VMs in Harness.World", maxSeeds, rich(sc, acct))
}

// exported generates the world of o on a stopped clock and exports it: the
// scenario with each VM's truth and loop filled in.
func exported(o world.GenOptions) (world.Scenario, error) {
	o.Clock = world.NewManualClock(o.Origin)
	w, err := world.Generate(o)
	if err != nil {
		return world.Scenario{}, err
	}
	return w.Export(), nil
}

func accountOf(h Harness, o world.GenOptions) string {
	if h.Account != "" {
		return h.Account
	}
	if len(o.Accounts) > 0 {
		return o.Accounts[0]
	}
	return world.DefaultAccount
}

// neverHealthy reports whether a VM cannot become healthy by itself while a
// scenario runs: a running boot-looping VM that never recovers naturally,
// or a stopped one. Scenarios act only on these, so that the referee's
// "healthy VM touched" stays 0 however the clock moves.
func neverHealthy(v world.VMSpec) bool {
	switch v.Power {
	case inventory.PowerStopped:
		return v.OSDisk != nil
	case inventory.PowerRunning:
		return v.OSDisk != nil && v.Truth == world.TruthBootLoop && v.Condition.RecoverAfterBoots == 0
	}
	return false
}

// loopingRunning: running, boot-looping, never recovering.
func loopingRunning(v world.VMSpec) bool { return v.Power == inventory.PowerRunning && neverHealthy(v) }

// cyclesAgain: a VM cycling through crashes that will begin at least one
// more boot by itself (it does not stick on its current one).
func cyclesAgain(v world.VMSpec) bool {
	c := v.Condition
	return v.Power == inventory.PowerRunning && c.Loop == world.LoopCycling &&
		(c.StuckAfterCrashes == 0 || c.StuckAfterCrashes-c.Crashes >= 2) &&
		c.WinRMWindowSeconds == 0 // a boot that reaches WinRM first cycles longer than timing.OpCrashCycle
}

// rich says what the generated scenario lacks for the scenarios, or nil.
func rich(sc world.Scenario, acct string) error {
	var loop, cyc, stopped, backups int
	zones := map[string]bool{}
	for _, v := range sc.VMs {
		if v.Account != acct {
			continue
		}
		if loopingRunning(v) {
			loop++
		}
		if cyclesAgain(v) {
			cyc++
		}
		if v.Power == inventory.PowerStopped && v.OSDisk != nil {
			stopped++
		}
		if len(v.Backups) > 0 {
			backups++
		}
		if neverHealthy(v) {
			zones[v.Zone] = true
		}
	}
	switch {
	case loop < 6:
		return fmt.Errorf("%d running boot-looping VMs that never recover, want 6", loop)
	case cyc < 1:
		return errors.New("no VM cycling through crashes")
	case stopped < 1:
		return errors.New("no stopped VM")
	case backups < 1:
		return errors.New("no VM with backups")
	case len(zones) < 2:
		return errors.New("broken VMs in fewer than two zones")
	}
	return nil
}

// env is one scenario's world, provider and helpers.
type env struct {
	t      *testing.T
	h      Harness
	ctx    context.Context
	w      *world.World
	p      *providers.Provider
	acct   string
	manual *world.ManualClock // nil on a scaled clock
	run    string             // the scenario's run tag value
	listed map[string]inventory.VM
}

// newEnv generates the scenario's world and builds the provider on it.
func newEnv(t *testing.T, h Harness, opts world.GenOptions) *env {
	t.Helper()
	clk, manual := newClock(h, opts.Origin)
	opts.Clock = clk
	w, err := world.Generate(opts)
	if err != nil {
		t.Fatalf("generating the world: %v", err)
	}
	timeout := h.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	t.Cleanup(cancel)
	p := h.New(t, w)
	if p == nil {
		t.Fatalf("%s: Harness.New returned no provider", h.Name)
	}
	run := "conformance-" + strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	return &env{t: t, h: h, ctx: ctx, w: w, p: p, acct: accountOf(h, opts), manual: manual, run: run}
}

// id is the provider's ID of a world resource.
func (e *env) id(worldID string) string {
	if e.h.ID == nil {
		return worldID
	}
	return e.h.ID(worldID)
}

// must fails the scenario at once on err, saying what was being done.
func (e *env) must(err error, format string, args ...any) {
	e.t.Helper()
	if err != nil {
		e.t.Fatalf("%s: %s: %v", e.h.Name, fmt.Sprintf(format, args...), err)
	}
}

// wantClass checks that err is of class and names every one of names.
// It reports whether it is of class.
func (e *env) wantClass(err, class error, what string, names ...string) bool {
	e.t.Helper()
	if !errors.Is(err, class) {
		e.t.Errorf("%s: %s: got error %v, want %v", e.h.Name, what, err, class)
		return false
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			e.t.Errorf("%s: %s: error %q does not name %s", e.h.Name, what, err, n)
		}
	}
	return true
}

// checkAudit fails the scenario if a referee invariant counter is above 0.
func (e *env) checkAudit() {
	e.t.Helper()
	a := e.w.Audit()
	// A scenario makes copies of disks on purpose to try the disk calls,
	// and deletes them only where it tries CopyDeleter: those copies are
	// not a run's leaks. Helpers it must release.
	inv := a.Invariants()
	var leaks []world.Leak
	for _, l := range a.LeakedList {
		if l.Kind != "disk" {
			leaks = append(leaks, l)
		}
	}
	inv.LeakedResources = len(leaks)
	if inv == (world.Invariants{}) {
		return
	}
	a.LeakedList = leaks
	e.t.Errorf("%s: the referee counts invariant breaches: %+v\n%s", e.h.Name, inv, strings.Join(a.Violations(), "\n"))
}

// advance moves the world's time forward by d: at once on a ManualClock,
// by sleeping on a scaled one.
func (e *env) advance(d time.Duration) {
	e.t.Helper()
	if e.manual != nil {
		e.manual.Advance(d)
		return
	}
	e.must(e.w.Clock().Sleep(e.ctx, d), "waiting %s of simulated time", d)
}

// fleet returns the account's fleet VMs as the world holds them now.
func (e *env) fleet() []world.VMSpec {
	var out []world.VMSpec
	for _, v := range e.w.Export().VMs {
		if v.Account == e.acct {
			out = append(out, v)
		}
	}
	return out
}

// others returns fleet VMs of other accounts.
func (e *env) others() []world.VMSpec {
	var out []world.VMSpec
	for _, v := range e.w.Export().VMs {
		if v.Account != e.acct {
			out = append(out, v)
		}
	}
	return out
}

// vm returns world VM (or helper) id now.
func (e *env) vm(id string) (world.VMSpec, bool) {
	sc := e.w.Export()
	for _, v := range append(sc.VMs, sc.Helpers...) {
		if v.ID == id {
			return v, true
		}
	}
	return world.VMSpec{}, false
}

// mustVM is vm, failing the scenario when the VM is gone.
func (e *env) mustVM(id string) world.VMSpec {
	e.t.Helper()
	v, ok := e.vm(id)
	if !ok {
		e.t.Fatalf("%s: VM %s is gone from the world", e.h.Name, id)
	}
	return v
}

// pick returns the first n of the account's fleet VMs matching pred, by ID.
func (e *env) pick(n int, what string, pred func(world.VMSpec) bool) []world.VMSpec {
	e.t.Helper()
	var out []world.VMSpec
	for _, v := range e.fleet() {
		if pred(v) && len(out) < n {
			out = append(out, v)
		}
	}
	if len(out) < n {
		e.t.Fatalf("the world has %d %s VMs in account %s, the scenario needs %d (suite bug: see rich)", len(out), what, e.acct, n)
	}
	return out
}

// list returns the provider's List result by world VM ID (nil if the
// provider does not enumerate), calling it once per scenario.
func (e *env) list() map[string]inventory.VM {
	e.t.Helper()
	if e.listed != nil || e.p.Enumerator == nil {
		return e.listed
	}
	vms, err := e.p.Enumerator.List(e.ctx)
	e.must(err, "List")
	back := map[string]string{}
	for _, v := range e.w.Export().VMs {
		back[e.id(v.ID)] = v.ID
	}
	e.listed = map[string]inventory.VM{}
	for _, v := range vms {
		if wid, ok := back[v.ID]; ok {
			e.listed[wid] = v
		}
	}
	return e.listed
}

// ref is the provider's reference to a fleet VM: from its own List when it
// enumerates (so that Region and Name are its own), else made up.
func (e *env) ref(v world.VMSpec) providers.VMRef {
	e.t.Helper()
	if l := e.list(); l != nil {
		iv, ok := l[v.ID]
		if !ok {
			e.t.Fatalf("%s: List does not return VM %s (%s)", e.h.Name, e.id(v.ID), v.ID)
		}
		return providers.Ref(iv)
	}
	return providers.VMRef{ID: e.id(v.ID), Zone: v.Zone, Name: v.Name}
}

func (e *env) refs(vs []world.VMSpec) []providers.VMRef {
	e.t.Helper()
	out := make([]providers.VMRef, len(vs))
	for i, v := range vs {
		out[i] = e.ref(v)
	}
	return out
}

// region is the region the provider gives the account's VMs ("" if none).
func (e *env) region() string {
	for _, v := range e.list() {
		return v.Region
	}
	return ""
}

// diskRef is the provider's reference to a VM's current boot disk.
func (e *env) diskRef(v world.VMSpec) providers.DiskRef {
	e.t.Helper()
	if v.OSDisk == nil {
		e.t.Fatalf("VM %s has no boot disk in the world", v.ID)
	}
	r := e.ref(v)
	return providers.DiskRef{ID: e.id(v.OSDisk.ID), Region: r.Region, Zone: v.Zone}
}

// recheck observes VMs right before acting on them, as an orchestrator
// must (the referee counts an action on a VM healthy at its last
// observation as a breach), and checks that none is healthy.
func (e *env) recheck(vms ...providers.VMRef) {
	e.t.Helper()
	if e.p.Observer == nil {
		return
	}
	sig, err := e.p.Observer.Observe(e.ctx, vms)
	e.must(err, "Observe before acting")
	for _, r := range vms {
		if _, ok := sig[r.ID]; !ok {
			e.t.Errorf("%s: Observe has no entry for existing VM %s", e.h.Name, r.ID)
		}
	}
}

// tags labels what a scenario creates.
func (e *env) tags(role, vmID string) providers.Tags {
	t := providers.Tags{providers.TagRun: e.run, providers.TagRole: role}
	if vmID != "" {
		t[providers.TagVM] = vmID
	}
	return t
}

// worldDisk is a disk as the world holds it, wherever it is attached.
type worldDisk struct {
	world.DiskSpec
	BootOf string // VM or helper whose boot disk it is
}

// disks returns every disk of the account in the world now.
func (e *env) disks() []worldDisk {
	sc := e.w.Export()
	var out []worldDisk
	for _, v := range append(sc.VMs, sc.Helpers...) {
		if v.OSDisk != nil && v.Account == e.acct {
			d := *v.OSDisk
			d.Zone, d.Account = v.Zone, v.Account
			out = append(out, worldDisk{DiskSpec: d, BootOf: v.ID})
		}
	}
	for _, d := range sc.Disks {
		if d.Account == e.acct {
			out = append(out, worldDisk{DiskSpec: d})
		}
	}
	return out
}

// disksTagged returns the account's world disks carrying all tags.
func (e *env) disksTagged(tags providers.Tags) []worldDisk {
	var out []worldDisk
	for _, d := range e.disks() {
		if hasTags(d.Tags, tags) {
			out = append(out, d)
		}
	}
	return out
}

// disk returns world disk id.
func (e *env) disk(id string) (worldDisk, bool) {
	for _, d := range e.disks() {
		if d.ID == id {
			return d, true
		}
	}
	return worldDisk{}, false
}

// helpersTagged returns the account's world helpers carrying all tags.
func (e *env) helpersTagged(tags providers.Tags) []world.VMSpec {
	var out []world.VMSpec
	for _, h := range e.w.Export().Helpers {
		if h.Account == e.acct && hasTags(h.Tags, tags) {
			out = append(out, h)
		}
	}
	return out
}

func hasTags(have map[string]string, want providers.Tags) bool {
	for k, v := range want {
		if hv, ok := have[k]; !ok || hv != v {
			return false
		}
	}
	return true
}

// unknownVM is a reference, shaped like the provider's, to a VM that does
// not exist.
func (e *env) unknownVM() providers.VMRef {
	return providers.VMRef{ID: e.id("vm-99999"), Region: e.region(), Zone: e.w.Zones()[0]}
}

// unknownDisk is a reference to a disk that does not exist.
func (e *env) unknownDisk() providers.DiskRef {
	return providers.DiskRef{ID: e.id("disk-99999"), Region: e.region(), Zone: e.w.Zones()[0]}
}

// acquireHelper acquires a helper of an image the world has in zone (any
// zone if ""), tagged for the scenario.
func (e *env) acquireHelper(zone string) (providers.VMRef, world.ImageSpec, providers.Tags) {
	e.t.Helper()
	im, ok := e.image(zone)
	if !ok {
		e.t.Fatalf("the world has no helper image in zone %q", zone)
	}
	tags := e.tags("helper", "")
	h, err := e.p.Helpers.Acquire(e.ctx, im.Zone, inventory.WindowsVersion{Release: im.Release}, tags)
	e.must(err, "Acquire a Windows Server %s helper in %s", im.Release, im.Zone)
	return h, im, tags
}

// image returns the world's first image in zone (any zone if "").
func (e *env) image(zone string) (world.ImageSpec, bool) {
	for _, im := range e.w.Export().Images {
		if zone == "" || im.Zone == zone {
			return im, true
		}
	}
	return world.ImageSpec{}, false
}
