package journal

import (
	"context"
	"os"
	"runtime"
	"testing"
)

func TestCloseThenWrite(t *testing.T) {
	j, _ := openTemp(t)
	mustRun(t, j, "r1")
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	if err := j.PutFacts(context.Background(), "r1", "vm1", map[string]string{"a": "b"}); err == nil {
		t.Error("write after Close succeeded")
	}
}

func TestDefaultProcessChecks(t *testing.T) {
	if !pidAlive(os.Getpid()) {
		t.Error("pidAlive(self) = false")
	}
	if pidAlive(0) || pidAlive(-1) {
		t.Error("pidAlive(<=0) = true")
	}
	if runtime.GOOS == "linux" {
		id := processIdentity(os.Getpid())
		if id == "" || id != processIdentity(os.Getpid()) {
			t.Errorf("processIdentity(self) = %q, want stable and non-empty", id)
		}
		if processIdentity(os.Getpid()) == processIdentity(1) && os.Getpid() != 1 {
			t.Error("processIdentity does not tell processes apart")
		}
	}
}
