package main

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/fixfleet/fixfleet/inventory/journal"
	"github.com/fixfleet/fixfleet/providers/sim/world"
	"github.com/fixfleet/fixfleet/remediate/apply"
	"github.com/fixfleet/fixfleet/remediate/plan"
	"github.com/fixfleet/fixfleet/simulation"
)

// serveWorld serves a fresh copy of the world both runs of
// TestKillAndResume act on, on loopback, as `fixfleet sim serve` does, and
// returns its URL and the world.
func serveWorld(t *testing.T) (string, *world.World) {
	t.Helper()
	return serveSim(t, simulation.WorldOptions{VMs: 30, Seed: 21, Mix: "boot-loop=35,stuck=15,safe-mode=25,healthy=25"})
}

// TestKillAndResume kills a real `fixfleet apply` process with SIGKILL at
// many points spread over every strategy's steps (the first time each
// strategy's step is seen begun, and again ended, in the journal), then runs
// apply again, until it is done. The end state must equal an uninterrupted
// run's of the same plan on an identical world, and every invariant counter
// must stay 0.
func TestKillAndResume(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts a process a few dozen times")
	}
	dir := t.TempDir()
	url, w := serveWorld(t)
	planFile := filepath.Join(dir, "plan.json")
	if code, _, stderr := runCLI(t, "plan", "--sim-endpoint", url, "--allow-data-loss", "--out-file", planFile, "-o", "csv"); code != 0 {
		t.Fatalf("plan: exit %d: %s", code, stderr)
	}
	p, _, err := plan.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	planned := map[string]bool{}
	for _, v := range p.VMs {
		planned[string(v.Strategy)] = true
		for _, f := range v.Fallbacks {
			planned[string(f)] = true
		}
	}
	for _, s := range []string{"reboot-retry", "delete-file", "helper-mount", "restore-backup"} {
		if !planned[s] {
			t.Fatalf("the plan uses no %s, even as a fallback: choose another world for this test (%v)", s, planned)
		}
	}

	db := filepath.Join(dir, "j.db")
	killed := map[string]bool{} // "strategy/step/status" points killed at
	var kills []string
	// Each round kills at a point not killed before, and this test's points
	// are each step's begun and ended: the rounds are bounded by the steps
	// of the strategies the plan may run.
	steps := map[string]bool{}
	for _, k := range enumeratePoints(p) {
		steps[k.stepKey()] = true
	}
	for round := 0; ; round++ {
		if round > 2*len(steps) {
			t.Fatalf("apply did not finish after %d restarts, more than the %d steps' begun and ended points", round, len(steps))
		}
		done, point := applyUntilNewPoint(t, url, planFile, db, killed)
		if done {
			break
		}
		killed[point] = true
		kills = append(kills, point)
	}
	strategies := map[string]bool{}
	for _, k := range kills {
		strategies[strings.SplitN(k, "/", 2)[0]] = true
	}
	t.Logf("killed %d times: %s", len(kills), strings.Join(kills, ", "))
	if len(kills) < 20 {
		t.Errorf("killed only %d times; want 20 or more", len(kills))
	}
	ran := strategiesRun(t, db)
	for _, s := range []string{"reboot-retry", "delete-file", "helper-mount"} {
		if !ran[s] {
			t.Errorf("no %s step ran at all", s)
		}
	}
	for s := range ran {
		if !strategies[s] {
			t.Errorf("%s ran but was never killed during one of its steps", s)
		}
	}

	audit := w.Audit()
	if inv := simulation.InvariantsOf(audit); inv != (simulation.Invariants{}) {
		t.Errorf("invariants after the killed run: %+v\n%s", inv, strings.Join(simulation.Violations(audit), "\n"))
	}
	killedEnd := endState(t, db, audit)

	// The same plan, uninterrupted, on an identical world.
	url2, w2 := serveWorld(t)
	db2 := filepath.Join(dir, "j2.db")
	if code, _, stderr := runCLI(t, "apply", planFile, "--sim-endpoint", url2, "--journal", db2, "--yes", "--allow-stale", "-o", "json"); code != 0 {
		t.Fatalf("uninterrupted apply: exit %d: %s", code, stderr)
	}
	cleanEnd := endState(t, db2, w2.Audit())
	// Which strategy fixed a VM may differ: every kill during reboot-retry
	// may cost the VM one more boot (a restart is not idempotent), and a
	// boot-looping VM fetches the fix on its r-th boot, so the killed run
	// may find it recovered where the uninterrupted one had to mount its
	// disk. Fixed, healthy or left to a person, and the truth, may not.
	fixedBy := regexp.MustCompile(`^fixed by [a-z-]+`)
	var diff []string
	for vm, want := range cleanEnd {
		if got := killedEnd[vm]; fixedBy.ReplaceAllString(got, "fixed") != fixedBy.ReplaceAllString(want, "fixed") {
			diff = append(diff, fmt.Sprintf("%s: killed run %s, uninterrupted %s", vm, got, want))
		}
	}
	sort.Strings(diff)
	if len(diff) > 0 {
		t.Errorf("end states differ:\n%s", strings.Join(diff, "\n"))
	}
}

// endState is each VM's outcome: its true condition now and whether it was
// repaired (or healthy) or left to a person.
func endState(t *testing.T, db string, a world.Audit) map[string]string {
	t.Helper()
	out, err := endStateOf(db, a)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// endStateOf is endState's work; it may run outside the test goroutine.
func endStateOf(db string, a world.Audit) (map[string]string, error) {
	ctx := context.Background()
	j, err := journal.Open(ctx, db)
	if err != nil {
		return nil, err
	}
	defer j.Close()
	res, err := apply.Status(ctx, j, "")
	if err != nil {
		return nil, err
	}
	if res.Status != apply.RunDone {
		return nil, fmt.Errorf("run %s is %s", res.RunID, res.Status)
	}
	return simulation.EndStates(res.VMs, a.Truth), nil
}

// applyUntilNewPoint starts `fixfleet apply` and watches its journal. It
// SIGKILLs the process as soon as a step point (strategy/step/status) not in
// killed appears, and returns that point; or it returns done when apply
// finishes by itself.
func applyUntilNewPoint(t *testing.T, url, planFile, db string, killed map[string]bool) (done bool, point string) {
	t.Helper()
	watermark := maxStepID(t, db)
	cmd := exec.Command(os.Args[0], "apply", planFile, "--sim-endpoint", url, "--journal", db, "--yes", "--allow-stale", "-o", "json")
	cmd.Env = append(os.Environ(), envRunMain+"=1")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("apply exited: %v: %s", err, stderr.String())
			}
			return true, ""
		case <-tick.C:
		}
		if pt := newPoint(t, db, watermark, killed); pt != "" {
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-exited
			return false, pt
		}
	}
}

// readJournal opens the journal file read-only, or returns nil before
// apply has created it.
func readJournal(t *testing.T, db string) *sql.DB {
	if _, err := os.Stat(db); err != nil {
		return nil
	}
	d, err := sql.Open("sqlite", "file:"+db+"?mode=ro&_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// strategiesRun lists the strategies that have steps in the journal.
func strategiesRun(t *testing.T, db string) map[string]bool {
	d := readJournal(t, db)
	if d == nil {
		t.Fatal("no journal")
	}
	defer d.Close()
	rows, err := d.QueryContext(context.Background(), `SELECT DISTINCT strategy FROM steps`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out[s] = true
	}
	return out
}

func maxStepID(t *testing.T, db string) int64 {
	d := readJournal(t, db)
	if d == nil {
		return 0
	}
	defer d.Close()
	var id sql.NullInt64
	if err := d.QueryRowContext(context.Background(), `SELECT MAX(id) FROM steps`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	return id.Int64
}

// newPoint returns the first step point recorded after watermark that is
// not in killed, or "".
func newPoint(t *testing.T, db string, watermark int64, killed map[string]bool) string {
	d := readJournal(t, db)
	if d == nil {
		return ""
	}
	defer d.Close()
	rows, err := d.QueryContext(context.Background(), `SELECT strategy, step, status FROM steps WHERE id > ? ORDER BY id`, watermark)
	if err != nil {
		return "" // schema not created yet
	}
	defer rows.Close()
	for rows.Next() {
		var strategy, step, status string
		if err := rows.Scan(&strategy, &step, &status); err != nil {
			t.Fatal(err)
		}
		if status != "begun" {
			status = "ended"
		}
		if pt := strategy + "/" + step + "/" + status; !killed[pt] {
			return pt
		}
	}
	return ""
}
