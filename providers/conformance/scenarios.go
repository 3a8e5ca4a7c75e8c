package conformance

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// scenarios is the suite, in run order.
func scenarios() []Scenario {
	return []Scenario{
		{Name: "capabilities", ReadOnly: true, run: capabilities},
		{Name: "list", Needs: []string{CapEnumerate}, ReadOnly: true, run: list},
		{Name: "observe", Needs: []string{CapObserve}, ReadOnly: true, run: observe},
		{Name: "observe-boot-history", Needs: []string{CapObserve}, ReadOnly: true, run: observeBootHistory},
		{Name: "screens", Needs: []string{CapObserve}, ReadOnly: true, run: screensScenario},
		{Name: "guest-endpoint", Needs: []string{CapGuest}, ReadOnly: true, run: guestEndpoint},
		{Name: "describe-many", Needs: []string{CapDisks}, ReadOnly: true, run: describeMany},
		{Name: "stop-start-batch", Needs: []string{CapPower, CapObserve}, run: stopStartBatch},
		{Name: "restart", Needs: []string{CapPower}, run: restart},
		{Name: "snapshot-find", Needs: []string{CapDisks}, run: snapshotFind},
		{Name: "detach-running-boot-disk", Needs: []string{CapDisks}, run: detachRunningBootDisk},
		{Name: "detach-attach-roundtrip", Needs: []string{CapDisks, CapOSDiskDetach, CapPower}, run: detachAttachRoundtrip},
		{Name: "attach-other-zone", Needs: []string{CapDisks}, run: attachOtherZone},
		{Name: "disk-from-snapshot", Needs: []string{CapDisks}, run: diskFromSnapshot},
		{Name: "delete-copy", Needs: []string{CapDisks, CapCopyDelete, CapHelpers}, run: deleteCopy},
		{Name: "cross-zone-copy", Needs: []string{CapDisks, CapCrossZoneCopy, CapHelpers}, run: crossZoneCopy},
		{Name: "backups-list", Needs: []string{CapBackups}, ReadOnly: true, run: backupsList},
		{Name: "backup-restore", Needs: []string{CapBackups, CapDisks}, run: backupRestore},
		{Name: "helper-images", Needs: []string{CapHelpers}, ReadOnly: true, run: helperImages},
		{Name: "helper-acquire", Needs: []string{CapHelpers}, run: helperAcquire},
		{Name: "helper-release", Needs: []string{CapHelpers, CapDisks}, run: helperRelease},
		{Name: "not-found", run: notFound},
		{Name: "faults-classified", run: faultsClassified},
		{Name: "outage", run: outage},
	}
}

// capabilities: every capability of the contract is there, but for the
// ones the harness declares lacking, which are nil.
func capabilities(e *env) {
	if e.p.Name == "" {
		e.t.Errorf("%s: Provider.Name is empty", e.h.Name)
	}
	var want []string
	for _, c := range AllCapabilities() {
		if !slices.Contains(e.h.Lacks, c) {
			want = append(want, c)
		}
	}
	if got := e.p.Capabilities(); !slices.Equal(got, want) {
		e.t.Errorf("%s: Capabilities() = %v, want %v (Harness.Lacks %v)", e.h.Name, got, want, e.h.Lacks)
	}
}

// list: List returns exactly the account's fleet VMs, as the world has
// them, and no helper (one is acquired first when the provider can).
func list(e *env) {
	if e.p.Helpers != nil {
		h, _, _ := e.acquireHelper("")
		defer func() { e.must(e.p.Helpers.Release(e.ctx, h), "Release %s", h.ID) }()
	}
	vms, err := e.p.Enumerator.List(e.ctx)
	e.must(err, "List")
	fleet := e.fleet()
	got := map[string]inventory.VM{}
	for _, v := range vms {
		if _, dup := got[v.ID]; dup {
			e.t.Errorf("%s: List returns VM %s twice", e.h.Name, v.ID)
		}
		got[v.ID] = v
	}
	want := map[string]bool{}
	for _, w := range fleet {
		id := e.id(w.ID)
		want[id] = true
		g, ok := got[id]
		if !ok {
			e.t.Errorf("%s: List misses fleet VM %s (world %s)", e.h.Name, id, w.ID)
			continue
		}
		checkListed(e, g, w)
	}
	for id := range got {
		if !want[id] {
			e.t.Errorf("%s: List returns %s, which is not a fleet VM of account %s (a helper, or another account's VM)", e.h.Name, id, e.acct)
		}
	}
}

func checkListed(e *env, g inventory.VM, w world.VMSpec) {
	e.t.Helper()
	bad := func(field string, got, want any) {
		e.t.Errorf("%s: List: VM %s: %s = %v, the world has %v", e.h.Name, g.ID, field, got, want)
	}
	if g.Zone != w.Zone {
		bad("zone", g.Zone, w.Zone)
	}
	if g.Windows.Release != w.Windows.Release {
		bad("Windows release", g.Windows.Release, w.Windows.Release)
	}
	if g.Windows.Build != "" && g.Windows.Build != w.Windows.Build {
		bad("Windows build", g.Windows.Build, w.Windows.Build)
	}
	if w.OSDisk != nil && g.OSDisk.ID != e.id(w.OSDisk.ID) {
		bad("OS disk", g.OSDisk.ID, e.id(w.OSDisk.ID))
	}
	if !slices.ContainsFunc(g.NICs, func(n inventory.NIC) bool { return n.PrivateIP == w.PrivateIP }) {
		bad("NIC private IPs", g.NICs, w.PrivateIP)
	}
	if g.Power != w.Power {
		bad("power", g.Power, w.Power)
	}
}

// observe: one entry per existing VM of the account, none for an unknown
// VM or another account's, power as the world has it.
func observe(e *env) {
	fleet := e.fleet()
	refs := e.refs(fleet)
	unknown := e.unknownVM()
	asked := append(slices.Clone(refs), unknown)
	var foreign []string
	for _, o := range e.others() {
		r := providers.VMRef{ID: e.id(o.ID), Region: e.region(), Zone: o.Zone}
		asked = append(asked, r)
		foreign = append(foreign, r.ID)
		if len(foreign) == 3 {
			break
		}
	}
	sig, err := e.p.Observer.Observe(e.ctx, asked)
	e.must(err, "Observe %d VMs", len(asked))
	now := map[string]world.VMSpec{}
	for _, w := range e.fleet() {
		now[e.id(w.ID)] = w
	}
	for _, r := range refs {
		s, ok := sig[r.ID]
		if !ok {
			e.t.Errorf("%s: Observe has no entry for existing VM %s", e.h.Name, r.ID)
			continue
		}
		if w := now[r.ID]; s.Power != w.Power {
			e.t.Errorf("%s: Observe: VM %s power %s, the world has %s", e.h.Name, r.ID, s.Power, w.Power)
		}
	}
	if _, ok := sig[unknown.ID]; ok {
		e.t.Errorf("%s: Observe has an entry for unknown VM %s", e.h.Name, unknown.ID)
	}
	for _, id := range foreign {
		if _, ok := sig[id]; ok {
			e.t.Errorf("%s: Observe has an entry for VM %s of another account", e.h.Name, id)
		}
	}
	if len(sig) != len(refs) {
		e.t.Errorf("%s: Observe returned %d entries for %d existing VMs", e.h.Name, len(sig), len(refs))
	}
}

// observeBootHistory: two samples of a VM cycling through crashes, one
// crash cycle apart, show its boot history advancing.
func observeBootHistory(e *env) {
	v := e.pick(1, "cycling", cyclesAgain)[0]
	r := e.ref(v)
	s1 := e.observeOne(r)
	e.advance(timing.Of(timing.OpCrashCycle).Max + 30*time.Second)
	s2 := e.observeOne(r)
	if after := e.mustVM(v.ID); after.BootCount <= v.BootCount {
		e.t.Fatalf("suite bug: world VM %s did not boot again (%d -> %d boots)", v.ID, v.BootCount, after.BootCount)
	}
	checked := false
	if s1.BootCount != nil && s2.BootCount != nil {
		checked = true
		if *s2.BootCount <= *s1.BootCount {
			e.t.Errorf("%s: Observe: VM %s boot count %d then %d, a crash cycle later; want it to advance", e.h.Name, r.ID, *s1.BootCount, *s2.BootCount)
		}
	}
	if !s1.LastBootAt.IsZero() && !s2.LastBootAt.IsZero() {
		checked = true
		if !s2.LastBootAt.After(s1.LastBootAt) {
			e.t.Errorf("%s: Observe: VM %s last boot %s then %s, a crash cycle later; want it later", e.h.Name, r.ID, s1.LastBootAt, s2.LastBootAt)
		}
	}
	if !checked {
		e.t.Skipf("%s reports neither a boot count nor a last boot time (allowed by the contract)", e.h.Name)
	}
}

func (e *env) observeOne(r providers.VMRef) inventory.Signals {
	e.t.Helper()
	sig, err := e.p.Observer.Observe(e.ctx, []providers.VMRef{r})
	e.must(err, "Observe %s", r.ID)
	s, ok := sig[r.ID]
	if !ok {
		e.t.Fatalf("%s: Observe has no entry for existing VM %s", e.h.Name, r.ID)
	}
	return s
}

// listedEndpointer is a Guests that reads addresses from a VM's listing
// (endpointcache.Listed).
type listedEndpointer interface {
	ListedEndpoint(vm inventory.VM) (providers.Endpoint, bool)
}

// guestEndpoint: the VM's private address, WinRM's HTTP port; where the
// provider enumerates, the same address read from the VM's listing
// (endpointcache.Listed), so that probing a fleet costs no call per VM.
func guestEndpoint(e *env) {
	listed, reads := e.p.Guests.(listedEndpointer)
	if e.p.Enumerator != nil && !reads {
		e.t.Errorf("%s: its Guests cannot read an address from a VM's listing (ListedEndpoint): every probe of a fleet would cost a call", e.h.Name)
	}
	for _, v := range e.pick(3, "any", func(world.VMSpec) bool { return true }) {
		r := e.ref(v)
		ep, err := e.p.Guests.GuestEndpoint(e.ctx, r)
		e.must(err, "GuestEndpoint %s", r.ID)
		if ep.Host != v.PrivateIP || ep.Port != 5985 || ep.HTTPS {
			e.t.Errorf("%s: GuestEndpoint %s = %+v, want %s:5985 over HTTP", e.h.Name, r.ID, ep, v.PrivateIP)
		}
		if l := e.list(); reads && l != nil {
			if got, ok := listed.ListedEndpoint(l[v.ID]); !ok || got != ep {
				e.t.Errorf("%s: ListedEndpoint %s = %+v, %v; want GuestEndpoint's %+v", e.h.Name, r.ID, got, ok, ep)
			}
		}
	}
}

// stopStartBatch: five VMs stopped in one call, again (idempotent), shown
// stopped; started in one call, again, shown running.
func stopStartBatch(e *env) {
	vs := e.pick(5, "running boot-looping", loopingRunning)
	refs := e.refs(vs)
	e.recheck(refs...)
	for i := range 2 {
		e.must(e.p.Power.Stop(e.ctx, refs, true), "Stop %d VMs (call %d)", len(refs), i+1)
	}
	e.wantPower(refs, vs, inventory.PowerStopped)
	for i := range 2 {
		e.must(e.p.Power.Start(e.ctx, refs), "Start %d VMs (call %d)", len(refs), i+1)
	}
	e.wantPower(refs, vs, inventory.PowerRunning)
}

// wantPower checks power both as the provider observes it and in the world.
func (e *env) wantPower(refs []providers.VMRef, vs []world.VMSpec, want inventory.PowerState) {
	e.t.Helper()
	if e.p.Observer != nil {
		sig, err := e.p.Observer.Observe(e.ctx, refs)
		e.must(err, "Observe")
		for _, r := range refs {
			if s, ok := sig[r.ID]; !ok || s.Power != want {
				e.t.Errorf("%s: Observe: VM %s power %q (present %v), want %s", e.h.Name, r.ID, s.Power, ok, want)
			}
		}
	}
	for _, v := range vs {
		if w := e.mustVM(v.ID); w.Power != want {
			e.t.Errorf("%s: the world has VM %s %s, want %s", e.h.Name, v.ID, w.Power, want)
		}
	}
}

// restart: a stopped VM refuses (ErrConflict) and stays stopped; a running
// one restarts once and reports running.
func restart(e *env) {
	s := e.pick(1, "stopped", func(v world.VMSpec) bool { return v.Power == inventory.PowerStopped && neverHealthy(v) })[0]
	sr := e.ref(s)
	e.recheck(sr)
	e.wantClass(e.p.Power.Restart(e.ctx, sr), providers.ErrConflict, "Restart of stopped VM "+sr.ID, sr.ID)
	if w := e.mustVM(s.ID); w.Power != inventory.PowerStopped {
		e.t.Errorf("%s: a refused Restart left VM %s %s", e.h.Name, s.ID, w.Power)
	}
	v := e.pick(1, "running boot-looping", loopingRunning)[0]
	r := e.ref(v)
	e.recheck(r)
	before := e.mustVM(v.ID).BootCount
	e.must(e.p.Power.Restart(e.ctx, r), "Restart %s", r.ID)
	after := e.mustVM(v.ID)
	if after.Power != inventory.PowerRunning || after.BootCount <= before {
		e.t.Errorf("%s: after Restart the world has VM %s %s with %d boots (before: %d); want running with a new boot", e.h.Name, v.ID, after.Power, after.BootCount, before)
	}
}

// snapshotFind: a tagged snapshot is found by its tags, exactly it, and
// the world holds it, of the right disk.
func snapshotFind(e *env) {
	v := e.pick(1, "running boot-looping", loopingRunning)[0]
	d := e.diskRef(v)
	tags := e.tags("snapshot", e.id(v.ID))
	s, err := e.p.Disks.Snapshot(e.ctx, d, tags)
	e.must(err, "Snapshot %s", d.ID)
	found, err := e.p.Disks.FindSnapshots(e.ctx, tags)
	e.must(err, "FindSnapshots")
	if len(found) != 1 || found[0].Ref.ID != s.ID {
		e.t.Fatalf("%s: FindSnapshots(%v) = %+v, want exactly snapshot %s", e.h.Name, tags, found, s.ID)
	}
	f := found[0]
	if f.DiskID != d.ID || !f.Ready || !hasTags(f.Tags, tags) {
		e.t.Errorf("%s: FindSnapshots: %+v, want of disk %s, ready, tagged %v", e.h.Name, f, d.ID, tags)
	}
	other := e.tags("snapshot", e.id(v.ID))
	other[providers.TagRun] = e.run + "-other"
	none, err := e.p.Disks.FindSnapshots(e.ctx, other)
	e.must(err, "FindSnapshots")
	if len(none) != 0 {
		e.t.Errorf("%s: FindSnapshots(%v) = %+v, want none", e.h.Name, other, none)
	}
	var inWorld []world.SnapshotSpec
	for _, ws := range e.w.Export().Snapshots {
		if ws.Account == e.acct && hasTags(ws.Tags, tags) {
			inWorld = append(inWorld, ws)
		}
	}
	if len(inWorld) != 1 || inWorld[0].DiskID != v.OSDisk.ID || e.id(inWorld[0].ID) != s.ID {
		e.t.Errorf("%s: the world holds snapshots %+v tagged %v, want one of disk %s", e.h.Name, inWorld, tags, v.OSDisk.ID)
	}
}

// manyDescriber is a Disks that reads many disks in one call
// (coalesce.ManyDescriber).
type manyDescriber interface {
	DescribeMany(ctx context.Context, refs []providers.DiskRef) (map[string]providers.DiskState, error)
}

// describeMany: where the provider reads many disks in one call, it reads
// each as Describe does, and leaves out a disk that does not exist.
func describeMany(e *env) {
	md, ok := e.p.Disks.(manyDescriber)
	if !ok {
		e.t.Skipf("%s reads one disk per call (DescribeMany is optional)", e.h.Name)
	}
	refs := []providers.DiskRef{e.unknownDisk()}
	for _, v := range e.pick(3, "any", func(world.VMSpec) bool { return true }) {
		refs = append(refs, e.diskRef(v))
	}
	got, err := md.DescribeMany(e.ctx, refs)
	e.must(err, "DescribeMany of %d disks", len(refs))
	if s, ok := got[refs[0].ID]; ok {
		e.t.Errorf("%s: DescribeMany answers disk %s, which does not exist: %+v", e.h.Name, refs[0].ID, s)
	}
	for _, r := range refs[1:] {
		one, err := e.p.Disks.Describe(e.ctx, r)
		e.must(err, "Describe %s", r.ID)
		if s, ok := got[r.ID]; !ok || !reflect.DeepEqual(s, one) {
			e.t.Errorf("%s: DescribeMany has disk %s as %+v (found %v), Describe as %+v", e.h.Name, r.ID, s, ok, one)
		}
	}
}

// detachRunningBootDisk: detaching a running VM's boot disk is refused
// (ErrConflict), and nothing changes.
func detachRunningBootDisk(e *env) {
	v := e.pick(1, "running boot-looping", loopingRunning)[0]
	r, d := e.ref(v), e.diskRef(v)
	e.recheck(r)
	e.wantClass(e.p.Disks.Detach(e.ctx, r, d), providers.ErrConflict, "Detach of running VM "+r.ID+"'s boot disk", d.ID)
	w := e.mustVM(v.ID)
	if w.Power != inventory.PowerRunning || w.OSDisk == nil || w.OSDisk.ID != v.OSDisk.ID {
		e.t.Errorf("%s: a refused Detach changed VM %s: %s, boot disk %+v", e.h.Name, v.ID, w.Power, w.OSDisk)
	}
	st, err := e.p.Disks.Describe(e.ctx, d)
	e.must(err, "Describe %s", d.ID)
	if st.AttachedTo != r.ID || !st.Boot {
		e.t.Errorf("%s: Describe %s = %+v, want the boot disk of %s", e.h.Name, d.ID, st, r.ID)
	}
}

// detachAttachRoundtrip: stop, detach the boot disk twice (idempotent),
// Describe shows it detached, Start refuses a VM with no boot disk, attach
// it back as boot twice (idempotent), start: running with its own disk.
func detachAttachRoundtrip(e *env) {
	v := e.pick(1, "running boot-looping", loopingRunning)[0]
	r, d := e.ref(v), e.diskRef(v)
	e.recheck(r)
	e.must(e.p.Power.Stop(e.ctx, []providers.VMRef{r}, true), "Stop %s", r.ID)
	for i := range 2 {
		e.must(e.p.Disks.Detach(e.ctx, r, d), "Detach %s from %s (call %d)", d.ID, r.ID, i+1)
	}
	st, err := e.p.Disks.Describe(e.ctx, d)
	e.must(err, "Describe %s", d.ID)
	if st.AttachedTo != "" || st.Boot {
		e.t.Errorf("%s: Describe %s after Detach = %+v, want detached", e.h.Name, d.ID, st)
	}
	if wd, ok := e.disk(v.OSDisk.ID); !ok || wd.AttachedTo != "" || wd.BootOf != "" {
		e.t.Errorf("%s: after Detach the world has disk %s %+v (exists %v), want detached", e.h.Name, v.OSDisk.ID, wd, ok)
	}
	e.wantClass(e.p.Power.Start(e.ctx, []providers.VMRef{r}), providers.ErrConflict, "Start of VM "+r.ID+" with no boot disk", r.ID)
	for i := range 2 {
		e.must(e.p.Disks.Attach(e.ctx, r, d, true), "Attach %s to %s as boot (call %d)", d.ID, r.ID, i+1)
	}
	st, err = e.p.Disks.Describe(e.ctx, d)
	e.must(err, "Describe %s", d.ID)
	if st.AttachedTo != r.ID || !st.Boot {
		e.t.Errorf("%s: Describe %s after Attach = %+v, want the boot disk of %s", e.h.Name, d.ID, st, r.ID)
	}
	e.must(e.p.Power.Start(e.ctx, []providers.VMRef{r}), "Start %s", r.ID)
	w := e.mustVM(v.ID)
	if w.Power != inventory.PowerRunning || w.OSDisk == nil || w.OSDisk.ID != v.OSDisk.ID {
		e.t.Errorf("%s: after the round trip the world has VM %s %s with boot disk %+v, want running on %s", e.h.Name, v.ID, w.Power, w.OSDisk, v.OSDisk.ID)
	}
}

// copyOf snapshots v's boot disk and makes a tagged disk of it in zone.
func (e *env) copyOf(v world.VMSpec, zone string) (providers.DiskRef, providers.Tags) {
	e.t.Helper()
	d := e.diskRef(v)
	s, err := e.p.Disks.Snapshot(e.ctx, d, e.tags("snapshot", e.id(v.ID)))
	e.must(err, "Snapshot %s", d.ID)
	tags := e.tags("copy", e.id(v.ID))
	c, err := e.p.Disks.FromSnapshot(e.ctx, s, zone, tags)
	e.must(err, "FromSnapshot %s in %s", s.ID, zone)
	return c, tags
}

// attachOtherZone: attaching a disk to a VM in another zone is refused
// (ErrConflict), and the disk stays detached.
func attachOtherZone(e *env) {
	a := e.pick(1, "broken", neverHealthy)[0]
	b := e.pick(1, "broken, in another zone", func(v world.VMSpec) bool { return neverHealthy(v) && v.Zone != a.Zone })[0]
	x, _ := e.copyOf(a, a.Zone)
	br := e.ref(b)
	e.recheck(br)
	err := e.p.Disks.Attach(e.ctx, br, x, false)
	if e.wantClass(err, providers.ErrConflict, fmt.Sprintf("Attach of disk %s (zone %s) to VM %s (zone %s)", x.ID, a.Zone, br.ID, b.Zone)) &&
		!strings.Contains(err.Error(), x.ID) && !strings.Contains(err.Error(), br.ID) {
		e.t.Errorf("%s: error %q names neither disk %s nor VM %s", e.h.Name, err, x.ID, br.ID)
	}
	st, err := e.p.Disks.Describe(e.ctx, x)
	e.must(err, "Describe %s", x.ID)
	if st.AttachedTo != "" {
		e.t.Errorf("%s: after a refused Attach, Describe %s = %+v, want detached", e.h.Name, x.ID, st)
	}
}

// diskFromSnapshot: FromSnapshot makes a detached disk in the zone, with
// the tags, which FindDisks and Describe find and the world holds.
func diskFromSnapshot(e *env) {
	v := e.pick(1, "broken", neverHealthy)[0]
	x, tags := e.copyOf(v, v.Zone)
	if x.Zone != v.Zone {
		e.t.Errorf("%s: FromSnapshot made disk %s in zone %q, asked for %s", e.h.Name, x.ID, x.Zone, v.Zone)
	}
	found, err := e.p.Disks.FindDisks(e.ctx, tags)
	e.must(err, "FindDisks")
	if len(found) != 1 || found[0].Ref.ID != x.ID || found[0].AttachedTo != "" || found[0].Boot || !hasTags(found[0].Tags, tags) {
		e.t.Errorf("%s: FindDisks(%v) = %+v, want exactly detached disk %s with those tags", e.h.Name, tags, found, x.ID)
	}
	st, err := e.p.Disks.Describe(e.ctx, x)
	e.must(err, "Describe %s", x.ID)
	if st.Ref.ID != x.ID || st.AttachedTo != "" {
		e.t.Errorf("%s: Describe %s = %+v, want it detached", e.h.Name, x.ID, st)
	}
	ws := e.disksTagged(tags)
	if len(ws) != 1 || e.id(ws[0].ID) != x.ID || ws[0].Zone != v.Zone || !strings.HasPrefix(ws[0].Source, "snapshot:") || ws[0].AttachedTo != "" {
		e.t.Errorf("%s: the world holds disks %+v tagged %v, want one copy of a snapshot in %s, detached", e.h.Name, ws, tags, v.Zone)
	}
}

// deleteCopy: DeleteCopy refuses (ErrConflict) a disk without the tags
// given, a VM's own boot disk, no tags at all and an attached copy, and
// each time the disk stays; a detached copy with its tags goes, from the
// cloud and the world; deleting it again is fine.
func deleteCopy(e *env) {
	del := e.p.Disks.(providers.CopyDeleter)
	v := e.pick(1, "broken", neverHealthy)[0]
	x, tags := e.copyOf(v, v.Zone)
	own := e.diskRef(v)
	other := e.tags("copy", e.id(v.ID))
	other[providers.TagRun] = e.run + "-other"
	for _, c := range []struct {
		what string
		d    providers.DiskRef
		tags providers.Tags
	}{
		{"another run's tags on copy " + x.ID, x, other},
		{"no tags on copy " + x.ID, x, nil},
		{"VM " + e.id(v.ID) + "'s own boot disk " + own.ID, own, tags},
	} {
		e.wantClass(del.DeleteCopy(e.ctx, c.d, c.tags), providers.ErrConflict, "DeleteCopy with "+c.what, c.d.ID)
	}
	h, _, _ := e.acquireHelper(v.Zone)
	e.must(e.p.Disks.Attach(e.ctx, h, x, false), "Attach %s to helper %s", x.ID, h.ID)
	e.wantClass(del.DeleteCopy(e.ctx, x, tags), providers.ErrConflict, "DeleteCopy of copy "+x.ID+" attached to helper "+h.ID, x.ID)
	e.must(e.p.Disks.Detach(e.ctx, h, x), "Detach %s from helper %s", x.ID, h.ID)
	if ws := e.disksTagged(tags); len(ws) != 1 || e.id(ws[0].ID) != x.ID {
		e.t.Fatalf("%s: after the refused deletions the world holds disks %+v tagged %v, want copy %s", e.h.Name, ws, tags, x.ID)
	}
	if w := e.mustVM(v.ID); w.OSDisk == nil || w.OSDisk.ID != v.OSDisk.ID {
		e.t.Errorf("%s: after the refused deletions VM %s's boot disk is %+v, want %s", e.h.Name, v.ID, w.OSDisk, v.OSDisk.ID)
	}
	for i := range 2 {
		e.must(del.DeleteCopy(e.ctx, x, tags), "DeleteCopy %s (call %d)", x.ID, i+1)
	}
	if ws := e.disksTagged(tags); len(ws) != 0 {
		e.t.Errorf("%s: after DeleteCopy the world still holds disks %+v tagged %v", e.h.Name, ws, tags)
	}
	_, err := e.p.Disks.Describe(e.ctx, x)
	e.wantClass(err, providers.ErrNotFound, "Describe of deleted copy "+x.ID, x.ID)
	e.must(e.p.Helpers.Release(e.ctx, h), "Release helper %s", h.ID)
}

// crossZoneCopy: a VM's snapshot makes a disk in another zone that has a
// helper image, with the VM's disk content and identity (what
// cross-zone-mount repairs there), and that zone's helper takes it.
func crossZoneCopy(e *env) {
	elsewhere := func(zone string) (world.ImageSpec, bool) {
		for _, im := range e.w.Export().Images {
			if im.Zone != zone {
				return im, true
			}
		}
		return world.ImageSpec{}, false
	}
	v := e.pick(1, "broken, with a helper image in another zone", func(v world.VMSpec) bool {
		_, ok := elsewhere(v.Zone)
		return ok && neverHealthy(v)
	})[0]
	im, _ := elsewhere(v.Zone)
	x, tags := e.copyOf(v, im.Zone)
	if x.Zone != im.Zone {
		e.t.Errorf("%s: FromSnapshot made disk %s in zone %q, asked for %s", e.h.Name, x.ID, x.Zone, im.Zone)
	}
	ws := e.disksTagged(tags)
	if len(ws) != 1 || e.id(ws[0].ID) != x.ID || ws[0].Zone != im.Zone || v.OSDisk == nil || ws[0].Identity != v.OSDisk.Identity {
		e.t.Fatalf("%s: the world holds disks %+v tagged %v, want one copy in %s with VM %s's disk identity", e.h.Name, ws, tags, im.Zone, v.ID)
	}
	h, _, _ := e.acquireHelper(im.Zone)
	e.must(e.p.Disks.Attach(e.ctx, h, x, false), "Attach copy %s (zone %s) to helper %s", x.ID, im.Zone, h.ID)
	e.must(e.p.Disks.Detach(e.ctx, h, x), "Detach %s from helper %s", x.ID, h.ID)
	e.must(e.p.Helpers.Release(e.ctx, h), "Release helper %s", h.ID)
}

// backupsList: a VM's backups are the world's, by ID, VM and time; a VM
// without any has none.
func backupsList(e *env) {
	v := e.pick(1, "with backups", func(v world.VMSpec) bool { return len(v.Backups) > 0 })[0]
	r := e.ref(v)
	got, err := e.p.Backups.List(e.ctx, r)
	e.must(err, "Backups.List %s", r.ID)
	want := map[string]world.BackupSpec{}
	for _, b := range v.Backups {
		want[e.id(b.ID)] = b
	}
	seen := map[string]bool{}
	for _, b := range got {
		w, ok := want[b.ID]
		switch {
		case !ok:
			e.t.Errorf("%s: Backups.List %s returns %+v, not one of the world's %v", e.h.Name, r.ID, b, v.Backups)
		case seen[b.ID]:
			e.t.Errorf("%s: Backups.List %s returns backup %s twice", e.h.Name, r.ID, b.ID)
		case b.VMID != r.ID || !b.TakenAt.Equal(w.TakenAt) || b.Kind == "":
			e.t.Errorf("%s: Backups.List %s: %+v, want VM %s, taken at %s, a kind", e.h.Name, r.ID, b, r.ID, w.TakenAt)
		}
		seen[b.ID] = true
	}
	if len(seen) != len(want) {
		e.t.Errorf("%s: Backups.List %s = %+v, the world has %v", e.h.Name, r.ID, got, v.Backups)
	}
	refs := []providers.VMRef{r}
	for _, n := range e.fleet() {
		if len(n.Backups) == 0 {
			nr := e.ref(n)
			got, err := e.p.Backups.List(e.ctx, nr)
			e.must(err, "Backups.List %s (no backups)", nr.ID)
			if len(got) != 0 {
				e.t.Errorf("%s: Backups.List %s = %+v, the world has none", e.h.Name, nr.ID, got)
			}
			refs = append(refs, nr)
			break
		}
	}
	backupsListMany(e, refs)
}

// manyBackupLister is a Backups that lists many VMs' backups in one call
// (the assessment's batched listing).
type manyBackupLister interface {
	ListMany(ctx context.Context, vms []providers.VMRef) (map[string][]inventory.Backup, error)
}

// backupsListMany: where the provider lists many VMs' backups in one call,
// it lists each of refs as List does, and leaves out a VM that does not
// exist.
func backupsListMany(e *env, refs []providers.VMRef) {
	m, ok := e.p.Backups.(manyBackupLister)
	if !ok {
		return // optional: the assessment then lists one VM per call
	}
	unknown := e.unknownVM()
	got, err := m.ListMany(e.ctx, append(slices.Clone(refs), unknown))
	e.must(err, "Backups.ListMany of %d VMs", len(refs)+1)
	if bs, ok := got[unknown.ID]; ok {
		e.t.Errorf("%s: Backups.ListMany answers VM %s, which does not exist: %+v", e.h.Name, unknown.ID, bs)
	}
	byID := func(bs []inventory.Backup) []inventory.Backup {
		bs = slices.Clone(bs)
		slices.SortFunc(bs, func(a, b inventory.Backup) int { return strings.Compare(a.ID, b.ID) })
		return bs
	}
	for _, r := range refs {
		one, err := e.p.Backups.List(e.ctx, r)
		e.must(err, "Backups.List %s", r.ID)
		if bs, ok := got[r.ID]; !ok || !reflect.DeepEqual(byID(bs), byID(one)) {
			e.t.Errorf("%s: Backups.ListMany has VM %s's backups as %+v (found %v), List as %+v", e.h.Name, r.ID, bs, ok, one)
		}
	}
}

// backupRestore: Restore makes a new tagged disk from the backup and
// leaves the VM and its disks as they were.
func backupRestore(e *env) {
	v := e.pick(1, "broken, with backups", func(v world.VMSpec) bool { return len(v.Backups) > 0 && neverHealthy(v) })[0]
	r := e.ref(v)
	bks, err := e.p.Backups.List(e.ctx, r)
	e.must(err, "Backups.List %s", r.ID)
	if len(bks) == 0 {
		e.t.Fatalf("%s: Backups.List %s is empty, the world has %v", e.h.Name, r.ID, v.Backups)
	}
	sort.Slice(bks, func(i, j int) bool { return bks[i].TakenAt.Before(bks[j].TakenAt) })
	b := bks[len(bks)-1]
	beforeVM, beforeDisks := e.mustVM(v.ID), e.attachedTo(v.ID)
	tags := e.tags("restore-disk", r.ID)
	d, err := e.p.Backups.Restore(e.ctx, b, v.Zone, tags)
	e.must(err, "Restore %s in %s", b.ID, v.Zone)
	found, err := e.p.Disks.FindDisks(e.ctx, tags)
	e.must(err, "FindDisks")
	if len(found) != 1 || found[0].Ref.ID != d.ID || found[0].AttachedTo != "" {
		e.t.Errorf("%s: FindDisks(%v) = %+v, want exactly detached disk %s", e.h.Name, tags, found, d.ID)
	}
	var wb string
	for _, x := range v.Backups {
		if e.id(x.ID) == b.ID {
			wb = x.ID
		}
	}
	ws := e.disksTagged(tags)
	if len(ws) != 1 || e.id(ws[0].ID) != d.ID || ws[0].Zone != v.Zone || ws[0].Source != "backup:"+wb || ws[0].AttachedTo != "" {
		e.t.Errorf("%s: the world holds disks %+v tagged %v, want one restore of backup %s in %s, detached", e.h.Name, ws, tags, wb, v.Zone)
	}
	afterVM, afterDisks := e.mustVM(v.ID), e.attachedTo(v.ID)
	if afterVM.Power != beforeVM.Power || !sameDisk(afterVM.OSDisk, beforeVM.OSDisk) || afterVM.OriginalDisk != beforeVM.OriginalDisk ||
		!slices.Equal(afterDisks, beforeDisks) {
		e.t.Errorf("%s: Restore changed VM %s: %s with boot disk %+v and data disks %v; before %s, %+v, %v", e.h.Name, v.ID,
			afterVM.Power, afterVM.OSDisk, afterDisks, beforeVM.Power, beforeVM.OSDisk, beforeDisks)
	}
}

// attachedTo lists the data disks attached to VM id in the world.
func (e *env) attachedTo(id string) []string {
	var out []string
	for _, d := range e.disks() {
		if d.AttachedTo == id {
			out = append(out, d.ID)
		}
	}
	sort.Strings(out)
	return out
}

func sameDisk(a, b *world.DiskSpec) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ID == b.ID && a.Identity == b.Identity && slices.Equal(a.Files, b.Files) && a.SafeBootFlag == b.SafeBootFlag
}

// helperImages: the images are the world's, by zone, release and ID.
func helperImages(e *env) {
	got, err := e.p.Helpers.Images(e.ctx)
	e.must(err, "Images")
	type key struct{ zone, release, id string }
	want := map[key]world.ImageSpec{}
	for _, im := range e.w.Export().Images {
		id := e.id(im.ImageID)
		if e.h.ImageID != nil {
			id = e.h.ImageID(im)
		}
		want[key{im.Zone, im.Release, id}] = im
	}
	if len(want) == 0 {
		e.t.Fatalf("%s: the world has no helper images: the check cannot tell a provider that finds none", e.h.Name)
	}
	seen := map[key]bool{}
	for _, im := range got {
		k := key{im.Zone, im.Windows.Release, im.ImageID}
		w, ok := want[k]
		switch {
		case !ok:
			e.t.Errorf("%s: Images returns %+v, not one of the world's", e.h.Name, im)
		case im.Windows.Build != "" && im.Windows.Build != w.Build:
			e.t.Errorf("%s: Images: %+v, the world's build is %s", e.h.Name, im, w.Build)
		}
		seen[k] = true
	}
	for k := range want {
		if !seen[k] {
			e.t.Errorf("%s: Images misses Windows Server %s in %s (%s)", e.h.Name, k.release, k.zone, k.id)
		}
	}
}

// helperFinder is what the helper pool's sweep asks of a provider's
// Helpers that lists a run's helpers by tag (helperpool: sweep).
type helperFinder interface {
	FindHelpers(ctx context.Context, tags providers.Tags) ([]providers.VMRef, error)
}

// helperAcquire: Acquire is idempotent by tags (the same running helper
// twice, one in the world), FindHelpers (where the provider has it) finds
// it and, once released, nothing, and ErrNotFound where the zone has no
// image of the release.
func helperAcquire(e *env) {
	h1, im, tags := e.acquireHelper("")
	h2, err := e.p.Helpers.Acquire(e.ctx, im.Zone, inventory.WindowsVersion{Release: im.Release}, tags)
	e.must(err, "Acquire again")
	if h1.ID != h2.ID {
		e.t.Errorf("%s: Acquire twice with tags %v gave helpers %s and %s, want the same", e.h.Name, tags, h1.ID, h2.ID)
	}
	if h1.Zone != im.Zone {
		e.t.Errorf("%s: Acquire in %s returned %+v", e.h.Name, im.Zone, h1)
	}
	hs := e.helpersTagged(tags)
	if len(hs) != 1 || e.id(hs[0].ID) != h1.ID || hs[0].Zone != im.Zone || hs[0].Windows.Release != im.Release || hs[0].Power != inventory.PowerRunning {
		e.t.Errorf("%s: the world holds helpers %+v tagged %v, want one running Windows Server %s in %s", e.h.Name, hs, tags, im.Release, im.Zone)
	}
	if e.p.Observer != nil {
		if s := e.observeOne(h1); s.Power != inventory.PowerRunning {
			e.t.Errorf("%s: Observe helper %s: power %s, want running", e.h.Name, h1.ID, s.Power)
		}
	}
	f, finds := e.p.Helpers.(helperFinder)
	if finds {
		found, err := f.FindHelpers(e.ctx, tags)
		e.must(err, "FindHelpers")
		if len(found) != 1 || found[0].ID != h1.ID || found[0].Zone != im.Zone {
			e.t.Errorf("%s: FindHelpers(%v) = %+v, want only %s in %s", e.h.Name, tags, found, h1.ID, im.Zone)
		}
	}
	// What a scenario acquires it releases: the referee counts a helper
	// left behind as leaked.
	e.must(e.p.Helpers.Release(e.ctx, h1), "Release %s", h1.ID)
	if finds {
		found, err := f.FindHelpers(e.ctx, tags)
		e.must(err, "FindHelpers after Release")
		if len(found) != 0 {
			e.t.Errorf("%s: FindHelpers(%v) after Release = %+v, want none", e.h.Name, tags, found)
		}
	}
	// A zone lacking one of the releases (a generated world has one, unless
	// its images are regional and its zones one region's: then a release no
	// zone has).
	have := map[string]bool{}
	var releases []string
	for _, x := range e.w.Export().Images {
		have[x.Zone+"/"+x.Release] = true
		if !slices.Contains(releases, x.Release) {
			releases = append(releases, x.Release)
		}
	}
	for _, z := range e.w.Zones() {
		for _, rel := range releases {
			if have[z+"/"+rel] {
				continue
			}
			_, err := e.p.Helpers.Acquire(e.ctx, z, inventory.WindowsVersion{Release: rel}, e.tags("helper-none", ""))
			e.wantClass(err, providers.ErrNotFound, fmt.Sprintf("Acquire of Windows Server %s in %s, which has no image of it", rel, z))
			return
		}
	}
	const absent = "2003"
	if slices.Contains(releases, absent) {
		e.t.Fatalf("suite bug: every zone has every release, and Windows Server %s too", absent)
	}
	z := e.w.Zones()[0]
	_, err = e.p.Helpers.Acquire(e.ctx, z, inventory.WindowsVersion{Release: absent}, e.tags("helper-none", ""))
	e.wantClass(err, providers.ErrNotFound, fmt.Sprintf("Acquire of Windows Server %s in %s, which no image offers", absent, z))
}

// helperRelease: Release refuses while a foreign disk is attached,
// succeeds once it is detached, and again; the foreign disk survives.
func helperRelease(e *env) {
	v := e.pick(1, "broken", neverHealthy)[0]
	h, _, tags := e.acquireHelper(v.Zone)
	x, _ := e.copyOf(v, v.Zone)
	e.must(e.p.Disks.Attach(e.ctx, h, x, false), "Attach %s to helper %s", x.ID, h.ID)
	st, err := e.p.Disks.Describe(e.ctx, x)
	e.must(err, "Describe %s", x.ID)
	if st.AttachedTo != h.ID || st.Boot {
		e.t.Errorf("%s: Describe %s = %+v, want a data disk of %s", e.h.Name, x.ID, st, h.ID)
	}
	e.wantClass(e.p.Helpers.Release(e.ctx, h), providers.ErrConflict, "Release of helper "+h.ID+" with disk "+x.ID+" attached", h.ID)
	if len(e.helpersTagged(tags)) != 1 {
		e.t.Fatalf("%s: a refused Release deleted helper %s", e.h.Name, h.ID)
	}
	e.must(e.p.Disks.Detach(e.ctx, h, x), "Detach %s from helper %s", x.ID, h.ID)
	for i := range 2 {
		e.must(e.p.Helpers.Release(e.ctx, h), "Release %s (call %d)", h.ID, i+1)
	}
	if hs := e.helpersTagged(tags); len(hs) != 0 {
		e.t.Errorf("%s: after Release the world still holds helpers %+v", e.h.Name, hs)
	}
	for _, d := range e.disks() {
		if d.BootOf != "" && e.id(d.BootOf) == h.ID {
			e.t.Errorf("%s: after Release the helper's boot disk %s remains", e.h.Name, d.ID)
		}
	}
	st, err = e.p.Disks.Describe(e.ctx, x)
	e.must(err, "Describe %s after Release (the foreign disk must survive)", x.ID)
	if st.AttachedTo != "" {
		e.t.Errorf("%s: Describe %s = %+v, want detached", e.h.Name, x.ID, st)
	}
	if e.p.Observer != nil {
		sig, err := e.p.Observer.Observe(e.ctx, []providers.VMRef{h})
		e.must(err, "Observe released helper")
		if _, ok := sig[h.ID]; ok {
			e.t.Errorf("%s: Observe still has an entry for released helper %s", e.h.Name, h.ID)
		}
	}
}

// notFound: every call on an unknown VM, disk, snapshot or backup fails
// with ErrNotFound naming it.
func notFound(e *env) {
	uvm, udisk := e.unknownVM(), e.unknownDisk()
	usnap := providers.SnapshotRef{ID: e.id("snap-99999"), Region: e.region(), Zone: e.w.Zones()[0]}
	ubk := inventory.Backup{ID: e.id("bk-99999-1"), VMID: uvm.ID, Kind: "archive", TakenAt: world.DefaultOrigin.Add(-24 * time.Hour)}
	s := e.pick(1, "stopped", func(v world.VMSpec) bool { return v.Power == inventory.PowerStopped && neverHealthy(v) })[0]
	known := e.ref(s)
	e.recheck(known)
	cases := []struct {
		name string
		cap  bool
		call func() error
		res  string
	}{
		{"GuestEndpoint", e.p.Guests != nil, func() error { _, err := e.p.Guests.GuestEndpoint(e.ctx, uvm); return err }, uvm.ID},
		{"Stop", e.p.Power != nil, func() error { return e.p.Power.Stop(e.ctx, []providers.VMRef{uvm}, true) }, uvm.ID},
		{"Stop known+unknown", e.p.Power != nil, func() error { return e.p.Power.Stop(e.ctx, []providers.VMRef{known, uvm}, true) }, uvm.ID},
		{"Start", e.p.Power != nil, func() error { return e.p.Power.Start(e.ctx, []providers.VMRef{uvm}) }, uvm.ID},
		{"Restart", e.p.Power != nil, func() error { return e.p.Power.Restart(e.ctx, uvm) }, uvm.ID},
		{"Describe", e.p.Disks != nil, func() error { _, err := e.p.Disks.Describe(e.ctx, udisk); return err }, udisk.ID},
		{"Snapshot", e.p.Disks != nil, func() error { _, err := e.p.Disks.Snapshot(e.ctx, udisk, e.tags("snapshot", "")); return err }, udisk.ID},
		{"Detach", e.p.Disks != nil, func() error { return e.p.Disks.Detach(e.ctx, known, udisk) }, udisk.ID},
		{"Attach", e.p.Disks != nil, func() error { return e.p.Disks.Attach(e.ctx, known, udisk, false) }, udisk.ID},
		{"FromSnapshot", e.p.Disks != nil, func() error {
			_, err := e.p.Disks.FromSnapshot(e.ctx, usnap, e.w.Zones()[0], e.tags("copy", ""))
			return err
		}, usnap.ID},
		{"Backups.List", e.p.Backups != nil, func() error { _, err := e.p.Backups.List(e.ctx, uvm); return err }, uvm.ID},
		{"Restore", e.p.Backups != nil, func() error {
			_, err := e.p.Backups.Restore(e.ctx, ubk, e.w.Zones()[0], e.tags("restore-disk", ""))
			return err
		}, ubk.ID},
	}
	ran := 0
	for _, c := range cases {
		if !c.cap {
			continue
		}
		ran++
		e.wantClass(c.call(), providers.ErrNotFound, c.name+" of unknown "+c.res, c.res)
	}
	if ran == 0 {
		e.t.Skipf("%s has no capability that takes a VM or disk", e.h.Name)
	}
	if w := e.mustVM(s.ID); w.Power != inventory.PowerStopped {
		e.t.Errorf("%s: the world has VM %s %s after the not-found calls", e.h.Name, s.ID, w.Power)
	}
	if n := len(e.disksTagged(providers.Tags{providers.TagRun: e.run})); n != 0 {
		e.t.Errorf("%s: the not-found calls created %d disks", e.h.Name, n)
	}
}

// op is one call the fault scenarios make: idempotent or read-only, so
// that repeating it whatever the last outcome is safe.
type op struct {
	name string
	call func() error
}

// safeOps are idempotent calls on the world, one per capability the
// provider has; stop is a running broken VM they stop.
func (e *env) safeOps(stop world.VMSpec) []op {
	r, d := e.ref(stop), e.diskRef(stop)
	p := e.p
	var ops []op
	add := func(has bool, name string, call func() error) {
		if has {
			ops = append(ops, op{name, call})
		}
	}
	add(p.Enumerator != nil, "List", func() error { _, err := p.Enumerator.List(e.ctx); return err })
	add(p.Observer != nil, "Observe", func() error { _, err := p.Observer.Observe(e.ctx, []providers.VMRef{r}); return err })
	add(p.Guests != nil, "GuestEndpoint", func() error { _, err := p.Guests.GuestEndpoint(e.ctx, r); return err })
	add(p.Disks != nil, "Describe", func() error { _, err := p.Disks.Describe(e.ctx, d); return err })
	add(p.Disks != nil, "FindSnapshots", func() error { _, err := p.Disks.FindSnapshots(e.ctx, e.tags("snapshot", "")); return err })
	add(p.Disks != nil, "FindDisks", func() error { _, err := p.Disks.FindDisks(e.ctx, e.tags("copy", "")); return err })
	add(p.Backups != nil, "Backups.List", func() error { _, err := p.Backups.List(e.ctx, r); return err })
	add(p.Helpers != nil, "Images", func() error { _, err := p.Helpers.Images(e.ctx); return err })
	add(p.Power != nil, "Stop", func() error { return p.Power.Stop(e.ctx, []providers.VMRef{r}, true) })
	return ops
}

// faultsClassified: under injected 5xx, dropped connections (before and
// after the change applied) and throttling, every error is ErrUnavailable
// or ErrThrottled; once the faults end, the calls succeed and an
// idempotent Stop begun under faults completes.
func faultsClassified(e *env) {
	v := e.pick(1, "running boot-looping", loopingRunning)[0]
	ops := e.safeOps(v)
	if len(ops) == 0 {
		e.t.Skipf("%s has no capability to call", e.h.Name)
	}
	e.recheck(e.ref(v))
	e.must(e.w.SetFaults(world.Faults{ErrorRate: 0.2, DropBeforeRate: 0.15, DropAfterRate: 0.15, Throttle: world.ThrottleSimple}), "SetFaults")
	const calls = 90
	failed := map[string]int{}
	for i := range calls {
		o := ops[i%len(ops)]
		err := o.call()
		switch {
		case err == nil:
		case providers.Retryable(err):
			failed[o.name]++
		default:
			e.t.Errorf("%s: %s under faults: error %q is neither ErrUnavailable nor ErrThrottled", e.h.Name, o.name, err)
		}
		if i%15 == 14 {
			e.advance(500 * time.Millisecond) // a little refill of the request bucket
		}
	}
	st := e.w.Stats()
	e.t.Logf("%s: under faults: %d calls, failures by call %v; the world injected %d faults and throttled %d calls",
		e.h.Name, calls, failed, st.Injected, st.Throttled)
	if st.Injected == 0 {
		e.t.Fatalf("suite bug: the world injected no fault")
	}
	e.must(e.w.SetFaults(suiteFaults()), "SetFaults")
	e.advance(time.Minute)
	for _, o := range ops {
		e.must(o.call(), "%s after the faults ended", o.name)
	}
	e.wantPower([]providers.VMRef{e.ref(v)}, []world.VMSpec{v}, inventory.PowerStopped)
}

// outage: during a control-plane outage every call fails with
// ErrUnavailable and changes nothing; afterwards they succeed again.
func outage(e *env) {
	v := e.pick(1, "running boot-looping", loopingRunning)[0]
	ops := e.safeOps(v)
	if len(ops) == 0 {
		e.t.Skipf("%s has no capability to call", e.h.Name)
	}
	e.recheck(e.ref(v))
	e.w.SetOutage(true)
	for _, o := range ops {
		e.wantClass(o.call(), providers.ErrUnavailable, o.name+" during an outage")
	}
	if w := e.mustVM(v.ID); w.Power != inventory.PowerRunning {
		e.t.Errorf("%s: a Stop during an outage changed VM %s to %s", e.h.Name, v.ID, w.Power)
	}
	if st := e.w.Stats(); st.OutageFailures == 0 {
		e.t.Errorf("%s: no call reached the world during the outage", e.h.Name)
	}
	e.w.SetOutage(false)
	for _, o := range ops {
		e.must(o.call(), "%s after the outage", o.name)
	}
	e.wantPower([]providers.VMRef{e.ref(v)}, []world.VMSpec{v}, inventory.PowerStopped)
}
