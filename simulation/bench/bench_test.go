package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/rusage"
	"github.com/fixfleet/fixfleet/simulation"
	"github.com/fixfleet/fixfleet/simulation/simtest"
)

// Defaults when the variables are unset: small, so that CI runs it fast.
const (
	defaultVMs  = 40
	defaultSeed = 1
	// serialSample is the most simulated apply time the serial baseline
	// runs before its makespan is extrapolated.
	serialSample = 24 * time.Hour
)

// optionsFromEnv reads the FIXFLEET_BENCH_* variables.
func optionsFromEnv() (Options, string, error) {
	o := Options{VMs: defaultVMs, Seed: defaultSeed, Provider: simulation.FaceSim}
	var errs []error
	intVar := func(name string, dst *int) {
		if v := os.Getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 {
				errs = append(errs, fmt.Errorf("%s=%q: want a whole number >= 1", name, v))
			}
			*dst = n
		}
	}
	rate := func(name string, dst *float64) {
		if v := os.Getenv(name); v != "" {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil || f < 0 || f > 1 {
				errs = append(errs, fmt.Errorf("%s=%q: want a share between 0 and 1", name, v))
			}
			*dst = f
		}
	}
	intVar("FIXFLEET_BENCH_VMS", &o.VMs)
	intVar("FIXFLEET_BENCH_CONCURRENCY", &o.Concurrency)
	if v := os.Getenv("FIXFLEET_BENCH_SEED"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("FIXFLEET_BENCH_SEED=%q: want a whole number", v))
		}
		o.Seed = n
	}
	if v := os.Getenv("FIXFLEET_BENCH_PROVIDER"); v != "" {
		o.Provider = v
	}
	rate("FIXFLEET_BENCH_FAULT_RATE", &o.FaultRate)
	rate("FIXFLEET_BENCH_DROP_BEFORE", &o.DropBefore)
	rate("FIXFLEET_BENCH_DROP_AFTER", &o.DropAfter)
	o.Mix = os.Getenv("FIXFLEET_BENCH_MIX")
	o.Journal = os.Getenv("FIXFLEET_BENCH_JOURNAL")
	o.JournalDir = DefaultJournalDir(func(p string) bool { st, err := os.Stat(p); return err == nil && st.IsDir() })
	if v, ok := os.LookupEnv("FIXFLEET_BENCH_JOURNAL_DIR"); ok {
		o.JournalDir = v
	}
	if len(errs) > 0 {
		return o, "", fmt.Errorf("%v", errs)
	}
	return o, os.Getenv("FIXFLEET_BENCH_OUT"), nil
}

// TestIncidentBenchmark is the incident benchmark:
//
//	FIXFLEET_BENCH_VMS=N FIXFLEET_BENCH_SEED=S FIXFLEET_BENCH_PROVIDER=sim|sakura|aws \
//	FIXFLEET_BENCH_OUT=FILE go test -run '^TestIncidentBenchmark$' -count=1 ./...
//
// (also FIXFLEET_BENCH_FAULT_RATE, _DROP_BEFORE, _DROP_AFTER and _MIX, as
// demo's flags, FIXFLEET_BENCH_CONCURRENCY, the policy's concurrency
// in total and per account, and FIXFLEET_BENCH_JOURNAL and
// FIXFLEET_BENCH_JOURNAL_DIR, the kept journal and where the others go:
// see DefaultJournalDir). It runs the incident on virtual time and, at the
// same time in a child process, each baseline on a fresh world of the same
// seed, and writes Report as JSON to FILE
// (unset: the test log). It fails when the incident breaks a promise
// (a VM neither healthy nor flagged, an invariant counter above 0) or
// beats the world's lower bound.
func TestIncidentBenchmark(t *testing.T) {
	o, out, err := optionsFromEnv()
	if err != nil {
		t.Fatal(err)
	}
	if to := os.Getenv(baselinesToVar); to != "" {
		writeJSON(t, to, runBaselines(t, o))
		return
	}
	// The baselines run at once in a child process of this test binary,
	// while the main run runs here: the machine's two cores are both used,
	// and this process's CPU time and heap are the main run's alone.
	baselines := startBaselines(t)
	heap := startHeapSampler()
	cpu0, wall0 := rusage.CPUSeconds(), time.Now()
	var r Report
	simtest.InBubble(t, o.Incident().Options, func(t *testing.T, b *simulation.Backend) {
		if r, err = Measure(context.Background(), b, o); err != nil {
			t.Fatalf("incident: %v", err)
		}
	})
	r.CPUSec, r.WallSec = rusage.CPUSeconds()-cpu0, time.Since(wall0).Seconds()
	r.PeakHeapMB = heap()
	if t.Failed() {
		return
	}
	if r.Steps > 0 {
		r.CPUMsPerVMStep = 1000 * r.CPUSec / float64(r.Steps)
	}
	bl, err := baselines.wait()
	if err != nil {
		t.Fatal(err)
	}
	r.Baselines, r.BaselinesCPUSec, r.BaselinesWallSec = bl.results, bl.cpuSec, bl.wallSec
	writeJSON(t, out, r)
	for _, p := range r.Problems {
		t.Errorf("the incident broke a promise: %s", p)
	}
	if r.MakespanSec < r.LowerBoundSec {
		t.Errorf("makespan %.0fs beats the world's lower bound %.0fs: the bound or the world is wrong", r.MakespanSec, r.LowerBoundSec)
	}
	if r.Fixed == 0 {
		t.Errorf("nothing repaired: the benchmark measured nothing")
	}
	if r.EstimateSec <= 0 || r.ApplySec <= 0 || r.ApplySec > r.MakespanSec {
		t.Errorf("estimate %.0fs, apply %.0fs of a %.0fs makespan: the plan's estimate or the apply's time was not read", r.EstimateSec, r.ApplySec, r.MakespanSec)
	}
	t.Logf("%d VMs through %s: makespan %s, lower bound %s (ratio %.2f), serial %s, helper_per_vm %s; apply %s, estimated %s (%+.0f%%); wall %.1fs",
		r.VMs, r.Provider, secs(r.MakespanSec), secs(r.LowerBoundSec), r.Ratio,
		secs(r.Baselines["serial"].MakespanSec), secs(r.Baselines["helper_per_vm"].MakespanSec),
		secs(r.ApplySec), secs(r.EstimateSec), 100*r.EstimateError, r.WallSec)
}

func secs(s float64) string {
	return time.Duration(s * float64(time.Second)).Round(time.Second).String()
}

// startHeapSampler samples the live heap every 50 ms (outside any bubble)
// until the returned function is called, which returns the peak in MiB.
func startHeapSampler() func() float64 {
	done, peak := make(chan struct{}), make(chan float64)
	go func() {
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		most := uint64(0)
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			most = max(most, s[0].Value.Uint64())
			select {
			case <-done:
				peak <- float64(most) / (1 << 20)
				return
			case <-t.C:
			}
		}
	}()
	return func() float64 { close(done); return <-peak }
}

// baselinesToVar, when set, makes TestIncidentBenchmark run only the
// baselines and write their results, as JSON, to the file it names: the
// child process's role (see startBaselines).
const baselinesToVar = "FIXFLEET_BENCH_BASELINES_TO"

// runBaselines runs every baseline at once, each in a bubble of its own
// (their worlds share nothing), and returns their results by name.
func runBaselines(t *testing.T, o Options) map[string]BaselineResult {
	var mu sync.Mutex
	results := map[string]BaselineResult{}
	t.Run("baselines", func(t *testing.T) {
		for _, bl := range Baselines(serialSample) {
			t.Run(bl.Name, func(t *testing.T) {
				t.Parallel()
				wall0 := time.Now() // real time: outside the bubble
				var res BaselineResult
				simtest.InBubble(t, bl.Incident(o).Options, func(t *testing.T, b *simulation.Backend) {
					var err error
					if res, err = RunBaseline(context.Background(), b, o, bl); err != nil {
						t.Fatal(err)
					}
				})
				res.WallSec = time.Since(wall0).Seconds()
				t.Logf("baseline %s: wall %.1fs", bl.Name, res.WallSec)
				mu.Lock()
				results[bl.Name] = res
				mu.Unlock()
			})
		}
	})
	return results
}

// childBaselines is the baselines' run in a child process.
type childBaselines struct {
	cmd   *exec.Cmd
	out   bytes.Buffer // the child's test log
	to    string       // where the child writes its results
	wall0 time.Time
}

// baselinesDone is what the child process measured, and its CPU time.
type baselinesDone struct {
	results         map[string]BaselineResult
	cpuSec, wallSec float64
}

// startBaselines starts this test binary again, as a child process that
// runs only the baselines (same FIXFLEET_BENCH_* variables, so the same
// world and options). The child is killed if the test ends before wait.
func startBaselines(t *testing.T) *childBaselines {
	c := &childBaselines{to: filepath.Join(t.TempDir(), "baselines.json")}
	args := []string{"-test.run=^TestIncidentBenchmark$", "-test.count=1"}
	if d, ok := t.Deadline(); ok {
		args = append(args, "-test.timeout="+time.Until(d).Round(time.Second).String())
	}
	c.cmd = exec.Command(os.Args[0], args...)
	c.cmd.Env = append(os.Environ(), baselinesToVar+"="+c.to)
	c.cmd.Stdout, c.cmd.Stderr = &c.out, &c.out
	c.wall0 = time.Now()
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start the baselines' process: %v", err)
	}
	t.Cleanup(func() {
		if c.cmd.ProcessState == nil {
			_ = c.cmd.Process.Kill()
			_ = c.cmd.Wait()
		}
	})
	return c
}

// wait waits for the child and reads its results. An error carries the
// child's log.
func (c *childBaselines) wait() (baselinesDone, error) {
	err := c.cmd.Wait()
	d := baselinesDone{wallSec: time.Since(c.wall0).Seconds()}
	if err != nil {
		return d, fmt.Errorf("the baselines' process: %v:\n%s", err, c.out.String())
	}
	d.cpuSec = (c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()).Seconds()
	doc, err := os.ReadFile(c.to)
	if err != nil {
		return d, fmt.Errorf("the baselines' results: %v; the process's log:\n%s", err, c.out.String())
	}
	if err := json.Unmarshal(doc, &d.results); err != nil {
		return d, fmt.Errorf("the baselines' results %s: %v", c.to, err)
	}
	return d, nil
}

// writeJSON writes v as indented JSON to the file named out, or to the
// test log when out is "".
func writeJSON(t *testing.T, out string, v any) {
	doc, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if out == "" {
		t.Logf("%s", doc)
		return
	}
	if err := os.WriteFile(out, append(doc, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}
