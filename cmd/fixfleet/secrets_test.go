package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/internal/secretscan"

	"github.com/fixfleet/fixfleet/simulation"
)

// TestNoSecretsAnywhere: the WinRM password and the BitLocker recovery keys
// appear in no output, report, journal row or error of a whole demo.
func TestNoSecretsAnywhere(t *testing.T) {
	dir := secretscan.Dir(t) // kept for a scan after the suite when FIXFLEET_TEST_OUTPUTS is set
	db := filepath.Join(dir, "j.db")
	// The same world the demo will generate, to learn its secrets.
	wo := simulation.WorldOptions{VMs: 60, Seed: 9, Mix: "boot-loop=30,stuck=10,safe-mode=20,bad-credentials=20,healthy=20"}
	w, err := simulation.NewWorld(wo, simulation.Frozen)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{w.GuestPassword().Reveal()}
	for _, k := range w.EscrowedKeys() {
		secrets = append(secrets, k.Reveal())
	}
	if len(secrets) < 5 {
		t.Fatalf("only %d secrets in the world: the test would prove little", len(secrets))
	}
	secretscan.Register(t, "winrm-password", secrets[0])
	secretscan.Register(t, "bitlocker-recovery-key", secrets[1:]...)
	var outputs []string
	for _, args := range [][]string{
		{"demo", "--vms", "60", "--seed", "9", "--mix", wo.Mix, "--time-scale", "3000", "--journal", db, "--format", "json"},
		{"inventory", "--sim", "--vms", "60", "--seed", "9", "--mix", wo.Mix, "--time-scale", "3000", "--format", "json"},
		{"report", "--journal", db, "--format", "json"},
		{"report", "--journal", db, "--format", "html"},
		{"status", "--journal", db},
	} {
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, stderr)
		}
		outputs = append(outputs, stdout, stderr)
		name := filepath.Join(dir, args[0]+"-"+strconv.Itoa(len(outputs)/2))
		if err := os.WriteFile(name+".stdout", []byte(stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(name+".stderr", []byte(stderr), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	files, _ := filepath.Glob(db + "*") // the database and its WAL
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		outputs = append(outputs, string(b))
	}
	for _, s := range secrets {
		for i, out := range outputs {
			if strings.Contains(out, s) {
				t.Errorf("a secret appears in output #%d", i)
			}
		}
	}
}
