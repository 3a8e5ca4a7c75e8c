package main

import (
	"context"
	"os"
	"testing"
)

// envRunMain makes the test binary act as the fixfleet command, so that tests
// can run (and kill) a real `fixfleet apply` process without building one.
const envRunMain = "FIXFLEET_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(envRunMain) == "1" {
		os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}
