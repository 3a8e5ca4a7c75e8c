package journal

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// crashChildEnv makes the test binary act as a writer that is killed.
const crashChildEnv = "FIXFLEET_JOURNAL_CRASH_CHILD"

// TestCrashChild is not a test: run by TestSIGKILLLosesNothing in a child
// process, it journals steps forever, printing each step's ID and state as
// soon as the write has returned.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashChildEnv)
	if path == "" {
		t.Skip("helper process for TestSIGKILLLosesNothing")
	}
	ctx := context.Background()
	j, err := Open(ctx, path)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	for i := 1; ; i++ {
		id, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "vm1", Step: "s" + strconv.Itoa(i), Attempt: 1, At: at(i)})
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		fmt.Println("begun", id)
		if i%2 == 0 { // even steps end; odd steps stay begun, as if killed mid-effect
			if err := j.EndStep(ctx, id, StepResult{Status: StepOK, Facts: map[string]string{"n": strconv.Itoa(i)}, At: at(i)}); err != nil {
				fmt.Println("error", err)
				os.Exit(1)
			}
			fmt.Println("ended", id)
		}
	}
}

// TestSIGKILLLosesNothing kills a writing process with SIGKILL and checks
// that every write it reported as done is in the journal, with its state.
func TestSIGKILLLosesNothing(t *testing.T) {
	if runtime.GOOS == "windows" || testing.Short() {
		t.Skip("needs SIGKILL; skipped in -short")
	}
	path := filepath.Join(t.TempDir(), "j.db")
	j := openAt(t, path)
	mustRun(t, j, "r1")

	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[StepID]StepStatus{}
	sc := bufio.NewScanner(out)
	for len(acked) < 40 && sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] == "error" {
			t.Fatalf("child: %s", sc.Text())
		}
		id, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "begun":
			acked[StepID(id)] = StepBegun
		case "ended":
			acked[StepID(id)] = StepOK
		}
	}
	_ = cmd.Process.Kill() // SIGKILL on Unix
	_ = cmd.Wait()
	if len(acked) < 40 {
		t.Fatalf("child wrote only %d steps", len(acked))
	}

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
