package world

import (
	"sort"
	"time"
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

// observe records that the orchestrator looked at v (Observe, a WinRM
// connection or probe). Caller holds mu and has advanced v.
func (w *World) observe(v *vm) {
	v.observed = true
	v.obsHealthy = healthyNow(v, w.clk.Now())
}

// touch records an action on v: if v is running healthy and was already
// healthy when last observed (or never observed), that breaks the first
// invariant; if it became healthy since, it is informational. Caller holds
// mu and has advanced v.
func (w *World) touch(v *vm, action string, now time.Time) {
	if v.helper || !healthyNow(v, now) {
		return
	}
	if v.observed && !v.obsHealthy {
		w.ref.recoveredBetween++
		return
	}
	w.ref.touched = append(w.ref.touched, Touch{VM: v.id, Action: action, At: now})
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
	// writes on a VM running healthy that was already healthy when last
	// observed (or never observed). Must be 0.
	HealthyTouched       int     `json:"healthy_touched"`
	HealthyTouchedEvents []Touch `json:"healthy_touched_events,omitempty"`
	// RecoveredBetweenCheckAndAct counts actions on a VM that became healthy
	// after its last observation. Informational.
	RecoveredBetweenCheckAndAct int `json:"recovered_between_check_and_act"`
	// DisksLost counts original OS disks changed (file deleted, identity
	// changed, onlined) or deleted with no snapshot taken first. Must be 0.
	DisksLost     int        `json:"disks_lost"`
	DisksLostList []LostDisk `json:"disks_lost_list,omitempty"`
	// IdentityChanged counts fleet VMs whose original OS disk or current
	// boot disk has an identity other than the one its boot configuration
	// names, or that failed to boot for it. Must be 0.
	IdentityChanged    int      `json:"identity_changed"`
	IdentityChangedVMs []string `json:"identity_changed_vms,omitempty"`
	// UnverifiedReturns counts disks attached as a VM's boot disk although
	// their identity changed after a ListDisks last showed them. Must be 0.
	UnverifiedReturns    int      `json:"unverified_returns"`
	UnverifiedReturnList []Return `json:"unverified_return_list,omitempty"`
	// ForeignScripts counts scripts guests refused (not in the catalog).
	ForeignScripts        int      `json:"foreign_scripts"`
	ForeignScriptsReasons []string `json:"foreign_scripts_reasons,omitempty"`
	// Unbootable lists VMs that failed to boot, or would, for their disk
	// identity.
	Unbootable []Unbootable `json:"unbootable,omitempty"`
	// NaturalRecoveries counts boots that fetched the fixed file by themselves.
	NaturalRecoveries int       `json:"natural_recoveries"`
	Calls             CallStats `json:"calls"`
}

// Clean reports whether no invariant counter is above zero.
func (a Audit) Clean() bool {
	return a.HealthyTouched == 0 && a.DisksLost == 0 && a.IdentityChanged == 0 && a.UnverifiedReturns == 0 && a.ForeignScripts == 0
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
	for _, id := range sortedKeys(w.vms) {
		v := w.vms[id]
		if v.helper {
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
		if d := w.disks[v.bootDisk]; d != nil && d.identity != d.bcd {
			changed = true
			if _, ok := unboot[id]; !ok {
				unboot[id] = Unbootable{VM: id, Reason: "boot disk identity differs from its boot configuration (not booted since)"}
			}
		}
		if _, ok := w.ref.unbootable[id]; ok {
			changed = true
		}
		if changed {
			a.IdentityChangedVMs = append(a.IdentityChangedVMs, id)
		}
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
	for _, id := range sortedKeys(unboot) {
		a.Unbootable = append(a.Unbootable, unboot[id])
	}
	sort.Slice(a.Unbootable, func(i, j int) bool { return a.Unbootable[i].VM < a.Unbootable[j].VM })
	a.NaturalRecoveries = w.ref.naturalRecoveries
	a.Calls = w.statsLocked()
	return a
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
