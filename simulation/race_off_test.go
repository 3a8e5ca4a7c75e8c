//go:build !race

package simulation

// raceDetector: this test binary was built with -race.
const raceDetector = false
