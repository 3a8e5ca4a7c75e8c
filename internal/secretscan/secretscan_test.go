package secretscan

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// ScanEnv, set to 1 together with OutputsEnv, makes TestSecretScan scan
// the shared directory: .ci/run sets it for a last run after the suite.
const ScanEnv = "FIXFLEET_SECRET_SCAN"

// TestSecretScan is the scan after the whole suite: every file the tests
// wrote under the shared directory, for every secret they registered.
func TestSecretScan(t *testing.T) {
	root := os.Getenv(OutputsEnv)
	if root == "" || os.Getenv(ScanEnv) != "1" {
		t.Skipf("runs after the suite: set %s and %s=1 (as .ci/run does)", OutputsEnv, ScanEnv)
	}
	found, files, secrets, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("scanned %d files for %d registered secrets", files, secrets)
	if files == 0 || secrets == 0 {
		t.Fatalf("nothing to scan (%d files, %d secrets): the tests that hold secrets wrote nothing under %s", files, secrets, root)
	}
	for _, f := range found {
		t.Errorf("secret found: %s", f)
	}
}

func TestScan(t *testing.T) {
	const (
		password = "Sup3r-S3cret-WinRM"
		key      = "466895-217492-569250-069608-104434-135707-527241-083622"
		other    = "309540-054054-123915-625218-602910-100716-346984-130779" // same length, never written
	)
	root := t.TempDir()
	t.Setenv(OutputsEnv, root)
	Register(t, "winrm password", password)
	Register(t, "bitlocker-key", key, other)
	dir := Dir(t)
	if !strings.HasPrefix(dir, root) {
		t.Fatalf("Dir = %s, not under %s", dir, root)
	}
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("clean.log", "level=INFO msg=\"unlocked E:\" key_id=1A2B3C4D-0000-4000-8000-00000000000A password=[redacted]\n")
	write("start.txt", password+" at the start")
	write("sub/end.json", `{"k":"`+key+`"}`)
	write("exact.bin", key)
	write("near.txt", password[:len(password)-1]+"X and "+key[1:])
	write("both.html", "<td>"+key+"</td><td>"+password+"</td><td>"+password+"</td>")

	found, files, secrets, err := Scan(root)
	if err != nil {
		t.Fatal(err)
	}
	if files != 6 || secrets != 3 {
		t.Errorf("scanned %d files for %d secrets, want 6 and 3", files, secrets)
	}
	var got []string
	for _, f := range found {
		got = append(got, filepath.Base(f.File)+":"+f.Label)
	}
	slices.Sort(got)
	want := []string{"both.html:bitlocker-key", "both.html:winrm-password", "end.json:bitlocker-key", "exact.bin:bitlocker-key", "start.txt:winrm-password"}
	if !slices.Equal(got, want) {
		t.Errorf("found %v, want %v", got, want)
	}
	b, err := os.ReadFile(filepath.Join(root, Manifest))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), password) || strings.Contains(string(b), key) {
		t.Error("the manifest holds a secret in clear")
	}
}

func TestScanErrors(t *testing.T) {
	dir := t.TempDir()
	if _, _, _, err := Scan(dir); err == nil || !strings.Contains(err.Error(), "no test registered") {
		t.Errorf("Scan without a manifest = %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, Manifest), []byte("12 zz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := Scan(dir); err == nil || !strings.Contains(err.Error(), Manifest+":1") {
		t.Errorf("Scan of a malformed manifest = %v", err)
	}
}

func TestDirWithoutSharedDirectory(t *testing.T) {
	t.Setenv(OutputsEnv, "")
	Register(t, "winrm-password", "not kept anywhere")
	if d := Dir(t); d == "" {
		t.Error("Dir without a shared directory is empty")
	}
}

// runFunc is a testing.M stand-in for Main.
type runFunc func() int

func (f runFunc) Run() int { return f() }

// TestMainScansOutputs: Main fails the package when a test output holds a
// registered secret, passes the tests' own code through otherwise, and
// removes its directory after a clean scan.
func TestMainScansOutputs(t *testing.T) {
	const secret = "correct-horse-battery-staple"
	cases := []struct {
		name    string
		content string
		code    int // the tests' own exit code
		want    int
	}{
		{"clean", "password=[redacted]", 0, 0},
		{"failing tests, clean outputs", "nothing", 3, 3},
		{"a secret in a log", "logged in with " + secret, 0, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(OutputsEnv, "") // restored after the case; Main sets its own
			var root string
			got := Main(runFunc(func() int {
				Register(t, "winrm-password", secret)
				root = os.Getenv(OutputsEnv)
				if err := os.WriteFile(filepath.Join(Dir(t), "apply.log"), []byte(tc.content), 0o600); err != nil {
					t.Fatal(err)
				}
				return tc.code
			}))
			if got != tc.want {
				t.Errorf("Main = %d, want %d", got, tc.want)
			}
			_, err := os.Stat(root)
			if kept := err == nil; kept != (tc.want == 1) {
				t.Errorf("outputs directory kept: %v, want kept only after a hit", kept)
			}
			if tc.want == 1 {
				_ = os.RemoveAll(root)
			}
		})
	}
}
