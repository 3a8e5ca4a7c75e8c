//go:build unix

// Package rusage reads what this process has used of the machine.
package rusage

import (
	"runtime"
	"syscall"
	"time"
)

// PeakRSSMB returns this process's peak resident memory in MiB, or 0 if the
// system does not say.
func PeakRSSMB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	kb := float64(ru.Maxrss) // kilobytes on Linux, bytes on the BSDs and macOS
	if runtime.GOOS == "darwin" || runtime.GOOS == "freebsd" || runtime.GOOS == "netbsd" || runtime.GOOS == "openbsd" {
		kb /= 1024
	}
	return kb / 1024
}

// CPUSeconds returns the CPU time (user and system) this process has used,
// or 0 if the system does not say.
func CPUSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}
