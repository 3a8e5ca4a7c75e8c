package winrmd

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"

	"github.com/fixfleet/fixfleet/providers/guest"
)

// outcome is what a command left behind: its streams and exit code.
type outcome struct {
	stdout   []byte
	stderr   []byte
	exitCode int
	// refused is the reason the guest refused the command ("" if it did
	// not); safe to log and to pass to Hosts.Refused.
	refused string
	// dropped: the connection dropped instead of the reply (ErrDropped).
	dropped bool
}

// ErrDropped, wrapped in a Machine method's error, makes the server drop
// the client's connection instead of answering: the network lost the
// reply. Whether the script's effect happened is the Machine's business.
var ErrDropped = errors.New("WinRM: the connection dropped")

func refusedOutcome(reason string) outcome {
	return outcome{
		stderr:   []byte("fixfleet guest: refused: " + reason + "\r\n"),
		exitCode: guest.ExitRefused,
		refused:  reason,
	}
}

// execute decodes a catalog script's parameters strictly from stdin and
// calls the matching Machine method. Undecodable parameters are refused; a
// Machine error exits 1 with its text on stderr, or guest.ExitRefused when
// it matches guest.ErrRefused (the script's own guard refused, e.g. a disk
// serial mismatch); success prints the result as one JSON document and
// exits 0. It never logs or echoes stdin.
func execute(ctx context.Context, m Machine, n guest.Name, stdin []byte) outcome {
	switch n {
	case guest.Probe:
		return call(ctx, n, stdin, m.Probe, nil)
	case guest.DeleteFiles:
		return call(ctx, n, stdin, m.DeleteFiles, nil)
	case guest.ClearSafeBoot:
		return call(ctx, n, stdin, m.ClearSafeBoot, nil)
	case guest.CheckHives:
		return call(ctx, n, stdin, m.CheckHives, nil)
	case guest.ListDisks:
		return call(ctx, n, stdin, m.ListDisks, nil)
	case guest.OnlineDisk:
		return call(ctx, n, stdin, m.OnlineDisk, nil)
	case guest.UnlockVolume:
		return call(ctx, n, stdin, m.UnlockVolume, func(p guest.UnlockParams) []string { return []string{p.RecoveryKey} })
	case guest.SetDiskIdentity:
		return call(ctx, n, stdin, m.SetDiskIdentity, nil)
	case guest.OfflineDisk:
		return call(ctx, n, stdin, m.OfflineDisk, nil)
	case guest.ClearSafeBootOffline:
		return call(ctx, n, stdin, m.ClearSafeBootOffline, nil)
	case guest.SetSafeBootOffline:
		return call(ctx, n, stdin, m.SetSafeBootOffline, nil)
	case guest.ReadinessFacts:
		return call(ctx, n, stdin, m.ReadinessFacts, nil)
	}
	return refusedOutcome("command is not a catalog script")
}

// call runs one Machine method. secrets, if set, lists parameter values
// scrubbed from the method's error text (defence in depth: the Machine
// contract already forbids them there).
func call[P, R any](ctx context.Context, n guest.Name, stdin []byte, f func(context.Context, P) (R, error), secrets func(P) []string) outcome {
	var p P
	if reason := decodeParams(stdin, &p); reason != "" {
		return refusedOutcome("parameters for " + string(n) + ": " + reason)
	}
	r, err := f(ctx, p)
	if errors.Is(err, ErrDropped) {
		return outcome{dropped: true}
	}
	if err != nil {
		msg := err.Error()
		if secrets != nil {
			for _, s := range secrets(p) {
				if s != "" {
					msg = strings.ReplaceAll(msg, s, "[redacted]")
				}
			}
		}
		code := 1
		if errors.Is(err, guest.ErrRefused) {
			code = guest.ExitRefused // e.g. the disk does not carry the serial
		}
		return outcome{stderr: []byte(string(n) + ": " + msg + "\r\n"), exitCode: code}
	}
	out, err := json.Marshal(r)
	if err != nil {
		return outcome{stderr: []byte(string(n) + ": encoding the result failed\r\n"), exitCode: 1}
	}
	return outcome{stdout: append(out, '\r', '\n')}
}

// decodeParams decodes exactly one JSON object with no unknown fields into
// p. It returns "" on success, else a reason that quotes no value from the
// input (an unknown field's name is the only input it names).
func decodeParams(stdin []byte, p any) string {
	trimmed := bytes.TrimSpace(stdin)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return "not a JSON object"
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		msg := err.Error()
		if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			if f = strings.Trim(f, `"`); safeName(f) {
				return "unknown field " + f
			}
			return "unknown field"
		}
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			return "field " + te.Field + " has the wrong type"
		}
		return "undecodable JSON"
	}
	if _, err := dec.Token(); err != io.EOF {
		return "more than one JSON document"
	}
	return ""
}

// safeName reports whether s is a short identifier, safe to log.
func safeName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, r := range s {
		if !(r == '_' || r == '-' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}
