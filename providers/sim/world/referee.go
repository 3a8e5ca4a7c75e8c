package world

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
)

// referee keeps the action log the audit is computed from. It never trusts
// what an orchestrator says: only what was done to the world.
type referee struct {
	touched           []Touch
	recoveredBetween  int
	lost              map[string]LostDisk
	unverified        []Return
	foreign           int
	foreignReasons    []string
	unbootable        map[string]Unbootable
	naturalRecoveries int
	snapsOf           map[string]int // disk ID -> snapshots taken of it
	// taken lists, by disk ID and then by the snapshot's tags, the
	// snapshots taken of it through the API since the world was loaded,
	// in order (the audit's leftovers).
	taken        map[string]map[string][]string
	wrongful     []Deletion
	foreignBoots map[string]ForeignBoot // by VM
	lostWrites   []LostWrite
}

// Deletion is a file deleted from a disk that the world's own verdict did
// not mark bad.
type Deletion struct {
	VM   string    `json:"vm"`
	Disk string    `json:"disk"`
	File string    `json:"file"`
	At   time.Time `json:"at"`
}

// ForeignBoot is a fleet VM that booted (or holds as its boot disk) a disk
// not descended from its own original disk or its own backups.
type ForeignBoot struct {
	VM     string    `json:"vm"`
	Disk   string    `json:"disk"`
	Origin string    `json:"origin"` // the VM the disk descends from; "" for none
	At     time.Time `json:"at,omitzero"`
}

// Stranded is a fleet VM's original disk left on a helper, or left
// detached while the VM has no boot disk of its own descent, with no step
// in progress.
type Stranded struct {
	VM   string `json:"vm"`
	Disk string `json:"disk"`
	On   string `json:"on,omitempty"` // the helper holding it; "" if detached
}

// Leak is a resource an orchestrator created and left behind: a helper,
// a copy of a disk that no VM boots, or (among leftovers only) a surplus
// snapshot.
type Leak struct {
	Kind string `json:"kind"` // "helper", "disk" or "snapshot"
	ID   string `json:"id"`
	// On is, for a disk, the VM it is attached to; for a snapshot, the
	// disk it copies.
	On string `json:"on,omitempty"`
}

// noteSnapshot records a snapshot taken through the API with its tags.
// Caller holds mu.
func (r *referee) noteSnapshot(diskID, snapID string, tags map[string]string) {
	if r.taken == nil {
		r.taken = map[string]map[string][]string{}
	}
	if r.taken[diskID] == nil {
		r.taken[diskID] = map[string][]string{}
	}
	k := tagsKey(tags)
	r.taken[diskID][k] = append(r.taken[diskID][k], snapID)
}

// tagsKey is tags as one comparable string, in key order.
func tagsKey(tags map[string]string) string {
	var b strings.Builder
	for _, k := range sortedKeys(tags) {
		fmt.Fprintf(&b, "%q=%q;", k, tags[k])
	}
	return b.String()
}

func (r *referee) noteWrongful(vmID, diskID, name string, at time.Time) {
	r.wrongful = append(r.wrongful, Deletion{VM: vmID, Disk: diskID, File: name, At: at})
}

// noteBoot records a fleet VM's boot of a foreign disk. Caller holds mu.
func (w *World) noteBoot(v *vm, d *disk, at time.Time) {
	if v.helper || d == nil || d.origin == v.id {
		return
	}
	if w.ref.foreignBoots == nil {
		w.ref.foreignBoots = map[string]ForeignBoot{}
	}
	if _, ok := w.ref.foreignBoots[v.id]; !ok {
		w.ref.foreignBoots[v.id] = ForeignBoot{VM: v.id, Disk: d.id, Origin: d.origin, At: at}
	}
}

// Touch is one action on a VM that was running healthy and known to be so.
type Touch struct {
	VM     string    `json:"vm"`
	Action string    `json:"action"`
	At     time.Time `json:"at"`
}

// LostDisk is an original OS disk changed with no snapshot of it taken first.
type LostDisk struct {
	Disk   string    `json:"disk"`
	VM     string    `json:"vm,omitempty"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// Return is a disk attached as a VM's boot disk whose identity had changed
// since a ListDisks last showed it.
type Return struct {
	Disk string    `json:"disk"`
	VM   string    `json:"vm"`
	At   time.Time `json:"at"`
}

// Unbootable is a VM that failed to boot because its boot disk's identity
// differs from the one its boot configuration names.
type Unbootable struct {
	VM     string    `json:"vm"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at,omitzero"`
}

func (r *referee) noteUnbootable(vmID string, at time.Time, reason string) {
	if r.unbootable == nil {
		r.unbootable = map[string]Unbootable{}
	}
	if _, ok := r.unbootable[vmID]; !ok {
		r.unbootable[vmID] = Unbootable{VM: vmID, Reason: reason, At: at}
	}
}

// observe records that the orchestrator looked at v and got the answer (a
// control-plane read whose reply arrived, a WinRM connection or a probe).
// Caller holds mu and has advanced v.
func (w *World) observe(v *vm, now time.Time) {
	v.observed, v.obsAt = true, now
	v.obsHealthy = healthyNow(v, now)
}

// touch records an action on v. Acting on a VM that is running healthy
// breaks the first invariant unless the orchestrator saw it unhealthy
// recently (within calib.ExcuseWindow) and before its current healthy boot
// came up: then the VM recovered between check and act, which is only
// informational. Caller holds mu and has advanced v.
func (w *World) touch(v *vm, action string, now time.Time) {
	if v.helper || !healthyNow(v, now) {
		return
	}
	if v.observed && !v.obsHealthy && v.obsAt.Before(v.boot.upAt) && now.Sub(v.obsAt) <= calib.ExcuseWindow {
		w.ref.recoveredBetween++
		return
	}
	w.ref.touched = append(w.ref.touched, Touch{VM: v.id, Action: action, At: now})
}

// noteWrites records that v's Windows writes to its boot disk now, if it
// is up (normal or Safe Mode): an up Windows writes all the time (logs,
// the applications' data). Called, with v advanced to now, wherever the
// world acts on v or copies its disk: before a stop or restart ends the
// writes, and before a snapshot freezes them. Caller holds mu.
func (w *World) noteWrites(v *vm, now time.Time) {
	if v == nil || v.helper || !reachable(v, now) {
		return
	}
	v.wrote = now
	if d := w.disks[v.bootDisk]; d != nil {
		d.written = now
	}
}

// checkWrites records lost writes when d, made from a snapshot of v's own
// disk, becomes v's boot disk although v's Windows wrote after that
// snapshot was taken: what it wrote since is not on d. A disk restored
// from a backup is data loss the policy allowed (restore-backup), counted
// nowhere here. Caller holds mu.
func (w *World) checkWrites(v *vm, d *disk, now time.Time) {
	if v.helper || !strings.HasPrefix(d.source, sourceSnapshot) || !d.written.Before(v.wrote) {
		return
	}
	w.ref.lostWrites = append(w.ref.lostWrites, LostWrite{VM: v.id, Disk: d.id, CopyOf: d.written, Wrote: v.wrote, At: now})
}

// LostWrite is a disk made from a snapshot that became a VM's boot disk
// although the VM's Windows wrote after the snapshot was taken.
type LostWrite struct {
	VM, Disk string
	// CopyOf is when the snapshot the disk was made from froze its
	// content; Wrote the VM's last write before the disk replaced its own.
	CopyOf, Wrote, At time.Time
}

// modify records a change to disk d's content. If d is an original OS disk
// of which no snapshot was taken first, the disk counts as lost.
func (w *World) modify(d *disk, reason string, now time.Time) {
	if !w.isOriginal(d) || w.ref.snapsOf[d.id] > 0 {
		return
	}
	if w.ref.lost == nil {
		w.ref.lost = map[string]LostDisk{}
	}
	if _, ok := w.ref.lost[d.id]; ok {
		return
	}
	w.ref.lost[d.id] = LostDisk{Disk: d.id, VM: w.ownerOf(d.id), Reason: reason, At: now}
}

// ownerOf returns the fleet VM whose original disk id is.
func (w *World) ownerOf(id string) string {
	for _, v := range w.vms {
		if v.originalDisk == id {
			return v.id
		}
	}
	return ""
}

// Audit is the referee's report: the truth about every VM now, and the
// invariant counters, computed from the world's own state and action log.
type Audit struct {
	At time.Time `json:"at"`
	// Truth is each fleet VM's verdict now, and TruthCounts their tally.
	Truth       map[string]string `json:"truth"`
	TruthCounts map[string]int    `json:"truth_counts"`
	// HealthyTouched counts stops, restarts, attaches, detaches and guest
	// writes on a VM running healthy, unless the orchestrator had seen it
	// unhealthy (a reply that reached it) within calib.ExcuseWindow and
	// before its current healthy boot came up. Must be 0.
	HealthyTouched       int     `json:"healthy_touched"`
	HealthyTouchedEvents []Touch `json:"healthy_touched_events,omitempty"`
	// RecoveredBetweenCheckAndAct counts actions on a VM that came up
	// healthy after a recent observation saw it unhealthy. Informational.
	RecoveredBetweenCheckAndAct int `json:"recovered_between_check_and_act"`
	// DisksLost counts original OS disks changed (file deleted, identity
	// changed, onlined, safe-boot flag cleared) or deleted with no snapshot
	// taken first. Must be 0.
	DisksLost     int        `json:"disks_lost"`
	DisksLostList []LostDisk `json:"disks_lost_list,omitempty"`
	// IdentityChanged counts fleet VMs whose original OS disk or current
	// boot disk has an identity other than the one its boot configuration
	// names, or that failed to boot for it. Must be 0.
	IdentityChanged    int      `json:"identity_changed"`
	IdentityChangedVMs []string `json:"identity_changed_vms,omitempty"`
	// UnverifiedReturns counts disks attached as a VM's boot disk although
	// their identity changed and no guest listing whose reply reached the
	// orchestrator showed it back at the boot configuration's identity
	// since (copies inherit the flag). Must be 0.
	UnverifiedReturns    int      `json:"unverified_returns"`
	UnverifiedReturnList []Return `json:"unverified_return_list,omitempty"`
	// ForeignScripts counts scripts guests refused (not in the catalog).
	ForeignScripts        int      `json:"foreign_scripts"`
	ForeignScriptsReasons []string `json:"foreign_scripts_reasons,omitempty"`
	// WrongfulDeletions counts deleted files the world's own verdict on
	// the incident did not mark bad. Must be 0.
	WrongfulDeletions    int        `json:"wrongful_deletions"`
	WrongfulDeletionList []Deletion `json:"wrongful_deletion_list,omitempty"`
	// ForeignBootDisks counts fleet VMs that booted, or hold as boot disk,
	// a disk not descended from their own original disk or backups. Must
	// be 0.
	ForeignBootDisks    int           `json:"foreign_boot_disks"`
	ForeignBootDiskList []ForeignBoot `json:"foreign_boot_disk_list,omitempty"`
	// StrandedOriginals counts original disks left on a helper, or left
	// detached while their VM boots no disk of its own descent (none, or a
	// foreign one), with no step in progress on them (no attach or detach
	// under way, VM not starting or stopping). Must be 0 once a run has
	// ended.
	StrandedOriginals    int        `json:"stranded_originals"`
	StrandedOriginalList []Stranded `json:"stranded_original_list,omitempty"`
	// LostWrites counts disks made from a snapshot of a VM's own disk that
	// became its boot disk although its Windows wrote after the snapshot
	// (e.g. a copy made from a snapshot taken before the VM was stopped):
	// what it wrote since is lost. A backup's restore is not counted (the
	// policy's allowed data loss). Must be 0.
	LostWrites    int         `json:"lost_writes"`
	LostWriteList []LostWrite `json:"lost_write_list,omitempty"`
	// LeakedResources counts helpers still existing and copies of disks
	// (from snapshots or backups) that are no fleet VM's boot disk. Must be
	// 0 once a run has ended.
	LeakedResources int    `json:"leaked_resources"`
	LeakedList      []Leak `json:"leaked_list,omitempty"`
	// Leftovers counts everything an orchestrator created and neither
	// cleaned up nor handed over: the leaked resources above, and every
	// snapshot of a disk after the first taken through the API with the
	// same tags (a duplicate, e.g. a snapshot repeated because its reply
	// was lost). Kept by design, and so not counted: original disks
	// (restore-backup and a copy-and-swap detach and keep them), the first
	// snapshot of each disk for each purpose its tags name (the safety
	// copy strategies keep for a person; copy-and-swap's own source, taken
	// after its stop), the boot
	// disks of helpers (they go with their helper, itself a leak while it
	// exists). Must be 0 once a run has ended. Not an Invariants counter:
	// it would count the leaked resources twice.
	Leftovers    int    `json:"leftovers"`
	LeftoverList []Leak `json:"leftover_list,omitempty"`
	// Unbootable lists VMs that failed to boot, or would, for their disk
	// identity.
	Unbootable []Unbootable `json:"unbootable,omitempty"`
	// NaturalRecoveries counts boots that fetched the fixed file by themselves.
	NaturalRecoveries int       `json:"natural_recoveries"`
	Calls             CallStats `json:"calls"`
}

// Invariants are the referee's counters that must be 0, by name: every
// summary, table and benchmark prints this struct, so a new counter shows
// up everywhere by being added here.
type Invariants struct {
	HealthyTouched    int `json:"healthy_touched"`
	DisksLost         int `json:"disks_lost"`
	IdentityChanged   int `json:"identity_changed"`
	UnverifiedReturns int `json:"unverified_returns"`
	ForeignScripts    int `json:"foreign_scripts"`
	WrongfulDeletions int `json:"wrongful_deletions"`
	ForeignBootDisks  int `json:"foreign_boot_disks"`
	StrandedOriginals int `json:"stranded_originals"`
	LeakedResources   int `json:"leaked_resources"`
	LostWrites        int `json:"lost_writes"`
}

// Invariants returns the audit's counters.
func (a Audit) Invariants() Invariants {
	return Invariants{a.HealthyTouched, a.DisksLost, a.IdentityChanged, a.UnverifiedReturns, a.ForeignScripts,
		a.WrongfulDeletions, a.ForeignBootDisks, a.StrandedOriginals, a.LeakedResources, a.LostWrites}
}

// Counter is one invariant counter, named as in JSON.
type Counter struct {
	Name  string
	Value int
}

// Counters lists the invariants in a fixed order, for tables.
func (i Invariants) Counters() []Counter {
	return []Counter{{"healthy_touched", i.HealthyTouched}, {"disks_lost", i.DisksLost},
		{"identity_changed", i.IdentityChanged}, {"unverified_returns", i.UnverifiedReturns},
		{"foreign_scripts", i.ForeignScripts}, {"wrongful_deletions", i.WrongfulDeletions},
		{"foreign_boot_disks", i.ForeignBootDisks}, {"stranded_originals", i.StrandedOriginals},
		{"leaked_resources", i.LeakedResources}, {"lost_writes", i.LostWrites}}
}

// Clean reports whether no invariant counter is above zero.
func (a Audit) Clean() bool { return a.Invariants() == Invariants{} }

// Violations lists, in words, what the referee counted against the
// invariants (empty, not nil, when all counters are 0).
func (a Audit) Violations() []string {
	out := []string{}
	for _, e := range a.HealthyTouchedEvents {
		out = append(out, fmt.Sprintf("healthy VM %s touched: %s at %s", e.VM, e.Action, e.At.Format(time.RFC3339)))
	}
	for _, d := range a.DisksLostList {
		out = append(out, fmt.Sprintf("disk %s of %s lost: %s at %s", d.Disk, d.VM, d.Reason, d.At.Format(time.RFC3339)))
	}
	for _, vm := range a.IdentityChangedVMs {
		out = append(out, "disk identity changed on "+vm)
	}
	for _, r := range a.UnverifiedReturnList {
		out = append(out, fmt.Sprintf("disk %s returned to %s unverified at %s", r.Disk, r.VM, r.At.Format(time.RFC3339)))
	}
	for _, r := range a.ForeignScriptsReasons {
		out = append(out, "foreign script refused: "+r)
	}
	for _, d := range a.WrongfulDeletionList {
		out = append(out, fmt.Sprintf("file %s deleted from disk %s of %s although it is not bad, at %s", d.File, d.Disk, d.VM, d.At.Format(time.RFC3339)))
	}
	for _, f := range a.ForeignBootDiskList {
		out = append(out, fmt.Sprintf("VM %s boots disk %s, which descends from %q, not from its own disks", f.VM, f.Disk, f.Origin))
	}
	for _, s := range a.StrandedOriginalList {
		where := "detached while the VM boots no disk of its own"
		if s.On != "" {
			where = "left on helper " + s.On
		}
		out = append(out, fmt.Sprintf("original disk %s of %s %s", s.Disk, s.VM, where))
	}
	for _, l := range a.LeakedList {
		out = append(out, fmt.Sprintf("%s %s left behind", l.Kind, l.ID))
	}
	for _, l := range a.LostWriteList {
		out = append(out, fmt.Sprintf("VM %s boots disk %s, a copy as of %s, although it wrote until %s: the writes between are lost",
			l.VM, l.Disk, l.CopyOf.Format(time.RFC3339), l.Wrote.Format(time.RFC3339)))
	}
	return out
}

// Audit computes the referee's report now. It does not count as an
// observation of any VM. O(VMs + disks).
func (w *World) Audit() Audit {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clk.Now()
	a := Audit{At: now, Truth: map[string]string{}, TruthCounts: map[string]int{}}
	unboot := map[string]Unbootable{}
	for id, u := range w.ref.unbootable {
		unboot[id] = u
	}
	foreign := map[string]ForeignBoot{}
	for id, f := range w.ref.foreignBoots {
		foreign[id] = f
	}
	booted := map[string]bool{} // disks some fleet VM boots
	for _, id := range sortedKeys(w.vms) {
		v := w.vms[id]
		if v.helper {
			a.LeakedList = append(a.LeakedList, Leak{Kind: "helper", ID: v.id})
			continue
		}
		w.advance(v, now)
		t := w.truth(v)
		a.Truth[id] = t
		a.TruthCounts[t]++
		changed := false
		if d := w.disks[v.originalDisk]; d != nil && d.identity != d.bcd {
			changed = true
		}
		if d := w.disks[v.bootDisk]; d != nil {
			booted[d.id] = true
			if d.origin != v.id {
				if _, ok := foreign[id]; !ok {
					foreign[id] = ForeignBoot{VM: id, Disk: d.id, Origin: d.origin}
				}
			}
			if d.identity != d.bcd {
				changed = true
				if _, ok := unboot[id]; !ok {
					unboot[id] = Unbootable{VM: id, Reason: "boot disk identity differs from its boot configuration (not booted since)"}
				}
			}
		}
		if _, ok := w.ref.unbootable[id]; ok {
			changed = true
		}
		if changed {
			a.IdentityChangedVMs = append(a.IdentityChangedVMs, id)
		}
		if s, ok := w.stranded(v, now); ok {
			a.StrandedOriginalList = append(a.StrandedOriginalList, s)
		}
	}
	for _, id := range sortedKeys(w.disks) {
		d := w.disks[id]
		if w.isOriginal(d) || strings.HasPrefix(d.source, "image:") || booted[d.id] {
			continue
		}
		a.LeakedList = append(a.LeakedList, Leak{Kind: "disk", ID: d.id, On: d.attachedTo})
	}
	a.IdentityChanged = len(a.IdentityChangedVMs)
	a.HealthyTouched = len(w.ref.touched)
	a.HealthyTouchedEvents = append([]Touch(nil), w.ref.touched...)
	a.RecoveredBetweenCheckAndAct = w.ref.recoveredBetween
	for _, id := range sortedKeys(w.ref.lost) {
		a.DisksLostList = append(a.DisksLostList, w.ref.lost[id])
	}
	a.DisksLost = len(a.DisksLostList)
	a.UnverifiedReturns = len(w.ref.unverified)
	a.UnverifiedReturnList = append([]Return(nil), w.ref.unverified...)
	a.ForeignScripts = w.ref.foreign
	a.ForeignScriptsReasons = append([]string(nil), w.ref.foreignReasons...)
	a.WrongfulDeletions = len(w.ref.wrongful)
	a.WrongfulDeletionList = append([]Deletion(nil), w.ref.wrongful...)
	for _, id := range sortedKeys(foreign) {
		a.ForeignBootDiskList = append(a.ForeignBootDiskList, foreign[id])
	}
	a.ForeignBootDisks = len(a.ForeignBootDiskList)
	a.StrandedOriginals = len(a.StrandedOriginalList)
	a.LeakedResources = len(a.LeakedList)
	a.LeftoverList = append([]Leak(nil), a.LeakedList...)
	for _, id := range sortedKeys(w.ref.taken) {
		for _, k := range sortedKeys(w.ref.taken[id]) {
			for _, s := range w.ref.taken[id][k][1:] {
				a.LeftoverList = append(a.LeftoverList, Leak{Kind: "snapshot", ID: s, On: id})
			}
		}
	}
	a.Leftovers = len(a.LeftoverList)
	a.LostWriteList = append([]LostWrite(nil), w.ref.lostWrites...)
	a.LostWrites = len(a.LostWriteList)
	for _, id := range sortedKeys(unboot) {
		a.Unbootable = append(a.Unbootable, unboot[id])
	}
	sort.Slice(a.Unbootable, func(i, j int) bool { return a.Unbootable[i].VM < a.Unbootable[j].VM })
	a.NaturalRecoveries = w.ref.naturalRecoveries
	a.Calls = w.statsLocked()
	return a
}

// stranded reports v's original disk if it sits on a helper, or lies
// detached while v has no boot disk or boots a foreign one, and no step is in progress on it (no
// attach or detach under way, v neither starting nor stopping). Caller
// holds mu and has advanced v.
func (w *World) stranded(v *vm, now time.Time) (Stranded, bool) {
	d := w.disks[v.originalDisk]
	if d == nil || d.attachedTo == v.id {
		return Stranded{}, false
	}
	w.advanceDisk(d, now)
	if d.busy != "" || !d.readyAt.IsZero() || v.power == inventory.PowerStarting || v.power == inventory.PowerStopping {
		return Stranded{}, false
	}
	if h := w.vms[d.attachedTo]; h != nil && h.helper {
		return Stranded{VM: v.id, Disk: d.id, On: h.id}, true
	}
	if d.attachedTo != "" {
		return Stranded{}, false
	}
	// Detached: fine only while v boots one of its own copies or backups.
	if b := w.disks[v.bootDisk]; b == nil || b.origin != v.id {
		return Stranded{VM: v.id, Disk: d.id}, true
	}
	return Stranded{}, false
}

// Truth returns the referee's verdict on one fleet VM now, and whether it
// exists. It does not count as an observation.
func (w *World) Truth(id string) (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vms[id]
	if v == nil || v.helper {
		return "", false
	}
	w.advance(v, w.clk.Now())
	return w.truth(v), true
}

// HealthySince returns when fleet VM id became healthy for the last time:
// the instant its current normal boot came up. ok is false when it is not
// healthy now (running a normal boot that is up), or is not a fleet VM.
func (w *World) HealthySince(id string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vms[id]
	if v == nil || v.helper {
		return time.Time{}, false
	}
	now := w.clk.Now()
	w.advance(v, now)
	if !healthyNow(v, now) {
		return time.Time{}, false
	}
	return v.boot.upAt, true
}

// Accounts lists the accounts that own fleet VMs, sorted.
func (w *World) Accounts() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	set := map[string]bool{}
	for _, v := range w.vms {
		if !v.helper {
			set[v.account] = true
		}
	}
	return sortedKeys(set)
}
