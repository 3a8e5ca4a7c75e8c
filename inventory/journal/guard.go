package journal

import (
	"encoding/json"
	"fmt"
	"sort"
)

// SecretError is returned (wrapping ErrSecret) when a write is refused
// because a text in it contains a registered secret. It names the record
// and the field, never the text; RunID and VMKey are "[redacted]" if they
// themselves hold the secret.
type SecretError struct {
	Record string // "run", "vm", "step", "step result", "facts", "event", "lock"
	Field  string // e.g. "intent", "message", "fact value"
	RunID  string
	VMKey  string
}

func (e *SecretError) Error() string {
	where := ""
	if e.RunID != "" {
		where += fmt.Sprintf(" run %q", e.RunID)
	}
	if e.VMKey != "" {
		where += fmt.Sprintf(" VM %q", e.VMKey)
	}
	return fmt.Sprintf("journal: refused to write %s %s%s: it contains a secret (value withheld); pass secrets as secret.Secret and keep them out of intents, facts, errors and messages",
		e.Record, e.Field, where)
}

// Unwrap makes errors.Is(err, ErrSecret) true.
func (e *SecretError) Unwrap() error { return ErrSecret }

// guard checks the texts of one record before it is written.
type guard struct {
	j      *Journal
	record string
	runID  string
	vmKey  string
	bad    *SecretError
}

func (j *Journal) guard(record, runID, vmKey string) *guard {
	return &guard{j: j, record: record, runID: runID, vmKey: vmKey}
}

func (g *guard) secret(s string) bool { return g.j.isSecret != nil && s != "" && g.j.isSecret(s) }

// text checks one text field.
func (g *guard) text(field, s string) *guard {
	if g.bad == nil && g.secret(s) {
		g.fail(field)
	}
	return g
}

// json checks a JSON document both as raw text and value by value after
// decoding, so that a secret escaped by the JSON encoding is still found.
func (g *guard) json(field string, raw []byte) *guard {
	if g.bad != nil || g.j.isSecret == nil || len(raw) == 0 {
		return g
	}
	if g.secret(string(raw)) {
		g.fail(field)
		return g
	}
	var v any
	if err := json.Unmarshal(raw, &v); err == nil && g.walk(v) {
		g.fail(field)
	}
	return g
}

func (g *guard) walk(v any) bool {
	switch v := v.(type) {
	case string:
		return g.secret(v)
	case []any:
		for _, e := range v {
			if g.walk(e) {
				return true
			}
		}
	case map[string]any:
		for k, e := range v {
			if g.secret(k) || g.walk(e) {
				return true
			}
		}
	}
	return false
}

// facts checks every key and value.
func (g *guard) facts(m map[string]string) *guard {
	for _, k := range sortedKeys(m) {
		g.text("fact key", k).text("fact value", m[k])
	}
	return g
}

func (g *guard) fail(field string) {
	e := &SecretError{Record: g.record, Field: field, RunID: g.runID, VMKey: g.vmKey}
	if g.secret(e.RunID) {
		e.RunID = "[redacted]"
	}
	if g.secret(e.VMKey) {
		e.VMKey = "[redacted]"
	}
	g.bad = e
}

// err returns the refusal, or nil if every text was clean.
func (g *guard) err() error {
	if g.bad == nil {
		return nil
	}
	return g.bad
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
