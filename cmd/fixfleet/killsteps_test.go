package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// everyStepWorld is a six-VM world in which every strategy of the sim face
// runs (copy-and-swap needs Azure's OS-disk swap: see the Azure copy,
// every-step-azure.json, which TestAfterCommitEveryMutation runs): a
// healthy VM; a boot loop that recovers after a restart (reboot-retry); a
// BitLocker boot loop that never recovers (reboot-retry fails, helper-mount
// repairs it with its unlock step); a boot loop with damaged hives
// (reboot-retry fails, helper-mount's check-hives fails and aborts,
// restore-backup repairs it); a VM in safe mode (delete-file); a boot loop
// that never recovers but whose WinRM answers for 180 s after each boot
// (reboot-retry fails, race-the-boot repairs it).
const everyStepWorld = "../../simulation/testdata/every-step.json"

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

// killPoint is one point of one step of one strategy.
type killPoint struct {
	strategy policy.Strategy
	step     string
	point    apply.Point
	readOnly bool // the step changes nothing: after-effect has no effect to be after
}

func (k killPoint) String() string { return string(k.strategy) + "/" + k.step + "/" + string(k.point) }

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
// uninterrupted run, no invariant break, no leftover, and no step that
// ended ok run a second time. Points of steps the world never reaches are
// listed and counted apart.
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
	url, w := serveSim(t, simulation.WorldOptions{Scenario: everyStepWorld})
	secretscan.Register(t, "winrm-password", w.GuestPassword().Reveal())
	for _, k := range w.EscrowedKeys() {
		secretscan.Register(t, "bitlocker-recovery-key", k.Reveal())
	}
	planFile := filepath.Join(dir, "plan.json")
	if code, _, stderr := runCLI(t, "plan", "--sim-endpoint", url, "--allow-data-loss", "-o", planFile, "--format", "csv"); code != 0 {
		t.Fatalf("plan: exit %d: %s", code, stderr)
	}
	p, _, err := plan.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}

	// The uninterrupted run.
	cleanDB := filepath.Join(dir, "clean.db")
	if code, _, stderr := runCLI(t, "apply", planFile, "--sim-endpoint", url, "--journal", cleanDB, "--yes", "--allow-stale", "--format", "json"); code != 0 {
		t.Fatalf("uninterrupted apply: exit %d: %s", code, stderr)
	}
	cleanAudit := w.Audit()
	if inv := simulation.InvariantsOf(cleanAudit); inv != (simulation.Invariants{}) || cleanAudit.Leftovers != 0 {
		t.Fatalf("the uninterrupted run breaks invariants %+v, leftovers %v", inv, cleanAudit.LeftoverList)
	}
	cleanEnd := endState(t, cleanDB, cleanAudit)
	reached := stepsRun(t, cleanDB)

	points := enumeratePoints(p)
	var run, unreachable []killPoint
	for _, k := range points {
		if reached[string(k.strategy)+"/"+k.step] {
			run = append(run, k)
		} else {
			unreachable = append(unreachable, k)
		}
	}
	for s := range reached {
		if !strings.HasSuffix(s, "/"+apply.StepAbort) && !enumerated(points, s) {
			t.Errorf("step %s ran but the registry's strategies do not list it", s)
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
			audit, end, problems := killAndResume(k, planFile, filepath.Join(dir, fmt.Sprintf("p%03d", i)))
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

	breaks, leftovers := 0, 0
	for _, o := range results {
		breaks += len(o.breaks)
		leftovers += len(o.leftover)
		for _, b := range o.breaks {
			t.Errorf("%s: invariant broken: %s", o.k, b)
		}
		for _, l := range o.leftover {
			t.Errorf("%s: leftover %s %s %s", o.k, l.Kind, l.ID, l.On)
		}
		for _, pr := range o.problems {
			t.Errorf("%s: %s", o.k, pr)
		}
	}
	var lines []string
	for _, k := range points {
		note := ""
		switch {
		case !reached[string(k.strategy)+"/"+k.step]:
			note = " (unreachable: this world never runs the step)"
		case k.readOnly && k.point == apply.PointAfterEffect:
			note = " (read-only step: killed after it returned, no side effect)"
		}
		lines = append(lines, k.String()+note)
	}
	t.Logf("enumerated %d points, killed at %d, %d unreachable:\n%s", len(points), len(run), len(unreachable), strings.Join(lines, "\n"))
	t.Logf("%d points, %d invariant breaks, %d leftovers", len(run), breaks, leftovers)
	planned := map[policy.Strategy]bool{}
	for _, v := range p.VMs {
		planned[v.Strategy] = true
		for _, f := range v.Fallbacks {
			planned[f] = true
		}
	}
	for _, u := range strategy.Default().All() {
		switch s := u.Name(); {
		case reached[string(s)+"/recheck"]:
		case planned[s]:
			t.Errorf("strategy %s is planned but never ran in %s: choose another world", s, everyStepWorld)
		default:
			t.Logf("strategy %s is unreachable: the plan never chooses it on this face (it needs %v)", s, u.Needs().Capabilities)
		}
	}
}

// enumerated reports whether the strategy/step s is among points.
func enumerated(points []killPoint, s string) bool {
	for _, k := range points {
		if string(k.strategy)+"/"+k.step == s {
			return true
		}
	}
	return false
}

// killAndResume runs apply on a fresh world with the kill point k, checks
// that it died there, runs apply again to the end, and returns the world's
// audit, each VM's end state and what went wrong. audit is nil when the
// run could not be completed. It runs outside the test goroutine.
func killAndResume(k killPoint, planFile, dir string) (*world.Audit, map[string]string, []string) {
	fail := func(format string, args ...any) (*world.Audit, map[string]string, []string) {
		return nil, nil, []string{fmt.Sprintf(format, args...)}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fail("%v", err)
	}
	s, err := simulation.Serve(simulation.Options{World: simulation.WorldOptions{Scenario: everyStepWorld}, TimeScale: killScale}, "127.0.0.1:0")
	if err != nil {
		return fail("%v", err)
	}
	defer s.Close()
	db, killLog := filepath.Join(dir, "j.db"), filepath.Join(dir, "kill.log")
	// --allow-stale: the plan was made on another copy of the world, whose
	// clock started earlier.
	args := []string{"apply", planFile, "--sim-endpoint", s.URL(), "--journal", db, "--yes", "--allow-stale", "--format", "json"}

	err = applyProcess(filepath.Join(dir, "killed"), args, envKillAt+"="+k.String(), envKillLog+"="+killLog)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		return fail("apply was not killed at the point: %v", err)
	}
	if b, err := os.ReadFile(killLog); err != nil || !strings.Contains(string(b), " "+k.String()+" ") {
		return fail("apply was killed, but its log does not name the point: %q %v", b, err)
	}
	if err := applyProcess(filepath.Join(dir, "resumed"), args); err != nil {
		return fail("resumed apply: %v", err)
	}
	a := s.World().Audit()
	problems := repeatedSteps(db)
	end, err := endStateOf(db, a)
	if err != nil {
		problems = append(problems, err.Error())
	}
	return &a, end, problems
}

// applyProcess runs the test binary as `fixfleet args...` with env added,
// and keeps its output in out+".stdout" and out+".stderr". The error names
// the exit and the end of stderr.
func applyProcess(out string, args []string, env ...string) error {
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
