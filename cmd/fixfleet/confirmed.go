package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"

	"github.com/fixfleet/fixfleet/inventory"
)

// consoleReports are the VMs an operator saw crash or sit at the recovery
// screen on their consoles, read from a --console-confirmed file: one VM ID
// or name per line, optionally followed by a note; blank lines and lines
// starting with # are skipped. They are evidence a cloud's API may not give
// (Sakura Cloud shows no guest reboots or console text), and classification
// weighs them against what the cloud and the guest say.
type consoleReports struct {
	file  string
	notes map[string]string // VM ID or name → note

	mu   sync.Mutex
	used map[string]bool
}

// loadConsoleReports reads file ("" means none).
func loadConsoleReports(file string) (*consoleReports, error) {
	if file == "" {
		return nil, nil
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, badInput(fmt.Errorf("--console-confirmed: %w", err))
	}
	defer f.Close()
	r := &consoleReports{file: file, notes: map[string]string{}, used: map[string]bool{}}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		vm, note, _ := strings.Cut(line, " ")
		if _, dup := r.notes[vm]; dup {
			return nil, badInput(fmt.Errorf("--console-confirmed %s:%d: %s is listed twice", file, n, vm))
		}
		r.notes[vm] = strings.TrimSpace(note)
	}
	if err := sc.Err(); err != nil {
		return nil, badInput(fmt.Errorf("--console-confirmed %s: %w", file, err))
	}
	return r, nil
}

// attested implements classify.AssessOptions.Attested. Safe for concurrent
// use.
func (r *consoleReports) attested(vm inventory.VM) *inventory.Attestation {
	for _, k := range []string{vm.ID, vm.Name} {
		if note, ok := r.notes[k]; ok && k != "" {
			r.mu.Lock()
			r.used[k] = true
			r.mu.Unlock()
			return &inventory.Attestation{Source: r.file, Note: note}
		}
	}
	return nil
}

// unmatched fails when the file names a VM the fleet does not have: a typo
// must not pass silently.
func (r *consoleReports) unmatched() error {
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
	return badInput(fmt.Errorf("--console-confirmed %s names VMs that are not in the fleet: %s", r.file, strings.Join(miss, ", ")))
}
