package world

import (
	"bytes"
	"encoding/json"
	"testing"
)

func mustGen(t *testing.T, opts GenOptions) (*World, *ManualClock) {
	t.Helper()
	if opts.Origin.IsZero() {
		opts.Origin = DefaultOrigin
	}
	clk := NewManualClock(opts.Origin)
	opts.Clock = clk
	w, err := Generate(opts)
	if err != nil {
		t.Fatal(err)
	}
	return w, clk
}

func exportJSON(t *testing.T, w *World) []byte {
	t.Helper()
	b, err := MarshalScenario(w.Export())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGenerateDeterministic(t *testing.T) {
	a, _ := mustGen(t, GenOptions{VMs: 200, Seed: 7})
	b, _ := mustGen(t, GenOptions{VMs: 200, Seed: 7})
	c, _ := mustGen(t, GenOptions{VMs: 200, Seed: 8})
	ja, jb, jc := exportJSON(t, a), exportJSON(t, b), exportJSON(t, c)
	if !bytes.Equal(ja, jb) {
		t.Fatal("same seed, different worlds")
	}
	if bytes.Equal(ja, jc) {
		t.Fatal("different seeds, same world")
	}
}

func TestRoundTrip(t *testing.T) {
	w, clk := mustGen(t, GenOptions{VMs: 300, Seed: 1})
	j1 := exportJSON(t, w)
	sc, err := ParseScenario(bytes.NewReader(j1))
	if err != nil {
		t.Fatal(err)
	}
	w2, err := Load(sc, NewManualClock(clk.Now()))
	if err != nil {
		t.Fatal(err)
	}
	j2 := exportJSON(t, w2)
	if !bytes.Equal(j1, j2) {
		t.Fatalf("round trip differs:\n%s", firstDiff(j1, j2))
	}
	var generic map[string]any
	if err := json.Unmarshal(j1, &generic); err != nil {
		t.Fatal(err)
	}
}

func firstDiff(a, b []byte) string {
	la, lb := bytes.Split(a, []byte("\n")), bytes.Split(b, []byte("\n"))
	for i := range min(len(la), len(lb)) {
		if !bytes.Equal(la[i], lb[i]) {
			lo := max(0, i-5)
			return string(bytes.Join(la[lo:i+1], []byte("\n"))) + "\n---\n" + string(bytes.Join(lb[lo:i+1], []byte("\n")))
		}
	}
	return "length differs"
}

// TestGenerateStoppedClean: the stopped-clean kind is powered off with a
// sensor directory from before the incident (an older copy of the channel
// file, which matches the profile's pattern but is not bad, and no bad
// file), so the world's truth counts it healthy; the stopped kind carries
// the bad file and is not. The default mix has no stopped-clean VM.
func TestGenerateStoppedClean(t *testing.T) {
	mix, err := ParseMix("stopped=50,stopped-clean=50")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := mustGen(t, GenOptions{VMs: 40, Seed: 3, Mix: mix})
	clean := 0
	for _, v := range w.Export().VMs {
		if v.Power != "stopped" {
			t.Fatalf("%s is %s, want stopped", v.ID, v.Power)
		}
		bad := false
		for _, f := range v.OSDisk.Files {
			bad = bad || !f.ModTime.Before(w.Incident().BadFrom) && f.ModTime.Before(w.Incident().BadUntil)
		}
		switch {
		case bad && v.Truth == TruthHealthy:
			t.Errorf("%s carries the bad file but its truth is healthy", v.ID)
		case !bad && v.Truth != TruthHealthy:
			t.Errorf("%s carries no bad file but its truth is %s", v.ID, v.Truth)
		case !bad:
			clean++
		}
	}
	if clean < 10 || clean > 30 {
		t.Errorf("%d clean stopped VMs of 40, want about 20", clean)
	}
	if DefaultMix().StoppedClean != 0 {
		t.Error("the default mix has stopped-clean VMs: it would change every default world")
	}
}
