package world

import (
	"bytes"
	"testing"
)

// FuzzParseScenario: ParseScenario and Load never panic, and a scenario
// they accept is exported stably: loaded, exported, loaded again and
// exported again, it gives the same document. Seeds:
// testdata/fuzz/FuzzParseScenario, made from `sim export` worlds (a
// generated fleet, and one mid-incident with helpers, disks, snapshots and
// an outage).
func FuzzParseScenario(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := ParseScenario(bytes.NewReader(data))
		if err != nil {
			return
		}
		first, ok := loadExport(t, sc)
		if !ok {
			return
		}
		sc2, err := ParseScenario(bytes.NewReader(first))
		if err != nil {
			t.Fatalf("an exported scenario does not parse: %v\n%s", err, first)
		}
		second, ok := loadExport(t, sc2)
		if !ok {
			t.Fatalf("an exported scenario does not load:\n%s", first)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("export is not stable:\n%s\n---\n%s", first, second)
		}
	})
}

// loadExport loads sc on a clock at its own time and exports it; false
// when Load refuses it.
func loadExport(t *testing.T, sc Scenario) ([]byte, bool) {
	t.Helper()
	now := sc.Now
	if now.IsZero() {
		now = DefaultOrigin
	}
	w, err := Load(sc, NewManualClock(now))
	if err != nil {
		return nil, false
	}
	b, err := MarshalScenario(w.Export())
	if err != nil {
		t.Fatalf("cannot marshal an export: %v", err)
	}
	return b, true
}
