// Package secretscan finds secrets in the files tests leave behind.
//
// Tests that hold secrets (a simulated world's WinRM password and
// BitLocker recovery keys, a config's passwords) Register them, and write
// their outputs (logs, reports, journals, webhook bodies, exports that are
// not simulation-only) under Dir. Scan reads every file under a directory
// and reports each registered secret it finds, by label and file, never by
// value.
//
// A package whose tests keep outputs runs them through Main from its
// TestMain: Main gives the package's tests one directory (OutputsEnv),
// runs them, then scans everything they wrote for everything they
// registered, and fails the package on any hit. So the scan runs inside
// the README's `go test -race -timeout 30m ./...`, after each such package's tests.
// When OutputsEnv is already set by the caller, Main's directory is made
// inside it and kept, for TestSecretScan to scan again after the suite.
// Without Main or OutputsEnv, Dir is the test's own temporary directory
// and Register keeps nothing.
//
// Only fingerprints are kept: the length of a secret, a rolling hash to
// find candidate windows fast, and a SHA-256 to confirm them. The manifest
// holds no secret in clear.
package secretscan

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// OutputsEnv names the environment variable holding the shared directory.
const OutputsEnv = "FIXFLEET_TEST_OUTPUTS"

// Manifest is the file, in the shared directory, of the registered
// fingerprints. Scan does not scan it.
const Manifest = "secrets.fingerprints"

// base is the rolling hash's multiplier (arithmetic modulo 2^64).
const base = 1099511628211

// minLen is the shortest secret worth registering: shorter strings occur
// by chance in any binary file.
const minLen = 8

// fingerprint is one registered secret.
type fingerprint struct {
	n     int
	roll  uint64
	sum   [32]byte
	label string
}

// Finding is a registered secret found in a file.
type Finding struct {
	File  string // relative to the scanned directory
	Label string // what the secret is, as registered
}

func (f Finding) String() string { return f.Label + " in " + f.File }

// Main runs a package's tests (m.Run) with one outputs directory for them
// all, scans it, and returns the exit code for os.Exit: m.Run's, or 1 when
// a registered secret was found in an output (each finding is printed to
// stderr, by label and file). Call it from TestMain. The directory is
// removed after a clean scan unless the caller set OutputsEnv.
func Main(m interface{ Run() int }) int {
	shared := os.Getenv(OutputsEnv)
	parent := shared
	if parent == "" {
		parent = os.TempDir()
	}
	root, err := os.MkdirTemp(parent, "fixfleet-test-outputs-")
	if err == nil {
		err = os.Setenv(OutputsEnv, root)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "secretscan: cannot make the tests' outputs directory: %v\n", err)
		return 1
	}
	code := m.Run()
	found, files, secrets, err := Scan(root)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !fileExists(filepath.Join(root, Manifest)):
		// No test of this run registered a secret (e.g. -run chose none).
	case err != nil:
		fmt.Fprintf(os.Stderr, "secretscan: %v\n", err)
		return 1
	case len(found) > 0:
		for _, f := range found {
			fmt.Fprintf(os.Stderr, "secretscan: secret found in a test output: %s (kept in %s)\n", f, root)
		}
		return 1
	default:
		if testing.Verbose() {
			fmt.Fprintf(os.Stderr, "secretscan: scanned %d files for %d registered secrets: none found\n", files, secrets)
		}
	}
	if shared == "" {
		_ = os.RemoveAll(root)
	}
	return code
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Dir returns the directory t should write its outputs to: a new
// directory under the shared one when OutputsEnv is set (it outlives the
// test, for the final scan), else t.TempDir().
func Dir(t testing.TB) string {
	t.Helper()
	root := os.Getenv(OutputsEnv)
	if root == "" {
		return t.TempDir()
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, t.Name())
	d, err := os.MkdirTemp(root, name+"-*")
	if err != nil {
		t.Fatalf("secretscan: cannot make an output directory under %s=%s: %v", OutputsEnv, root, err)
	}
	return d
}

// Register records the secrets t's outputs must never contain, under
// label (e.g. "winrm-password"), when OutputsEnv is set. Secrets shorter
// than 8 bytes are refused: the scan could not tell them from chance.
func Register(t testing.TB, label string, secrets ...string) {
	t.Helper()
	root := os.Getenv(OutputsEnv)
	if root == "" {
		return
	}
	var b strings.Builder
	for _, s := range secrets {
		if len(s) < minLen {
			t.Fatalf("secretscan: a %s of %d bytes is too short to scan for (at least %d)", label, len(s), minLen)
		}
		sum := sha256.Sum256([]byte(s))
		fmt.Fprintf(&b, "%d %x %s %s\n", len(s), rollOf([]byte(s)), hex.EncodeToString(sum[:]), strings.Join(strings.Fields(label), "-"))
	}
	// One append per call: lines of several test processes do not mix.
	f, err := os.OpenFile(filepath.Join(root, Manifest), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		_, err = f.WriteString(b.String())
		err = errors.Join(err, f.Close())
	}
	if err != nil {
		t.Fatalf("secretscan: cannot register secrets in %s: %v", root, err)
	}
}

// Scan reads the manifest in dir and every other file under dir, and
// returns the registered secrets it finds, one Finding per secret and
// file, and how many files it read and secrets it looked for. Errors are
// a missing or malformed manifest, or a file it cannot read.
func Scan(dir string) (found []Finding, files, secrets int, err error) {
	fps, err := readManifest(filepath.Join(dir, Manifest))
	if err != nil {
		return nil, 0, 0, err
	}
	byLen := map[int][]fingerprint{}
	for _, fp := range fps {
		byLen[fp.n] = append(byLen[fp.n], fp)
	}
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || p == filepath.Join(dir, Manifest) {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(dir, p)
		for _, label := range find(data, byLen) {
			found = append(found, Finding{File: rel, Label: label})
		}
		return nil
	})
	return found, files, len(fps), err
}

func readManifest(path string) ([]fingerprint, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("secretscan: %w; no test registered a secret", err)
	}
	defer f.Close()
	var fps []fingerprint
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		fields := strings.Fields(sc.Text())
		var fp fingerprint
		var sum []byte
		var err error
		if len(fields) == 4 {
			fp.n, err = strconv.Atoi(fields[0])
			if err == nil {
				fp.roll, err = strconv.ParseUint(fields[1], 16, 64)
			}
			if err == nil {
				sum, err = hex.DecodeString(fields[2])
			}
		}
		if len(fields) != 4 || err != nil || len(sum) != 32 || fp.n < minLen {
			return nil, fmt.Errorf("secretscan: %s:%d: not a fingerprint line (length, rolling hash, SHA-256, label)", path, line)
		}
		copy(fp.sum[:], sum)
		fp.label = fields[3]
		fps = append(fps, fp)
	}
	return fps, sc.Err()
}

// rollOf is the rolling hash of b: sum of b[i]*base^(len-1-i), mod 2^64.
func rollOf(b []byte) uint64 {
	var h uint64
	for _, c := range b {
		h = h*base + uint64(c)
	}
	return h
}

// find returns the labels of the fingerprinted secrets that occur in
// data, each once.
func find(data []byte, byLen map[int][]fingerprint) []string {
	var labels []string
	seen := map[[32]byte]bool{}
	for n, fps := range byLen {
		if len(data) < n {
			continue
		}
		var top uint64 = 1 // base^(n-1)
		for range n - 1 {
			top *= base
		}
		h := rollOf(data[:n])
		for i := 0; ; i++ {
			for _, fp := range fps {
				if fp.roll == h && !seen[fp.sum] && sha256.Sum256(data[i:i+n]) == fp.sum {
					seen[fp.sum] = true
					labels = append(labels, fp.label)
				}
			}
			if i+n >= len(data) {
				break
			}
			h = (h-uint64(data[i])*top)*base + uint64(data[i+n])
		}
	}
	return labels
}
