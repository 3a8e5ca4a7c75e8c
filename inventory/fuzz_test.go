package inventory

import (
	"bytes"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// FuzzParseIncident: ParseIncident never panics; an accepted profile is
// valid, and written back as YAML it parses to the same profile; a
// document that is not a mapping is refused without being quoted.
// Seeds: testdata/fuzz/FuzzParseIncident, made from the profiles in
// internal/config/testdata and the built-in one.
func FuzzParseIncident(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParseIncident(bytes.NewReader(data))
		if err != nil {
			if strings.HasPrefix(err.Error(), "not an incident profile") && len(bytes.TrimSpace(data)) >= 4 &&
				strings.Contains(err.Error(), string(bytes.TrimSpace(data))) {
				t.Fatalf("refusal quotes the document: %v", err)
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
