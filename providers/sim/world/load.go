package world

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/secret"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// Load builds a world from a scenario, validating it strictly: every bad
// value is an error naming the VM, disk, snapshot or helper and the field.
// The world then reads time only from clk, which should start at sc.Now.
func Load(sc Scenario, clk clock.Clock) (*World, error) {
	if clk == nil {
		return nil, errors.New("scenario: nil clock")
	}
	w, errs := build(sc, clk)
	if len(errs) > 0 {
		const most = 20
		if len(errs) > most {
			errs = append(errs[:most], fmt.Errorf("... and %d more errors", len(errs)-most))
		}
		return nil, fmt.Errorf("scenario: %w", errors.Join(errs...))
	}
	return w, nil
}

func build(sc Scenario, clk clock.Clock) (*World, []error) {
	var errs []error
	add := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if sc.Version != ScenarioVersion {
		add(fmt.Errorf("version: %q is not %q", sc.Version, ScenarioVersion))
	}
	inc, ok := inventory.BuiltinIncidents()[sc.Incident]
	if !ok {
		add(fmt.Errorf("incident: %q is not a built-in incident (use %q)", sc.Incident, inventory.CrowdStrike20240719))
	}
	if sc.Now.IsZero() {
		add(errors.New("now: required"))
	}
	w := &World{
		clk:              clk,
		seed:             sc.Seed,
		incident:         inc,
		user:             sc.GuestAccess.Username,
		password:         secret.New(sc.GuestAccess.Password),
		consoleAvailable: sc.ConsoleAvailable,
		fullCopies:       sc.FullCopySnapshots,
		perDiskSnaps:     sc.PerDiskSnapshots,
		zoneBoundSnaps:   sc.ZoneBoundSnapshots,
		vms:              map[string]*vm{},
		disks:            map[string]*disk{},
		snaps:            map[string]*snapshot{},
		byIP:             map[string]string{},
		attempts:         map[string]int{},
	}
	w.gate.init(sc.Faults)
	add(errors.Join(sc.Faults.validate()...))
	w.limits = sc.Limits.clone()
	if sc.Limits.HelpersPerAccount < 0 {
		add(fmt.Errorf("limits.helpers_per_account: %d must not be negative (0 means no quota)", sc.Limits.HelpersPerAccount))
	}
	for a, acts := range sc.Limits.Denied {
		for _, act := range acts {
			if !slices.Contains(providers.Actions, act) {
				add(fmt.Errorf("limits.denied[%q]: %q is not an action; actions are %v", a, act, providers.Actions))
			}
		}
	}
	for z, n := range sc.Limits.HelpersPerZone {
		if n < 0 || !slices.Contains(sc.Zones, z) {
			add(fmt.Errorf("limits.helpers_per_zone[%q]: %d: the zone must be one of the scenario's zones and the capacity not negative", z, n))
		}
	}

	zoneOK := map[string]bool{}
	if len(sc.Zones) == 0 {
		add(errors.New("zones: at least one zone required"))
	}
	for i, z := range sc.Zones {
		if err := checkID(fmt.Sprintf("zones[%d]", i), z); err != nil {
			add(err)
		} else if zoneOK[z] {
			add(fmt.Errorf("zones[%d]: %q appears twice", i, z))
		}
		zoneOK[z] = true
	}
	w.zones = append([]string(nil), sc.Zones...)
	if sc.GuestAccess.Username == "" || sc.GuestAccess.Password == "" {
		add(errors.New("guest_access: username and password required"))
	}
	imgIDs := map[string]bool{}
	for i, im := range sc.Images {
		f := fmt.Sprintf("images[%d]", i)
		if !zoneOK[im.Zone] {
			add(fmt.Errorf("%s.zone: %q is not one of the scenario's zones", f, im.Zone))
		}
		if im.Release == "" {
			add(fmt.Errorf("%s.release: required", f))
		}
		if err := checkID(f+".image_id", im.ImageID); err != nil {
			add(err)
		} else if imgIDs[im.ImageID] {
			add(fmt.Errorf("%s.image_id: %q appears twice", f, im.ImageID))
		}
		imgIDs[im.ImageID] = true
		if _, dup := w.imageFor(im.Zone, im.Release); dup {
			add(fmt.Errorf("%s: a second image of release %s in zone %s", f, im.Release, im.Zone))
		}
		add(checkIdentity(f+".identity", im.Identity))
		w.images = append(w.images, im)
	}

	// Disks first (embedded and top-level), then VMs, then attachments.
	addDisk := func(f string, ds DiskSpec, zone, account string) *disk {
		if err := checkID(f+".id", ds.ID); err != nil {
			add(err)
			return nil
		}
		if _, dup := w.disks[ds.ID]; dup {
			add(fmt.Errorf("%s.id: disk %q appears twice", f, ds.ID))
			return nil
		}
		for _, e := range checkContent(f, ds.ContentSpec) {
			add(e)
		}
		if ds.Zone != "" {
			if zone != "" && ds.Zone != zone {
				add(fmt.Errorf("%s.zone: %q differs from its VM's zone %q (omit it)", f, ds.Zone, zone))
			}
			zone = ds.Zone
		}
		if !zoneOK[zone] {
			add(fmt.Errorf("%s.zone: %q is not one of the scenario's zones", f, zone))
		}
		if ds.Account != "" {
			account = ds.Account
		}
		if account == "" {
			account = DefaultAccount
		}
		if (ds.Busy == "") != ds.BusyUntil.IsZero() || (ds.Busy != "" && ds.Busy != "attaching" && ds.Busy != "detaching") {
			add(fmt.Errorf("%s.busy: %q must be attaching or detaching, with busy_until, or both absent", f, ds.Busy))
		}
		d := &disk{id: ds.ID, zone: zone, account: account, content: contentFrom(ds.ContentSpec),
			tags: cloneTags(ds.Tags), source: ds.Source, readyAt: ds.ReadyAt.UTC(),
			busyUntil: ds.BusyUntil.UTC(), busy: ds.Busy, fails: ds.BusyFails, from: ds.DetachingFrom, fromBoot: ds.DetachingBoot}
		if g := ds.Guest; g != nil {
			if g.Number < 1 {
				add(fmt.Errorf("%s.guest.number: %d must be 1 or more (0 is the host's own disk)", f, g.Number))
			}
			if g.DriveLetter != "" && (!letterRE.MatchString(g.DriveLetter) || !g.Online) {
				add(fmt.Errorf("%s.guest.drive_letter: %q must be like \"E:\" on an online disk", f, g.DriveLetter))
			}
			d.number, d.online, d.letter, d.unlocked = g.Number, g.Online, g.DriveLetter, g.Unlocked
		}
		w.disks[d.id] = d
		return d
	}

	var all []VMSpec
	all = append(all, sc.VMs...)
	all = append(all, sc.Helpers...)
	for i, vs := range all {
		helper := i >= len(sc.VMs)
		kind, idx := "vms", i
		if helper {
			kind, idx = "helpers", i-len(sc.VMs)
		}
		f := fmt.Sprintf("%s[%d]", kind, idx)
		if err := checkID(f+".id", vs.ID); err != nil {
			add(err)
			continue
		}
		f = fmt.Sprintf("vm %s", vs.ID)
		if helper {
			f = fmt.Sprintf("helper %s", vs.ID)
		}
		if _, dup := w.vms[vs.ID]; dup {
			add(fmt.Errorf("%s: id appears twice", f))
			continue
		}
		v, verrs := w.vmFrom(f, vs, helper, zoneOK)
		errs = append(errs, verrs...)
		if vs.OSDisk != nil {
			if d := addDisk(f+": os_disk", *vs.OSDisk, v.zone, v.account); d != nil {
				d.attachedTo, d.boot = v.id, true
				v.bootDisk = d.id
				if d.busy == "detaching" {
					add(fmt.Errorf("%s: os_disk.busy: a boot disk cannot be detaching (list it under disks)", f))
				}
				if v.originalDisk == "" && !helper {
					v.originalDisk = d.id
				}
			}
		}
		if ip, err := checkIP(f+": private_ip", vs.PrivateIP); err != nil {
			add(err)
		} else if other, dup := w.byIP[vs.PrivateIP]; dup {
			add(fmt.Errorf("%s: private_ip: %s is also %s's", f, vs.PrivateIP, other))
		} else {
			w.byIP[vs.PrivateIP] = v.id
			b := ip.As4()
			if n := uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]); n > w.ipSeq {
				w.ipSeq = n
			}
		}
		w.vms[v.id] = v
	}
	for i, ds := range sc.Disks {
		f := fmt.Sprintf("disks[%d]", i)
		if ds.ID != "" {
			f = "disk " + ds.ID
		}
		d := addDisk(f, ds, "", "")
		if d == nil {
			continue
		}
		if ds.AttachedTo != "" {
			v := w.vms[ds.AttachedTo]
			switch {
			case v == nil:
				add(fmt.Errorf("%s.attached_to: no VM or helper %q", f, ds.AttachedTo))
			case v.zone != d.zone:
				add(fmt.Errorf("%s.attached_to: %s is in zone %s, the disk in %s", f, v.id, v.zone, d.zone))
			default:
				d.attachedTo = v.id
				v.data = append(v.data, d.id)
			}
		} else if ds.Guest != nil {
			add(fmt.Errorf("%s.guest: only an attached disk has a guest state", f))
		}
	}
	// Stable data-disk order: by guest number.
	for _, v := range w.vms {
		sort.Slice(v.data, func(i, j int) bool { return w.disks[v.data[i]].number < w.disks[v.data[j]].number })
		nums := map[int]bool{}
		for _, id := range v.data {
			if n := w.disks[id].number; n != 0 {
				if nums[n] {
					add(fmt.Errorf("vm %s: two data disks have guest number %d", v.id, n))
				}
				nums[n] = true
			}
		}
		if v.originalDisk != "" {
			if d := w.disks[v.originalDisk]; d == nil {
				add(fmt.Errorf("vm %s: original_disk: no disk %q", v.id, v.originalDisk))
			} else if d.source != "" {
				add(fmt.Errorf("vm %s: original_disk: disk %s has source %q; an original disk has none", v.id, d.id, d.source))
			}
		}
	}
	for i, ss := range sc.Snapshots {
		f := fmt.Sprintf("snapshots[%d]", i)
		if err := checkID(f+".id", ss.ID); err != nil {
			add(err)
			continue
		}
		f = "snapshot " + ss.ID
		if _, dup := w.snaps[ss.ID]; dup {
			add(fmt.Errorf("%s: id appears twice", f))
			continue
		}
		if !zoneOK[ss.Zone] {
			add(fmt.Errorf("%s.zone: %q is not one of the scenario's zones", f, ss.Zone))
		}
		if ss.TakenAt.IsZero() || ss.ReadyAt.Before(ss.TakenAt) {
			add(fmt.Errorf("%s: taken_at required, ready_at not before it", f))
		}
		for _, e := range checkContent(f+".content", ss.Content) {
			add(e)
		}
		acct := ss.Account
		if acct == "" {
			add(fmt.Errorf("%s.account: required", f))
		}
		w.snaps[ss.ID] = &snapshot{id: ss.ID, diskID: ss.DiskID, zone: ss.Zone, account: acct,
			tags: cloneTags(ss.Tags), takenAt: ss.TakenAt.UTC(), readyAt: ss.ReadyAt.UTC(), content: contentFrom(ss.Content)}
	}
	w.ref.snapsOf = map[string]int{}
	for _, s := range w.snaps {
		w.ref.snapsOf[s.diskID]++
	}
	backupIDs := map[string]string{}
	for _, id := range sortedKeys(w.vms) {
		for _, b := range w.vms[id].backups {
			if other, dup := backupIDs[b.ID]; dup {
				add(fmt.Errorf("vm %s: backups: id %q is also a backup of %s", id, b.ID, other))
			}
			backupIDs[b.ID] = id
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	w.defaultProvenance(backupIDs)
	// Reconstruct each running VM's current boot, and check the derived
	// truth and loop against what the document says.
	now := clk.Now()
	for _, vs := range all {
		v := w.vms[vs.ID]
		if v.power == inventory.PowerRunning {
			if v.bootDisk == "" {
				add(fmt.Errorf("vm %s: power: running without an os_disk", v.id))
				continue
			}
			w.evalBoot(v)
			if vs.BootMode == "safe" {
				v.boot.kind = bootSafe
			}
			if v.boot.kind == bootCrash && v.cond.stuckAfter > 0 && v.cond.crashes >= v.cond.stuckAfter &&
				!now.Before(v.lastBootAt.Add(w.crashAfter(v))) {
				v.boot.kind = bootStuck
			}
		}
		if v.power == inventory.PowerStarting && v.bootDisk == "" {
			add(fmt.Errorf("vm %s: power: starting without an os_disk", v.id))
			continue
		}
		w.advance(v, now)
		if vs.Truth != "" && vs.Truth != w.truth(v) {
			add(fmt.Errorf("vm %s: truth: %q, but the VM's state makes it %q (fix it or leave truth out)", v.id, vs.Truth, w.truth(v)))
		}
		if vs.Condition.Loop != "" && vs.Condition.Loop != w.loop(v) {
			add(fmt.Errorf("vm %s: condition.loop: %q, but the VM's state makes it %q (fix it or leave loop out)", v.id, vs.Condition.Loop, w.loop(v)))
		}
	}
	return w, errs
}

func (w *World) vmFrom(f string, vs VMSpec, helper bool, zoneOK map[string]bool) (*vm, []error) {
	var errs []error
	add := func(format string, args ...any) { errs = append(errs, fmt.Errorf(f+": "+format, args...)) }
	v := &vm{id: vs.ID, name: vs.Name, tenant: vs.Tenant, account: vs.Account, zone: vs.Zone,
		tags: cloneTags(vs.Tags), windows: vs.Windows, helper: helper, imageID: vs.ImageID, clientToken: vs.ClientToken,
		ip: vs.PrivateIP, originalDisk: vs.OriginalDisk, power: vs.Power, powerUntil: vs.PowerUntil.UTC(),
		bootCount: vs.BootCount, lastBootAt: vs.LastBootAt.UTC(), password: w.password,
		cond: condition{recoverAfter: vs.Condition.RecoverAfterBoots, stuckAfter: vs.Condition.StuckAfterCrashes,
			crashes: vs.Condition.Crashes, winrm: vs.Condition.WinRM, safeModeWinRM: vs.Condition.SafeModeWinRM,
			winrmWindow: time.Duration(vs.Condition.WinRMWindowSeconds) * time.Second, deleteDenied: vs.Condition.DeleteDenied}}
	if v.name == "" {
		v.name = v.id
	}
	if v.tenant == "" {
		v.tenant = DefaultAccount
	}
	if v.account == "" {
		v.account = DefaultAccount
	}
	if !zoneOK[v.zone] {
		add("zone: %q is not one of the scenario's zones", v.zone)
	}
	if v.windows.Release == "" {
		add("windows.release: required")
	}
	switch v.power {
	case inventory.PowerRunning, inventory.PowerStopped:
		if !v.powerUntil.IsZero() {
			add("power_until: only with power starting or stopping")
		}
	case inventory.PowerStarting, inventory.PowerStopping:
		if v.powerUntil.IsZero() {
			add("power_until: required with power %s", v.power)
		}
	default:
		add("power: %q must be running, stopped, starting or stopping", v.power)
	}
	if v.bootCount < 0 {
		add("boot_count: must not be negative")
	}
	if vs.BootMode != "" && (vs.BootMode != "safe" || v.power != inventory.PowerRunning) {
		add("boot_mode: %q may only be \"safe\", on a running VM", vs.BootMode)
	}
	if v.cond.recoverAfter < 0 || v.cond.stuckAfter < 0 || v.cond.crashes < 0 {
		add("condition: recover_after_boots, stuck_after_crashes and crashes must not be negative")
	}
	switch v.cond.winrm {
	case WinRMOpen, WinRMBlocked:
	case WinRMBadCredentials:
		// A password the operator does not have.
		v.password = secret.New("sim-other-" + fmt.Sprint(w.seed) + "-" + v.id)
	default:
		add("condition.winrm: %q must be open, blocked or bad-credentials", v.cond.winrm)
	}
	switch vs.Truth {
	case "", TruthHealthy, TruthSafeMode, TruthBootLoop:
	default:
		add("truth: %q must be healthy, safe-mode or boot-loop", vs.Truth)
	}
	switch vs.Condition.Loop {
	case "", LoopCycling, LoopStuck:
	default:
		add("condition.loop: %q must be cycling, stuck or empty", vs.Condition.Loop)
	}
	if helper {
		if vs.ImageID == "" {
			add("image_id: required on a helper")
		}
		if len(vs.Backups) > 0 {
			add("backups: a helper has none")
		}
	} else if vs.ImageID != "" {
		add("image_id: only helpers have one")
	}
	ids := map[string]bool{}
	for i, b := range vs.Backups {
		bf := fmt.Sprintf("backups[%d]", i)
		if err := checkID(bf+".id", b.ID); err != nil {
			add("%v", err)
		} else if ids[b.ID] {
			add("%s.id: %q appears twice", bf, b.ID)
		}
		ids[b.ID] = true
		if b.Kind == "" {
			add("%s.kind: required", bf)
		}
		if b.TakenAt.IsZero() {
			add("%s.taken_at: required", bf)
		}
		if b.SizeGB < 0 {
			add("%s.size_gb: must not be negative", bf)
		}
		b.TakenAt = b.TakenAt.UTC()
		v.backups = append(v.backups, b)
	}
	return v, errs
}

func contentFrom(c ContentSpec) content {
	out := content{sizeGB: c.SizeGB, identity: c.Identity, bcd: c.Identity,
		safeBoot: c.SafeBootFlag, hiveDamaged: c.HiveDamaged, hostname: c.Hostname, origin: c.Origin,
		unverified: c.IdentityUnverified}
	if c.BootIdentity != nil {
		out.bcd = *c.BootIdentity
	}
	if b := c.BitLocker; b != nil {
		out.bitlocker = &bitlocker{keyID: b.KeyID, key: secret.New(b.RecoveryKey), escrowed: b.Escrowed}
	}
	for _, f := range c.Files {
		out.files = append(out.files, file{name: f.Name, size: f.Size, mod: f.ModTime.UTC(), header: f.Header})
	}
	return out
}

func (c content) spec() ContentSpec {
	out := ContentSpec{SizeGB: c.sizeGB, Identity: c.identity, SafeBootFlag: c.safeBoot, HiveDamaged: c.hiveDamaged,
		Hostname: c.hostname, Origin: c.origin, IdentityUnverified: c.unverified}
	if c.bcd != c.identity {
		b := c.bcd
		out.BootIdentity = &b
	}
	if b := c.bitlocker; b != nil {
		out.BitLocker = &BitLockerSpec{KeyID: b.keyID, RecoveryKey: b.key.Reveal(), Escrowed: b.escrowed}
	}
	for _, f := range c.files {
		out.Files = append(out.Files, FileSpec{Name: f.name, Size: f.size, ModTime: f.mod, Header: f.header})
	}
	return out
}

// Export writes the world as it is now. Export, marshal, ParseScenario,
// Load (with a clock at the same instant) and Export again gives the same
// document. The referee's log is not part of it.
func (w *World) Export() Scenario {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.clk.Now().UTC()
	sc := Scenario{
		Version:            ScenarioVersion,
		Seed:               w.seed,
		Incident:           w.incident.Name,
		Now:                now,
		Zones:              append([]string(nil), w.zones...),
		Images:             append([]ImageSpec(nil), w.images...),
		GuestAccess:        GuestAccessSpec{Username: w.user, Password: w.password.Reveal()},
		ConsoleAvailable:   w.consoleAvailable,
		FullCopySnapshots:  w.fullCopies,
		PerDiskSnapshots:   w.perDiskSnaps,
		ZoneBoundSnapshots: w.zoneBoundSnaps,
		Faults:             w.gate.faults.clone(),
		Limits:             w.limits.clone(),
	}
	boot := map[string]bool{}
	for _, id := range sortedKeys(w.vms) {
		v := w.vms[id]
		w.advance(v, now)
		vs := w.vmSpec(v, now)
		if v.helper {
			sc.Helpers = append(sc.Helpers, vs)
		} else {
			sc.VMs = append(sc.VMs, vs)
		}
		if v.bootDisk != "" {
			boot[v.bootDisk] = true
		}
	}
	for _, id := range sortedKeys(w.disks) {
		if boot[id] {
			continue
		}
		sc.Disks = append(sc.Disks, w.diskSpec(w.disks[id], now, false))
	}
	for _, id := range sortedKeys(w.snaps) {
		s := w.snaps[id]
		sc.Snapshots = append(sc.Snapshots, SnapshotSpec{ID: s.id, DiskID: s.diskID, Zone: s.zone, Account: s.account,
			Tags: cloneTags(s.tags), TakenAt: s.takenAt, ReadyAt: s.readyAt, Content: s.content.spec()})
	}
	return sc
}

func (w *World) vmSpec(v *vm, now time.Time) VMSpec {
	vs := VMSpec{ID: v.id, Name: v.name, Tenant: v.tenant, Account: v.account, Zone: v.zone,
		Tags: cloneTags(v.tags), Windows: v.windows, Power: v.power, PowerUntil: v.powerUntil,
		BootCount: v.bootCount, LastBootAt: v.lastBootAt, PrivateIP: v.ip, ImageID: v.imageID, ClientToken: v.clientToken,
		Condition: ConditionSpec{RecoverAfterBoots: v.cond.recoverAfter, StuckAfterCrashes: v.cond.stuckAfter,
			Crashes: v.cond.crashes, WinRM: v.cond.winrm, SafeModeWinRM: v.cond.safeModeWinRM,
			WinRMWindowSeconds: int(v.cond.winrmWindow / time.Second), DeleteDenied: v.cond.deleteDenied},
		Backups: append([]BackupSpec(nil), v.backups...)}
	if !v.helper {
		vs.Truth = w.truth(v)
		vs.Condition.Loop = w.loop(v)
	}
	if v.bootDisk != "" {
		ds := w.diskSpec(w.disks[v.bootDisk], now, true)
		vs.OSDisk = &ds
	}
	if v.originalDisk != v.bootDisk {
		vs.OriginalDisk = v.originalDisk
	}
	if v.power == inventory.PowerRunning && v.boot.kind == bootSafe {
		if d := w.disks[v.bootDisk]; d != nil && !d.safeBoot {
			vs.BootMode = "safe"
		}
	}
	return vs
}

func (w *World) diskSpec(d *disk, now time.Time, embedded bool) DiskSpec {
	w.advanceDisk(d, now)
	ds := DiskSpec{ID: d.id, ContentSpec: d.content.spec(), Tags: cloneTags(d.tags), Source: d.source,
		ReadyAt: d.readyAt, BusyUntil: d.busyUntil, Busy: d.busy, BusyFails: d.fails, DetachingFrom: d.from, DetachingBoot: d.fromBoot}
	if !embedded {
		ds.Zone, ds.Account, ds.AttachedTo = d.zone, d.account, d.attachedTo
		if d.attachedTo != "" {
			ds.Guest = &GuestDiskSpec{Number: d.number, Online: d.online, DriveLetter: d.letter, Unlocked: d.unlocked}
		}
	} else if v := w.vms[d.attachedTo]; v != nil && v.account != d.account {
		ds.Account = d.account
	}
	return ds
}

// advanceDisk clears completed transitions. An attach that fails leaves
// the disk detached; a detach that fails leaves it where it was. Caller
// holds mu.
func (w *World) advanceDisk(d *disk, now time.Time) {
	if !d.readyAt.IsZero() && !now.Before(d.readyAt) {
		d.readyAt = time.Time{}
	}
	if d.busy == "" || now.Before(d.busyUntil) {
		return
	}
	if d.fails {
		w.gate.asyncFailed++
		switch v := w.vms[d.attachedTo]; {
		case d.busy == "attaching" && v != nil:
			w.unattach(v, d)
		case d.busy == "detaching":
			if v := w.vms[d.from]; v != nil && d.attachedTo == "" {
				if !d.fromBoot {
					d.attachedTo, d.number = v.id, w.freeNumber(v)
					v.data = append(v.data, d.id)
				} else if v.bootDisk == "" {
					d.attachedTo, d.boot, v.bootDisk = v.id, true, d.id
				}
			}
		}
	}
	d.busy, d.busyUntil, d.fails, d.from, d.fromBoot = "", time.Time{}, false, "", false
}

func (l Limits) clone() Limits {
	if l.HelpersPerZone != nil {
		l.HelpersPerZone = maps.Clone(l.HelpersPerZone)
	}
	if l.Denied != nil {
		d := make(map[string][]providers.Action, len(l.Denied))
		for a, acts := range l.Denied {
			d[a] = slices.Clone(acts)
		}
		l.Denied = d
	}
	return l
}

func (f Faults) clone() Faults {
	f.Outages = append([]Outage(nil), f.Outages...)
	f.DropReplies = append([]DropReply(nil), f.DropReplies...)
	return f
}

// defaultProvenance fills what a scenario left out: an original disk's
// hostname and origin are its VM's; a helper's boot disk is the helper's; a
// copy descends from its source (a snapshot's content, a backup's VM).
// Caller holds no lock (Load owns w).
func (w *World) defaultProvenance(backupOwner map[string]string) {
	for _, v := range w.vms {
		if d := w.disks[v.originalDisk]; d != nil && !v.helper {
			if d.hostname == "" {
				d.hostname = v.name
			}
			if d.origin == "" {
				d.origin = v.id
			}
		}
		if d := w.disks[v.bootDisk]; d != nil && v.helper && d.hostname == "" {
			d.hostname = v.name
		}
	}
	for _, s := range w.snaps {
		if d := w.disks[s.diskID]; d != nil && s.content.origin == "" {
			s.content.origin = d.origin
		}
		if o := w.vms[s.content.origin]; o != nil && s.content.hostname == "" {
			s.content.hostname = o.name
		}
	}
	for _, id := range sortedKeys(w.disks) {
		d := w.disks[id]
		if d.origin != "" {
			continue
		}
		kind, src, _ := strings.Cut(d.source, ":")
		switch kind {
		case "snapshot":
			if s := w.snaps[src]; s != nil {
				d.origin = s.content.origin
			}
		case "backup":
			d.origin = backupOwner[src]
		}
		if o := w.vms[d.origin]; o != nil && d.hostname == "" {
			d.hostname = o.name
		}
	}
}
