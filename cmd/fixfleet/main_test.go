package main

import (
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"

	"github.com/fixfleet/fixfleet/internal/secretscan"
	"github.com/fixfleet/fixfleet/remediate/apply"
)

// envRunMain makes the test binary act as the fixfleet command, so that tests
// can run (and kill) a real `fixfleet apply` process without building one.
const envRunMain = "FIXFLEET_TEST_RUN_MAIN"

// envKillAt, in a process run as the command, names a step point
// ("strategy/step/point", apply.Point) at which the process SIGKILLs itself
// the first time any VM reaches it; it first appends the point reached
// ("vm-key strategy/step/point attempt") to the file envKillLog names.
// Only this test binary reads these variables: the fixfleet binary has no
// code that installs an apply.Hook, so they can never fire in production.
const (
	envKillAt  = "FIXFLEET_TEST_KILL_AT"
	envKillLog = "FIXFLEET_TEST_KILL_LOG"
)

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		ctx := context.Background()
		if at := os.Getenv(envKillAt); at != "" {
			ctx = apply.WithHook(ctx, killAt(at, os.Getenv(envKillLog)))
		}
		os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(secretscan.Main(m)) // scans every output the tests kept, after them
}

// killAt returns a hook that kills this process at point, after logging
// the point to logFile.
func killAt(point, logFile string) apply.Hook {
	return func(a apply.At) {
		if string(a.Strategy)+"/"+a.Step+"/"+string(a.Point) != point {
			return
		}
		if f, err := os.OpenFile(logFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
			fmt.Fprintf(f, "%s %s %d\n", a.VMKey, point, a.Attempt)
			_ = f.Sync()
			_ = f.Close()
		}
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
