package classify

import (
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
)

var (
	inc  = inventory.BuiltinIncidents()[inventory.CrowdStrike20240719]
	t0   = time.Date(2024, 7, 19, 6, 0, 0, 0, time.UTC)
	boot = time.Date(2024, 7, 19, 3, 0, 0, 0, time.UTC)
)

func ptr[T any](v T) *T { return &v }

// sig is a running sample at minute m.
func sig(m int) inventory.Signals {
	return inventory.Signals{At: t0.Add(time.Duration(m) * time.Minute), Power: inventory.PowerRunning}
}

func withCount(s inventory.Signals, n int) inventory.Signals { s.BootCount = ptr(n); return s }
func withBoot(s inventory.Signals, b time.Time) inventory.Signals {
	s.LastBootAt = b
	return s
}
func withReach(s inventory.Signals, ok bool) inventory.Signals {
	s.InstanceReachable = ptr(ok)
	return s
}
func withConsole(s inventory.Signals, text string) inventory.Signals {
	s.ConsoleAvailable = true
	s.Console = text
	return s
}
func withPower(s inventory.Signals, p inventory.PowerState) inventory.Signals {
	s.Power = p
	return s
}

var (
	badFile = inventory.FileFact{
		Path:    `C:\Windows\System32\drivers\CrowdStrike\C-00000291-00000000-00000032.sys`,
		Size:    40000,
		ModTime: time.Date(2024, 7, 19, 4, 9, 0, 0, time.UTC),
		Header:  "AAAAAAAA0100230112",
	}
	goodFile = inventory.FileFact{
		Path:    `C:\Windows\System32\drivers\CrowdStrike\C-00000291-00000000-00000033.sys`,
		Size:    40000,
		ModTime: time.Date(2024, 7, 19, 5, 27, 0, 0, time.UTC),
		Header:  "AAAAAAAA0100230112",
	}
)

func normal(files ...inventory.FileFact) *inventory.Probe {
	return &inventory.Probe{At: t0.Add(11 * time.Minute), Reachable: true, BootMode: inventory.BootNormal, Files: files}
}

func safe(flag bool, files ...inventory.FileFact) *inventory.Probe {
	return &inventory.Probe{At: t0.Add(11 * time.Minute), Reachable: true, BootMode: inventory.BootSafeMode, SafeBootFlag: flag, Files: files}
}

func unreachable(why string) *inventory.Probe {
	return &inventory.Probe{At: t0.Add(11 * time.Minute), Error: why}
}

// looping has n restarts counted by BootCount over three samples.
func looping(n int) []inventory.Signals {
	return []inventory.Signals{withCount(sig(0), 10), withCount(sig(5), 10+n/2), withCount(sig(10), 10+n)}
}

const safeText = "Safe Mode\r\n\r\nWindows Server (Safe Mode with Networking)"

// onScreen is one steady sample per console text, five minutes apart.
func onScreen(texts ...string) []inventory.Signals {
	var out []inventory.Signals
	for i, x := range texts {
		out = append(out, withConsole(withBoot(sig(5*i), boot), x))
	}
	return out
}

func steady() []inventory.Signals {
	return []inventory.Signals{withBoot(sig(0), boot), withBoot(sig(5), boot), withBoot(sig(10), boot)}
}

// reachable is steady() with the cloud's reachability check passing in
// every sample.
func reachable() []inventory.Signals {
	out := steady()
	for i := range out {
		out[i] = withReach(out[i], true)
	}
	return out
}

// blind is what a cloud like Sakura shows: power only — no boot history,
// console or reachability check.
func blind() []inventory.Signals {
	return []inventory.Signals{{At: t0, Power: inventory.PowerRunning}, {At: t0.Add(10 * time.Minute), Power: inventory.PowerRunning}}
}

// shots is a series of classified screenshots a minute apart.
func shots(screens ...string) []inventory.ScreenSample {
	out := make([]inventory.ScreenSample, len(screens))
	for i, sc := range screens {
		out[i] = inventory.ScreenSample{At: t0.Add(time.Duration(i) * time.Minute), Screen: inventory.Screen(sc)}
	}
	return out
}

func TestClassify(t *testing.T) {
	crashText := "*** STOP: 0x00000050 PAGE_FAULT_IN_NONPAGED_AREA csagent.sys"
	seen := &inventory.Attestation{Source: "confirmed.txt", Note: "BSOD csagent.sys on VNC 04:50"}
	tests := []struct {
		name    string
		ev      inventory.Evidence
		want    inventory.State
		reasons []string // each must appear (substring) in the joined reasons
		bad     int
	}{
		{name: "no samples", ev: inventory.Evidence{}, want: inventory.StateUnknown, reasons: []string{"not observed"}},
		{name: "stopped", ev: inventory.Evidence{Samples: []inventory.Signals{withPower(sig(0), inventory.PowerStopped)}},
			want: inventory.StateUnknown, reasons: []string{"powered off: starting it would show whether it loops"}},
		{name: "stopped but WinRM answered", ev: inventory.Evidence{Samples: []inventory.Signals{sig(0), withPower(sig(10), inventory.PowerStopped)}, Probe: normal()},
			want: inventory.StateUnknown, reasons: []string{"powered off", "conflict: WinRM answered"}},
		{name: "starting", ev: inventory.Evidence{Samples: []inventory.Signals{withPower(sig(0), inventory.PowerStarting)}},
			want: inventory.StateUnknown, reasons: []string{"changing (starting)"}},
		{name: "stopping", ev: inventory.Evidence{Samples: []inventory.Signals{withPower(sig(0), inventory.PowerStopping)}},
			want: inventory.StateUnknown, reasons: []string{"changing (stopping)"}},
		{name: "power unknown", ev: inventory.Evidence{Samples: []inventory.Signals{withPower(sig(0), "")}},
			want: inventory.StateUnknown, reasons: []string{"not report a known power state (unknown)"}},

		{name: "Safe Mode on every screen, WinRM silent", ev: inventory.Evidence{Samples: onScreen(safeText, safeText, safeText), Probe: unreachable("nothing answers at 10.0.0.7:5985")},
			want: inventory.StateSafeMode, reasons: []string{"console shows a Safe Mode desktop in all 3 samples", "SafeBoot"}},
		{name: "Safe Mode on every screen, credentials rejected: repaired offline", ev: inventory.Evidence{Samples: onScreen(safeText, safeText), Probe: unreachable(ProbeErrAuth + ": 401")},
			want: inventory.StateSafeMode, reasons: []string{"Safe Mode desktop in all 2 samples", "rejects the credentials (check guest_access)", "repaired offline"}},
		{name: "Safe Mode on one screen of two", ev: inventory.Evidence{Samples: onScreen("", safeText), Probe: unreachable("nothing answers")},
			want: inventory.StateUnknown},
		{name: "healthy", ev: inventory.Evidence{Samples: steady(), Probe: normal(goodFile)},
			want: inventory.StateHealthy, reasons: []string{"booted normally"}},
		{name: "healthy single sample", ev: inventory.Evidence{Samples: []inventory.Signals{sig(0)}, Probe: normal()},
			want: inventory.StateHealthy},
		{name: "healthy after recovering", ev: inventory.Evidence{Samples: looping(3), Probe: normal(goodFile)},
			want: inventory.StateHealthy, reasons: []string{"restarted 3 times in the 10m window and recovered during the window"}},
		{name: "normal boot with bad file", ev: inventory.Evidence{Samples: steady(), Probe: normal(badFile)},
			want: inventory.StateUnknown, reasons: []string{"conflict", "C-00000291-00000000-00000032.sys"}, bad: 1},
		{name: "WinRM answers briefly after each boot, with the bad file", ev: inventory.Evidence{Samples: looping(4), Probe: normal(badFile)},
			want: inventory.StateBootLoop, reasons: []string{"WinRM answers for a short while after each boot", "restarted 4 times"}, bad: 1},
		{name: "bad file, crash screens, WinRM answers", ev: inventory.Evidence{Samples: blind(), Screens: shots("stop", "login", "stop"), Probe: normal(badFile)},
			want: inventory.StateBootLoop, reasons: []string{"a crash screen (stop 2, login 1"}, bad: 1},
		{name: "bad file, restarts, but the cloud check passes", ev: inventory.Evidence{Samples: []inventory.Signals{withCount(sig(0), 1), withReach(withCount(sig(10), 5), true)}, Probe: normal(badFile)},
			want: inventory.StateUnknown, reasons: []string{"conflict"}, bad: 1},
		{name: "bad file, one restart", ev: inventory.Evidence{Samples: looping(1), Probe: normal(badFile)},
			want: inventory.StateBootLoop, reasons: []string{"restarted once"}, bad: 1},
		{name: "bad file, no crash seen: doubt", ev: inventory.Evidence{Samples: steady(), Probe: normal(badFile)},
			want: inventory.StateUnknown, reasons: []string{"conflict"}, bad: 1},
		{name: "normal boot but cloud check fails", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(sig(0), false), withReach(sig(10), false)}, Probe: normal()},
			want: inventory.StateUnknown, reasons: []string{"reachability check fails"}},
		{name: "normal boot but console crash", ev: inventory.Evidence{Samples: []inventory.Signals{sig(0), withConsole(sig(10), "Windows did not start correctly")}, Probe: normal()},
			want: inventory.StateUnknown, reasons: []string{"console shows a crash"}},
		{name: "normal boot console crash case-insensitive", ev: inventory.Evidence{Samples: []inventory.Signals{withConsole(sig(10), "preparing AUTOMATIC REPAIR")}, Probe: normal()},
			want: inventory.StateUnknown, reasons: []string{"conflict"}},
		{name: "normal boot clean console", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(withConsole(sig(10), "Windows Boot Manager ... ok"), true)}, Probe: normal()},
			want: inventory.StateHealthy},
		{name: "reachable but no boot mode", ev: inventory.Evidence{Samples: steady(), Probe: &inventory.Probe{Reachable: true}},
			want: inventory.StateUnknown, reasons: []string{"no known boot mode"}},

		{name: "safe mode with bad file, flag set", ev: inventory.Evidence{Samples: steady(), Probe: safe(true, badFile, goodFile)},
			want: inventory.StateSafeMode, reasons: []string{"bad file still present", "safe-boot flag is set"}, bad: 1},
		{name: "safe mode clean, flag clear", ev: inventory.Evidence{Samples: steady(), Probe: safe(false)},
			want: inventory.StateSafeMode, reasons: []string{"no bad file left", "flag is not set"}},

		{name: "credentials rejected", ev: inventory.Evidence{Samples: looping(4), Probe: unreachable(ProbeErrAuth + ": HTTP 401")},
			want: inventory.StateUnknown, reasons: []string{"rejected the credentials", "guest_access"}},
		{name: "credentials rejected case-insensitive", ev: inventory.Evidence{Samples: steady(), Probe: unreachable("Credentials Rejected")},
			want: inventory.StateUnknown, reasons: []string{"rejected the credentials"}},

		{name: "blind cloud: unknown without a console report", ev: inventory.Evidence{Samples: blind(), Probe: unreachable("connection refused")},
			want: inventory.StateUnknown, reasons: []string{"no console on this cloud", "--console-confirmed"}},
		{name: "blind cloud: boot loop on a console report", ev: inventory.Evidence{Samples: blind(), Probe: unreachable("connection refused"), Attested: seen},
			want: inventory.StateBootLoop, reasons: []string{"an operator saw a crash", "confirmed.txt: BSOD csagent.sys on VNC 04:50"}},
		{name: "console report, and the guest answers in its window with the bad file", ev: inventory.Evidence{Samples: blind(), Probe: normal(badFile), Attested: seen},
			want: inventory.StateBootLoop, reasons: []string{"WinRM answers for a short while after each boot", "an operator saw it crash on its console (confirmed.txt)"}, bad: 1},
		{name: "console report out of date: guest answers", ev: inventory.Evidence{Samples: blind(), Probe: normal(goodFile), Attested: seen},
			want: inventory.StateHealthy, reasons: []string{"out of date"}},
		{name: "console report, but credentials rejected: the guest is up", ev: inventory.Evidence{Samples: blind(), Probe: unreachable(ProbeErrAuth + ": HTTP 401"), Attested: seen},
			want: inventory.StateUnknown, reasons: []string{"rejected the credentials"}},
		{name: "console report, but the cloud says the OS is up", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(sig(0), true), withReach(sig(10), true)}, Probe: unreachable("connection refused"), Attested: seen},
			want: inventory.StateUnknown, reasons: []string{"reachability check but WinRM does not"}},
		{name: "boot loop by count", ev: inventory.Evidence{Samples: looping(4), Probe: unreachable("connection refused")},
			want: inventory.StateBootLoop, reasons: []string{"restarted 4 times in the 10m window", "connection refused"}},
		{name: "boot loop by boot times", ev: inventory.Evidence{Samples: []inventory.Signals{
			withBoot(sig(0), boot), withBoot(sig(5), t0.Add(3*time.Minute)), withBoot(sig(10), t0.Add(8*time.Minute))}},
			want: inventory.StateBootLoop, reasons: []string{"restarted 2 times", "not probed"}},
		{name: "boot loop by boot times, first unknown", ev: inventory.Evidence{Samples: []inventory.Signals{
			sig(0), withBoot(sig(5), t0.Add(3*time.Minute)), withBoot(sig(10), t0.Add(8*time.Minute))}, Probe: unreachable("timeout")},
			want: inventory.StateBootLoop},
		{name: "old boot time reported late is not a restart", ev: inventory.Evidence{Samples: []inventory.Signals{
			sig(0), withBoot(sig(5), boot), withBoot(sig(10), boot)}, Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"no restarts seen"}},
		{name: "stuck at recovery screen", ev: inventory.Evidence{Samples: []inventory.Signals{withBoot(sig(0), boot), withConsole(withBoot(sig(10), boot), crashText)}, Probe: unreachable("timeout")},
			want: inventory.StateBootLoop, reasons: []string{"stuck at recovery screen"}},
		{name: "one restart and crash", ev: inventory.Evidence{Samples: []inventory.Signals{withCount(sig(0), 1), withConsole(withCount(sig(10), 2), "BugCheck 0x50")}, Probe: unreachable("timeout")},
			want: inventory.StateBootLoop, reasons: []string{"crashed and restarted"}},
		{name: "one restart no crash", ev: inventory.Evidence{Samples: []inventory.Signals{withCount(sig(0), 1), withConsole(withCount(sig(10), 2), "")}, Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"only one restart"}},
		{name: "restarts but cloud check passes now", ev: inventory.Evidence{Samples: []inventory.Signals{withCount(sig(0), 1), withReach(withCount(sig(10), 5), true)}, Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"conflict: restarted 4 times", "may have just recovered"}},
		{name: "crash screen but cloud check passes", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(withConsole(sig(10), crashText), true)}, Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"conflict: the console shows a crash"}},
		{name: "firewall", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(withBoot(sig(0), boot), true), withReach(withBoot(sig(10), boot), true)}, Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"firewall or WinRM service"}},
		// Serving by every other sign: the reachability check over the
		// whole window, no restart, the sign-in screen and nothing else.
		{name: "serving, WinRM silent", ev: inventory.Evidence{Samples: reachable(), Screens: shots("login", "black"), Probe: unreachable("timeout")},
			want: inventory.StateHealthy, reasons: []string{"serving: the cloud's reachability check passed in all 3 samples over 10m", "sign-in screen", "not probed: WinRM does not answer (timeout)"}},
		{name: "serving, credentials rejected", ev: inventory.Evidence{Samples: reachable(), Screens: shots("login"), Probe: unreachable(ProbeErrAuth + ": 401")},
			want: inventory.StateHealthy, reasons: []string{"serving", "check guest_access"}},
		{name: "serving but no screenshot", ev: inventory.Evidence{Samples: reachable(), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"firewall or WinRM service"}},
		{name: "serving but a screen that is not the sign-in screen", ev: inventory.Evidence{Samples: reachable(), Screens: shots("login", "safe-mode"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"firewall or WinRM service"}},
		{name: "serving but the window is short", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(withBoot(sig(0), boot), true), withReach(withBoot(sig(4), boot), true)}, Screens: shots("login"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"firewall or WinRM service"}},
		{name: "serving but unreachable in one sample", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(withBoot(sig(0), boot), false), withReach(withBoot(sig(5), boot), true), withReach(withBoot(sig(10), boot), true)},
			Screens: shots("login"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"firewall or WinRM service"}},
		{name: "serving but no boot history", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(sig(0), true), withReach(sig(5), true), withReach(sig(10), true)}, Screens: shots("login"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"firewall or WinRM service"}},
		{name: "serving but the probe never reached the guest", ev: inventory.Evidence{Samples: reachable(), Screens: shots("login"), Probe: &inventory.Probe{Retryable: true, Error: "HTTP 503"}},
			want: inventory.StateUnknown, reasons: []string{"assess again when the control plane answers"}},
		{name: "nothing to go on", ev: inventory.Evidence{Samples: steady(), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"no console on this cloud", "no restarts seen in the 10m window", "no reachability check", "timeout"}},
		{name: "no boot history", ev: inventory.Evidence{Samples: []inventory.Signals{sig(0), sig(10)}},
			want: inventory.StateUnknown, reasons: []string{"no boot history", "not probed"}},
		{name: "one sample", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(sig(0), false)}, Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"only one control-plane sample", "reachability check fails"}},

		// Screenshots (rule 9), on a blind cloud.
		{name: "screens: repeated crash screens", ev: inventory.Evidence{Samples: blind(), Screens: shots("black", "stop", "black", "recovery", "stop"), Probe: unreachable("timeout")},
			want: inventory.StateBootLoop, reasons: []string{"repeated crash screens", "stop 2, recovery 1, black 2 of 5 screenshot(s)", "timeout"}},
		{name: "screens: stuck at recovery", ev: inventory.Evidence{Samples: blind(), Screens: shots("recovery", "recovery"), Probe: unreachable("timeout")},
			want: inventory.StateBootLoop, reasons: []string{"recovery 2 of 2"}},
		{name: "screens: one crash screen is not enough", ev: inventory.Evidence{Samples: blind(), Screens: shots("black", "stop", "black"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"no repeated crash (stop 1, black 2 of 3"}},
		{name: "screens: crash then sign-in: may have recovered", ev: inventory.Evidence{Samples: blind(), Screens: shots("stop", "stop", "black", "login"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"conflict: the console showed a crash", "later the sign-in screen"}},
		{name: "screens: crash then sign-in, and an operator saw it crash-loop", ev: inventory.Evidence{Samples: blind(), Screens: shots("stop", "black", "login"), Probe: unreachable("timeout"), Attested: seen},
			want: inventory.StateBootLoop, reasons: []string{"an operator saw a crash", "screenshots: stop 1, login 1, black 1 of 3"}},
		{name: "screens: sign-in alone never outweighs a silent guest", ev: inventory.Evidence{Samples: blind(), Screens: shots("login"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"login 1 of 1"}},
		{name: "screens: unknown and black are no evidence", ev: inventory.Evidence{Samples: blind(), Screens: shots("unknown", "black", "unknown", "black"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown},
		{name: "screens: crash screens but the cloud check passes", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(sig(0), true), withReach(sig(10), true)}, Screens: shots("stop", "stop"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"conflict: the console shows a crash"}},
		{name: "screens: WinRM answers but the last screenshot is a crash", ev: inventory.Evidence{Samples: blind(), Screens: shots("stop", "stop"), Probe: normal(goodFile)},
			want: inventory.StateUnknown, reasons: []string{"last screenshot shows a stop screen"}},
		{name: "screens: crashes, then sign-in, and WinRM answers: healthy", ev: inventory.Evidence{Samples: blind(), Screens: shots("stop", "black", "login"), Probe: normal(goodFile)},
			want: inventory.StateHealthy},
		{name: "screens: the guest's credentials are rejected: up", ev: inventory.Evidence{Samples: blind(), Screens: shots("stop", "stop"), Probe: unreachable(ProbeErrAuth + ": HTTP 401")},
			want: inventory.StateUnknown, reasons: []string{"rejected the credentials"}},
		// Safe Mode where WinRM does not run in it, seen on screenshots:
		// Sakura (VNC snapshots, nothing else), EC2 and Azure (the OS
		// passes the reachability check; a screenshot after the silent
		// probe).
		{name: "screens: Safe Mode on every screenshot, WinRM silent", ev: inventory.Evidence{Samples: blind(), Screens: shots("black", "safe-mode", "safe-mode", "safe-mode"), Probe: unreachable("nothing answers at 10.0.0.12:5985")},
			want: inventory.StateSafeMode, reasons: []string{"screen shows a Safe Mode desktop", "SafeBoot"}},
		{name: "screens: reachability passes, WinRM silent, the screenshot shows Safe Mode", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(sig(0), true), withReach(sig(10), true)}, Screens: []inventory.ScreenSample{{At: t0.Add(11 * time.Minute), Screen: inventory.ScreenSafeMode}}, Probe: unreachable("timeout")},
			want: inventory.StateSafeMode},
		{name: "screens: reachability passes, WinRM silent, the screenshot shows sign-in", ev: inventory.Evidence{Samples: []inventory.Signals{withReach(sig(0), true), withReach(sig(10), true)}, Screens: []inventory.ScreenSample{{At: t0.Add(11 * time.Minute), Screen: inventory.ScreenLogin}}, Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"firewall or WinRM service"}},
		{name: "screens: Safe Mode and a crash screen are not Safe Mode", ev: inventory.Evidence{Samples: blind(), Screens: shots("safe-mode", "stop"), Probe: unreachable("timeout")},
			want: inventory.StateUnknown},
		{name: "screens: Safe Mode screenshots, credentials rejected", ev: inventory.Evidence{Samples: blind(), Screens: shots("safe-mode", "safe-mode"), Probe: unreachable(ProbeErrAuth + ": HTTP 401")},
			want: inventory.StateSafeMode, reasons: []string{"Safe Mode desktop (safe-mode 2 of 2", "rejects the credentials", "repaired offline"}},
		// A cloud whose console text and screenshots each caught the
		// crash once (EC2, Azure: the text most often reads "Starting
		// Windows" in a cycle): two crash screens in all.
		{name: "screens: a crash in the console text and one on a screenshot", ev: inventory.Evidence{Samples: []inventory.Signals{
			withReach(withConsole(sig(0), "Starting Windows"), false), withReach(withConsole(sig(5), crashText), false), withReach(withConsole(sig(10), "Starting Windows"), false)},
			Screens: []inventory.ScreenSample{{At: t0.Add(2 * time.Minute), Screen: inventory.ScreenBlack}, {At: t0.Add(7 * time.Minute), Screen: inventory.ScreenStop}}, Probe: unreachable("timeout")},
			want: inventory.StateBootLoop, reasons: []string{"repeated crash screens", "screenshot(s) and console samples"}},
		{name: "screens: a crash in the console text, then the sign-in screen, WinRM answers: healthy", ev: inventory.Evidence{Samples: []inventory.Signals{
			withConsole(sig(0), crashText), withConsole(sig(5), crashText), withConsole(sig(10), "Starting Windows")},
			Screens: []inventory.ScreenSample{{At: t0.Add(10 * time.Minute), Screen: inventory.ScreenLogin}}, Probe: normal(goodFile)},
			want: inventory.StateHealthy},
		{name: "counter went backwards uses boot times", ev: inventory.Evidence{Samples: []inventory.Signals{
			withBoot(withCount(sig(0), 9), boot), withBoot(withCount(sig(10), 0), boot)}, Probe: unreachable("timeout")},
			want: inventory.StateUnknown, reasons: []string{"no restarts seen"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Classify(inc, tc.ev)
			if got.State != tc.want {
				t.Fatalf("state = %s, want %s; reasons %q", got.State, tc.want, got.Reasons)
			}
			if len(got.Reasons) == 0 {
				t.Fatal("no reasons")
			}
			joined := strings.Join(got.Reasons, " | ")
			for _, r := range tc.reasons {
				if !strings.Contains(joined, r) {
					t.Errorf("reasons %q lack %q", joined, r)
				}
			}
			if len(got.BadFiles) != tc.bad {
				t.Errorf("bad files = %d, want %d", len(got.BadFiles), tc.bad)
			}
			if len(got.Evidence.Samples) != len(tc.ev.Samples) || got.Evidence.Probe != tc.ev.Probe {
				t.Error("evidence not carried")
			}
		})
	}
}

// TestNeverHealthyOnDoubt: any reason to doubt turns a healthy probe unknown.
func TestNeverHealthyOnDoubt(t *testing.T) {
	doubts := []inventory.Evidence{
		{Samples: steady(), Probe: normal(badFile)},
		{Samples: []inventory.Signals{withReach(sig(0), false)}, Probe: normal()},
		{Samples: []inventory.Signals{withConsole(sig(0), "csagent.sys")}, Probe: normal()},
		{Samples: []inventory.Signals{withPower(sig(0), inventory.PowerStopped)}, Probe: normal()},
		{Probe: normal()},
		{Samples: steady()},
		{Samples: steady(), Probe: unreachable("timeout")},
	}
	for i, ev := range doubts {
		if got := Classify(inc, ev); got.State == inventory.StateHealthy {
			t.Errorf("case %d: healthy on doubt: %q", i, got.Reasons)
		}
	}
}

func TestRestarts(t *testing.T) {
	tests := []struct {
		name  string
		s     []inventory.Signals
		n     int
		known bool
	}{
		{"one sample", []inventory.Signals{withCount(sig(0), 3)}, 0, false},
		{"counts", []inventory.Signals{withCount(sig(0), 3), sig(5), withCount(sig(10), 7)}, 4, true},
		{"count missing at end", []inventory.Signals{withCount(sig(0), 3), sig(10)}, 0, false},
		{"boot times distinct", []inventory.Signals{withBoot(sig(0), boot), withBoot(sig(5), t0.Add(time.Minute)), withBoot(sig(7), t0.Add(time.Minute)), withBoot(sig(10), t0.Add(9*time.Minute))}, 2, true},
		{"boot times unchanged", steady(), 0, true},
		{"no history", []inventory.Signals{sig(0), sig(10)}, 0, false},
	}
	for _, tc := range tests {
		n, known := Restarts(tc.s)
		if n != tc.n || known != tc.known {
			t.Errorf("%s: Restarts = %d,%v want %d,%v", tc.name, n, known, tc.n, tc.known)
		}
	}
}

func TestSummarize(t *testing.T) {
	got := Summarize(inventory.Evidence{Samples: looping(4), Probe: unreachable("timeout")})
	for _, want := range []string{"3 sample(s) over 10m", "4 restart(s)", "WinRM: timeout", "no console"} {
		if !strings.Contains(got, want) {
			t.Errorf("Summarize = %q, lacks %q", got, want)
		}
	}
	if Summarize(inventory.Evidence{}) != "no samples" {
		t.Error("empty evidence")
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 45 * time.Second: "45s", 10 * time.Minute: "10m", 90 * time.Second: "1m30s", 90 * time.Minute: "1h30m",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestShowsSelfReset: only the stop screen that promises its own restart
// counts; a recovery screen or a stop screen without the promise does not.
func TestShowsSelfReset(t *testing.T) {
	for console, want := range map[string]bool{
		"Your device ran into a problem and needs to restart. We're just collecting some error info, and then we'll restart for you.": true,
		"YOUR PC RAN INTO A PROBLEM ... AND THEN WE'LL RESTART FOR YOU. 20% complete":                                                 true,
		"Your PC ran into a problem that it couldn't handle, and now it needs to restart.":                                            false,
		"Automatic Repair\r\n\r\nYour PC did not start correctly\r\n\r\nPress \"Restart\" to restart your PC":                         false,
		"Starting Windows": false,
		"":                 false,
	} {
		if got := ShowsSelfReset(console); got != want {
			t.Errorf("ShowsSelfReset(%q) = %v, want %v", console, got, want)
		}
	}
}
