package world

import (
	"strings"
	"testing"
)

// TestParseScenarioErrorWords: a malformed scenario is described by its
// JSON field path and the kind of value wanted, never by Go type names.
func TestParseScenarioErrorWords(t *testing.T) {
	tests := []struct{ doc, want string }{
		{`{"vms":[{"id":"a","power":5}]}`, "vms.power: a JSON number where a string is expected"},
		{`{"vms":{"id":"a"}}`, "vms: a JSON object where a list is expected"},
		{`{"vms":[{"idz":"a"}]}`, `unknown field "idz"`},
		{`{"vms":[}`, "not valid JSON at byte 9"},
	}
	for _, tt := range tests {
		_, err := ParseScenario(strings.NewReader(tt.doc))
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.doc, err, tt.want)
		}
		if err != nil && (strings.Contains(err.Error(), "Go ") || strings.Contains(err.Error(), "VMSpec") || strings.Contains(err.Error(), "json:")) {
			t.Errorf("%s: %v names Go internals", tt.doc, err)
		}
	}
}
