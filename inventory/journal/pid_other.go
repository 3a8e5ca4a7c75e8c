//go:build !unix

package journal

import "os"

// pidAlive reports whether a process with this PID exists on this host.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	_, err := os.FindProcess(pid)
	return err == nil
}

// processIdentity is unknown on this system.
func processIdentity(int) string { return "" }
