package guest

import (
	"errors"
	"fmt"
	"strings"
)

// Error classes of the client. Test with errors.Is.
var (
	// ErrUnreachable: nothing answered: connection refused, the proxy
	// refused the tunnel (the guest is not listening), a network timeout
	// or a dropped connection. The script may or may not have run when the
	// connection dropped mid-command; every catalog script is read-only or
	// idempotent, so probing again is safe.
	ErrUnreachable = errors.New("guest unreachable")
	// ErrAuth: the guest rejected the credentials (HTTP 401).
	ErrAuth = errors.New("guest rejected the credentials")
	// ErrRefused: the guest refused the script or its parameters (exit
	// code ExitRefused). Retrying the same call will not help.
	ErrRefused = errors.New("guest refused the script")
	// ErrBusy: the guest answered but is at a WinRM quota (the QuotaLimit
	// fault): the user's open shells (MaxShellsPerUser), often shells of
	// a process killed mid-command that the guest keeps until their idle
	// timeout. Nothing ran; retrying later helps.
	ErrBusy = errors.New("guest busy")
	// ErrShellLost: the guest answered that the shell or command is not
	// there (the InvalidSelectors fault): it expired, or the WinRM
	// service restarted. The script may or may not have run; every
	// catalog script is read-only or idempotent, so running it again in a
	// new shell is safe.
	ErrShellLost = errors.New("guest lost the WinRM shell")
)

// Transient reports whether err is of a class that waiting and retrying
// may cure: ErrUnreachable, ErrBusy or ErrShellLost.
func Transient(err error) bool {
	return errors.Is(err, ErrUnreachable) || errors.Is(err, ErrBusy) || errors.Is(err, ErrShellLost)
}

// faultClass is the error class of a WS-Management fault's subcode (as
// parseFault returns it), or nil when retrying cannot help.
func faultClass(code string) error {
	switch code {
	case "QuotaLimit":
		return ErrBusy
	case "InvalidSelectors":
		return ErrShellLost
	}
	return nil
}

// maxStderr bounds the standard error kept in a ScriptError.
const maxStderr = 2048

// ScriptError is a script that ran and exited non-zero. errors.Is(err,
// ErrRefused) holds when ExitCode is ExitRefused.
type ScriptError struct {
	Host     string // the guest, as addressed
	Name     Name
	ExitCode int
	// Stderr is the script's standard error, truncated, with the password
	// and any secret parameter removed.
	Stderr string
}

func (e *ScriptError) Error() string {
	msg := fmt.Sprintf("guest %s: script %s exited %d", e.Host, e.Name, e.ExitCode)
	if e.ExitCode == ExitRefused {
		msg = fmt.Sprintf("guest %s: %s: script %s", e.Host, ErrRefused, e.Name)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		msg += ": " + s
	}
	return msg
}

// Is reports ErrRefused for a refusal.
func (e *ScriptError) Is(target error) bool { return target == ErrRefused && e.ExitCode == ExitRefused }

// classError is a client failure of one class with a message that has
// already been scrubbed of secrets. It deliberately does not unwrap to the
// underlying error, whose text is not under fixfleet's control.
type classError struct {
	class error // ErrUnreachable, ErrAuth, ErrBusy, ErrShellLost, or nil
	cause error // context.Canceled / DeadlineExceeded, or nil
	msg   string
}

func (e *classError) Error() string { return e.msg }

func (e *classError) Is(target error) bool {
	return (e.class != nil && target == e.class) || (e.cause != nil && errors.Is(e.cause, target))
}

// scrub replaces every non-empty secret in s, and truncates s to max bytes
// (max <= 0: no limit).
func scrub(s string, secrets []string, max int) string {
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	if max > 0 && len(s) > max {
		s = s[:max] + "…(truncated)"
	}
	return s
}
