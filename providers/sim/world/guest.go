package world

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/timing"
	"github.com/fixfleet/fixfleet/providers/guest"
	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
)

// The world is the simulated network behind the WinRM server.
var _ winrmd.Hosts = (*World)(nil)

// Listening implements winrmd.Hosts: a guest answers at host when it is up
// (normal or safe mode) and its firewall lets WinRM through. It counts as an
// observation of that VM.
func (w *World) Listening(host string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vmAt(host)
	if v == nil {
		return false
	}
	w.observe(v, w.clk.Now())
	return listening(v, w.clk.Now())
}

// vmAt returns the VM at a private address, advanced. Caller holds mu.
func (w *World) vmAt(host string) *vm {
	v := w.vms[w.byIP[host]]
	if v != nil {
		w.advance(v, w.clk.Now())
	}
	return v
}

// Authenticate implements winrmd.Hosts. The machine it returns acts on the
// VM's state at each call; it fails once the guest stops answering.
func (w *World) Authenticate(host, user, password string) (winrmd.Machine, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vmAt(host)
	if v == nil {
		return nil, false
	}
	w.observe(v, w.clk.Now())
	if !listening(v, w.clk.Now()) {
		return nil, false
	}
	okUser := strings.EqualFold(user, w.user)
	okPass := subtle.ConstantTimeCompare([]byte(password), []byte(v.password.Reveal())) == 1
	if !okUser || !okPass {
		return nil, false
	}
	return &machine{w: w, id: v.id}, true
}

// Refused implements winrmd.Hosts: the referee counts foreign scripts.
func (w *World) Refused(host, reason string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ref.foreign++
	if len(w.ref.foreignReasons) < 100 {
		id := w.byIP[host]
		if id == "" {
			id = host
		}
		w.ref.foreignReasons = append(w.ref.foreignReasons, id+": "+reason)
	}
}

// machine is one VM's or helper's guest OS.
type machine struct {
	w  *World
	id string
}

var _ winrmd.Machine = (*machine)(nil)

// errGone: the guest went down while the script ran (it crashed, or was
// stopped): the connection drops, as it does on a real network.
var errGone = fmt.Errorf("the guest stopped answering: %w", winrmd.ErrDropped)

// run takes a guest script's time (timing.OpGuestScript, on the world's
// clock; calib.SlowScript times longer for a slow one), then applies fn
// under the lock if the guest still answers. Guest-path faults
// (Faults.Guest*) drop the connection before the script runs, fail it in
// the guest before its effect, or lose its reply after its effect. onReply,
// if set, runs only when fn succeeded and its reply reaches the
// orchestrator: what the orchestrator learns (an observation, a verified
// identity) counts for the referee only then.
//
// The draws (time, fault, slowness) are keyed by the machine, what the
// script is (what: its name and target, such as the disk a helper works
// on) and the instant it starts, never by a count of the machine's
// scripts: a helper serves several VMs, and their scripts arriving at one
// instant would otherwise take each other's draws in goroutine order.
func (m *machine) run(ctx context.Context, what string, fn func(v *vm, now time.Time) error, onReply func(v *vm, now time.Time)) error {
	w := m.w
	w.mu.Lock()
	f := w.gate.faults
	at := w.clk.Now().UnixNano()
	d := w.hashDur(timing.Of(timing.OpGuestScript), m.id, "guest-script", what, at)
	r := w.unit(m.id, "guest-fault", what, at)
	if f.GuestSlowRate > 0 && w.unit(m.id, "guest-slow", what, at) < f.GuestSlowRate {
		d = time.Duration(float64(d) * calib.SlowScript)
	}
	w.mu.Unlock()
	if err := w.clk.Sleep(ctx, d); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	v := w.vms[m.id]
	if v == nil {
		return errGone
	}
	now := w.clk.Now()
	w.advance(v, now)
	if !listening(v, now) {
		return errGone
	}
	switch {
	case r < f.GuestDropBeforeRate:
		w.gate.guestInjected++
		return fmt.Errorf("before the script ran: %w", winrmd.ErrDropped)
	case r < f.GuestDropBeforeRate+f.GuestErrorRate:
		w.gate.guestInjected++
		return errors.New("the script failed in the guest: Access is denied (0x80070005); nothing was changed")
	}
	if err := fn(v, now); err != nil {
		return err
	}
	if r < f.GuestDropBeforeRate+f.GuestErrorRate+f.GuestDropAfterRate {
		w.gate.guestInjected++
		return fmt.Errorf("after the script ran: %w", winrmd.ErrDropped)
	}
	if onReply != nil {
		onReply(v, now)
	}
	return nil
}

// volumeDisk returns the disk whose volume is root ("C:" is the system
// disk) and whether it is the system disk.
func (w *World) volumeDisk(v *vm, root string, now time.Time) (*disk, bool, error) {
	root = strings.ToUpper(strings.TrimRight(root, `\`))
	if root == "C:" {
		return w.disks[v.bootDisk], true, nil
	}
	for _, id := range v.data {
		d := w.disks[id]
		w.advanceDisk(d, now)
		if d.busy == "" && d.online && d.letter == root {
			if d.bitlocker != nil && !d.unlocked {
				return nil, false, fmt.Errorf("volume %s is locked by BitLocker; unlock it first", root)
			}
			return d, false, nil
		}
	}
	return nil, false, fmt.Errorf("no volume %q on this machine", root)
}

// dirMatches reports whether dir (relative to a volume root) is the
// incident's directory, as Windows compares paths.
func (w *World) dirMatches(dir string) bool {
	return strings.EqualFold(strings.Trim(dir, `\`), w.incident.RelDirectory())
}

// Probe implements winrmd.Machine. It counts as an observation.
func (m *machine) Probe(ctx context.Context, p guest.ProbeParams) (guest.ProbeResult, error) {
	var out guest.ProbeResult
	err := m.run(ctx, "probe", func(v *vm, now time.Time) error {
		d := m.w.disks[v.bootDisk]
		out = guest.ProbeResult{Hostname: d.hostname, BootMode: bootMode(v), SafeBootFlag: d.safeBoot,
			OSRelease: v.windows.Release, OSBuild: v.windows.Build, Files: []inventory.FileFact{}}
		if !m.w.dirMatches(p.Dir) {
			return nil
		}
		sel := inventory.Incident{Pattern: p.Pattern}
		for _, f := range d.files {
			if sel.Matches(f.name) {
				out.Files = append(out.Files, f.fact(`C:\`+strings.Trim(p.Dir, `\`)))
			}
		}
		return nil
	}, func(v *vm, now time.Time) { m.w.observe(v, now) })
	return out, err
}

// DeleteFiles implements winrmd.Machine: it deletes, under Root, only the
// files of the incident directory whose name, time stamp and header the
// criteria mark bad (the script applies the orchestrator's criteria). The
// referee counts every deleted file its own verdict (isBad) does not mark
// bad as a wrongful deletion.
func (m *machine) DeleteFiles(ctx context.Context, p guest.DeleteParams) (guest.DeleteResult, error) {
	out := guest.DeleteResult{Deleted: []inventory.FileFact{}, Kept: []inventory.FileFact{}}
	err := m.run(ctx, "delete-files "+p.Root, func(v *vm, now time.Time) error {
		w := m.w
		d, _, err := w.volumeDisk(v, p.Root, now)
		if err != nil {
			return err
		}
		w.touch(v, "delete-files", now)
		if !w.dirMatches(p.Criteria.Dir) {
			return nil
		}
		c := p.Criteria
		sel := inventory.Incident{Pattern: c.Pattern, BadFrom: c.BadFrom, BadUntil: c.BadUntil, Header: c.Header}
		dir := strings.ToUpper(strings.TrimRight(p.Root, `\`)) + `\` + strings.Trim(c.Dir, `\`)
		var keep []file
		for _, f := range d.files {
			fact := f.fact(dir)
			if !sel.Matches(f.name) {
				keep = append(keep, f)
				continue
			}
			if bad, _ := sel.Verdict(fact); bad {
				out.Deleted = append(out.Deleted, fact)
			} else {
				keep = append(keep, f)
				out.Kept = append(out.Kept, fact)
			}
		}
		if len(out.Deleted) > 0 && v.cond.deleteDenied {
			// Remove-Item's own failure, as the script reports it.
			return fmt.Errorf("Access to the path '%s' is denied.", out.Deleted[0].Path)
		}
		if len(out.Deleted) > 0 {
			for _, f := range d.files {
				if !slices.Contains(keep, f) && !w.isBad(f) {
					w.ref.noteWrongful(v.id, d.id, f.name, now)
				}
			}
			d.files = keep
			w.modify(d, "file deleted", now)
		}
		return nil
	}, nil)
	return out, err
}

// ClearSafeBoot implements winrmd.Machine: it clears the system disk's
// safe-boot flag; the running boot stays as it is.
func (m *machine) ClearSafeBoot(ctx context.Context, _ guest.ClearSafeBootParams) (guest.SafeBootResult, error) {
	var out guest.SafeBootResult
	err := m.run(ctx, "clear-safeboot", func(v *vm, now time.Time) error {
		m.w.touch(v, "clear-safeboot", now)
		d := m.w.disks[v.bootDisk]
		out.WasSet = d.safeBoot
		if d.safeBoot {
			d.safeBoot = false
			m.w.modify(d, "safe-boot flag cleared", now)
		}
		return nil
	}, nil)
	return out, err
}

// ReadinessFacts implements winrmd.Machine: whether the VM's WinRM
// starts in safe mode with networking (ConditionSpec.SafeModeWinRM), and
// its boot disk's BitLocker protector ID.
// Read-only: it touches nothing.
func (m *machine) ReadinessFacts(ctx context.Context, _ guest.ReadinessFactsParams) (guest.ReadinessFactsResult, error) {
	var out guest.ReadinessFactsResult
	err := m.run(ctx, "readiness-facts", func(v *vm, _ time.Time) error {
		out.SafeModeWinRM = v.cond.safeModeWinRM
		if d := m.w.disks[v.bootDisk]; d != nil && d.bitlocker != nil {
			out.BitLocker, out.KeyID = true, d.bitlocker.keyID
		}
		return nil
	}, nil)
	return out, err
}

// CheckHives implements winrmd.Machine. Read-only.
func (m *machine) CheckHives(ctx context.Context, p guest.CheckHivesParams) (guest.CheckHivesResult, error) {
	var out guest.CheckHivesResult
	err := m.run(ctx, "check-hives "+p.Root, func(v *vm, now time.Time) error {
		d, _, err := m.w.volumeDisk(v, p.Root, now)
		if err != nil {
			return err
		}
		for _, h := range []string{"SYSTEM", "SOFTWARE"} {
			st := guest.HiveStatus{Name: h, OK: !d.hiveDamaged}
			if d.hiveDamaged {
				st.Detail = "hive is corrupt: the registry could not load it; restore the disk from a backup"
			}
			out.Hives = append(out.Hives, st)
		}
		return nil
	}, nil)
	return out, err
}

// collides reports whether d's identity equals the host's system disk's or
// another online disk's. Caller holds mu.
func (w *World) collides(v *vm, d *disk) bool {
	if b := w.disks[v.bootDisk]; b != nil && b != d && b.identity == d.identity {
		return true
	}
	for _, id := range v.data {
		o := w.disks[id]
		if o != d && o.online && o.identity == d.identity {
			return true
		}
	}
	return false
}

// guestDisk is d as v's Windows sees it. Caller holds mu.
func (w *World) guestDisk(v *vm, d *disk) guest.Disk {
	gd := guest.Disk{Number: d.number, Serial: w.serial(d.id), SizeGB: d.sizeGB, Identity: d.identity}
	vol := guest.Volume{FileSystem: "NTFS", BitLocker: "none"}
	if b := d.bitlocker; b != nil {
		vol.KeyID = b.keyID
		vol.BitLocker = "locked"
	}
	if d.id == v.bootDisk {
		gd.Number, gd.IsBoot = 0, true
		vol.DriveLetter, vol.HasWindows = "C:", true
		if d.bitlocker != nil {
			vol.BitLocker = "unlocked"
		}
	} else {
		lun := d.number - 1 // data disks are numbered from 1, LUNs from 0
		gd.LUN = &lun
		gd.Offline = !d.online
		if gd.Offline {
			gd.OfflineReason = "san-policy"
			if w.collides(v, d) {
				gd.OfflineReason = "signature-collision"
			}
		} else {
			vol.DriveLetter = d.letter
			if d.bitlocker != nil && d.unlocked {
				vol.BitLocker = "unlocked"
			}
			vol.HasWindows = vol.BitLocker != "locked"
		}
	}
	gd.Volumes = []guest.Volume{vol}
	return gd
}

// visible returns v's data disks whose attachment completed. Caller holds mu.
func (w *World) visible(v *vm, now time.Time) []*disk {
	var out []*disk
	for _, id := range v.data {
		d := w.disks[id]
		w.advanceDisk(d, now)
		if d.busy == "" {
			out = append(out, d)
		}
	}
	return out
}

// ListDisks implements winrmd.Machine: the system disk (number 0), then
// the attached data disks. Read-only. For the referee, a listing whose
// reply reaches the orchestrator verifies each disk it shows carrying the
// identity its boot configuration names.
func (m *machine) ListDisks(ctx context.Context, _ guest.ListDisksParams) (guest.ListDisksResult, error) {
	out := guest.ListDisksResult{Disks: []guest.Disk{}}
	var shown []*disk
	err := m.run(ctx, "list-disks", func(v *vm, now time.Time) error {
		w := m.w
		out.Disks = append(out.Disks, w.guestDisk(v, w.disks[v.bootDisk]))
		for _, d := range w.visible(v, now) {
			out.Disks = append(out.Disks, w.guestDisk(v, d))
			if d.identity == d.bcd {
				// Only a listing that shows the identity the boot
				// configuration names verifies a return.
				shown = append(shown, d)
			}
		}
		return nil
	}, func(*vm, time.Time) {
		for _, d := range shown {
			d.unverified = false
		}
	})
	return out, err
}

// dataDisk finds the data disk at number carrying serial. Caller holds mu.
func (w *World) dataDisk(v *vm, number int, serial string, now time.Time) (*disk, error) {
	if number == 0 {
		return nil, fmt.Errorf("disk 0 is the running system disk: %w", guest.ErrRefused)
	}
	for _, d := range w.visible(v, now) {
		if d.number == number {
			if w.serial(d.id) != serial {
				return nil, fmt.Errorf("disk %d has serial %s, not %s: %w", number, w.serial(d.id), serial, guest.ErrRefused)
			}
			return d, nil
		}
	}
	return nil, fmt.Errorf("no disk %d: %w", number, guest.ErrRefused)
}

func (w *World) freeLetter(v *vm) string {
	used := map[string]bool{}
	for _, id := range v.data {
		used[w.disks[id].letter] = true
	}
	for c := 'E'; c <= 'Z'; c++ {
		if l := string(c) + ":"; !used[l] {
			return l
		}
	}
	return ""
}

// OnlineDisk implements winrmd.Machine: a disk whose identity collides with
// the system disk's or another online disk's gets a new random identity, as
// Windows does; the disk gets a drive letter. Idempotent.
func (m *machine) OnlineDisk(ctx context.Context, p guest.DiskParams) (guest.DiskResult, error) {
	return m.onDisk(ctx, "online-disk", p.Number, p.Serial, func(w *World, v *vm, d *disk, now time.Time) error {
		if d.online {
			return nil
		}
		if w.collides(v, d) {
			d.identity = randIdentity(w.keyedRand(d.id, "onlined-identity", w.attempt(d.id, "onlined-identity")), d.identity.Style)
			d.unverified = true
			w.modify(d, "onlined: identity changed by Windows (signature collision)", now)
		} else {
			w.modify(d, "onlined", now)
		}
		letter := w.freeLetter(v)
		if letter == "" {
			return errors.New("no free drive letter")
		}
		d.online, d.letter, d.unlocked = true, letter, false
		return nil
	})
}

// OfflineDisk implements winrmd.Machine. Idempotent.
func (m *machine) OfflineDisk(ctx context.Context, p guest.DiskParams) (guest.DiskResult, error) {
	return m.onDisk(ctx, "offline-disk", p.Number, p.Serial, func(_ *World, _ *vm, d *disk, _ time.Time) error {
		d.online, d.letter, d.unlocked = false, "", false
		return nil
	})
}

// ClearSafeBootOffline implements winrmd.Machine: on a helper, it clears
// the safe-boot flag in the BCD store of the online data disk at p.Number
// (carrying p.Serial). The store must be where the disk's partition style
// keeps it (guest.BCDStore); elsewhere bcdedit finds no store. Idempotent.
func (m *machine) ClearSafeBootOffline(ctx context.Context, p guest.BCDParams) (guest.SafeBootResult, error) {
	return m.offlineBCD(ctx, "clear-safeboot-offline", p, false)
}

// SetSafeBootOffline implements winrmd.Machine: as ClearSafeBootOffline,
// but it sets the flag (Safe Mode with Networking). The BCD store is on the
// system partition, which BitLocker leaves unencrypted: a locked volume
// does not stop it, and the flag is not in BitLocker's BCD validation
// profile, so the disk's own VM still unlocks it at boot. Idempotent.
func (m *machine) SetSafeBootOffline(ctx context.Context, p guest.BCDParams) (guest.SafeBootResult, error) {
	return m.offlineBCD(ctx, "set-safeboot-offline", p, true)
}

// offlineBCD sets the safe-boot flag of the BCD store on the helper's data
// disk to set.
func (m *machine) offlineBCD(ctx context.Context, action string, p guest.BCDParams, set bool) (guest.SafeBootResult, error) {
	var out guest.SafeBootResult
	_, err := m.onDisk(ctx, action, p.Number, p.Serial, func(w *World, _ *vm, d *disk, now time.Time) error {
		if !d.online {
			return fmt.Errorf("disk %d is offline: its system partition cannot be mounted", p.Number)
		}
		if want := guest.BCDStore(d.identity.Style); p.Store != want {
			return fmt.Errorf("no BCD store at %s on disk %d (a %s disk keeps it at %s)", p.Store, p.Number, d.identity.Style, want)
		}
		out.WasSet = d.safeBoot
		if d.safeBoot != set {
			d.safeBoot = set
			w.modify(d, action, now)
		}
		return nil
	})
	return out, err
}

// SetDiskIdentity implements winrmd.Machine. Idempotent.
func (m *machine) SetDiskIdentity(ctx context.Context, p guest.SetIdentityParams) (guest.DiskResult, error) {
	if err := checkIdentity("identity", p.Identity); err != nil {
		return guest.DiskResult{}, err
	}
	return m.onDisk(ctx, "set-disk-identity", p.Number, p.Serial, func(w *World, _ *vm, d *disk, now time.Time) error {
		if d.identity != p.Identity {
			d.identity = p.Identity
			d.unverified = true
			w.modify(d, "identity changed", now)
		}
		return nil
	})
}

// onDisk runs a write on the helper's data disk at number (which must carry
// serial): it records the action on the guest for the referee, applies
// change, and reports the disk as the guest sees it afterwards.
func (m *machine) onDisk(ctx context.Context, action string, number int, serial string, change func(w *World, v *vm, d *disk, now time.Time) error) (guest.DiskResult, error) {
	var out guest.DiskResult
	err := m.run(ctx, action+" "+serial, func(v *vm, now time.Time) error {
		d, err := m.w.dataDisk(v, number, serial, now)
		if err != nil {
			return err
		}
		m.w.touch(v, action, now)
		if err := change(m.w, v, d, now); err != nil {
			return err
		}
		out.Disk = m.w.guestDisk(v, d)
		return nil
	}, nil)
	return out, err
}

// UnlockVolume implements winrmd.Machine. A wrong key is an error that
// names the volume and key protector, never the key. Idempotent.
func (m *machine) UnlockVolume(ctx context.Context, p guest.UnlockParams) (guest.UnlockResult, error) {
	var out guest.UnlockResult
	err := m.run(ctx, "unlock-volume "+p.DriveLetter, func(v *vm, now time.Time) error {
		w := m.w
		letter := strings.ToUpper(strings.TrimRight(p.DriveLetter, `\`))
		if letter == "C:" {
			out.Unlocked = true
			return nil
		}
		for _, d := range w.visible(v, now) {
			if !d.online || d.letter != letter {
				continue
			}
			w.touch(v, "unlock-volume", now)
			b := d.bitlocker
			if b == nil || d.unlocked {
				out.Unlocked = true
				return nil
			}
			if subtle.ConstantTimeCompare([]byte(p.RecoveryKey), []byte(b.key.Reveal())) != 1 {
				return fmt.Errorf("the recovery key does not unlock volume %s (key protector %s)", letter, b.keyID)
			}
			d.unlocked, out.Unlocked = true, true
			return nil
		}
		return fmt.Errorf("no volume %q on this machine", letter)
	}, nil)
	return out, err
}

// MachineAt returns the guest at a private address, bypassing WinRM and
// its credentials: for tests and in-process faces only. ok is false when no
// VM has that address.
func (w *World) MachineAt(host string) (winrmd.Machine, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id, ok := w.byIP[host]
	if !ok {
		return nil, false
	}
	return &machine{w: w, id: id}, true
}
