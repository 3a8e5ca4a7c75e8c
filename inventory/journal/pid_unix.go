//go:build unix

package journal

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"
)

// pidAlive reports whether a process with this PID exists on this host.
// A process we may not signal (EPERM) exists.
func pidAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// processIdentity returns an identity of the live process pid that differs
// from any earlier process with the same PID: on Linux the boot ID and the
// process start time from /proc. "" when unknown (other systems).
func processIdentity(pid int) string {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	// Fields after the command (which may contain spaces and parentheses)
	// start after the last ')'; starttime is field 22 overall, so the 20th
	// after it (state is the 1st).
	s := string(stat)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return ""
	}
	boot, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	return strings.TrimSpace(string(boot)) + "/" + f[19]
}
