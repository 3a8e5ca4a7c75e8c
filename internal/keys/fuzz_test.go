package keys

import (
	"bytes"
	"regexp"
	"testing"
)

// keyShape is two groups of a recovery key: no error may show even that.
var keyShape = regexp.MustCompile(`[0-9]{6}-[0-9]{6}`)

// FuzzParseCSV: the key file parser never panics, its errors never show
// any part of a recovery key (nor anything shaped like one), and an
// accepted file holds only canonical key IDs and well-formed keys.
// Seeds: testdata/fuzz/FuzzParseCSV, made from testdata/*.csv.
func FuzzParseCSV(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseCSV(bytes.NewReader(data), "keys.csv")
		if err != nil {
			if s != nil {
				t.Fatalf("parseCSV returned keys and an error: %v", err)
			}
			if m := keyShape.FindString(err.Error()); m != "" {
				t.Fatalf("error shows key material %q...: %v", m[:3], err)
			}
			return
		}
		ids := s.IDs()
		if len(ids) != s.Len() {
			t.Fatalf("%d IDs for %d keys", len(ids), s.Len())
		}
		for _, id := range ids {
			if n, err := NormalizeID(id); err != nil || n != id {
				t.Fatalf("accepted key ID %q is not canonical (%q, %v)", id, n, err)
			}
			k, ok := s.Key(id)
			if !ok {
				t.Fatalf("listed key ID %s has no key", id)
			}
			if err := CheckRecoveryKey(k.Reveal()); err != nil {
				t.Fatalf("accepted a malformed recovery key for %s", id)
			}
		}
	})
}
