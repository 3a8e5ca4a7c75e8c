//go:build !unix

package rusage

// PeakRSSMB is not measured on this system: 0.
func PeakRSSMB() float64 { return 0 }

// CPUSeconds is not measured on this system: 0.
func CPUSeconds() float64 { return 0 }
