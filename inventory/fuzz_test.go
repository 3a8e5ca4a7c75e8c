package inventory

import (
	"bytes"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseIncident: ParseIncident never panics; an accepted profile is
// valid, and written back as YAML it parses to the same profile; a
// document that is not a mapping is refused with a message that quotes
// nothing of it.
// Seeds: testdata/fuzz/FuzzParseIncident, made from the profiles in
// internal/config/testdata and the built-in one.
func FuzzParseIncident(f *testing.F) {
	_, notMapping := ParseIncident(strings.NewReader("x"))
	if notMapping == nil {
		f.Fatal(`ParseIncident accepted "x"`)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseIncident(bytes.NewReader(data))
		if err != nil {
			// The refusal of a non-mapping never depends on what the
			// document holds: it quotes nothing.
			if strings.HasPrefix(err.Error(), "not an incident profile") && err.Error() != notMapping.Error() {
				t.Fatalf("refusal depends on the document: %v", err)
			}
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("accepted an invalid profile: %v", err)
		}
		out, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("cannot write back an accepted profile: %v", err)
		}
		q, err := ParseIncident(bytes.NewReader(out))
		if err != nil {
			t.Fatalf("an accepted profile, written back, is refused: %v\n%s", err, out)
		}
		if q.Name != p.Name || q.Description != p.Description || q.Directory != p.Directory || q.Pattern != p.Pattern ||
			q.Header != p.Header || !q.StartedAt.Equal(p.StartedAt) || !q.BadFrom.Equal(p.BadFrom) || !q.BadUntil.Equal(p.BadUntil) {
			t.Fatalf("round trip changed the profile:\n%+v\n%+v", p, q)
		}
	})
}
