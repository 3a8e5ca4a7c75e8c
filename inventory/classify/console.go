package classify

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/fixfleet/fixfleet/inventory"
)

// ConsoleReports are the VMs an operator saw crash or sit at the recovery
// screen on their consoles: evidence a cloud's API may not give (Sakura
// Cloud shows no guest reboots or console text), which classification
// weighs against what the cloud and the guest say. Safe for concurrent use.
type ConsoleReports struct {
	source string
	notes  map[string]string // VM ID or name → note

	mu   sync.Mutex
	used map[string]bool
}

// LoadConsoleReports reads the reports of file (see ReadConsoleReports).
func LoadConsoleReports(file string) (*ConsoleReports, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadConsoleReports(f, file)
}

// ReadConsoleReports reads reports from r, named source (a file name) in
// errors and in each VM's evidence: one VM ID or name per line, optionally
// followed by a note; blank lines and lines starting with # are skipped. A
// VM listed twice is an error naming the line.
func ReadConsoleReports(r io.Reader, source string) (*ConsoleReports, error) {
	out := &ConsoleReports{source: source, notes: map[string]string{}, used: map[string]bool{}}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		vm, note, _ := strings.Cut(line, " ")
		if _, dup := out.notes[vm]; dup {
			return nil, fmt.Errorf("%s:%d: %s is listed twice", source, n, vm)
		}
		out.notes[vm] = strings.TrimSpace(note)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%s: %w", source, err)
	}
	return out, nil
}

// attested implements AssessOptions.Attested.
func (r *ConsoleReports) attested(vm inventory.VM) *inventory.Attestation {
	for _, k := range []string{vm.ID, vm.Name} {
		if note, ok := r.notes[k]; ok && k != "" {
			r.mu.Lock()
			r.used[k] = true
			r.mu.Unlock()
			return &inventory.Attestation{Source: r.source, Note: note}
		}
	}
	return nil
}

// UnmatchedReportsError says that console reports name VMs the fleet does
// not have: a typo must not pass silently.
type UnmatchedReportsError struct {
	Source string
	VMs    []string // sorted
}

func (e *UnmatchedReportsError) Error() string {
	return fmt.Sprintf("console reports %s name VMs that are not in the fleet: %s", e.Source, strings.Join(e.VMs, ", "))
}

// unmatched returns an *UnmatchedReportsError when a reported VM was never
// seen by attested.
func (r *ConsoleReports) unmatched() error {
	var miss []string
	for k := range r.notes {
		if !r.used[k] {
			miss = append(miss, k)
		}
	}
	if len(miss) == 0 {
		return nil
	}
	sort.Strings(miss)
	return &UnmatchedReportsError{Source: r.source, VMs: miss}
}
