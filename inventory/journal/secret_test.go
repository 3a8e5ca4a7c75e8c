package journal

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/internal/secret"
)

func TestSecretsRefused(t *testing.T) {
	ctx := context.Background()
	const key = `123456-654321-"BitLocker"\key` // quote and backslash: escaped in JSON
	const pw = "hunter2-winrm"
	j, _ := openTemp(t, WithSecrets(secret.New(key), secret.New("")), WithSecretCheck(func(s string) bool { return strings.Contains(s, pw) }),
		WithHost("h1"))
	mustRun(t, j, "r1")
	id, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "vm1", Step: "unlock", Attempt: 1, At: at(1)})
	if err != nil {
		t.Fatal(err)
	}
	keyJSON, _ := json.Marshal(map[string]string{"recovery": key})
	tests := []struct {
		name   string
		secret string
		write  func() error
	}{
		{"run plan", key, func() error {
			return j.CreateRun(ctx, Run{ID: "r2", PlanID: "p", PlanJSON: keyJSON, CreatedAt: t0})
		}},
		{"run options", pw, func() error {
			return j.CreateRun(ctx, Run{ID: "r3", PlanID: "p", PlanJSON: []byte(`{}`), Options: json.RawMessage(`{"pw":"` + pw + `"}`), CreatedAt: t0})
		}},
		{"step intent, JSON-escaped", key, func() error {
			_, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "vm1", Step: "unlock", Attempt: 2, Intent: keyJSON, At: at(1)})
			return err
		}},
		{"step intent, key of an object", pw, func() error {
			_, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "vm1", Step: "unlock", Attempt: 3, Intent: json.RawMessage(`{"` + pw + `":1}`), At: at(1)})
			return err
		}},
		{"step error", pw, func() error {
			return j.EndStep(ctx, id, StepResult{Status: StepFailed, Error: "winrm login as admin/" + pw + " refused", At: at(2)})
		}},
		{"step fact", key, func() error {
			return j.EndStep(ctx, id, StepResult{Status: StepOK, Facts: map[string]string{"bitlocker": key}, At: at(2)})
		}},
		{"put fact value", key, func() error { return j.PutFacts(ctx, "r1", "vm1", map[string]string{"k": "x" + key + "y"}) }},
		{"put fact key", pw, func() error { return j.PutFacts(ctx, "r1", "vm1", map[string]string{pw: "v"}) }},
		{"VM reason", pw, func() error {
			return j.UpsertVM(ctx, VM{RunID: "r1", VMKey: "vm1", Status: VMFailed, Reason: pw, UpdatedAt: at(1)})
		}},
		{"VM key itself", pw, func() error {
			return j.UpsertVM(ctx, VM{RunID: "r1", VMKey: "vm-" + pw, Status: VMFailed, UpdatedAt: at(1)})
		}},
		{"event message", key, func() error { return j.Event(ctx, Event{RunID: "r1", Kind: "note", Message: key, At: at(1)}) }},
		{"lock command line", pw, func() error {
			_, err := j.Lock(ctx, Owner{Host: "h1", PID: 1, Command: "fixfleet apply --winrm-password " + pw})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			if !errors.Is(err, ErrSecret) {
				t.Fatalf("write = %v, want ErrSecret", err)
			}
			var se *SecretError
			if !errors.As(err, &se) {
				t.Fatalf("error %T, want *SecretError", err)
			}
			if strings.Contains(err.Error(), tt.secret) || strings.Contains(err.Error(), "hunter2") || strings.Contains(err.Error(), "BitLocker") {
				t.Errorf("error leaks the secret: %q", err)
			}
		})
	}
	// Nothing was written.
	if _, err := j.GetRun(ctx, "r2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("refused run was written: %v", err)
	}
	if s, _ := j.GetStep(ctx, id); s.Status != StepBegun {
		t.Errorf("refused EndStep was written: %+v", s)
	}
	if f, _ := j.Facts(ctx, "r1", "vm1"); len(f) != 0 {
		t.Errorf("refused facts were written: %v", f)
	}
	if n, _ := j.NextAttempt(ctx, "r1", "vm1", "", "unlock"); n != 2 {
		t.Errorf("refused steps were written: next attempt %d", n)
	}
	if evs, _ := j.Events(ctx, "", EventFilter{}); len(evs) != 0 {
		t.Errorf("refused events were written: %+v", evs)
	}
	if _, _, ok, _ := j.LockHolder(ctx); ok {
		t.Error("refused lock was taken")
	}
	// Clean writes still go through.
	if err := j.EndStep(ctx, id, StepResult{Status: StepOK, Facts: map[string]string{"unlocked": "true"}, At: at(2)}); err != nil {
		t.Errorf("clean EndStep: %v", err)
	}
}
