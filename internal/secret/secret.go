// Package secret holds values that must never leak: WinRM passwords,
// BitLocker recovery keys, API secrets.
//
// A Secret formats, marshals and logs as "[redacted]" in every encoding the
// standard library or yaml knows (fmt verbs, %#v, JSON, text, YAML). Reveal
// is the only way to read the value, so every use of it is visible in review.
package secret

import (
	"fmt"
	"io"
	"log/slog"
)

// Redacted is what a Secret shows instead of its value.
const Redacted = "[redacted]"

// Secret is a string that never shows itself. The zero value is an empty
// secret. Copying a Secret copies the value; compare with Equal.
type Secret struct {
	v string
}

// New wraps s.
func New(s string) Secret { return Secret{v: s} }

// Reveal returns the value. Call it only at the point of use (the wire),
// never to build a message.
func (s Secret) Reveal() string { return s.v }

// IsZero reports whether the secret is empty.
func (s Secret) IsZero() bool { return s.v == "" }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer (%#v).
func (s Secret) GoString() string { return "secret.Secret{" + Redacted + "}" }

// Format implements fmt.Formatter, so that every verb (%v %+v %#v %s %q %x
// %d ...) prints the redaction, never the value.
func (s Secret) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		_, _ = io.WriteString(f, `"`+Redacted+`"`)
	case 'v':
		if f.Flag('#') {
			_, _ = io.WriteString(f, s.GoString())
			return
		}
		_, _ = io.WriteString(f, Redacted)
	default:
		_, _ = io.WriteString(f, Redacted)
	}
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalYAML implements the yaml Marshaler interface.
func (s Secret) MarshalYAML() (any, error) { return Redacted, nil }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// Equal reports whether two secrets hold the same value, without revealing
// either.
func (s Secret) Equal(o Secret) bool { return s.v == o.v }
