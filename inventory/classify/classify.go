// Package classify turns evidence about a VM into a verdict: healthy,
// safe-mode, boot-loop or unknown.
//
// Evidence is a series of control-plane samples (inventory.Signals, oldest
// first) taken over a sampling window, and optionally a WinRM guest probe
// (inventory.Probe) taken after the last sample. Classify is pure and
// deterministic; Assess gathers the evidence for a list of VMs.
//
// Classification is conservative: a VM is healthy only when the guest itself
// answered WinRM, booted normally, carries no bad file, and nothing the cloud
// reports contradicts that; or, where the guest cannot be probed, when every
// other sign says it serves (rule 8: serving). Whenever the evidence is
// missing or disagrees the
// verdict is unknown, with reasons that say what is missing or conflicting
// and what a person can do. The rules, in order:
//
//  1. No samples: unknown.
//  2. The last sample's power state is not running (stopped, starting,
//     stopping, unknown): unknown. A powered-off VM may still carry the bad
//     file; starting it would show whether it loops.
//  3. Restarts in the window are the BootCount difference between the first
//     and the last sample when both are known; otherwise the number of
//     distinct, non-zero LastBootAt values in the later samples that are
//     newer than the first sample's LastBootAt (or, if that is zero, not
//     older than the first sample itself). A boot counter that went
//     backwards is ignored. With no BootCount and no LastBootAt at all, the
//     restart count is unknown and treated as zero.
//  4. The probe reached the guest in normal boot mode: boot-loop when it
//     carries a bad file and the VM is seen crashing (a restart in the
//     window, a crash on the console, a crash screen, or an operator's
//     console report) while
//     the cloud's reachability check does not pass (its WinRM answers for
//     a short while after each boot); otherwise unknown when a bad
//     file is present, when the cloud's reachability check (last sample)
//     says unreachable, or when the last console text shows a crash or
//     recovery screen (each is a conflict); otherwise healthy, noting
//     restarts seen in the window ("recovered during the window").
//  5. The probe reached the guest in Safe Mode: safe-mode, saying whether a
//     bad file is left and whether the safe-boot flag is set.
//  6. The probe reached the guest but reported no known boot mode: unknown.
//  7. The probe failed because the credentials were rejected (Probe.Error
//     starts with ProbeErrAuth): unknown; the guest is up, fix guest_access
//     (unless its screen says more: Safe Mode or serving, below).
//  8. Otherwise (no probe, or the probe could not reach the guest):
//     - no restarts, and the screen shows a Safe Mode desktop: on the
//     console text of every sample, or on screenshots that show nothing
//     else (black and unknown ones aside): safe-mode (WinRM runs in Safe
//     Mode only where listed under SafeBoot\Network, and a guest may
//     reject the credentials; the disk is repaired offline);
//     - serving: the probe was made and failed (WinRM silent, or the
//     credentials rejected), the reachability check passed in every
//     sample over at least MinServingWindow, the boot history shows no
//     restart, nothing shows a crash, and the screenshots show the
//     sign-in screen and nothing else that counts: healthy, saying that
//     the disk was not read and how to make sure (a guest that loaded the
//     bad file crashes within minutes of it);
//     - the cloud's reachability check passes on the last sample while
//     restarts or a crash screen are seen: unknown (conflict: it may have
//     just recovered);
//     - two or more restarts: boot-loop;
//     - zero or one restart and the last console text shows a crash or
//     recovery screen: boot-loop ("stuck at recovery screen" /
//     "crashed and restarted");
//     - the reachability check passes and no restarts: unknown (firewall
//     or WinRM service);
//     - an operator's console report (Evidence.Attested): boot-loop,
//     citing the report (it resolves the screenshots' conflict below: a
//     guest that had recovered would answer by now);
//     - the screenshots (rule 9) showed a crash or recovery screen and
//     later the sign-in screen: unknown (conflict: it may have just
//     recovered);
//     - two or more screenshots showed a crash or recovery screen, and none
//     the sign-in screen: boot-loop ("repeated crash screens");
//     - anything else: unknown, naming the missing evidence.
//  9. Screenshots (Evidence.Screens, classified by package inventory/screen)
//     are evidence of their own. A crash screen is a stop or recovery
//     screen. In rule 4 the last screenshot showing a crash is a conflict;
//     in rule 8 a crash screenshot counts as a crash seen on the console
//     for the reachability conflict. Rule 8 counts the screens the
//     samples' console text shows (a crash or recovery screen, Safe Mode,
//     the sign-in screen; "Starting Windows" shows none) together with the
//     screenshots, in time order: on a cloud whose text and screenshots
//     each caught one crash of a cycling VM, that is two crash screens.
//     A sign-in screen alone never makes a VM healthy (only the guest's
//     own answer, or the whole of rule 8's serving, does) and never
//     outweighs a failing guest; a black or unknown screenshot is no
//     evidence at all.
//
// Crash or recovery screens are recognised, case-insensitively, by: bugcheck,
// PAGE_FAULT_IN_NONPAGED_AREA, csagent, "Automatic Repair", "did not start
// correctly", "stop code", "ran into a problem", "Recovery" screens with
// "Your PC/device needs to be repaired".
package classify

import (
	"fmt"
	"strings"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
)

// ProbeErrAuth is the prefix of inventory.Probe.Error when WinRM answered
// but rejected the credentials. Whoever builds a Probe must start Error with
// exactly this text in that case (e.g. "credentials rejected: HTTP 401"),
// and must not use it for anything else. Matching is case-insensitive.
const ProbeErrAuth = "credentials rejected"

// crashMarkers are lower-case fragments of console text shown by a crashed
// or recovering Windows guest.
var crashMarkers = []string{
	"bugcheck",
	"page_fault_in_nonpaged_area",
	"csagent",
	"automatic repair",
	"did not start correctly",
	"stop code",
	"ran into a problem",
	"needs to be repaired",
}

// ShowsCrash reports whether console text shows a crash (bugcheck) or a
// Windows recovery screen.
func ShowsCrash(console string) bool {
	c := strings.ToLower(console)
	for _, m := range crashMarkers {
		if strings.Contains(c, m) {
			return true
		}
	}
	return false
}

// ShowsSelfReset reports whether console text shows Windows' stop screen
// promising to restart by itself ("…and then we'll restart for you": the
// default, automatic restart on system failure), as opposed to a
// recovery screen, which waits for someone.
func ShowsSelfReset(console string) bool {
	return strings.Contains(strings.ToLower(console), "restart for you")
}

// ShowsSafeMode reports whether console text shows a Windows Safe Mode
// desktop (Windows writes "Safe Mode" in the screen's corners).
func ShowsSafeMode(console string) bool {
	return strings.Contains(strings.ToLower(console), "safe mode")
}

// safeModeOnScreen reports whether every sample's console shows Safe Mode
// and none a crash: repeated screens are the evidence.
func safeModeOnScreen(samples []inventory.Signals) bool {
	for _, s := range samples {
		if !s.ConsoleAvailable || !ShowsSafeMode(s.Console) || ShowsCrash(s.Console) {
			return false
		}
	}
	return len(samples) > 0
}

// safeModeGuest says why a guest in Safe Mode could not be probed.
func safeModeGuest(p *inventory.Probe) string {
	if IsAuthError(p) {
		return "its WinRM rejects the credentials (check guest_access)"
	}
	return "WinRM does not answer (in Safe Mode it runs only if listed under SafeBoot\\Network)"
}

// MinServingWindow is the shortest sampling window over which a VM that
// cannot be probed is taken for healthy by every other sign (serving): a
// boot-looping guest restarts well within it (the crash comes as the
// sensor's driver loads, within minutes of each boot).
const MinServingWindow = 5 * time.Minute

// serving reports whether a VM whose guest could not be probed (WinRM does
// not answer, or rejects the credentials) shows every other sign of
// serving normally (rule 8): the cloud's reachability check passed in
// every sample over a window of at least MinServingWindow, the boot
// history is known and shows no restart, no console text or screenshot
// shows a crash, and the screenshots show the sign-in screen and nothing
// else that counts (black and unknown ones aside). Its disk was not read:
// the reasons say so, and how to make sure.
func serving(ev inventory.Evidence, probe *inventory.Probe, scr screenTally) ([]string, bool) {
	if probe == nil || probe.Reachable || probe.Retryable || scr.crash > 0 {
		return nil, false
	}
	login := scr.by[inventory.ScreenLogin]
	if login == 0 || login != scr.total-scr.by[inventory.ScreenBlack]-scr.by[inventory.ScreenUnknown] {
		return nil, false
	}
	window := Window(ev.Samples)
	if restarts, known := Restarts(ev.Samples); !known || restarts > 0 || window < MinServingWindow {
		return nil, false
	}
	for _, s := range ev.Samples {
		if s.InstanceReachable == nil || !*s.InstanceReachable || (s.ConsoleAvailable && ShowsCrash(s.Console)) {
			return nil, false
		}
	}
	guest := winrmPhrase(probe) + ": fix the firewall or the WinRM service to read its disk"
	if IsAuthError(probe) {
		guest = "WinRM answered but rejected the credentials: check guest_access to read its disk"
	}
	return []string{
		fmt.Sprintf("serving: the cloud's reachability check passed in all %d samples over %s, no restart, and the screen shows the sign-in screen (%s)",
			len(ev.Samples), fmtDur(window), scr),
		"not probed: " + guest + "; a guest that had loaded the bad file would have crashed",
	}, true
}

// IsAuthError reports whether a probe failed because WinRM rejected the
// credentials (see ProbeErrAuth).
func IsAuthError(p *inventory.Probe) bool {
	return p != nil && !p.Reachable &&
		strings.HasPrefix(strings.ToLower(strings.TrimSpace(p.Error)), ProbeErrAuth)
}

// Restarts counts the restarts seen between the first and the last sample
// (rule 3 of the package doc). known is false when the samples carry no boot
// history at all (or there is only one sample), in which case n is 0.
func Restarts(samples []inventory.Signals) (n int, known bool) {
	if len(samples) < 2 {
		return 0, false
	}
	first, last := samples[0], samples[len(samples)-1]
	if first.BootCount != nil && last.BootCount != nil && *last.BootCount >= *first.BootCount {
		return *last.BootCount - *first.BootCount, true
	}
	base := first.LastBootAt
	seen := map[time.Time]bool{}
	anyBoot := !base.IsZero()
	for _, s := range samples[1:] {
		b := s.LastBootAt
		if b.IsZero() {
			continue
		}
		anyBoot = true
		newer := (!base.IsZero() && b.After(base)) || (base.IsZero() && !b.Before(first.At))
		if newer {
			seen[b.UTC()] = true
		}
	}
	return len(seen), anyBoot
}

// Window returns the time between the first and the last sample.
func Window(samples []inventory.Signals) time.Duration {
	if len(samples) < 2 {
		return 0
	}
	return samples[len(samples)-1].At.Sub(samples[0].At)
}

// Classify gives the verdict on one VM from its evidence, following the rules
// of the package doc. The result carries the evidence and the probe's files
// that inc marks bad.
func Classify(inc inventory.Incident, ev inventory.Evidence) inventory.Classification {
	c := inventory.Classification{Evidence: ev}
	if ev.Probe != nil {
		for _, f := range ev.Probe.Files {
			if bad, _ := inc.Verdict(f); bad {
				c.BadFiles = append(c.BadFiles, f)
			}
		}
	}
	verdict := func(s inventory.State, reasons ...string) inventory.Classification {
		c.State = s
		c.Reasons = reasons
		return c
	}

	if len(ev.Samples) == 0 {
		return verdict(inventory.StateUnknown,
			"the cloud was not observed (no control-plane samples): run the inventory again")
	}
	last := ev.Samples[len(ev.Samples)-1]
	probe := ev.Probe
	reachable := probe != nil && probe.Reachable

	if last.Power != inventory.PowerRunning {
		r := []string{powerReason(last.Power)}
		if reachable {
			r = append(r, "conflict: WinRM answered although the cloud reports the VM "+powerWord(last.Power))
		}
		return verdict(inventory.StateUnknown, r...)
	}

	restarts, restartsKnown := Restarts(ev.Samples)
	window := Window(ev.Samples)
	crash := last.ConsoleAvailable && ShowsCrash(last.Console)
	cloudUp := last.InstanceReachable != nil && *last.InstanceReachable
	cloudDown := last.InstanceReachable != nil && !*last.InstanceReachable
	scr := evidenceTally(ev)

	if reachable {
		switch probe.BootMode {
		case inventory.BootNormal:
			if len(c.BadFiles) > 0 && !cloudUp && (restarts >= 1 || crash || scr.crash >= 1 || ev.Attested != nil) {
				return verdict(inventory.StateBootLoop, fmt.Sprintf(
					"WinRM answers for a short while after each boot, then it crashes: the guest carries the bad file %s, and %s",
					fileList(c.BadFiles), crashEvidence(restarts, window, crash, scr, ev.Attested)))
			}
			var conflicts []string
			if len(c.BadFiles) > 0 {
				conflicts = append(conflicts, fmt.Sprintf(
					"conflict: the guest booted normally but still carries the bad file %s, which should crash it at boot: check it by hand before acting",
					fileList(c.BadFiles)))
			}
			if cloudDown {
				conflicts = append(conflicts,
					"conflict: WinRM answered but the cloud's reachability check fails: look at the VM in the cloud console and probe again")
			}
			if crash {
				conflicts = append(conflicts,
					"conflict: WinRM answered but the console shows a crash or recovery screen: look at the VM's screen and probe again")
			}
			if last := screenCounts(ev.Screens).last; last.Crash() {
				conflicts = append(conflicts,
					"conflict: WinRM answered but the last screenshot shows a "+string(last)+" screen: look at the VM's screen and probe again")
			}
			if len(conflicts) > 0 {
				return verdict(inventory.StateUnknown, conflicts...)
			}
			r := []string{"booted normally and answers WinRM; no bad file found"}
			if restarts > 0 {
				r = append(r, fmt.Sprintf("restarted %s in the %s window and recovered during the window", times(restarts), fmtDur(window)))
			}
			if ev.Attested != nil {
				r = append(r, "the operator's console report ("+ev.Attested.Source+") is out of date: the guest answers now")
			}
			return verdict(inventory.StateHealthy, r...)
		case inventory.BootSafeMode:
			r := []string{"running in Safe Mode and answers WinRM"}
			if len(c.BadFiles) > 0 {
				r = append(r, "bad file still present: "+fileList(c.BadFiles))
			} else {
				r = append(r, "no bad file left")
			}
			if probe.SafeBootFlag {
				r = append(r, "safe-boot flag is set: a normal restart would boot Safe Mode again")
			} else {
				r = append(r, "safe-boot flag is not set: the next restart boots normally")
			}
			return verdict(inventory.StateSafeMode, r...)
		default:
			return verdict(inventory.StateUnknown, fmt.Sprintf(
				"WinRM answered but the probe reported no known boot mode (%q): probe again", string(probe.BootMode)))
		}
	}

	// Safe Mode on every screen while the guest cannot be probed: WinRM
	// does not answer (not listed under SafeBoot\Network), or rejects the
	// credentials. The disk is repaired offline, and the repair verified
	// over WinRM or, where the credentials are rejected, by the console
	// (serving).
	if restarts == 0 && !(probe != nil && probe.Retryable) {
		switch {
		case safeModeOnScreen(ev.Samples):
			return verdict(inventory.StateSafeMode, fmt.Sprintf(
				"the console shows a Safe Mode desktop in all %d samples, and %s: the disk is repaired offline",
				len(ev.Samples), safeModeGuest(probe)))
		case len(ev.Screens) > 0 && scr.safeModeOnly():
			return verdict(inventory.StateSafeMode, fmt.Sprintf(
				"the screen shows a Safe Mode desktop (%s) and nothing else, and %s: the disk is repaired offline",
				scr, safeModeGuest(probe)))
		}
	}
	if r, ok := serving(ev, probe, scr); ok {
		return verdict(inventory.StateHealthy, r...)
	}
	if IsAuthError(probe) {
		return verdict(inventory.StateUnknown,
			"WinRM answered but rejected the credentials: the guest is up; check guest_access")
	}

	if cloudUp && (restarts > 0 || crash || scr.crash > 0) {
		what := fmt.Sprintf("restarted %s in the %s window", times(restarts), fmtDur(window))
		if restarts == 0 {
			what = "the console shows a crash or recovery screen"
		}
		return verdict(inventory.StateUnknown,
			"conflict: "+what+" but the cloud's reachability check passes now: it may have just recovered; probe again in a few minutes")
	}
	winrm := winrmPhrase(probe)
	if probe != nil && probe.Retryable && cloudUp && restarts == 0 && !crash {
		// The probe never reached the guest: the cloud failed to say where
		// it is. That is a control-plane error, not a guest verdict.
		return verdict(inventory.StateUnknown,
			"the OS answers the cloud's reachability check, and "+winrm+": assess again when the control plane answers")
	}
	switch {
	case restarts >= 2:
		return verdict(inventory.StateBootLoop, fmt.Sprintf(
			"restarted %s in the %s window and %s", times(restarts), fmtDur(window), winrm))
	case restarts == 1 && crash:
		return verdict(inventory.StateBootLoop, fmt.Sprintf(
			"crashed and restarted during the %s window: the console shows a crash or recovery screen, and %s", fmtDur(window), winrm))
	case restarts == 0 && crash:
		return verdict(inventory.StateBootLoop,
			"stuck at recovery screen: the console shows a crash or recovery screen, no restarts seen, and "+winrm)
	case cloudUp:
		return verdict(inventory.StateUnknown,
			"the OS answers the cloud's reachability check but WinRM does not: firewall or WinRM service ("+winrm+")")
	case ev.Attested != nil:
		// The operator's report resolves what the screenshots leave in
		// doubt (a sign-in screen after a crash): a guest that had
		// recovered would answer WinRM or the cloud's check by now.
		r := "an operator saw a crash or recovery screen on its console (" + ev.Attested.Source
		if ev.Attested.Note != "" {
			r += ": " + ev.Attested.Note
		}
		r += "), and " + winrm
		if scr.total > 0 {
			r += "; screenshots: " + scr.String()
		}
		return verdict(inventory.StateBootLoop, r)
	case scr.crash > 0 && scr.loginAfterCrash:
		return verdict(inventory.StateUnknown, fmt.Sprintf(
			"conflict: the console showed a crash or recovery screen and later the sign-in screen (%s): it may have just recovered, but %s; probe again in a few minutes, or list it in a --console-confirmed file if you see it crash-loop",
			scr, winrm))
	case scr.crash >= 2:
		return verdict(inventory.StateBootLoop, fmt.Sprintf(
			"repeated crash screens: %s over the %s window, never the sign-in screen, and %s",
			scr, fmtDur(Window(ev.Samples)), winrm))
	}

	var missing []string
	switch {
	case scr.total > 0:
		missing = append(missing, "the screen shows no repeated crash ("+scr.String()+")")
	case !last.ConsoleAvailable:
		missing = append(missing, "no console on this cloud")
	default:
		missing = append(missing, "the console shows no crash")
	}
	switch {
	case len(ev.Samples) < 2:
		missing = append(missing, "only one control-plane sample (no restart history)")
	case !restartsKnown:
		missing = append(missing, "the cloud reports no boot history")
	case restarts == 1:
		missing = append(missing, fmt.Sprintf("only one restart seen in the %s window", fmtDur(window)))
	default:
		missing = append(missing, fmt.Sprintf("no restarts seen in the %s window", fmtDur(window)))
	}
	if last.InstanceReachable == nil {
		missing = append(missing, "no reachability check")
	} else {
		missing = append(missing, "the reachability check fails")
	}
	missing = append(missing, winrm)
	return verdict(inventory.StateUnknown,
		strings.Join(missing, ", ")+": look at the VM's screen in the cloud console (if it crash-loops, list it in a --console-confirmed file and plan again), or assess again over a longer window")
}

// crashEvidence says how the VM was seen crashing.
func crashEvidence(restarts int, window time.Duration, crash bool, scr screenTally, attested *inventory.Attestation) string {
	var parts []string
	if restarts >= 1 {
		parts = append(parts, fmt.Sprintf("it restarted %s in the %s window", times(restarts), fmtDur(window)))
	}
	if crash {
		parts = append(parts, "the console shows a crash or recovery screen")
	}
	if scr.crash >= 1 {
		parts = append(parts, "the screenshots showed a crash screen ("+scr.String()+")")
	}
	if attested != nil {
		parts = append(parts, "an operator saw it crash on its console ("+attested.Source+")")
	}
	return strings.Join(parts, ", ")
}

func powerWord(p inventory.PowerState) string {
	if p == "" {
		return string(inventory.PowerUnknown)
	}
	return string(p)
}

func powerReason(p inventory.PowerState) string {
	switch p {
	case inventory.PowerStopped:
		return "powered off: starting it would show whether it loops; it may still carry the bad file"
	case inventory.PowerStarting, inventory.PowerStopping:
		return "power state is changing (" + string(p) + "): assess again in a few minutes"
	default:
		return "the cloud does not report a known power state (" + powerWord(p) + "): check the VM in the cloud console"
	}
}

func winrmPhrase(p *inventory.Probe) string {
	switch {
	case p == nil:
		return "WinRM was not probed"
	case p.Retryable:
		return "WinRM was not probed: the cloud could not say where the guest is (" + p.Error + ")"
	case p.Error != "":
		return "WinRM does not answer (" + p.Error + ")"
	default:
		return "WinRM does not answer"
	}
}

func fileList(fs []inventory.FileFact) string {
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Path
	}
	return strings.Join(names, ", ")
}

func times(n int) string {
	if n == 1 {
		return "once"
	}
	return fmt.Sprintf("%d times", n)
}

// fmtDur prints a window like "10m" or "1h30m" or "45s".
func fmtDur(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d <= 0:
		return "0s"
	case d < time.Minute:
		return d.String()
	case d%time.Minute == 0 && d < time.Hour:
		return fmt.Sprintf("%dm", int(d/time.Minute))
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	return s
}

// Summarize gives a one-line summary of the evidence, for plans and reports.
func Summarize(ev inventory.Evidence) string {
	if len(ev.Samples) == 0 {
		return "no samples"
	}
	last := ev.Samples[len(ev.Samples)-1]
	parts := []string{fmt.Sprintf("%d sample(s) over %s", len(ev.Samples), fmtDur(Window(ev.Samples)))}
	parts = append(parts, "power "+powerWord(last.Power))
	if n, known := Restarts(ev.Samples); known {
		parts = append(parts, fmt.Sprintf("%d restart(s)", n))
	} else {
		parts = append(parts, "restarts unknown")
	}
	switch {
	case last.InstanceReachable == nil:
		parts = append(parts, "no reachability check")
	case *last.InstanceReachable:
		parts = append(parts, "reachability check passes")
	default:
		parts = append(parts, "reachability check fails")
	}
	switch {
	case !last.ConsoleAvailable:
		parts = append(parts, "no console")
	case ShowsCrash(last.Console):
		parts = append(parts, "console shows crash")
	default:
		parts = append(parts, "console shows no crash")
	}
	if len(ev.Screens) > 0 {
		parts = append(parts, "screens: "+screenCounts(ev.Screens).String())
	}
	p := ev.Probe
	switch {
	case p == nil:
		parts = append(parts, "not probed")
	case p.Reachable:
		mode := string(p.BootMode)
		if mode == "" {
			mode = "unknown"
		}
		parts = append(parts, fmt.Sprintf("WinRM: %s boot, %d incident file(s)", mode, len(p.Files)))
	case p.Error != "":
		parts = append(parts, "WinRM: "+p.Error)
	default:
		parts = append(parts, "WinRM: unreachable")
	}
	return strings.Join(parts, "; ")
}
