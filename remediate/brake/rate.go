package brake

import "sync"

// Exceeds reports whether bad out of acted is above threshold. Zero acted
// never exceeds.
func Exceeds(bad, acted int, threshold float64) bool {
	return acted > 0 && float64(bad)/float64(acted) > threshold
}

// Rate is a failure brake: it counts finished VMs that were acted on and
// how many of them went badly, and trips once the bad share exceeds
// Threshold with at least MinSample finished. Once tripped it stays
// tripped. Safe for concurrent use. Use NewRate.
type Rate struct {
	threshold float64
	minSample int

	mu         sync.Mutex
	acted, bad int
	tripped    bool
}

// NewRate returns a brake tripping above threshold (0 < x <= 1) once at
// least minSample (>= 1; default 5) acted-on VMs have finished.
func NewRate(threshold float64, minSample int) *Rate {
	if minSample < 1 {
		minSample = 5
	}
	return &Rate{threshold: threshold, minSample: minSample}
}

// Record counts one finished VM (ignored unless acted) and reports whether
// this very record tripped the brake (true once).
func (r *Rate) Record(acted, bad bool) (trippedNow bool) {
	if !acted {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.acted++
	if bad {
		r.bad++
	}
	if !r.tripped && r.acted >= r.minSample && Exceeds(r.bad, r.acted, r.threshold) {
		r.tripped = true
		return true
	}
	return false
}

// Tripped reports whether the brake has tripped.
func (r *Rate) Tripped() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.tripped
}

// Counts returns the acted-on and bad counts so far.
func (r *Rate) Counts() (acted, bad int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.acted, r.bad
}
