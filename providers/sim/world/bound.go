package world

import (
	"sort"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
)

// restartsWithin reports whether v reaches its fixing boot r within max
// restarts (0: no limit): the boots still to begin, less those its own
// crash cycles begin before it sticks at the recovery screen (all of them
// where it never sticks). Caller holds mu.
func (w *World) restartsWithin(v *vm, r, max int) bool {
	if max <= 0 {
		return true
	}
	need := r - v.bootCount
	if v.power == inventory.PowerRunning && v.boot.kind == bootCrash {
		if v.cond.stuckAfter <= 0 {
			return true // it cycles until boot r
		}
		need -= v.cond.stuckAfter - v.cond.crashes - 1 // boots its own resets begin before it sticks
	}
	return need <= max
}

// BoundOptions say which repairs count towards the lower bound.
type BoundOptions struct {
	// AllowDataLoss counts restoring a clean backup as a repair (the
	// operator's allow_data_loss). Without it, only repairs that keep the
	// VM's data count.
	AllowDataLoss bool
	// StartStopped counts starting a powered-off VM (the operator's
	// stopped_vms: start): without it, a powered-off VM whose disk cannot
	// be repaired offline has no repair that respects the policy.
	StartStopped bool
	// MaxRestarts is how many restarts a repair may make of one VM (the
	// operator's last_resort_restarts); 0: no limit. A VM whose fixing boot
	// needs more restarts than that, beyond the boots its own crash cycles
	// begin before it sticks at the recovery screen, is not repaired by
	// restarts within the policy.
	MaxRestarts int
}

// Bound is the world's lower bound on the makespan of any correct repair of
// its fleet, from now: no orchestrator can get every repairable broken VM
// healthy sooner. docs/benchmark.md gives the formula and its assumptions.
type Bound struct {
	// Seconds is the bound: the largest of the three terms.
	Seconds float64 `json:"seconds"`
	// ChainSeconds is the longest per-VM chain, on ChainVM.
	ChainSeconds float64 `json:"chain_seconds"`
	ChainVM      string  `json:"chain_vm,omitempty"`
	// APISeconds is the longest wait for API tokens, on APIBucket
	// ("account/bucket").
	APISeconds float64 `json:"api_seconds"`
	APIBucket  string  `json:"api_bucket,omitempty"`
	// HelperSeconds is the time a VM that only a helper can repair needs
	// once its helper has been created from nothing.
	HelperSeconds float64 `json:"helper_seconds"`
	// Repairable counts the VMs broken now that some repair can fix;
	// Unrepairable those none can (they do not count in the bound).
	Repairable   int `json:"repairable"`
	Unrepairable int `json:"unrepairable"`
	// RepairableVMs are the Repairable VMs' IDs.
	RepairableVMs []string `json:"-"`
}

// repair paths a bound considers.
type repairPath int

const (
	pathReboot   repairPath = iota // restarts (or natural crash cycles) until the boot that fetches the fix
	pathOnline                     // in safe mode over WinRM: a script, a restart
	pathOffline                    // the disk on a same-zone helper: a script, back, start
	pathZoneCopy                   // a copy on a helper in another zone: a script, copied back, attached, start
	pathRestore                    // a disk from a clean backup as the boot disk
	pathSafeMode                   // the flag set offline on a same-zone helper, back, started into Safe Mode: a script, a restart
)

// calls are the API calls a path needs at the least, by bucket; batched
// calls (StopVMs, StartVMs take many VMs) count nothing per VM.
type calls [bucketStartRun + 1]int

var pathCalls = map[repairPath]calls{
	pathReboot:  {},
	pathOnline:  {bucketMutating: 1},                          // RestartVM
	pathOffline: {bucketMutating: 4, bucketSnapshotVolume: 1}, // Detach, Attach ×2; Snapshot
	pathRestore: {bucketMutating: 2, bucketSnapshotVolume: 1}, // Detach, Attach; RestoreBackup
	// pathOffline's, and RestartVM out of Safe Mode.
	pathSafeMode: {bucketMutating: 5, bucketSnapshotVolume: 1},
	// Attach, Detach on the helper, Detach, Attach as boot, DeleteDisk
	// (the copy); Snapshot ×2, DiskFromSnapshot ×2.
	pathZoneCopy: {bucketMutating: 5, bucketSnapshotVolume: 4},
}

// LowerBound computes the bound from the world's state and draws now. It
// reads no history of what an orchestrator did, and changes nothing but the
// lazy advance of VMs to now (as any read does).
func (w *World) LowerBound(o BoundOptions) Bound {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clk.Now()
	var b Bound
	need := map[string]*calls{}    // account/bucket key -> calls
	helperOnly := map[string]int{} // account -> (account, zone, release) groups needing a helper
	groups := map[string]bool{}
	for _, id := range sortedKeys(w.vms) {
		v := w.vms[id]
		if v.helper {
			continue
		}
		w.advance(v, now)
		if w.truth(v) == TruthHealthy {
			continue
		}
		best, least, paths := w.chain(v, now, o)
		if len(paths) == 0 {
			b.Unrepairable++
			continue
		}
		b.Repairable++
		b.RepairableVMs = append(b.RepairableVMs, v.id)
		if s := best.Seconds(); s > b.ChainSeconds {
			b.ChainSeconds, b.ChainVM = s, v.id
		}
		c := need[v.account]
		if c == nil {
			c = &calls{}
			need[v.account] = c
		}
		for k := range c {
			c[k] += least[k]
		}
		if len(paths) == 1 && paths[0] == pathZoneCopy {
			// Its helper may serve another zone's VMs too: no group of
			// its own.
			b.HelperSeconds = max(b.HelperSeconds, (helperReady() + offlineTail()).Seconds())
		}
		if len(paths) == 1 && (paths[0] == pathOffline || paths[0] == pathSafeMode) {
			b.HelperSeconds = max(b.HelperSeconds, (helperReady() + offlineTail()).Seconds())
			if g := v.account + "/" + v.zone + "/" + v.windows.Release; !groups[g] {
				groups[g] = true
				helperOnly[v.account]++
			}
		}
	}
	for _, a := range sortedKeys(need) {
		c := *need[a]
		c[bucketStartRun] += helperOnly[a] // AcquireHelper: at least one per group
		if s, k := w.apiWait(c); s > b.APISeconds {
			b.APISeconds, b.APIBucket = s, a+"/"+k
		}
	}
	b.Seconds = max(b.ChainSeconds, b.APISeconds, b.HelperSeconds)
	return b
}

// chain returns the shortest chain of v's repair paths, the least calls
// per bucket over them, and the paths that apply. Caller holds mu.
func (w *World) chain(v *vm, now time.Time, o BoundOptions) (time.Duration, calls, []repairPath) {
	var paths []repairPath
	var durs []time.Duration
	add := func(p repairPath, d time.Duration) { paths, durs = append(paths, p), append(durs, d) }
	d := w.disks[v.originalDisk]
	if d == nil || v.bootDisk != v.originalDisk {
		return 0, calls{}, nil
	}
	running := v.power == inventory.PowerRunning
	// Stopping the VM before its disk can leave it.
	pre := mn(timing.OpDetach)
	if running || v.power == inventory.PowerStarting {
		pre += mn(timing.OpStop)
	}
	booting := d.identity == d.bcd && !d.hiveDamaged
	startable := v.power != inventory.PowerStopped || o.StartStopped
	if r := v.cond.recoverAfter; booting && startable && !d.safeBoot && w.hasBad(&d.content) && r > v.bootCount && w.restartsWithin(v, r, o.MaxRestarts) {
		// Boots b+1 .. r must begin; each begins a restart (or, while
		// cycling, a crash cycle) after the one before. Boot r comes up
		// after its own drawn boot-to-WinRM time.
		step := mn(timing.OpRestart)
		if running && v.boot.kind == bootCrash {
			step = min(step, w.cycle(v))
		}
		first := step
		switch {
		case !running:
			first = mn(timing.OpStart)
		case v.boot.kind == bootCrash:
			first = min(step, max(0, v.lastBootAt.Add(w.cycle(v)).Sub(now)))
		}
		add(pathReboot, first+time.Duration(r-v.bootCount-1)*step+w.hashDur(timing.Of(timing.OpBootToWinRM), v.id, "up", r))
	}
	if running && v.boot.kind == bootSafe && v.cond.safeModeWinRM && v.cond.winrm == WinRMOpen && !v.cond.deleteDenied {
		up := max(0, v.boot.upAt.Sub(now))
		add(pathOnline, up+mn(timing.OpGuestScript)+mn(timing.OpRestart)+mn(timing.OpBootToWinRM))
	}
	// No script on a helper mends a damaged hive: only a clean backup.
	unlockable := d.bitlocker == nil || d.bitlocker.escrowed
	offline := unlockable && !d.hiveDamaged
	_, here := w.imageFor(v.zone, v.windows.Release)
	readable := unlockable && (here || !w.zoneBoundSnaps && w.imageElsewhere(v.zone, v.windows.Release))
	if here && offline {
		add(pathOffline, max(pre+mn(timing.OpAttach), helperReady())+offlineTail())
	} else if readable && offline {
		// Stop, snapshot, a disk from it in the helper's zone, attached;
		// a script; detached, snapshot, a disk from it back, attached as
		// boot (the original's detach overlaps), start, boot.
		// Each snapshot at its least: the first incremental after an
		// earlier one (taken before the stop, off the chain), the copy's
		// continuing its source's lineage (Snapshot), where the world's
		// snapshots are such.
		snap := func(incr bool) time.Duration {
			if incr && !w.fullCopies {
				return time.Duration(float64(mn(timing.OpSnapshot)) * calib.IncrementalSnapshotFactor)
			}
			return mn(timing.OpSnapshot)
		}
		stop := pre - mn(timing.OpDetach)
		there := stop + snap(true) + mn(timing.OpDiskFromSnapshot) + mn(timing.OpAttach)
		back := mn(timing.OpGuestScript) + mn(timing.OpDetach) + snap(!w.perDiskSnaps) + mn(timing.OpDiskFromSnapshot) +
			mn(timing.OpAttach) + mn(timing.OpStart) + mn(timing.OpBootToWinRM)
		add(pathZoneCopy, max(there, helperReady())+back)
	}
	// Where WinRM starts in Safe Mode, a same-zone helper sets the disk's
	// safe-boot flag (its system partition needs no BitLocker key) and
	// the VM, started, is repaired online.
	if here && booting && startable && v.cond.safeModeWinRM && v.cond.winrm == WinRMOpen && !v.cond.deleteDenied {
		add(pathSafeMode, max(pre+mn(timing.OpAttach), helperReady())+offlineTail()+
			mn(timing.OpGuestScript)+mn(timing.OpRestart)+mn(timing.OpBootToWinRM))
	}
	// A powered-off VM is restored only once something showed its disk
	// broken: a start (StartStopped), or its disk read on a helper.
	if restore, ok := w.cleanBackup(v); ok && o.AllowDataLoss && (v.power != inventory.PowerStopped || o.StartStopped || readable) {
		add(pathRestore, max(pre, restore)+mn(timing.OpAttach)+mn(timing.OpStart)+mn(timing.OpBootToWinRM))
	}
	if len(paths) == 0 {
		return 0, calls{}, nil
	}
	best := durs[0]
	least := pathCalls[paths[0]]
	for i, p := range paths {
		best = min(best, durs[i])
		for k, n := range pathCalls[p] {
			least[k] = min(least[k], n)
		}
	}
	return best, least, paths
}

// cleanBackup reports whether v has a backup taken before the incident
// that restores to a bootable disk, and the least restore time among
// those.
func (w *World) cleanBackup(v *vm) (time.Duration, bool) {
	var least time.Duration
	found := false
	for _, bk := range v.backups {
		if bk.TakenAt.Before(w.incident.StartedAt) && !bk.Damaged {
			if d := w.restoreTime(bk); !found || d < least {
				least, found = d, true
			}
		}
	}
	return least, found
}

// imageElsewhere reports whether a zone other than zone has a helper image
// of release: a disk copy reaches it (the world has no regions: every
// snapshot makes disks in every zone). Caller holds mu.
func (w *World) imageElsewhere(zone, release string) bool {
	for _, im := range w.images {
		if im.Zone != zone && im.Release == release {
			return true
		}
	}
	return false
}

// helperReady is the least time to create a helper and have its guest up.
func helperReady() time.Duration {
	return calib.HelperProvisioning.Min + mn(timing.OpBootToWinRM)
}

// offlineTail is the least time from a disk on a ready helper to its VM up:
// one script, detach, attach as boot, start, boot.
func offlineTail() time.Duration {
	return mn(timing.OpGuestScript) + mn(timing.OpDetach) + mn(timing.OpAttach) + mn(timing.OpStart) + mn(timing.OpBootToWinRM)
}

func mn(op timing.Op) time.Duration { return timing.Of(op).Min }

// apiWait is the longest time, over c's buckets, to collect c's calls from
// buckets full at the start: (calls - size) / refill. Buckets of the
// simple model are one per account; with throttling off there is no wait.
// Caller holds mu.
func (w *World) apiWait(c calls) (float64, string) {
	type bucket struct {
		name  string
		n     int
		limit timing.Bucket
	}
	var bs []bucket
	switch w.gate.faults.Throttle {
	case ThrottleSimple:
		n := 0
		for _, x := range c {
			n += x
		}
		bs = append(bs, bucket{"all", n, calib.SimpleBucket})
	case ThrottleEC2:
		for k, n := range c {
			bs = append(bs, bucket{bucketKind(k).ec2Name(), n, bucketKind(k).ec2()})
		}
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].name < bs[j].name })
	var best float64
	var name string
	for _, x := range bs {
		if s := float64(x.n-x.limit.Size) / x.limit.Refill; s > best {
			best, name = s, x.name
		}
	}
	return best, name
}

// ec2Name names the bucket as EC2's documentation does.
func (k bucketKind) ec2Name() string {
	switch k {
	case bucketDescribeAll:
		return "unfiltered-describe"
	case bucketMutating:
		return "mutating"
	case bucketSnapshotVolume:
		return "create-snapshot-volume"
	case bucketStartRun:
		return "start-run-instances"
	}
	return "non-mutating"
}
