package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/fixfleet/fixfleet/internal/secretscan"
	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/remediate/policy"
	"github.com/fixfleet/fixfleet/remediate/strategy"
	"github.com/fixfleet/fixfleet/simulation"
)

// everyStepWorld is a 16-VM world in which every strategy of the sim
// face runs (and every step of each, powered-off VMs' included): a healthy VM; a boot loop that recovers after a restart
// (reboot-retry); a BitLocker boot loop that never recovers (reboot-retry
// fails, helper-mount repairs it with its unlock step); a boot loop with
// damaged hives (reboot-retry fails, helper-mount's check-hives fails and
// aborts, restore-backup repairs it); a VM in safe mode (delete-file); a
// boot loop that never recovers but whose WinRM answers for 180 s after
// each boot (reboot-retry fails, race-the-boot repairs it); a copy of
// each of the last two whose guest denies the deletion (delete-file and
// race-the-boot fail and abort, helper-mount repairs them offline); and a
// copy of the damaged-hives VM whose chosen backup is damaged too
// (restore-backup's verify fails and aborts: a person is needed); a
// Windows 2016 boot loop in tk1a, where no 2016 helper image exists
// (cross-zone-mount), and its copy with damaged hives (cross-zone-mount
// aborts); two powered-off VMs whose disks are checked offline
// (cross-zone-mount in tk1a, helper-mount in is1b); and a powered-off VM
// with damaged hives (helper-mount's check-hives fails, restore-backup
// swaps a restored disk in and leaves it off); and a BitLocker boot loop
// whose key is in no key source and whose WinRM is listed under
// SafeBoot\Network (reboot-retry fails, safe-mode-boot repairs it), and
// its copy whose WinRM is not listed there (safe-mode-boot finds it silent
// in Safe Mode and aborts, restore-backup repairs it).
// everyStepAzureWorld is a part of it in Azure's zones (simulation's
// everyStepWorlds says which): there copy-and-swap (Azure's OS-disk swap)
// takes helper-mount's place.
const (
	everyStepWorld      = "../../simulation/testdata/every-step.json"
	everyStepAzureWorld = "../../simulation/testdata/every-step-azure.json"
	// lateRestartsAWSWorld is every-step.json's vm-00015 (a BitLocker key in
	// no key source, WinRM started in Safe Mode) in AWS's zones without its
	// backups: through the AWS face, whose plan cannot see BitLocker,
	// helper-mount finds the key missing and safe-mode-boot, with nothing
	// sure after it, first does the rest of the last-resort restarts
	// (late_restarts), whose steps no other face's plan has.
	lateRestartsAWSWorld = "../../simulation/testdata/late-restarts-aws.json"
)

// everyStepConsoleConfirmed is the operator's console report the
// every-step worlds are planned with: the two boot loops whose WinRM
// answers for a while after each boot. One assessment may catch either
// only on its sign-in screen (reachability failing, WinRM silent, one
// restart seen: unknown, left to a person); the plan then depends on the
// scaled clock, and with it which of race-the-boot's steps any run
// reaches. The report is what the plan tells an operator to give. It
// names the VMs by their world IDs: the sim face's VM IDs, the Azure
// face's resource names.
const everyStepConsoleConfirmed = "vm-00006 crash-loops, sign-in screen for a few minutes after each boot\nvm-00008 crash-loops, sign-in screen for a few minutes after each boot\n"

// killScale is the worlds' time scale: every point replays most of an
// incident, but a higher scale turns a CPU stall on a loaded machine into
// simulated hours (at 3000, one run in 164 under -race at load 40 paused
// on its canary brake; not reproduced at rest).
const killScale = 1500

// killParallel is how many points run at once: the processes mostly wait
// on the scaled clock.
const killParallel = 8

// serveSim serves a fresh world w describes (generated, or loaded from
// w.Scenario) on loopback at killScale, as `fixfleet sim serve` does.
func serveSim(t *testing.T, w simulation.WorldOptions) (string, *world.World) {
	t.Helper()
	s, err := simulation.Serve(simulation.Options{World: w, TimeScale: killScale}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s.URL(), s.World()
}

// killFace is a face the every-step world is served through, and the copy
// of the world for it.
type killFace struct {
	name     string // simulation.FaceSim, FaceAzure or FaceAWS
	scenario string
	// confirmed is the operator's console report for the world's plan
	// ("": none).
	confirmed string
}

// killFaces are TestKillAtEveryStep's faces, in order: a face kills only
// at the steps no face before it ran.
var killFaces = []killFace{
	{simulation.FaceSim, everyStepWorld, everyStepConsoleConfirmed},
	{simulation.FaceAzure, everyStepAzureWorld, everyStepConsoleConfirmed},
	{simulation.FaceAWS, lateRestartsAWSWorld, ""},
}

// killWorld is a fresh copy of a world served through a face, with what a
// fixfleet process needs to reach it. Close it.
type killWorld struct {
	*simulation.Served
	args []string // --sim-endpoint URL, or --config with the drill's fleet.yaml and --drill-clock URL
	env  []string // the drill's cloud credentials, as KEY=VALUE
}

// serve serves a fresh copy of f's world at killScale. A face other than
// the simulator's own is reached as a drill (`sim serve --drill-dir`)
// written to drill: its fleet.yaml and its environment, on the world's
// clock (--drill-clock). drill holds the
// world's secrets by design: keep it out of the secret-scanned outputs.
func (f killFace) serve(drill string) (*killWorld, error) {
	s, err := simulation.Serve(simulation.Options{Face: f.name, World: simulation.WorldOptions{Scenario: f.scenario}, TimeScale: killScale}, "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	if f.name == simulation.FaceSim {
		return &killWorld{Served: s, args: []string{"--sim-endpoint", s.URL()}}, nil
	}
	if err := s.WriteDrill(drill); err != nil {
		s.Close()
		return nil, err
	}
	env, err := readDrillEnv(filepath.Join(drill, "env"))
	if err != nil {
		s.Close()
		return nil, err
	}
	return &killWorld{Served: s, args: []string{"--config", filepath.Join(drill, "fleet.yaml"), "--drill-clock", s.URL()}, env: env}, nil
}

// readDrillEnv reads a drill's env file (`export KEY=VALUE` lines and
// comments) as KEY=VALUE pairs.
func readDrillEnv(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if kv, ok := strings.CutPrefix(line, "export "); ok {
			out = append(out, kv)
		}
	}
	return out, nil
}

// killPoint is one point of one step of one strategy.
type killPoint struct {
	strategy policy.Strategy
	step     string
	point    apply.Point
	readOnly bool // the step changes nothing: after-effect has no effect to be after
}

func (k killPoint) String() string { return k.stepKey() + "/" + string(k.point) }

// stepKey is the point's strategy/step, as the journal's steps name it.
func (k killPoint) stepKey() string { return string(k.strategy) + "/" + k.step }

// enumeratePoints lists, from the strategy registry, every (strategy,
// step, point): each strategy's steps for every VM of p (a step list may
// depend on the VM, e.g. unlock for BitLocker disks) and its abort, each
// with apply's four points.
func enumeratePoints(p *plan.Plan) []killPoint {
	var out []killPoint
	for _, u := range strategy.Default().All() {
		seen := map[string]bool{}
		add := func(name string, ro bool) {
			if seen[name] {
				return
			}
			seen[name] = true
			for _, pt := range apply.Points {
				out = append(out, killPoint{strategy: u.Name(), step: name, point: pt, readOnly: ro})
			}
		}
		for i := range p.VMs {
			for _, s := range u.Steps(p.VMs[i].Target(), p.Policy) {
				add(s.Name, s.ReadOnly)
			}
		}
		add(apply.StepAbort, false)
	}
	return out
}

// TestKillAtEveryStep kills a real `fixfleet apply` process exactly at
// every point of every step of every strategy (apply.Points: before the
// step is journaled as begun, after it is begun, after its side effect,
// after it has ended), each on a fresh copy of one world, then runs apply
// again to the end. Every point must leave the same end state as an
// uninterrupted run on that face, no invariant break, no leftover, and no
// step that ended ok run a second time. The faces run in turn (killFaces),
// each killing at the steps no face before it ran; points of steps no
// face reaches are listed and counted apart.
func TestKillAtEveryStep(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a few hundred apply processes")
	}
	if raceDetector {
		// Under -race every apply process is instrumented and its scaled
		// clock inflates: the points take half an hour on two cores
		// (TestKillAndResume still kills and resumes under -race). Run the
		// whole enumeration without it:
		//   go test ./cmd/fixfleet -run TestKillAtEveryStep -v
		t.Skip("too slow under -race; run: go test ./cmd/fixfleet -run TestKillAtEveryStep -v")
	}
	dir := secretscan.Dir(t) // journals and logs, scanned for the world's secrets after the package's tests
	var points []killPoint
	killedOn := map[string]string{} // strategy/step: the face that killed at its points
	total, breaks, leftovers := 0, 0, 0
	for _, f := range killFaces {
		fp, reached, tally := killAtEveryStepOn(t, f, filepath.Join(dir, f.name), killedOn)
		for _, k := range fp { // a step list may depend on the VM, so on the face's plan
			if !slices.Contains(points, k) {
				points = append(points, k)
			}
		}
		for s := range reached {
			if killedOn[s] == "" {
				killedOn[s] = f.name
			}
		}
		total, breaks, leftovers = total+tally.points, breaks+tally.breaks, leftovers+tally.leftovers
	}
	var lines []string
	unreachable := 0
	for _, k := range points {
		face := killedOn[k.stepKey()]
		note := " (killed through the " + face + " face)"
		switch {
		case face == "":
			note = " (unreachable: no face's world runs the step)"
			unreachable++
		case k.readOnly && k.point == apply.PointAfterEffect:
			note += " (read-only step: killed after it returned, no side effect)"
		}
		lines = append(lines, k.String()+note)
	}
	t.Logf("enumerated %d points, killed at %d, %d unreachable:\n%s", len(points), total, unreachable, strings.Join(lines, "\n"))
	t.Logf("%d points, %d invariant breaks, %d leftovers", total, breaks, leftovers)
	if unreachable > 0 {
		t.Errorf("%d of %d points unreachable: no face's uninterrupted run reached their steps", unreachable, len(points))
	}
	for _, u := range strategy.Default().All() {
		if killedOn[string(u.Name())+"/recheck"] == "" {
			t.Errorf("strategy %s never ran on any face: give one of killFaces' worlds a VM it repairs", u.Name())
		}
	}
}

// killTally counts one face's points and what went wrong at them.
type killTally struct{ points, breaks, leftovers int }

// killAtEveryStepOn plans f's world, runs apply on it uninterrupted, then
// kills and resumes apply on a fresh copy at every point of every step the
// uninterrupted run reached and that no earlier face killed at (done).
// It returns the enumerated points, the steps the uninterrupted run
// reached, and the tally.
func killAtEveryStepOn(t *testing.T, f killFace, dir string, done map[string]string) ([]killPoint, map[string]bool, killTally) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	drills := t.TempDir() // the drills' secrets, outside the scanned outputs
	w, err := f.serve(filepath.Join(drills, "plan"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	secretscan.Register(t, "winrm-password", w.World().GuestPassword().Reveal())
	for _, k := range w.World().EscrowedKeys() {
		secretscan.Register(t, "bitlocker-recovery-key", k.Reveal())
	}
	planFile := filepath.Join(dir, "plan.json")
	args := append(append([]string{"plan"}, w.args...), "--allow-data-loss", "--out-file", planFile, "--format", "csv")
	if f.confirmed != "" {
		confirmed := filepath.Join(dir, "console-confirmed.txt")
		if err := os.WriteFile(confirmed, []byte(f.confirmed), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--console-confirmed", confirmed)
	}
	if err := fixfleetProcess(filepath.Join(dir, "plan"), args, w.env...); err != nil {
		t.Fatalf("%s face: plan: %v", f.name, err)
	}
	p, _, err := plan.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range p.VMs {
		if v.Strategy == plan.Manual {
			t.Fatalf("%s face: the plan leaves %s to a person (%s): every VM of %s is meant to run a strategy", f.name, v.Key, strings.Join(v.Reasons, "; "), f.scenario)
		}
	}

	// The uninterrupted run.
	cleanDB := filepath.Join(dir, "clean.db")
	if err := fixfleetProcess(filepath.Join(dir, "clean"), applyArgs(planFile, cleanDB, w), w.env...); err != nil {
		t.Fatalf("%s face: uninterrupted apply: %v", f.name, err)
	}
	cleanAudit := w.World().Audit()
	if inv := simulation.InvariantsOf(cleanAudit); inv != (simulation.Invariants{}) || cleanAudit.Leftovers != 0 {
		t.Fatalf("%s face: the uninterrupted run breaks invariants %+v, leftovers %v", f.name, inv, cleanAudit.LeftoverList)
	}
	cleanEnd := endState(t, cleanDB, cleanAudit)
	reached := stepsRun(t, cleanDB)

	points := enumeratePoints(p)
	var run []killPoint
	for _, k := range points {
		if s := k.stepKey(); reached[s] && done[s] == "" {
			run = append(run, k)
		}
	}
	for s := range reached {
		if !strings.HasSuffix(s, "/"+apply.StepAbort) && !enumerated(points, s) {
			t.Errorf("%s face: step %s ran but the registry's strategies do not list it", f.name, s)
		}
	}
	planned := map[policy.Strategy]bool{}
	for _, v := range p.VMs {
		planned[v.Strategy] = true
		for _, s := range v.Fallbacks {
			planned[s] = true
		}
	}
	for _, u := range strategy.Default().All() {
		if planned[u.Name()] && !reached[string(u.Name())+"/recheck"] {
			t.Errorf("%s face: strategy %s is planned but never ran in %s: choose another world", f.name, u.Name(), f.scenario)
		}
	}

	type outcome struct {
		k        killPoint
		breaks   []string
		leftover []world.Leak
		problems []string
	}
	results := make([]outcome, len(run))
	sem := make(chan struct{}, killParallel)
	var wg sync.WaitGroup
	for i, k := range run {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			o := outcome{k: k}
			// A killed run may take another valid path than the
			// uninterrupted one and never reach k (race-the-boot's window
			// is a fraction of a second at killScale: a CPU stall on a
			// busy machine misses it); such a try is run again, twice at
			// most, on a fresh copy.
			var audit *world.Audit
			var end map[string]string
			var problems []string
			for try := range 3 {
				name := fmt.Sprintf("p%03d-%d", i, try)
				var reached bool
				audit, end, problems, reached = killAndResume(f, k, planFile, filepath.Join(dir, name), filepath.Join(drills, name))
				if reached {
					break
				}
			}
			o.problems = problems
			if audit != nil {
				o.breaks = simulation.Violations(*audit)
				o.leftover = audit.LeftoverList
				for vm, want := range cleanEnd {
					if got := end[vm]; got != want {
						o.problems = append(o.problems, fmt.Sprintf("%s: %s, uninterrupted %s", vm, got, want))
					}
				}
			}
			results[i] = o
		}()
	}
	wg.Wait()

	tally := killTally{points: len(run)}
	for _, o := range results {
		tally.breaks += len(o.breaks)
		tally.leftovers += len(o.leftover)
		for _, b := range o.breaks {
			t.Errorf("%s face, %s: invariant broken: %s", f.name, o.k, b)
		}
		for _, l := range o.leftover {
			t.Errorf("%s face, %s: leftover %s %s %s", f.name, o.k, l.Kind, l.ID, l.On)
		}
		for _, pr := range o.problems {
			t.Errorf("%s face, %s: %s", f.name, o.k, pr)
		}
	}
	t.Logf("%s face: %d points, %d invariant breaks, %d leftovers", f.name, tally.points, tally.breaks, tally.leftovers)
	return points, reached, tally
}

// applyArgs are the arguments of `fixfleet apply` of planFile on w with
// the journal db. --allow-stale: the plan was made on another copy of the
// world, whose clock started earlier.
func applyArgs(planFile, db string, w *killWorld) []string {
	return append(append([]string{"apply", planFile}, w.args...), "--journal", db, "--yes", "--allow-stale", "--format", "json")
}

// enumerated reports whether the strategy/step s is among points.
func enumerated(points []killPoint, s string) bool {
	for _, k := range points {
		if k.stepKey() == s {
			return true
		}
	}
	return false
}

// killAndResume runs apply on a fresh copy of f's world (its drill, if
// any, in drill) with the kill point k, checks that it died there, runs
// apply again to the end, and returns the world's audit, each VM's end
// state and what went wrong. audit is nil when the run could not be
// completed; reached is false when apply ended without reaching k. It
// runs outside the test goroutine.
func killAndResume(f killFace, k killPoint, planFile, dir, drill string) (audit *world.Audit, end map[string]string, problems []string, reached bool) {
	fail := func(format string, args ...any) (*world.Audit, map[string]string, []string, bool) {
		return nil, nil, []string{fmt.Sprintf(format, args...)}, true
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail("%v", err)
	}
	w, err := f.serve(drill)
	if err != nil {
		return fail("%v", err)
	}
	defer w.Close()
	db, killLog := filepath.Join(dir, "j.db"), filepath.Join(dir, "kill.log")
	args := applyArgs(planFile, db, w)

	err = fixfleetProcess(filepath.Join(dir, "killed"), args, append(w.env, envKillAt+"="+k.String(), envKillLog+"="+killLog)...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		a, e, p, _ := fail("apply was not killed at the point: %v", err)
		return a, e, p, false
	}
	if b, err := os.ReadFile(killLog); err != nil || !strings.Contains(string(b), " "+k.String()+" ") {
		return fail("apply was killed, but its log does not name the point: %q %v", b, err)
	}
	if err := fixfleetProcess(filepath.Join(dir, "resumed"), args, w.env...); err != nil {
		return fail("resumed apply: %v", err)
	}
	a := w.World().Audit()
	problems = repeatedSteps(db)
	end, err = endStateOf(db, a)
	if err != nil {
		problems = append(problems, err.Error())
	}
	return &a, end, problems, true
}

// fixfleetProcess runs the test binary as `fixfleet args...` with env added,
// and keeps its output in out+".stdout" and out+".stderr". The error names
// the exit and the end of stderr.
func fixfleetProcess(out string, args []string, env ...string) error {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), envRunMain+"=1"), env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if werr := errors.Join(os.WriteFile(out+".stdout", []byte(stdout.String()), 0o600),
		os.WriteFile(out+".stderr", []byte(stderr.String()), 0o600)); werr != nil && err == nil {
		return werr
	}
	if err != nil {
		s := stderr.String()
		if len(s) > 2000 {
			s = s[len(s)-2000:]
		}
		return fmt.Errorf("%w: %s", err, s)
	}
	return nil
}

// stepsRun lists the strategy/step pairs the journal holds.
func stepsRun(t *testing.T, db string) map[string]bool {
	t.Helper()
	d := readJournal(t, db)
	if d == nil {
		t.Fatalf("no journal %s", db)
	}
	defer d.Close()
	rows, err := d.QueryContext(context.Background(), `SELECT DISTINCT strategy, step FROM steps`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var s, st string
		if err := rows.Scan(&s, &st); err != nil {
			t.Fatal(err)
		}
		out[s+"/"+st] = true
	}
	return out
}

// repeatedSteps lists the steps of one VM and strategy that ended ok more
// than once (the executor ran again a step whose end was journaled), or
// why the journal could not be read.
func repeatedSteps(db string) []string {
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		return []string{err.Error()}
	}
	defer d.Close()
	rows, err := d.QueryContext(context.Background(),
		`SELECT vm_key, strategy, step, COUNT(*) FROM steps WHERE status = ? GROUP BY vm_key, strategy, step HAVING COUNT(*) > 1`,
		string(journal.StepOK))
	if err != nil {
		return []string{err.Error()}
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var vm, s, st string
		var n int
		if err := rows.Scan(&vm, &s, &st, &n); err != nil {
			return append(out, err.Error())
		}
		out = append(out, fmt.Sprintf("step ran again after it ended ok: %s %s/%s ended ok %d times", vm, s, st, n))
	}
	sort.Strings(out)
	return append(out, errs(rows.Err())...)
}

// errs is err as a list of texts (none for nil).
func errs(err error) []string {
	if err == nil {
		return nil
	}
	return []string{err.Error()}
}
