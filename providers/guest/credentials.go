package guest

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
)

// Credentials are a guest's local administrator account. The password never
// shows: String, GoString, every fmt verb, JSON and slog print the user name
// only.
type Credentials struct {
	User     string
	Password string
}

const redacted = "[redacted]"

// String implements fmt.Stringer.
func (c Credentials) String() string { return "user " + c.User + " (password " + redacted + ")" }

// GoString implements fmt.GoStringer (%#v).
func (c Credentials) GoString() string {
	return fmt.Sprintf("guest.Credentials{User:%q, Password:%q}", c.User, redacted)
}

// Format implements fmt.Formatter so that no verb reveals the password.
func (c Credentials) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, c.GoString())
	case verb == 'q':
		_, _ = fmt.Fprintf(f, "%q", c.String())
	default:
		_, _ = io.WriteString(f, c.String())
	}
}

// MarshalJSON implements json.Marshaler: the user name and a redaction.
func (c Credentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		User     string `json:"user"`
		Password string `json:"password"`
	}{c.User, redacted})
}

// MarshalText implements encoding.TextMarshaler.
func (c Credentials) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// LogValue implements slog.LogValuer.
func (c Credentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("user", c.User), slog.String("password", redacted))
}
