//go:build unix

package main

import (
	"runtime"
	"syscall"
)

// peakRSSMB returns this process's peak resident memory in MiB, or 0 if the
// system does not say.
func peakRSSMB() float64 {
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
