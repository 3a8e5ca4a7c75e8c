package plan

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/strategy"
)

var (
	inc     = inventory.BuiltinIncidents()[inventory.CrowdStrike20240719]
	now     = time.Date(2024, 7, 19, 9, 0, 0, 0, time.UTC)
	allCaps = []string{"enumerate", "observe", "guest", "power", "disks", "os-disk-detach", "backups", "helpers"}
	// preBackup is 4h09m before the incident.
	preBackup = inventory.Backup{ID: "bk-pre", VMID: "vm", Kind: "snapshot", TakenAt: time.Date(2024, 7, 19, 0, 0, 0, 0, time.UTC)}
	olderBkp  = inventory.Backup{ID: "bk-old", VMID: "vm", Kind: "snapshot", TakenAt: time.Date(2024, 7, 18, 0, 0, 0, 0, time.UTC)}
	badBackup = inventory.Backup{ID: "bk-bad", VMID: "vm", Kind: "snapshot", TakenAt: time.Date(2024, 7, 19, 4, 30, 0, 0, time.UTC)}
	lateBkp   = inventory.Backup{ID: "bk-late", VMID: "vm", Kind: "archive", TakenAt: time.Date(2024, 7, 19, 8, 0, 0, 0, time.UTC)}
)

type keys map[string]bool

func (k keys) HasKey(id string) bool { return k[id] }

func image(zone, rel string) providers.HelperImage {
	return providers.HelperImage{Zone: zone, Windows: inventory.WindowsVersion{Release: rel}, ImageID: "img-" + zone + "-" + rel}
}

func vmIn(account, id string, st inventory.State) inventory.Assessed {
	// A safe-mode or healthy verdict rests on a probe that reached the guest.
	var probe *inventory.Probe
	switch st {
	case inventory.StateSafeMode:
		probe = &inventory.Probe{Reachable: true, BootMode: inventory.BootSafeMode, SafeBootFlag: true}
	case inventory.StateHealthy:
		probe = &inventory.Probe{Reachable: true, BootMode: inventory.BootNormal}
	}
	return inventory.Assessed{
		VM: inventory.VM{
			Location: inventory.Location{Tenant: "acme", Account: account, Provider: "sim", Zone: "is1a"},
			ID:       id, Name: "srv-" + id,
			Windows: inventory.WindowsVersion{Release: "2019", Build: "17763.5936"},
			Power:   inventory.PowerRunning,
			OSDisk:  inventory.Disk{ID: "disk-" + id, SizeGB: 60, Identity: inventory.DiskIdentity{Style: inventory.PartitionMBR, ID: "1A2B3C4D"}},
			Backups: []inventory.Backup{preBackup},
		},
		Classification: inventory.Classification{State: st, Reasons: []string{"classified " + string(st)},
			Evidence: inventory.Evidence{Probe: probe}},
	}
}

func baseInput(fleet ...inventory.Assessed) Input {
	return Input{
		ID: "plan-1", Now: now, Incident: inc, Policy: policy.Default(), Fleet: fleet,
		Accounts: map[string]Account{
			"acme/prod": {Capabilities: allCaps, Helpers: []providers.HelperImage{image("is1a", "2019"), image("is1a", "2022"), image("is1b", "2016")}},
			"acme/dev":  {Capabilities: allCaps, Helpers: []providers.HelperImage{image("is1a", "2019")}},
		},
		Keys: keys{"KEY-1": true},
	}
}

func TestEligibility(t *testing.T) {
	type tc struct {
		name      string
		state     inventory.State
		vm        func(*inventory.VM)
		assessed  func(*inventory.Assessed)
		in        func(*Input)
		strategy  policy.Strategy
		fallbacks []policy.Strategy
		reasons   []string // substrings of the joined reasons
		risks     []string // substrings of the joined risks
		noRisks   []string
		noReasons []string
		// windowSeen: the plan records the WinRM window the assessment saw.
		windowSeen bool
		skipped    []string
		planState  inventory.State // the plan's state, when not the verdict
		helperZone string          // the planned helper's zone, when one is planned
		// lastResort: reboot-retry is the VM's last resort, with
		// policy.reboot_retry.last_resort_restarts restarts.
		lastResort bool
		// lateRestarts: safe-mode-boot, conditional with nothing sure
		// after it, restarts up to last_resort_restarts first.
		lateRestarts bool
	}
	stopped := func(v *inventory.VM) { v.Power = inventory.PowerStopped }
	copies := func(in *Input) {
		a := in.Accounts["acme/prod"]
		a.Capabilities = append(slices.Clone(allCaps), "copy-delete", "cross-zone-copy")
		in.Accounts["acme/prod"] = a
	}
	allowLoss := func(in *Input) { in.Policy.AllowDataLoss = true }
	tests := []tc{
		{name: "healthy never touched", state: inventory.StateHealthy, in: allowLoss, strategy: None,
			reasons: []string{"never touches"}, noRisks: []string{""}},
		{name: "unknown is manual", state: inventory.StateUnknown, strategy: Manual,
			reasons: []string{"classified unknown", "will not act"}},
		{name: "unknown without backup has risk", state: inventory.StateUnknown, vm: func(v *inventory.VM) { v.Backups = nil },
			strategy: Manual, risks: []string{"no pre-incident backup"}},
		{name: "boot-loop default", state: inventory.StateBootLoop, strategy: policy.RebootRetry,
			fallbacks: []policy.Strategy{policy.RaceBoot, policy.HelperMount, policy.SafeModeBoot},
			reasons: []string{"first eligible", "race-the-boot: only if WinRM answers during a crashing boot while reboot-retry restarts it",
				"safe-mode-boot: only if helper-mount before it finds the OS volume BitLocker-locked and its recovery key in no key source",
				"should safe-mode-boot run (see its condition), it first restarts the VM up to 15 times in all"}, lateRestarts: true},
		{name: "boot-loop default, WinRM window seen: race-the-boot unconditional", state: inventory.StateBootLoop,
			assessed: func(a *inventory.Assessed) {
				a.Classification.BadFiles = []inventory.FileFact{{Path: `C:\Windows\System32\drivers\CrowdStrike\C-00000291-00000000-00000032.sys`}}
				a.Classification.Evidence.Probe = &inventory.Probe{Reachable: true, BootMode: inventory.BootNormal}
			},
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot, policy.HelperMount, policy.SafeModeBoot}, noReasons: []string{"race-the-boot: only if"}, windowSeen: true, lateRestarts: true},
		{name: "boot-loop with data loss allowed", state: inventory.StateBootLoop, in: allowLoss, strategy: policy.RebootRetry,
			fallbacks: []policy.Strategy{policy.RaceBoot, policy.HelperMount, policy.SafeModeBoot, policy.RestoreBackup},
			risks:     []string{"restore loses data written since 2024-07-19T00:00:00Z (window: 4h09m)"},
			noReasons: []string{"first restarts the VM"}}, // restore-backup, after safe-mode-boot, is sure
		{name: "safe-mode delete-file", state: inventory.StateSafeMode, strategy: policy.DeleteFile},
		{name: "safe-mode delete-file, restore allowed", state: inventory.StateSafeMode, in: allowLoss, strategy: policy.DeleteFile,
			fallbacks: []policy.Strategy{policy.HelperMount, policy.RestoreBackup}},
		{name: "safe-mode known by its screen, WinRM silent: offline, flag cleared in the BCD store", state: inventory.StateSafeMode,
			assessed: func(a *inventory.Assessed) {
				a.Classification.Evidence.Probe = &inventory.Probe{Error: "nothing answers at 10.0.0.7:5985"}
			},
			strategy: policy.HelperMount, skipped: []string{"delete-file: the guest's WinRM did not answer"}},
		{name: "safe-mode without guest capability: offline, flag cleared in the BCD store", state: inventory.StateSafeMode,
			in: func(in *Input) {
				in.Accounts["acme/prod"] = Account{Capabilities: []string{"power", "disks", "os-disk-detach", "helpers"}, Helpers: in.Accounts["acme/prod"].Helpers}
			},
			strategy: policy.HelperMount, skipped: []string{"delete-file: provider sim of account acme/prod lacks the guest capability"}},
		{name: "policy order honoured", state: inventory.StateBootLoop,
			in:       func(in *Input) { in.Policy.Strategies = []policy.Strategy{policy.HelperMount, policy.RebootRetry} },
			strategy: policy.HelperMount, fallbacks: []policy.Strategy{policy.RebootRetry}},
		{name: "no power: manual with a reason per strategy", state: inventory.StateBootLoop,
			in:       func(in *Input) { in.Accounts["acme/prod"] = Account{Capabilities: []string{"observe", "guest"}} },
			strategy: Manual,
			reasons: []string{
				"reboot-retry: provider sim of account acme/prod lacks the power capability",
				"delete-file: the VM is not in Safe Mode",
				"helper-mount: provider sim of account acme/prod lacks the power, disks, os-disk-detach, helpers capability; no same-version helper image in zone is1a for Windows 2019 (no helper images in that zone)",
				"restore-backup: provider sim of account acme/prod lacks the backups, power, disks, os-disk-detach capability; policy.allow_data_loss is false (backup bk-pre of 2024-07-19T00:00:00Z would lose 4h09m of data)",
			}},
		{name: "unknown account", state: inventory.StateBootLoop, in: func(in *Input) { delete(in.Accounts, "acme/prod") },
			strategy: Manual, reasons: []string{"nothing is known of account acme/prod (was it opened?)"}},
		{name: "strategy disabled", state: inventory.StateBootLoop,
			in:       func(in *Input) { in.Policy.Strategies = []policy.Strategy{policy.RestoreBackup} },
			strategy: Manual, reasons: []string{"reboot-retry: not enabled in policy.strategies", "restore-backup: policy.allow_data_loss is false"}},
		{name: "restore only, allowed", state: inventory.StateBootLoop,
			in: func(in *Input) {
				in.Policy.Strategies = []policy.Strategy{policy.RestoreBackup}
				in.Policy.AllowDataLoss = true
			},
			strategy: policy.RestoreBackup, risks: []string{"restore loses data"}},
		{name: "no pre-incident backup", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.Backups = []inventory.Backup{badBackup, lateBkp} },
			in: func(in *Input) {
				in.Policy.Strategies = []policy.Strategy{policy.RestoreBackup}
				in.Policy.AllowDataLoss = true
			},
			strategy: Manual,
			reasons:  []string{"restore-backup: no backup taken before the incident began (2024-07-19T04:09:00Z); 2 later backup(s) ignored"},
			risks: []string{"no pre-incident backup",
				"backup bk-bad taken 2024-07-19T04:30:00Z inside the bad window ignored",
				"backup bk-late taken 2024-07-19T08:00:00Z after the incident began ignored"}},
		{name: "bitlocker key missing", state: inventory.StateBootLoop,
			vm:       func(v *inventory.VM) { v.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-9"} },
			in:       func(in *Input) { in.Policy.Strategies = []policy.Strategy{policy.HelperMount} },
			strategy: Manual,
			reasons:  []string{"helper-mount: BitLocker recovery key missing for key ID KEY-9: the disk cannot be unlocked on a helper"},
			risks:    []string{"BitLocker recovery key missing for key ID KEY-9"}},
		{name: "bitlocker key known", state: inventory.StateBootLoop,
			vm:       func(v *inventory.VM) { v.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-1"} },
			in:       func(in *Input) { in.Policy.Strategies = []policy.Strategy{policy.HelperMount} },
			strategy: policy.HelperMount, noRisks: []string{"BitLocker"}},
		{name: "bitlocker key id unknown", state: inventory.StateBootLoop,
			vm:       func(v *inventory.VM) { v.OSDisk.Encryption = inventory.Encryption{BitLocker: true} },
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot, policy.SafeModeBoot},
			risks: []string{"BitLocker is on but the recovery key ID is unknown", `listed under HKLM\SYSTEM\CurrentControlSet\Control\SafeBoot\Network`}, lastResort: true},
		{name: "bitlocker no key source", state: inventory.StateBootLoop,
			vm:       func(v *inventory.VM) { v.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-1"} },
			in:       func(in *Input) { in.Keys = nil },
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot, policy.SafeModeBoot}, risks: []string{"BitLocker recovery key missing for key ID KEY-1"},
			helperZone: "is1a", lastResort: true, reasons: []string{"or may leave it where restarts no longer help"}},
		{name: "bitlocker no key source, safe-mode-boot not enabled", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-1"} },
			in: func(in *Input) {
				in.Keys = nil
				in.Policy.Strategies = slices.DeleteFunc(slices.Clone(in.Policy.Strategies), func(s policy.Strategy) bool { return s == policy.SafeModeBoot })
			},
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot}, lastResort: true},
		{name: "bitlocker no key source, helper image only in another zone: no safe-mode-boot", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) {
				v.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-1"}
				v.Windows.Release = "2016"
			},
			in:       func(in *Input) { in.Keys = nil },
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot}, lastResort: true},
		{name: "powered off, bitlocker no key source, left stopped: no safe-mode-boot", state: inventory.StateUnknown, planState: inventory.StateStopped,
			vm: func(v *inventory.VM) {
				stopped(v)
				v.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-1"}
			},
			in:       func(in *Input) { in.Keys = nil },
			strategy: Manual,
			reasons:  []string{"safe-mode-boot: the VM must boot to be repaired in Safe Mode, and policy.stopped_vms leaves powered-off VMs off"}},
		{name: "powered off, bitlocker no key source, stopped VMs started: safe-mode-boot", state: inventory.StateUnknown, planState: inventory.StateStopped,
			vm: func(v *inventory.VM) {
				stopped(v)
				v.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-1"}
			},
			in: func(in *Input) {
				in.Keys = nil
				in.Policy.StoppedVMs = policy.StoppedStart
			},
			strategy: policy.SafeModeBoot, helperZone: "is1a"},
		{name: "no same-version helper", state: inventory.StateBootLoop,
			vm:       func(v *inventory.VM) { v.Windows.Release = "2016" },
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot},
			risks: []string{"no same-version helper image in zone is1a for Windows 2016"}, lastResort: true},
		{name: "no same-version helper: manual reason", state: inventory.StateBootLoop,
			vm:       func(v *inventory.VM) { v.Windows.Release = "2016" },
			in:       func(in *Input) { in.Policy.Strategies = []policy.Strategy{policy.HelperMount} },
			strategy: Manual,
			reasons:  []string{"no same-version helper image in zone is1a for Windows 2016 (zone has Windows 2019, 2022; set policy.helper_version: any"}},
		{name: "any helper release allowed", state: inventory.StateBootLoop,
			vm:       func(v *inventory.VM) { v.Windows.Release = "2016" },
			in:       func(in *Input) { in.Policy.HelperVersion = policy.HelperAny },
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot, policy.HelperMount, policy.SafeModeBoot},
			risks: []string{"no same-version helper image in zone is1a for Windows 2016", "helper of a different Windows release (2022 for a 2016 VM)"}, lateRestarts: true},
		{name: "same-version helper only in another zone: reached through a disk copy", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.Windows.Release = "2016" }, in: copies,
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot, policy.CrossZone}, helperZone: "is1b",
			risks: []string{"repaired as a copy in zone is1b", "original OS disk disk-vm-1 is kept"}},
		{name: "same release in another zone preferred to another release here", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.Windows.Release = "2016" }, in: func(in *Input) { copies(in); in.Policy.HelperVersion = policy.HelperAny },
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot, policy.CrossZone}, helperZone: "is1b",
			noRisks: []string{"different Windows release"}},
		{name: "helper-mount's reason names the helper a copy reaches", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.Windows.Release = "2016" },
			in: func(in *Input) {
				copies(in)
				in.Policy.Strategies = []policy.Strategy{policy.HelperMount, policy.CrossZone}
			},
			strategy: policy.CrossZone, helperZone: "is1b",
			skipped: []string{"helper-mount: no helper image in zone is1a for Windows 2016; zone is1b has one, which cross-zone-mount reaches through a disk copy"}},
		{name: "in another region: no copy reaches it", state: inventory.StateBootLoop,
			vm:       func(v *inventory.VM) { v.Windows.Release = "2016"; v.Region = "is1" },
			in:       func(in *Input) { copies(in); in.Policy.Strategies = []policy.Strategy{policy.CrossZone} },
			strategy: Manual, reasons: []string{"cross-zone-mount: no helper image the policy allows in any zone of the VM's region"}},
		{name: "a cloud whose snapshots stay in their zone (Sakura): no copy", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.Windows.Release = "2016" },
			in: func(in *Input) {
				copies(in)
				a := in.Accounts["acme/prod"]
				a.Capabilities = slices.DeleteFunc(a.Capabilities, func(c string) bool { return c == "cross-zone-copy" })
				in.Accounts["acme/prod"] = a
				in.Policy.Strategies = []policy.Strategy{policy.CrossZone}
			},
			strategy: Manual, reasons: []string{"cross-zone-mount: provider sim of account acme/prod lacks the cross-zone-copy capability"}},
		{name: "windows release unknown", state: inventory.StateBootLoop,
			vm:       func(v *inventory.VM) { v.Windows = inventory.WindowsVersion{} },
			in:       func(in *Input) { in.Policy.Strategies = []policy.Strategy{policy.HelperMount} },
			strategy: Manual, reasons: []string{"Windows release is unknown"}},
		{name: "powered off: disk checked offline, left stopped", state: inventory.StateUnknown, vm: stopped,
			strategy: policy.HelperMount, fallbacks: []policy.Strategy{}, planState: inventory.StateStopped,
			reasons: []string{"classified unknown", "stopped: its disk can be checked offline, without starting it",
				"left stopped, repaired for its next start (policy.stopped_vms: leave-stopped)"},
			skipped: []string{"reboot-retry: does not apply to a stopped VM"}},
		{name: "powered off, policy starts it", state: inventory.StateUnknown, vm: stopped,
			in:       func(in *Input) { in.Policy.StoppedVMs = policy.StoppedStart },
			strategy: policy.HelperMount, planState: inventory.StateStopped,
			reasons: []string{"then started and verified (policy.stopped_vms: start)"}},
		{name: "powered off, data loss allowed: restored only if the offline check finds damaged hives", state: inventory.StateUnknown, vm: stopped, in: allowLoss,
			strategy: policy.HelperMount, fallbacks: []policy.Strategy{policy.RestoreBackup}, planState: inventory.StateStopped,
			reasons: []string{"restore-backup: only if the offline check before it finds the disk's registry hives damaged"}},
		{name: "powered off, data loss allowed, no offline check possible: never restored", state: inventory.StateUnknown, in: allowLoss,
			vm:       func(v *inventory.VM) { stopped(v); v.Windows.Release = "2016" },
			strategy: Manual, planState: inventory.StateStopped,
			reasons: []string{"restore-backup: a powered-off VM's disk may be clean: it is restored only after helper-mount or cross-zone-mount"}},
		{name: "powered off on a cloud that only swaps OS disks: a person", state: inventory.StateUnknown, vm: stopped,
			in: func(in *Input) {
				in.Accounts["acme/prod"] = Account{Capabilities: []string{"power", "disks", "os-disk-swap", "helpers", "guest"}, Helpers: in.Accounts["acme/prod"].Helpers}
			},
			strategy: Manual, planState: inventory.StateStopped,
			reasons: []string{"helper-mount: provider sim of account acme/prod lacks the os-disk-detach capability",
				"copy-and-swap: a powered-off VM's disk may be clean"}},
		{name: "powered off, no helper image of its release: a person", state: inventory.StateUnknown,
			vm:       func(v *inventory.VM) { stopped(v); v.Windows.Release = "2016" },
			strategy: Manual, planState: inventory.StateStopped,
			reasons: []string{"helper-mount: no same-version helper image in zone is1a for Windows 2016"}},
		{name: "unknown while running stays manual", state: inventory.StateUnknown,
			strategy: Manual, planState: inventory.StateUnknown, reasons: []string{"will not act"}},
		{name: "boot-loop, no helper image and no backup: reboot-retry is the last resort", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.Windows.Release = "2012" }, strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot},
			reasons: []string{"reboot-retry: the last resort", "up to 15 restarts, not 3"}, lastResort: true},
		{name: "boot-loop, no helper image, WinRM window seen: race-the-boot is a real fallback", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.Windows.Release = "2012" },
			assessed: func(a *inventory.Assessed) {
				a.Classification.BadFiles = []inventory.FileFact{{Path: `C:\Windows\System32\drivers\CrowdStrike\C-00000291-00000000-00000032.sys`}}
				a.Classification.Evidence.Probe = &inventory.Probe{Reachable: true, BootMode: inventory.BootNormal}
			},
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot}, windowSeen: true, noReasons: []string{"last resort"}},
		{name: "boot-loop, no helper image, backup restorable: not the last resort", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.Windows.Release = "2012" }, in: allowLoss,
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot, policy.RestoreBackup}, noReasons: []string{"last resort"}},
		{name: "boot-loop, last resort no higher than max_restarts: nothing changes", state: inventory.StateBootLoop,
			vm: func(v *inventory.VM) { v.Windows.Release = "2012" },
			in: func(in *Input) {
				in.Policy.RebootRetry = policy.RebootRetryConfig{MaxRestarts: 5, LastResortRestarts: 5}
			},
			strategy: policy.RebootRetry, fallbacks: []policy.Strategy{policy.RaceBoot}, noReasons: []string{"last resort"}},
		{name: "safe-mode reboot-retry not applicable", state: inventory.StateSafeMode,
			in:       func(in *Input) { in.Policy.Strategies = []policy.Strategy{policy.RebootRetry} },
			strategy: Manual, reasons: []string{"reboot-retry: the VM runs in Safe Mode"}},
	}
	for _, c := range tests {
		t.Run(c.name, func(t *testing.T) {
			a := vmIn("prod", "vm-1", c.state)
			if c.vm != nil {
				c.vm(&a.VM)
			}
			if c.assessed != nil {
				c.assessed(&a)
			}
			in := baseInput(a)
			if c.in != nil {
				c.in(&in)
			}
			p, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			v := p.VMs[0]
			if v.Strategy != c.strategy {
				t.Fatalf("strategy %s, want %s; reasons %q; risks %q", v.Strategy, c.strategy, v.Reasons, v.Risks)
			}
			if want := cmp.Or(c.planState, c.state); v.State != want {
				t.Errorf("plan state %s, want %s", v.State, want)
			}
			if err := p.Validate(); err != nil {
				t.Errorf("the plan does not validate: %v", err)
			}
			if c.fallbacks != nil && !slices.Equal(v.Fallbacks, c.fallbacks) && (len(c.fallbacks) != 0 || len(v.Fallbacks) != 0) {
				t.Errorf("fallbacks %v, want %v", v.Fallbacks, c.fallbacks)
			}
			contains(t, "reasons", v.Reasons, c.reasons)
			contains(t, "risks", v.Risks, c.risks)
			contains(t, "skipped", v.Skipped, c.skipped)
			for _, r := range c.noReasons {
				if strings.Contains(strings.Join(v.Reasons, "|"), r) {
					t.Errorf("reasons %q mention %q", v.Reasons, r)
				}
			}
			if c.helperZone != "" && (v.Helper == nil || v.Helper.Zone != c.helperZone || v.Helper.CrossZone != (c.helperZone != a.VM.Zone)) {
				t.Errorf("helper %+v, want one in zone %s", v.Helper, c.helperZone)
			}
			if v.WinRMWindowSeen != c.windowSeen {
				t.Errorf("winrm_window_seen %v, want %v", v.WinRMWindowSeen, c.windowSeen)
			}
			if v.LastResort != c.lastResort {
				t.Errorf("last_resort %v, want %v", v.LastResort, c.lastResort)
			}
			if v.LateRestarts != c.lateRestarts {
				t.Errorf("late_restarts %v, want %v", v.LateRestarts, c.lateRestarts)
			}
			if u, ok := strategy.Default().Get(policy.RebootRetry); ok && v.Strategy == policy.RebootRetry {
				restarts := 0
				for _, s := range u.Steps(v.Target(), in.Policy) {
					if strings.HasPrefix(s.Name, "restart-") {
						restarts++
					}
				}
				if want := map[bool]int{false: in.Policy.RebootRetry.MaxRestarts, true: in.Policy.RebootRetry.LastResort()}[c.lastResort]; restarts != want {
					t.Errorf("reboot-retry has %d restart steps, want %d", restarts, want)
				}
			}
			for _, r := range c.noRisks {
				if r == "" && len(v.Risks) > 0 {
					t.Errorf("risks %q, want none", v.Risks)
				} else if r != "" && strings.Contains(strings.Join(v.Risks, "|"), r) {
					t.Errorf("risks %q mention %q", v.Risks, r)
				}
			}
			if c.strategy == None && (v.Wave != 0 || v.EstimateSeconds != 0) {
				t.Errorf("healthy VM scheduled: wave %d, %ds", v.Wave, v.EstimateSeconds)
			}
			if v.Acts() && v.Wave != 1 {
				t.Errorf("acted-on VM in wave %d", v.Wave)
			}
			if v.Key != "acme/prod/vm-1" || v.OSDisk.ID != "disk-vm-1" || v.Zone != "is1a" || v.Evidence == "" {
				t.Errorf("VM fields not carried: %+v", v)
			}
		})
	}
}

func contains(t *testing.T, what string, got, want []string) {
	t.Helper()
	joined := strings.Join(got, " | ")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("%s %q\nlack %q", what, joined, w)
		}
	}
}

func TestBackupSelection(t *testing.T) {
	a := vmIn("prod", "vm-1", inventory.StateBootLoop)
	a.VM.Backups = []inventory.Backup{lateBkp, olderBkp, badBackup, preBackup}
	in := baseInput(a)
	in.Policy.AllowDataLoss = true
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	b := p.VMs[0].Backup
	if b == nil || b.ID != "bk-pre" {
		t.Fatalf("backup %+v, want bk-pre", b)
	}
	if b.DataLoss != "4h09m" || b.DataLossSeconds != int64((4*time.Hour+9*time.Minute)/time.Second) {
		t.Errorf("data loss %s / %d", b.DataLoss, b.DataLossSeconds)
	}
	contains(t, "risks", p.VMs[0].Risks, []string{"bk-bad", "bk-late"})
	// A backup exactly at the incident start is inside the bad window.
	a.VM.Backups = []inventory.Backup{{ID: "bk-edge", TakenAt: inc.StartedAt}}
	in = baseInput(a)
	in.Policy.AllowDataLoss = true
	p, _ = Build(in)
	if p.VMs[0].Backup != nil {
		t.Errorf("backup at the incident start chosen: %+v", p.VMs[0].Backup)
	}
}

func TestBuildErrors(t *testing.T) {
	a := vmIn("prod", "vm-1", inventory.StateBootLoop)
	tests := []struct {
		name string
		mod  func(*Input)
		want string
	}{
		{"no id", func(in *Input) { in.ID = "" }, "plan ID is required"},
		{"no time", func(in *Input) { in.Now = time.Time{} }, "Now"},
		{"bad policy", func(in *Input) { in.Policy.Canary = 0 }, "policy.canary"},
		{"bad incident", func(in *Input) { in.Incident.Pattern = "" }, "incident: pattern"},
		{"duplicate", func(in *Input) { in.Fleet = append(in.Fleet, a) }, "fleet[1]: VM acme/prod/vm-1 appears twice"},
		{"bad state", func(in *Input) { in.Fleet[0].Classification.State = "" }, "no valid state"},
	}
	for _, tc := range tests {
		in := baseInput(a)
		tc.mod(&in)
		if _, err := Build(in); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.want)
		}
	}
}

// bigFleet makes n VMs over accounts, cycling through states.
func bigFleet(n int) []inventory.Assessed {
	states := []inventory.State{inventory.StateBootLoop, inventory.StateBootLoop, inventory.StateSafeMode, inventory.StateHealthy, inventory.StateUnknown}
	accts := []string{"prod", "dev"}
	var out []inventory.Assessed
	for i := range n {
		a := vmIn(accts[i%len(accts)], fmt.Sprintf("vm-%03d", i), states[i%len(states)])
		if i%7 == 0 {
			a.VM.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-1"}
		}
		out = append(out, a)
	}
	return out
}

// TestLongestChainsFirst: after the canary, within a tier, the VMs whose
// reboot-retry is their last resort start first, then those that may end
// in a restore with safe-mode-boot before it (the BitLocker key nowhere),
// then the others that may end in a restore, then the rest, each group in
// fleet order. Without data loss allowed no chain ends in a restore.
func TestLongestChainsFirst(t *testing.T) {
	const (
		noBackup = "no backup"
		keyless  = "BitLocker key nowhere"
		old      = "Windows 2012: no helper image"
	)
	fleet := func(kinds map[int][]string) []inventory.Assessed {
		var out []inventory.Assessed
		for i := range 9 {
			a := vmIn("prod", fmt.Sprintf("vm-%03d", i), inventory.StateBootLoop)
			for _, k := range kinds[i] {
				switch k {
				case noBackup:
					a.VM.Backups = nil
				case keyless:
					a.VM.OSDisk.Encryption = inventory.Encryption{BitLocker: true, KeyID: "KEY-NOWHERE"}
				case old:
					a.VM.Windows.Release = "2012"
				}
			}
			out = append(out, a)
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		dataLoss  bool
		kinds     map[int][]string
		wantWaves [][]string
	}{
		{name: "no data loss: last resorts, then fleet order",
			kinds:     map[int][]string{5: {old, noBackup}, 7: {old, noBackup}},
			wantWaves: [][]string{{"vm-000", "vm-001"}, {"vm-005", "vm-007", "vm-002"}, {"vm-003", "vm-004", "vm-006"}, {"vm-008"}}},
		{name: "data loss: last resorts, restores after safe-mode-boot, restores, the rest", dataLoss: true,
			kinds:     map[int][]string{2: {noBackup}, 4: {keyless}, 5: {old, noBackup}, 7: {keyless, noBackup}, 8: {noBackup}},
			wantWaves: [][]string{{"vm-000", "vm-001"}, {"vm-005", "vm-007", "vm-004"}, {"vm-003", "vm-006", "vm-002"}, {"vm-008"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := baseInput(fleet(tc.kinds)...)
			in.Policy.Canary, in.Policy.WaveSize, in.Policy.AllowDataLoss = 2, 3, tc.dataLoss
			p, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			var got [][]string
			for _, w := range p.Waves {
				var names []string
				for _, k := range w.VMs {
					names = append(names, k[strings.LastIndex(k, "/")+1:])
				}
				got = append(got, names)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.wantWaves) {
				t.Errorf("waves %v, want %v", got, tc.wantWaves)
				for _, v := range p.VMs {
					t.Logf("%s: %s then %v, last resort %v", v.ID, v.Strategy, v.Fallbacks, v.LastResort)
				}
			}
		})
	}
}

func TestWaves(t *testing.T) {
	in := baseInput(bigFleet(50)...)
	in.Policy.Canary = 4
	in.Policy.WaveSize = 7
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	act := 0
	for _, v := range p.VMs {
		if v.Acts() {
			act++
		}
	}
	if act != 30 {
		t.Fatalf("acted on %d, want 30", act)
	}
	if p.Waves[0].Name != "canary" || len(p.Waves[0].VMs) != 4 {
		t.Fatalf("canary %+v", p.Waves[0])
	}
	// The canary spans both strategies and both accounts.
	strat, acct := map[policy.Strategy]bool{}, map[string]bool{}
	idx := map[string]VMPlan{}
	for _, v := range p.VMs {
		idx[v.Key] = v
	}
	for _, k := range p.Waves[0].VMs {
		strat[idx[k].Strategy] = true
		acct[idx[k].Account] = true
	}
	if len(strat) != 2 || len(acct) != 2 {
		t.Errorf("canary not spread: strategies %v accounts %v", strat, acct)
	}
	quickest := int64(-1)
	for _, k := range p.Waves[0].VMs {
		if e := idx[k].EstimateSeconds; quickest < 0 || e < quickest {
			quickest = e
		}
	}
	// 26 more in waves of 7: 7,7,7,5.
	wantSizes := []int{4, 7, 7, 7, 5}
	if len(p.Waves) != len(wantSizes) {
		t.Fatalf("%d waves, want %d", len(p.Waves), len(wantSizes))
	}
	for i, w := range p.Waves {
		if len(w.VMs) != wantSizes[i] || w.Number != i+1 {
			t.Errorf("wave %d: %d VMs number %d", i, len(w.VMs), w.Number)
		}
		// Nothing starts before a canary group's VMs have ended (the
		// quickest canary VM, started at 0, ends at its estimate); the
		// other waves start in order as slots free up.
		if i > 0 && w.StartSeconds < quickest-1 {
			t.Errorf("wave %d starts at %d before any canary VM ends (%d)", i+1, w.StartSeconds, quickest)
		}
		if i > 1 && w.StartSeconds < p.Waves[i-1].StartSeconds {
			t.Errorf("wave %d starts at %d before wave %d at %d", i+1, w.StartSeconds, i, p.Waves[i-1].StartSeconds)
		}
	}
	// A group whose canary VMs ended does not wait for the slowest.
	if p.Waves[1].StartSeconds >= p.Waves[0].EndSeconds {
		t.Errorf("wave 2 starts at %d, after the whole canary (%d): its group's canary VMs ended earlier", p.Waves[1].StartSeconds, p.Waves[0].EndSeconds)
	}
	if p.Estimate.CanarySeconds != p.Waves[0].EndSeconds || p.Estimate.DurationSeconds < p.Waves[len(p.Waves)-1].EndSeconds-1 {
		t.Errorf("estimate %+v vs waves", p.Estimate)
	}
	if p.Summary.Act != 30 || p.Summary.Healthy != 10 || p.Summary.ManualN != 10 {
		t.Errorf("summary %+v", p.Summary)
	}
	// No acted-on VMs: no waves.
	p, err = Build(baseInput(vmIn("prod", "h", inventory.StateHealthy)))
	if err != nil || len(p.Waves) != 0 {
		t.Fatalf("healthy-only plan: %v waves, %v", len(p.Waves), err)
	}
}

func TestEstimate(t *testing.T) {
	in := baseInput(bigFleet(200)...)
	in.Policy.AllowDataLoss = true
	p, err := Build(in)
	if err != nil {
		t.Fatal(err)
	}
	e := p.Estimate
	if e.ByState[inventory.StateBootLoop] != 80 || e.ByStrategy[None] != 40 || e.ByStrategy[Manual] != 40 {
		t.Errorf("counts %v %v", e.ByState, e.ByStrategy)
	}
	if e.APICalls["acme/prod"] == 0 || e.APICalls["acme/dev"] == 0 || e.APICallsTotal != e.APICalls["acme/prod"]+e.APICalls["acme/dev"] {
		t.Errorf("api calls %v total %d", e.APICalls, e.APICallsTotal)
	}
	for _, s := range policy.Strategies {
		if e.PerStrategy[s].Seconds <= 0 || e.PerStrategy[s].APICalls <= 0 || e.PerStrategy[s].Formula == "" {
			t.Errorf("per strategy %s: %+v", s, e.PerStrategy[s])
		}
	}
	// Cheapest first: reboot-retry (without fallback) < delete-file < helper-mount.
	if !(e.PerStrategy[policy.RebootRetry].Seconds < e.PerStrategy[policy.HelperMount].Seconds &&
		e.PerStrategy[policy.DeleteFile].Seconds < e.PerStrategy[policy.HelperMount].Seconds) {
		t.Errorf("per strategy order: %+v", e.PerStrategy)
	}
	// The makespan is at least the longest VM and at most the serial sum.
	var longest, sum int64
	for _, v := range p.VMs {
		longest = max(longest, v.EstimateSeconds)
		sum += v.EstimateSeconds
	}
	if e.DurationSeconds < longest || e.DurationSeconds > sum+int64(len(p.Waves)) {
		t.Errorf("makespan %d outside [%d, %d]", e.DurationSeconds, longest, sum)
	}
	if e.DurationSeconds <= 0 || e.Duration == "" {
		t.Errorf("duration %d %q", e.DurationSeconds, e.Duration)
	}
}

// TestEstimateMonotonic: more concurrency never lengthens the makespan, and
// serial work is the sum of the durations less the early steps the VMs'
// waits hide.
func TestEstimateMonotonic(t *testing.T) {
	for _, n := range []int{1, 7, 60, 333} {
		var prev int64 = -1
		for _, conc := range [][2]int{{1, 1}, {2, 1}, {2, 2}, {4, 2}, {8, 4}, {16, 8}, {32, 16}, {64, 64}, {128, 64}} {
			in := baseInput(bigFleet(n)...)
			in.Policy.AllowDataLoss = true
			in.Policy.Canary = 3
			in.Policy.WaveSize = 40
			in.Policy.Concurrency = policy.Concurrency{Total: conc[0], PerAccount: conc[1]}
			p, err := Build(in)
			if err != nil {
				t.Fatal(err)
			}
			d := p.Estimate.DurationSeconds
			if prev >= 0 && d > prev {
				t.Errorf("n=%d: concurrency %v gives %ds, more than %ds with less", n, conc, d, prev)
			}
			prev = d
			if conc == [2]int{1, 1} {
				// One VM at a time: the sum of their times, less what of
				// their early steps (snapshots) ran while they waited.
				var sum, ahead int64
				for _, v := range p.VMs {
					sum += v.EstimateSeconds
					ahead += ceilSeconds(vmCost(v, strategy.Default(), p.Policy).early)
				}
				if d < sum-ahead-int64(len(p.VMs)) || d > sum || n > 1 && d == sum {
					t.Errorf("n=%d serial makespan %d, want within [%d, %d), the sum less the early steps", n, d, sum-ahead, sum)
				}
			}
		}
		// Per-account limits bind: one account with per_account 1 is serial.
		in := baseInput(bigFleet(n)...)
		for i := range in.Fleet {
			in.Fleet[i].VM.Account = "prod"
		}
		in.Policy.Concurrency = policy.Concurrency{Total: 50, PerAccount: 1}
		serial, _ := Build(in)
		in.Policy.Concurrency.PerAccount = 50
		wide, _ := Build(in)
		if wide.Estimate.DurationSeconds > serial.Estimate.DurationSeconds {
			t.Errorf("n=%d: per-account 50 slower than 1", n)
		}
	}
}

func TestRebootRetryIncludesFallback(t *testing.T) {
	in := baseInput(vmIn("prod", "a", inventory.StateBootLoop))
	withFallback, _ := Build(in)
	in.Policy.Strategies = []policy.Strategy{policy.RebootRetry}
	in.Policy.RebootRetry.LastResortRestarts = in.Policy.RebootRetry.MaxRestarts // as many restarts as with the fallback
	alone, _ := Build(in)
	if withFallback.VMs[0].EstimateSeconds <= alone.VMs[0].EstimateSeconds {
		t.Errorf("fallback expectation not included: %d vs %d", withFallback.VMs[0].EstimateSeconds, alone.VMs[0].EstimateSeconds)
	}
	if alone.VMs[0].EstimateSeconds != alone.Estimate.PerStrategy[policy.RebootRetry].Seconds {
		t.Errorf("alone %d vs per strategy %d", alone.VMs[0].EstimateSeconds, alone.Estimate.PerStrategy[policy.RebootRetry].Seconds)
	}
}
