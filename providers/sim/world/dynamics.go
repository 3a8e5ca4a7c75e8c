package world

import (
	"path"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
)

// bootKind is what the current boot of a running VM does.
type bootKind int

const (
	bootNone       bootKind = iota // not running
	bootNormal                     // Windows comes up normally
	bootSafe                       // safe mode with networking
	bootCrash                      // the bad file crashes it, then it resets
	bootStuck                      // at the recovery screen after crashes
	bootRepair                     // damaged hive: stuck at the recovery screen
	bootUnbootable                 // BCD names another disk: winload error
	bootNoDisk                     // no boot disk
)

type bootState struct {
	kind bootKind
	upAt time.Time // guest reachable from (normal, safe; crash with a WinRM window)
	// winrmUntil: a crashing boot's WinRM answers from upAt until then
	// (zero: not at all). See ConditionSpec.WinRMWindowSeconds.
	winrmUntil time.Time
}

func (k bootKind) up() bool { return k == bootNormal || k == bootSafe }

// crashAfter and cycle are per-VM constants, so that many crash cycles can
// be jumped over at once.
func (w *World) crashAfter(v *vm) time.Duration {
	if v.cond.winrmWindow > 0 {
		return w.upAfter(v) + v.cond.winrmWindow
	}
	return w.hashDur(calib.CrashAfter, v.id, "crash-after")
}

// upAfter is how long into a boot of a VM with a WinRM window its guest
// answers: a per-VM constant, so that its crash time is one too.
func (w *World) upAfter(v *vm) time.Duration {
	return w.hashDur(timing.Of(timing.OpBootToWinRM), v.id, "up-window")
}

func (w *World) cycle(v *vm) time.Duration {
	c := w.hashDur(timing.Of(timing.OpCrashCycle), v.id, "cycle")
	if least := w.crashAfter(v) + calib.ResetGap; c < least {
		c = least
	}
	return c
}

// hasBad reports whether the disk holds a bad copy of the incident's file.
func (w *World) hasBad(c *content) bool {
	for _, f := range c.files {
		if w.isBad(f) {
			return true
		}
	}
	return false
}

// isBad is the referee's own verdict on a file of the incident directory:
// its name matches the incident's glob (compared as Windows does, without
// case), its time stamp lies in the bad window and, when the incident names
// a header, the file starts with it. It deliberately shares no code with
// inventory.Incident.Verdict, so that a bug in the orchestrator's judgement
// cannot move the world's truth with it.
func (w *World) isBad(f file) bool {
	inc := w.incident
	ok, err := path.Match(strings.ToUpper(inc.Pattern), strings.ToUpper(f.name))
	if err != nil || !ok {
		return false
	}
	if f.mod.Before(inc.BadFrom) || !f.mod.Before(inc.BadUntil) {
		return false
	}
	return inc.Header == "" || strings.HasPrefix(strings.ToUpper(f.header), strings.ToUpper(inc.Header))
}

func (f file) fact(dir string) inventory.FileFact {
	return inventory.FileFact{Path: dir + `\` + f.name, Size: f.size, ModTime: f.mod, Header: f.header}
}

// wouldBoot is what a boot of v's boot disk would do now, without side
// effects and without natural recovery.
func (w *World) wouldBoot(v *vm) bootKind {
	d := w.disks[v.bootDisk]
	switch {
	case d == nil:
		return bootNoDisk
	case d.identity != d.bcd:
		return bootUnbootable
	case d.safeBoot && d.hiveDamaged:
		return bootRepair
	case d.safeBoot:
		return bootSafe
	case w.hasBad(&d.content):
		return bootCrash
	case d.hiveDamaged:
		return bootRepair
	}
	return bootNormal
}

// beginBoot starts boot number v.bootCount+1 at t. Caller holds mu.
func (w *World) beginBoot(v *vm, t time.Time) {
	v.bootCount++
	v.lastBootAt = t
	w.noteBoot(v, w.disks[v.bootDisk], t)
	w.evalBoot(v)
}

// evalBoot sets v.boot for the current boot (number v.bootCount, started at
// v.lastBootAt) from the boot disk's content, applying natural recovery.
func (w *World) evalBoot(v *vm) {
	k := w.wouldBoot(v)
	if k == bootCrash && v.cond.recoverAfter > 0 && v.bootCount == v.cond.recoverAfter {
		// This boot fetches the fixed file before the driver loads it.
		d := w.disks[v.bootDisk]
		for i, f := range d.files {
			if w.isBad(f) {
				d.files[i].mod = v.lastBootAt
				d.files[i].header = goodHeader
			}
		}
		w.ref.naturalRecoveries++
		k = w.wouldBoot(v)
	}
	switch k {
	case bootNormal, bootSafe:
		v.cond.crashes = 0
	case bootUnbootable:
		if !v.helper {
			w.ref.noteUnbootable(v.id, v.lastBootAt, "boot configuration names disk identity the boot disk no longer has (winload 0xc000000e)")
		}
	}
	v.boot = bootState{kind: k, upAt: v.lastBootAt.Add(w.hashDur(timing.Of(timing.OpBootToWinRM), v.id, "up", v.bootCount))}
	if v.cond.winrmWindow > 0 {
		v.boot.upAt = v.lastBootAt.Add(w.upAfter(v))
		if k == bootCrash {
			v.boot.winrmUntil = v.lastBootAt.Add(w.crashAfter(v))
		}
	}
}

// advance brings v's state up to now, its disks' attachments first.
// Caller holds mu.
func (w *World) advance(v *vm, now time.Time) {
	for _, id := range append([]string{v.bootDisk}, v.data...) {
		if d := w.disks[id]; d != nil {
			w.advanceDisk(d, now)
		}
	}
	for range 64 {
		switch v.power {
		case inventory.PowerStarting:
			if now.Before(v.powerUntil) {
				return
			}
			t := v.powerUntil
			v.power, v.powerUntil = inventory.PowerRunning, time.Time{}
			w.beginBoot(v, t)
		case inventory.PowerStopping:
			if now.Before(v.powerUntil) {
				return
			}
			v.power, v.powerUntil, v.boot = inventory.PowerStopped, time.Time{}, bootState{}
			return
		case inventory.PowerRunning:
			if !w.advanceCrash(v, now) {
				return
			}
		default:
			return
		}
	}
}

// advanceCrash moves a crash-looping VM through its cycles up to now, in
// O(1): whole cycles are jumped, stopping at the boot that sticks or
// recovers. It reports whether a new boot began (call again).
func (w *World) advanceCrash(v *vm, now time.Time) bool {
	if v.boot.kind != bootCrash {
		return false
	}
	s, c, off := v.lastBootAt, w.cycle(v), w.crashAfter(v)
	// Boot j (0 = current) sticks at its crash if crashes+j+1 >= K.
	jStuck := -1
	if k := v.cond.stuckAfter; k > 0 {
		jStuck = max(0, k-v.cond.crashes-1)
	}
	n := int(now.Sub(s) / c) // whole cycles completed by now
	if jStuck >= 0 && n > jStuck {
		n = jStuck
	}
	if r := v.cond.recoverAfter; r > v.bootCount && n > r-v.bootCount {
		n = r - v.bootCount
	}
	if n > 1 && w.wouldBoot(v) != bootCrash {
		n = 1 // the bad file went in this boot's WinRM window: the next boot differs
	}
	if n > 0 {
		v.cond.crashes += n
		v.bootCount += n - 1
		w.beginBoot(v, s.Add(time.Duration(n)*c))
		return true
	}
	if jStuck == 0 && !now.Before(s.Add(off)) {
		v.cond.crashes++
		v.boot.kind = bootStuck
	}
	return false
}

// healthyNow reports whether v is up in a normal boot: what the referee
// calls healthy at an instant. A VM still booting (even a boot that will
// come up healthy) is not: until it is up, no one can tell its boot from a
// crashing one, and acting on it touches no running healthy machine.
func healthyNow(v *vm, now time.Time) bool {
	return v.power == inventory.PowerRunning && v.boot.kind == bootNormal && !now.Before(v.boot.upAt)
}

// reachable reports whether v's guest OS is up (the cloud's reachability
// check), WinRM aside.
func reachable(v *vm, now time.Time) bool {
	return v.power == inventory.PowerRunning && v.boot.kind.up() && !now.Before(v.boot.upAt)
}

// listening reports whether v's WinRM answers: in safe mode only where
// the VM's WinRM service was enabled for it (not Windows' default).
func listening(v *vm, now time.Time) bool {
	if v.boot.kind == bootSafe && !v.cond.safeModeWinRM {
		return false
	}
	if v.boot.kind == bootCrash {
		return v.power == inventory.PowerRunning && !now.Before(v.boot.upAt) && now.Before(v.boot.winrmUntil) &&
			v.cond.winrm != WinRMBlocked
	}
	return reachable(v, now) && v.cond.winrm != WinRMBlocked
}

// bootMode is the guest's own idea of how it booted.
func bootMode(v *vm) inventory.BootMode {
	if v.boot.kind == bootSafe {
		return inventory.BootSafeMode
	}
	return inventory.BootNormal
}

// truth is the referee's verdict on v now. Caller has advanced v.
func (w *World) truth(v *vm) string {
	k := v.boot.kind
	if v.power != inventory.PowerRunning {
		k = w.wouldBoot(v)
	}
	switch k {
	case bootNormal:
		return TruthHealthy
	case bootSafe:
		return TruthSafeMode
	}
	return TruthBootLoop
}

// loop is the VM's loop kind now: "cycling", "stuck" or "".
func (w *World) loop(v *vm) string {
	switch {
	case v.power == inventory.PowerRunning && v.boot.kind == bootCrash:
		return LoopCycling
	case v.power == inventory.PowerRunning && (v.boot.kind == bootStuck || v.boot.kind == bootRepair || v.boot.kind == bootUnbootable):
		return LoopStuck
	}
	return ""
}

// Console texts, as the screen shows them.
const (
	consoleBooting = "Starting Windows\r\n\r\nCopyright (C) Microsoft Corporation"
	consoleCrash   = "Your device ran into a problem and needs to restart. We're just collecting some error info, and then we'll restart for you.\r\n\r\n" +
		"Stop code: PAGE_FAULT_IN_NONPAGED_AREA\r\nWhat failed: csagent.sys"
	consoleStuck = "Automatic Repair\r\n\r\nYour PC did not start correctly\r\n\r\n" +
		"Press \"Restart\" to restart your PC, which can sometimes fix the problem. You can also press \"Advanced options\" to try other options to repair your PC."
	consoleRepair = "Recovery\r\n\r\nYour PC/Device needs to be repaired\r\n\r\n" +
		"The operating system couldn't be loaded because the system registry file is missing or contains errors.\r\n\r\n" +
		"File: \\Windows\\System32\\config\\SYSTEM\r\nError code: 0xc0000225"
	consoleWinload = "Windows Boot Manager\r\n\r\nWindows failed to start. A recent hardware or software change might be the cause.\r\n\r\n" +
		"File: \\Windows\\system32\\winload.exe\r\nStatus: 0xc000000e\r\n" +
		"Info: The application or operating system couldn't be loaded because a required file is missing or contains errors."
	consoleNoDisk   = "No bootable device."
	consoleSafeMode = "Safe Mode\r\n\r\nWindows Server (Safe Mode with Networking)"
	consoleSignIn   = "Press Ctrl+Alt+Delete to sign in."
	consoleStopping = "Shutting down"
)

// console is the screen text of v now. Caller has advanced v.
func (w *World) console(v *vm, now time.Time) string {
	switch v.power {
	case inventory.PowerStopping:
		return consoleStopping
	case inventory.PowerRunning:
	default:
		return ""
	}
	s := v.lastBootAt
	switch v.boot.kind {
	case bootNormal, bootSafe:
		if now.Before(v.boot.upAt) {
			return consoleBooting
		}
		if v.boot.kind == bootSafe {
			return consoleSafeMode
		}
		return consoleSignIn
	case bootCrash:
		if now.Before(v.boot.winrmUntil) && !now.Before(v.boot.upAt) {
			return consoleSignIn // up for a short while before the crash
		}
		if now.Before(s.Add(w.crashAfter(v))) {
			return consoleBooting
		}
		return consoleCrash
	case bootStuck:
		return consoleStuck
	case bootRepair:
		if now.Before(s.Add(w.crashAfter(v))) {
			return consoleBooting
		}
		return consoleRepair
	case bootUnbootable:
		return consoleWinload
	case bootNoDisk:
		return consoleNoDisk
	}
	return ""
}

// signals is what Observe reports about v. Caller has advanced v.
func (w *World) signals(v *vm, now time.Time) inventory.Signals {
	n := v.bootCount
	r := reachable(v, now)
	s := inventory.Signals{
		At:                now,
		Power:             v.power,
		LastBootAt:        v.lastBootAt,
		BootCount:         &n,
		InstanceReachable: &r,
		ConsoleAvailable:  w.consoleAvailable,
	}
	if w.consoleAvailable {
		s.Console = w.console(v, now)
	}
	return s
}
