//go:build unix

package journal

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// faultChildEnv makes the test binary act as one of the child processes
// of the journal fault tests: "<mode> <journal path> <argument>".
const faultChildEnv = "FIXFLEET_JOURNAL_FAULT_CHILD"

// TestFaultChild is not a test: the fault tests run it in a child process.
// It reports on standard output, one line per event.
func TestFaultChild(t *testing.T) {
	spec := os.Getenv(faultChildEnv)
	if spec == "" {
		t.Skip("helper process for the journal fault tests")
	}
	f := strings.Fields(spec)
	mode, path, arg := f[0], f[1], f[2]
	n, _ := strconv.Atoi(arg)
	ctx := context.Background()
	die := func(err error) {
		fmt.Println("error", strings.ReplaceAll(err.Error(), "\n", " "))
		os.Exit(0)
	}
	j, err := Open(ctx, path)
	if err != nil {
		die(err)
	}
	switch mode {
	case "steps":
		// Steps forever, each reported as soon as its write returned;
		// even steps end, odd ones stay begun, as if killed mid-effect.
		// With n > 0, no file of this process may grow past n bytes, and
		// SIGXFSZ is ignored so that writes fail with EFBIG, as on a full
		// disk.
		if n > 0 {
			signal.Ignore(syscall.SIGXFSZ)
			lim := syscall.Rlimit{Cur: uint64(n), Max: uint64(n)}
			if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &lim); err != nil {
				die(err)
			}
		}
		for i := 1; ; i++ {
			id, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "vm1", Step: "s" + strconv.Itoa(i), Attempt: 1, At: at(i)})
			if err != nil {
				die(err)
			}
			fmt.Println("begun", id)
			if i%2 == 0 {
				if err := j.EndStep(ctx, id, StepResult{Status: StepOK, Facts: map[string]string{"n": strconv.Itoa(i)}, At: at(i)}); err != nil {
					die(err)
				}
				fmt.Println("ended", id)
			}
		}
	case "big-writes":
		// Transactions of walKeys large facts each, from write n on,
		// forever: a SIGKILL lands in the middle of one.
		for i := n; ; i++ {
			if err := j.PutFacts(ctx, "r1", "vm1", walFacts(i)); err != nil {
				die(err)
			}
			fmt.Println("acked", i)
		}
	case "lock":
		// Take the apply lock when told to on stdin, say whether it was
		// won, hold it until stdin closes.
		in := bufio.NewReader(os.Stdin)
		if _, err := in.ReadString('\n'); err != nil {
			die(err)
		}
		release, err := j.Lock(ctx, CurrentOwner())
		var le *LockedError
		switch {
		case errors.As(err, &le):
			fmt.Println("locked", le.Holder.PID)
		case err != nil:
			die(err)
		default:
			fmt.Println("won", os.Getpid())
		}
		_, _ = io.Copy(io.Discard, in)
		if release != nil {
			if err := release(); err != nil {
				die(err)
			}
		}
		fmt.Println("done")
	}
	t.Fatalf("unknown child mode %q", mode)
}

// child starts the test binary as a fault child.
func child(t *testing.T, mode, path string, arg int) (*exec.Cmd, *bufio.Scanner, io.WriteCloser) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %d", faultChildEnv, mode, path, arg))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, bufio.NewScanner(out), stdin
}

// runJournal makes a journal holding run r1, closed, for a child to open;
// it skips in -short, as the tests that use it start processes.
func runJournal(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("starts processes; skipped in -short")
	}
	path := filepath.Join(t.TempDir(), "fixfleet.db")
	j := openAt(t, path)
	mustRun(t, j, "r1")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// readSteps reads a "steps" child's reports until it has max steps (0: no
// limit) or its output ends: the state of each step it acknowledged, and
// the error it stopped on, if any.
func readSteps(out *bufio.Scanner, max int) (acked map[StepID]StepStatus, failure string) {
	acked = map[StepID]StepStatus{}
	for (max == 0 || len(acked) < max) && out.Scan() {
		f := strings.SplitN(out.Text(), " ", 2)
		if len(f) < 2 {
			return acked, "unexpected report: " + out.Text()
		}
		id, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "begun":
			acked[StepID(id)] = StepBegun
		case "ended":
			acked[StepID(id)] = StepOK
		default:
			return acked, f[1]
		}
	}
	return acked, failure
}

// checkIntegrity runs SQLite's full integrity check on j's file.
func checkIntegrity(t *testing.T, j *Journal) {
	t.Helper()
	var check string
	if err := j.r.QueryRowContext(context.Background(), `PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
}

// walKeys facts of walValue bytes each make one write of about 200 KB:
// many WAL frames, so that a kill lands inside one.
const (
	walKeys  = 8
	walValue = 24 << 10
)

func walFacts(i int) map[string]string {
	m := make(map[string]string, walKeys)
	for k := range walKeys {
		m[fmt.Sprintf("w%06d-k%d", i, k)] = strings.Repeat(string(rune('a'+(i+k)%26)), walValue)
	}
	return m
}

// TestKillDuringWALWrite kills a process that writes large transactions
// without pause (SIGKILL, so mostly in the middle of one), three times on
// the same journal. After each kill the journal opens, passes SQLite's
// integrity check, holds every write the process saw acknowledged, and
// holds every other write entirely or not at all.
func TestKillDuringWALWrite(t *testing.T) {
	ctx := context.Background()
	path := runJournal(t)
	next, acked := 0, map[int]bool{}
	for round := range 3 {
		cmd, out, _ := child(t, "big-writes", path, next)
		for n := 0; n < 5 && out.Scan(); {
			f := strings.Fields(out.Text())
			if f[0] != "acked" {
				t.Fatalf("child: %s", out.Text())
			}
			i, _ := strconv.Atoi(f[1])
			acked[i] = true
			n++
		}
		_ = cmd.Process.Kill()
		for out.Scan() { // acknowledgements already in the pipe
			if f := strings.Fields(out.Text()); f[0] == "acked" {
				i, _ := strconv.Atoi(f[1])
				acked[i] = true
			}
		}
		_ = cmd.Wait()

		j := openAt(t, path)
		checkIntegrity(t, j)
		hist, err := j.FactHistory(ctx, "r1", "vm1")
		if err != nil {
			t.Fatal(err)
		}
		got := map[int]int{} // write -> keys present
		for _, fct := range hist {
			i, _ := strconv.Atoi(strings.TrimPrefix(fct.Key[:7], "w"))
			if want := walFacts(i)[fct.Key]; fct.Value != want {
				t.Fatalf("round %d: fact %s holds %d bytes, not what was written", round, fct.Key, len(fct.Value))
			}
			got[i]++
		}
		for i := range acked {
			if got[i] != walKeys {
				t.Errorf("round %d: acknowledged write %d has %d of %d facts", round, i, got[i], walKeys)
			}
		}
		last := next
		for i, n := range got {
			if n != walKeys {
				t.Errorf("round %d: write %d is partly there: %d of %d facts", round, i, n, walKeys)
			}
			last = max(last, i+1)
		}
		t.Logf("round %d: %d writes acknowledged, %d in the journal", round, len(acked), len(got))
		if err := j.Close(); err != nil {
			t.Fatal(err)
		}
		next = last
	}
}

// TestDamagedJournal: a journal file cut short or with a damaged page is
// refused at Open with an error that names the file, says it is damaged
// and what to do; the file is left exactly as it was (no reset, nothing
// of what it holds is lost to a repair attempt).
func TestDamagedJournal(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, path string)
	}{
		{"cut to half its size", func(t *testing.T, path string) {
			st, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, st.Size()/2); err != nil {
				t.Fatal(err)
			}
		}},
		{"a page overwritten", func(t *testing.T, path string) {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.WriteAt(bytes.Repeat([]byte{0x5a}, 4096), 3*4096); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "fixfleet.db")
			j := openAt(t, path)
			mustRun(t, j, "r1")
			for i := range 300 {
				id, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "vm" + strconv.Itoa(i), Step: "snapshot", Attempt: 1, At: at(i)})
				if err != nil {
					t.Fatal(err)
				}
				if i%2 == 0 {
					if err := j.EndStep(ctx, id, StepResult{Status: StepOK, Facts: map[string]string{"snapshot": "snap-" + strconv.Itoa(i)}, At: at(i)}); err != nil {
						t.Fatal(err)
					}
				}
			}
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}
			tc.damage(t, path)
			before := fileSum(t, path)

			j2, err := Open(ctx, path)
			if err == nil {
				j2.Close()
				t.Fatal("Open accepted a damaged journal")
			}
			if !errors.Is(err, ErrDamaged) {
				t.Errorf("error %v, want ErrDamaged", err)
			}
			for _, m := range []string{path, "damaged", "left it untouched", "another --journal path"} {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
			if fileSum(t, path) != before {
				t.Error("the damaged journal was changed by Open")
			}
			if _, err := os.Stat(path + "-wal"); err == nil {
				t.Error("Open left a WAL file beside the damaged journal")
			}
		})
	}
}

func fileSum(t *testing.T, path string) [32]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return sha256.Sum256(b)
}

// TestLockRaceAcrossProcesses: three processes take the apply lock of one
// journal at the same moment; exactly one wins and the others are told
// who holds it. When the winner releases it, the journal is unlocked.
func TestLockRaceAcrossProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes; skipped in -short")
	}
	path := filepath.Join(t.TempDir(), "fixfleet.db")
	j := openAt(t, path)
	const n = 3
	type proc struct {
		cmd   *exec.Cmd
		out   *bufio.Scanner
		stdin io.WriteCloser
	}
	procs := make([]proc, n)
	for i := range procs {
		cmd, out, stdin := child(t, "lock", path, 0)
		procs[i] = proc{cmd, out, stdin}
	}
	for _, p := range procs { // the journal is open in every child by now or soon; all go at once
		if _, err := io.WriteString(p.stdin, "go\n"); err != nil {
			t.Fatal(err)
		}
	}
	winners, holders := []int{}, []int{}
	for _, p := range procs {
		if !p.out.Scan() {
			t.Fatalf("child %d said nothing", p.cmd.Process.Pid)
		}
		f := strings.Fields(p.out.Text())
		pid, _ := strconv.Atoi(f[len(f)-1])
		switch f[0] {
		case "won":
			winners = append(winners, pid)
		case "locked":
			holders = append(holders, pid)
		default:
			t.Fatalf("child: %s", p.out.Text())
		}
	}
	if len(winners) != 1 {
		t.Fatalf("%d processes won the lock (%v), want exactly 1", len(winners), winners)
	}
	for _, h := range holders {
		if h != winners[0] {
			t.Errorf("a loser was told the holder is PID %d, the winner is %d", h, winners[0])
		}
	}
	if h, _, ok, err := j.LockHolder(context.Background()); err != nil || !ok || h.PID != winners[0] {
		t.Errorf("LockHolder = %+v %v %v, want PID %d", h, ok, err, winners[0])
	}
	for _, p := range procs {
		_ = p.stdin.Close()
		if !p.out.Scan() || p.out.Text() != "done" {
			t.Errorf("child %d: %q", p.cmd.Process.Pid, p.out.Text())
		}
		_ = p.cmd.Wait()
	}
	if _, _, ok, _ := j.LockHolder(context.Background()); ok {
		t.Error("journal still locked after the winner released it")
	}
}

// TestFullDisk: a process whose journal can no longer grow (a file size
// limit, as a full disk) gets an error that names the journal and says
// what to do; reopened, the journal holds exactly what was acknowledged:
// every step reported begun or ended is so, and the write that failed left
// nothing behind.
func TestFullDisk(t *testing.T) {
	ctx := context.Background()
	path := runJournal(t)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	cmd, out, _ := child(t, "steps", path, int(st.Size())+1<<20)
	acked, failure := readSteps(out, 0)
	_ = cmd.Wait()
	if failure == "" {
		t.Fatal("the child never ran out of space")
	}
	t.Logf("after %d acknowledged writes: %s", len(acked), failure)
	for _, m := range []string{path, "free disk space"} {
		if !strings.Contains(failure, m) {
			t.Errorf("error %q lacks %q", failure, m)
		}
	}
	if len(acked) < 10 {
		t.Fatalf("only %d writes before the disk was full: the test proves little", len(acked))
	}

	j := openAt(t, path)
	checkIntegrity(t, j)
	list, err := j.ListSteps(ctx, "r1", "vm1")
	if err != nil {
		t.Fatal(err)
	}
	steps := map[StepID]Step{}
	for _, s := range list {
		steps[s.ID] = s
	}
	for id, want := range acked {
		if s, ok := steps[id]; !ok || (want == StepOK && s.Status != StepOK) {
			t.Errorf("step %d acknowledged as %s is %+v in the journal", id, want, s.Status)
		}
	}
	for id, s := range steps {
		if _, ok := acked[id]; !ok {
			t.Errorf("step %d (%s) is in the journal but its write failed", id, s.Status)
		}
		if acked[id] == StepBegun && s.Status != StepBegun {
			t.Errorf("step %d is %s but its end failed", id, s.Status)
		}
	}
}

// TestSIGKILLLosesNothing kills a writing process with SIGKILL and checks
// that every write it reported as done is in the journal, with its state.
func TestSIGKILLLosesNothing(t *testing.T) {
	path := runJournal(t)
	cmd, out, _ := child(t, "steps", path, 0)
	acked, failure := readSteps(out, 40)
	if failure != "" {
		t.Fatalf("child: %s", failure)
	}
	_ = cmd.Process.Kill() // SIGKILL
	_ = cmd.Wait()
	if len(acked) < 40 {
		t.Fatalf("child wrote only %d steps", len(acked))
	}
	j := openAt(t, path)

	steps, err := j.ListSteps(context.Background(), "r1", "vm1")
	if err != nil {
		t.Fatal(err)
	}
	got := map[StepID]Step{}
	for _, s := range steps {
		got[s.ID] = s
	}
	for id, want := range acked {
		s, ok := got[id]
		switch {
		case !ok:
			t.Errorf("step %d acknowledged before the kill is missing", id)
		case want == StepOK && (s.Status != StepOK || s.Facts["n"] == ""):
			t.Errorf("step %d acknowledged as ended is %s with facts %v", id, s.Status, s.Facts)
		case want == StepBegun && s.Status == StepBegun && !s.EndedAt.IsZero():
			t.Errorf("begun step %d has an end time", id)
		}
	}
	// A journal reopened after the kill is usable and shows the open steps.
	un, err := j.UnfinishedSteps(context.Background(), "r1")
	if err != nil || len(un) == 0 {
		t.Errorf("UnfinishedSteps after kill = %d, %v; want the odd steps", len(un), err)
	}
}
