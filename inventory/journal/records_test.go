package journal

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestCreateRun(t *testing.T) {
	ctx := context.Background()
	j, _ := openTemp(t)
	plan := []byte("{\n  \"id\": \"p1\",  \"vms\": [1, 2]\n}") // odd spacing: must come back verbatim
	base := Run{ID: "r1", PlanID: "p1", PlanJSON: plan, CreatedAt: t0, Options: json.RawMessage(`{"canary":5}`)}
	if err := j.CreateRun(ctx, base); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		run     Run
		wantErr error
	}{
		{"same again is a no-op", base, nil},
		{"same ID other plan ID", with(base, func(r *Run) { r.PlanID = "p2" }), ErrConflict},
		{"same ID other plan", with(base, func(r *Run) { r.PlanJSON = []byte(`{}`) }), ErrConflict},
		{"no ID", with(base, func(r *Run) { r.ID = "" }), ErrInvalid},
		{"no plan ID", with(base, func(r *Run) { r.ID, r.PlanID = "x", "" }), ErrInvalid},
		{"no plan", with(base, func(r *Run) { r.ID, r.PlanJSON = "x", nil }), ErrInvalid},
		{"no time", with(base, func(r *Run) { r.ID, r.CreatedAt = "x", time.Time{} }), ErrInvalid},
		{"bad options", with(base, func(r *Run) { r.ID, r.Options = "x", json.RawMessage(`{`) }), ErrInvalid},
		{"bad status", with(base, func(r *Run) { r.ID, r.Status = "x", "exploded" }), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := j.CreateRun(ctx, tt.run)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("CreateRun = %v, want %v", err, tt.wantErr)
			}
		})
	}
	got, err := j.GetRun(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if string(got.PlanJSON) != string(plan) || got.PlanID != "p1" || got.Status != RunRunning ||
		!got.CreatedAt.Equal(t0) || string(got.Options) != `{"canary":5}` {
		t.Errorf("GetRun = %+v", got)
	}
	if _, err := j.GetRun(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetRun(unknown) = %v, want ErrNotFound", err)
	}
	if err := j.SetRunStatus(ctx, "r1", RunPaused, at(60)); err != nil {
		t.Fatal(err)
	}
	if got, _ := j.GetRun(ctx, "r1"); got.Status != RunPaused || !got.UpdatedAt.Equal(at(60)) {
		t.Errorf("after SetRunStatus: %+v", got)
	}
	if err := j.SetRunStatus(ctx, "nope", RunDone, at(1)); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetRunStatus(unknown) = %v", err)
	}
	if err := j.SetRunStatus(ctx, "r1", "bogus", at(1)); !errors.Is(err, ErrInvalid) {
		t.Errorf("SetRunStatus(bogus) = %v", err)
	}
	// Re-creating a paused run does not reset it.
	if err := j.CreateRun(ctx, base); err != nil {
		t.Fatal(err)
	}
	if got, _ := j.GetRun(ctx, "r1"); got.Status != RunPaused {
		t.Errorf("CreateRun again changed status to %s", got.Status)
	}
}

func with(r Run, f func(*Run)) Run { f(&r); return r }

func TestLatestAndListRuns(t *testing.T) {
	ctx := context.Background()
	j, _ := openTemp(t)
	if _, err := j.LatestRun(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("LatestRun on empty journal = %v, want ErrNotFound", err)
	}
	// Created out of order; 04:09:00.5 sorts after 04:09:00 although its
	// RFC3339Nano text would not (".5Z" < "Z").
	for _, r := range []struct {
		id string
		at time.Time
	}{
		{"b", t0.Add(500 * time.Millisecond)},
		{"a", t0},
		{"c", t0.Add(-time.Hour).In(time.FixedZone("JST", 9*3600))},
	} {
		if err := j.CreateRun(ctx, Run{ID: r.id, PlanID: "p", PlanJSON: []byte(`{}`), CreatedAt: r.at}); err != nil {
			t.Fatal(err)
		}
	}
	latest, err := j.LatestRun(ctx)
	if err != nil || latest.ID != "b" || latest.PlanJSON == nil {
		t.Errorf("LatestRun = %+v, %v; want run b with its plan", latest, err)
	}
	runs, err := j.ListRuns(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range runs {
		ids = append(ids, r.ID)
		if r.PlanJSON != nil {
			t.Errorf("ListRuns returned the plan of %s", r.ID)
		}
		if r.CreatedAt.Location() != time.UTC {
			t.Errorf("run %s time not UTC: %v", r.ID, r.CreatedAt)
		}
	}
	if got := strings.Join(ids, ","); got != "b,a,c" {
		t.Errorf("ListRuns order %s, want b,a,c", got)
	}
}

func TestVMs(t *testing.T) {
	ctx := context.Background()
	j, _ := openTemp(t)
	mustRun(t, j, "r1")
	v := VM{RunID: "r1", VMKey: "sim/is1a/2", Name: "web-2", Strategy: "reboot-retry", Status: VMPending, UpdatedAt: at(1)}
	if err := j.UpsertVM(ctx, v); err != nil {
		t.Fatal(err)
	}
	v.Status, v.Reason, v.UpdatedAt = VMFixed, "came up after 3 restarts", at(2)
	if err := j.UpsertVM(ctx, v); err != nil {
		t.Fatal(err)
	}
	if err := j.UpsertVM(ctx, VM{RunID: "r1", VMKey: "sim/is1a/1", Status: VMSkippedHealthy, UpdatedAt: at(1)}); err != nil {
		t.Fatal(err)
	}
	got, err := j.GetVM(ctx, "r1", "sim/is1a/2")
	if err != nil || got != v {
		t.Errorf("GetVM = %+v, %v; want %+v", got, err, v)
	}
	list, err := j.ListVMs(ctx, "r1")
	if err != nil || len(list) != 2 || list[0].VMKey != "sim/is1a/1" || list[1] != v {
		t.Errorf("ListVMs = %+v, %v", list, err)
	}
	for _, tt := range []struct {
		name string
		vm   VM
		want error
	}{
		{"unknown run", VM{RunID: "nope", VMKey: "k", Status: VMPending, UpdatedAt: at(1)}, ErrNotFound},
		{"no key", VM{RunID: "r1", Status: VMPending, UpdatedAt: at(1)}, ErrInvalid},
		{"no status", VM{RunID: "r1", VMKey: "k", UpdatedAt: at(1)}, ErrInvalid},
		{"no time", VM{RunID: "r1", VMKey: "k", Status: VMPending}, ErrInvalid},
	} {
		if err := j.UpsertVM(ctx, tt.vm); !errors.Is(err, tt.want) {
			t.Errorf("%s: UpsertVM = %v, want %v", tt.name, err, tt.want)
		}
	}
	if _, err := j.GetVM(ctx, "r1", "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("GetVM(unknown) = %v", err)
	}
}

func TestSteps(t *testing.T) {
	ctx := context.Background()
	j, _ := openTemp(t)
	mustRun(t, j, "r1")
	intent := func(step string, attempt int) StepIntent {
		return StepIntent{RunID: "r1", VMKey: "vm1", Strategy: "helper-mount", Step: step, Attempt: attempt,
			Intent: json.RawMessage(`{"disk":"d1"}`), At: at(attempt)}
	}
	id1, err := j.BeginStep(ctx, intent("snapshot", 1))
	if err != nil {
		t.Fatal(err)
	}
	s, err := j.GetStep(ctx, id1)
	if err != nil || s.Status != StepBegun || !s.BegunAt.Equal(at(1)) || s.Facts != nil {
		t.Fatalf("GetStep after begin = %+v, %v", s, err)
	}
	res := StepResult{Status: StepOK, Facts: map[string]string{"snapshot": "snap-1", "disk.guid": "G1"}, At: at(5)}
	if err := j.EndStep(ctx, id1, res); err != nil {
		t.Fatal(err)
	}
	if err := j.EndStep(ctx, id1, res); err != nil {
		t.Errorf("EndStep again, same status = %v, want nil (idempotent)", err)
	}
	id2, err := j.BeginStep(ctx, intent("attach", 1))
	if err != nil {
		t.Fatal(err)
	}
	if err := j.EndStep(ctx, id2, StepResult{Status: StepFailed, Error: "throttled", Facts: map[string]string{"disk.guid": "G2"}, At: at(6)}); err != nil {
		t.Fatal(err)
	}
	if err := j.PutFacts(ctx, "r1", "vm1", map[string]string{"helper": "h-1"}); err != nil {
		t.Fatal(err)
	}

	for _, tt := range []struct {
		name string
		call func() error
		want error
	}{
		{"end with other status", func() error { return j.EndStep(ctx, id1, StepResult{Status: StepFailed, At: at(9)}) }, ErrConflict},
		{"same attempt twice", func() error { _, err := j.BeginStep(ctx, intent("snapshot", 1)); return err }, ErrConflict},
		{"unknown step", func() error { return j.EndStep(ctx, 9999, StepResult{Status: StepOK, At: at(9)}) }, ErrNotFound},
		{"end as begun", func() error { return j.EndStep(ctx, id2, StepResult{Status: StepBegun, At: at(9)}) }, ErrInvalid},
		{"end without time", func() error { return j.EndStep(ctx, id2, StepResult{Status: StepOK}) }, ErrInvalid},
		{"unknown run", func() error {
			_, err := j.BeginStep(ctx, with2(intent("x", 1), func(s *StepIntent) { s.RunID = "nope" }))
			return err
		}, ErrNotFound},
		{"attempt 0", func() error { _, err := j.BeginStep(ctx, intent("x", 0)); return err }, ErrInvalid},
		{"bad intent", func() error {
			_, err := j.BeginStep(ctx, with2(intent("x", 1), func(s *StepIntent) { s.Intent = json.RawMessage(`{"a":`) }))
			return err
		}, ErrInvalid},
		{"no time", func() error {
			_, err := j.BeginStep(ctx, with2(intent("x", 1), func(s *StepIntent) { s.At = time.Time{} }))
			return err
		}, ErrInvalid},
		{"facts for unknown run", func() error { return j.PutFacts(ctx, "nope", "vm1", map[string]string{"a": "b"}) }, ErrNotFound},
	} {
		if err := tt.call(); !errors.Is(err, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}

	n, err := j.NextAttempt(ctx, "r1", "vm1", "helper-mount", "snapshot")
	if err != nil || n != 2 {
		t.Errorf("NextAttempt = %d, %v; want 2", n, err)
	}
	if n, _ := j.NextAttempt(ctx, "r1", "vm1", "helper-mount", "detach"); n != 1 {
		t.Errorf("NextAttempt(new step) = %d, want 1", n)
	}

	steps, err := j.ListSteps(ctx, "r1", "vm1")
	if err != nil {
		t.Fatal(err)
	}
	if len(steps) != 2 || steps[0].ID != id1 || steps[1].ID != id2 {
		t.Fatalf("ListSteps = %+v", steps)
	}
	if s := steps[0]; s.Status != StepOK || !maps.Equal(s.Facts, res.Facts) || string(s.Intent) != `{"disk":"d1"}` || !s.EndedAt.Equal(at(5)) {
		t.Errorf("step 1 = %+v", s)
	}
	if s := steps[1]; s.Status != StepFailed || s.Error != "throttled" || s.Facts["disk.guid"] != "G2" {
		t.Errorf("step 2 = %+v", s)
	}

	facts, err := j.Facts(ctx, "r1", "vm1")
	want := map[string]string{"snapshot": "snap-1", "disk.guid": "G2", "helper": "h-1"}
	if err != nil || !maps.Equal(facts, want) {
		t.Errorf("Facts = %v, %v; want %v", facts, err, want)
	}
	hist, err := j.FactHistory(ctx, "r1", "vm1")
	if err != nil || len(hist) != 4 {
		t.Fatalf("FactHistory = %+v, %v", hist, err)
	}
	if hist[0].Key != "disk.guid" || hist[0].Value != "G1" || hist[0].StepID != id1 || hist[3].StepID != 0 {
		t.Errorf("FactHistory = %+v", hist)
	}
	if f, err := j.Facts(ctx, "r1", "other"); err != nil || f == nil || len(f) != 0 {
		t.Errorf("Facts(no facts) = %v, %v; want empty map", f, err)
	}
}

func with2(s StepIntent, f func(*StepIntent)) StepIntent { f(&s); return s }

func TestEvents(t *testing.T) {
	ctx := context.Background()
	j, _ := openTemp(t)
	mustRun(t, j, "r1")
	mustRun(t, j, "r2")
	for _, e := range []Event{
		{RunID: "r1", Kind: "wave.start", Message: "canary wave: 5 VMs", At: at(1)},
		{RunID: "r1", VMKey: "vm1", Kind: "vm.recheck", Message: "healthy now; skipping", At: at(2)},
		{RunID: "r2", VMKey: "vm1", Kind: "vm.recheck", Message: "other run", At: at(3)},
		{RunID: "r1", VMKey: "vm2", Kind: "brake.tripped", Message: "failure rate 40%", At: at(4)},
		{Kind: "note", Message: "journal-wide", At: at(5)},
	} {
		if err := j.Event(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name  string
		run   string
		f     EventFilter
		kinds string
	}{
		{"whole run", "r1", EventFilter{}, "wave.start,vm.recheck,brake.tripped"},
		{"one VM", "r1", EventFilter{VMKey: "vm1"}, "vm.recheck"},
		{"kinds", "r1", EventFilter{Kinds: []string{"brake.tripped", "wave.start"}}, "wave.start,brake.tripped"},
		{"limit", "r1", EventFilter{Limit: 2}, "wave.start,vm.recheck"},
		{"all runs", "", EventFilter{}, "wave.start,vm.recheck,vm.recheck,brake.tripped,note"},
		{"after", "", EventFilter{AfterSeq: 3}, "brake.tripped,note"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, err := j.Events(ctx, tt.run, tt.f)
			if err != nil {
				t.Fatal(err)
			}
			var kinds []string
			for i, e := range evs {
				kinds = append(kinds, e.Kind)
				if i > 0 && e.Seq <= evs[i-1].Seq {
					t.Errorf("events out of order: %+v", evs)
				}
			}
			if got := strings.Join(kinds, ","); got != tt.kinds {
				t.Errorf("kinds %s, want %s", got, tt.kinds)
			}
		})
	}
	if err := j.Event(ctx, Event{RunID: "nope", Kind: "k", At: at(1)}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Event(unknown run) = %v", err)
	}
	if err := j.Event(ctx, Event{RunID: "r1", Kind: "k"}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Event(no time) = %v", err)
	}
	// Append-only, enforced by the database itself.
	for _, q := range []string{`UPDATE events SET message = 'rewritten'`, `DELETE FROM events`, `DELETE FROM events WHERE seq = 1`} {
		if _, err := j.w.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want append-only refusal", q, err)
		}
	}
	if evs, _ := j.Events(ctx, "", EventFilter{}); len(evs) != 5 || evs[0].Message != "canary wave: 5 VMs" {
		t.Errorf("events changed: %+v", evs)
	}
}

func TestSummarize(t *testing.T) {
	ctx := context.Background()
	j, _ := openTemp(t)
	mustRun(t, j, "r1")
	for i, v := range []struct {
		strategy string
		status   VMStatus
	}{
		{"reboot-retry", VMFixed}, {"reboot-retry", VMFixed}, {"reboot-retry", VMFailed},
		{"helper-mount", VMFixed}, {"helper-mount", VMRunning}, {"", VMSkippedHealthy},
	} {
		err := j.UpsertVM(ctx, VM{RunID: "r1", VMKey: string(rune('a' + i)), Strategy: v.strategy, Status: v.status, UpdatedAt: at(i)})
		if err != nil {
			t.Fatal(err)
		}
	}
	id, _ := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "a", Step: "restart", Attempt: 1, At: at(1)})
	_ = j.EndStep(ctx, id, StepResult{Status: StepOK, At: at(2)})
	_, _ = j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: "e", Step: "attach", Attempt: 1, At: at(1)})

	s, err := j.Summarize(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if s.VMs != 6 || s.Run.ID != "r1" || s.Run.PlanJSON != nil {
		t.Errorf("summary header %+v", s)
	}
	if want := map[VMStatus]int{VMFixed: 3, VMFailed: 1, VMRunning: 1, VMSkippedHealthy: 1}; !maps.Equal(s.ByStatus, want) {
		t.Errorf("ByStatus %v, want %v", s.ByStatus, want)
	}
	if want := map[string]int{"reboot-retry": 3, "helper-mount": 2, "": 1}; !maps.Equal(s.ByStrategy, want) {
		t.Errorf("ByStrategy %v, want %v", s.ByStrategy, want)
	}
	if got := s.ByStrategyStatus["reboot-retry"][VMFixed]; got != 2 {
		t.Errorf("reboot-retry fixed = %d, want 2", got)
	}
	if want := map[StepStatus]int{StepOK: 1, StepBegun: 1}; !maps.Equal(s.Steps, want) {
		t.Errorf("Steps %v, want %v", s.Steps, want)
	}
	if _, err := j.Summarize(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Summarize(unknown) = %v", err)
	}
}

// TestConcurrentWriters: hundreds of VMs in flight at once, each journaling
// its steps, facts, status and events; nothing lost, nothing fails.
func TestConcurrentWriters(t *testing.T) {
	ctx := context.Background()
	j, _ := openTemp(t)
	mustRun(t, j, "r1")
	const vms, steps = 100, 4
	var wg sync.WaitGroup
	errs := make(chan error, vms)
	for v := range vms {
		wg.Go(func() {
			key := "vm-" + itoa(v)
			for s := range steps {
				id, err := j.BeginStep(ctx, StepIntent{RunID: "r1", VMKey: key, Strategy: "s", Step: "step-" + itoa(s), Attempt: 1, At: at(s)})
				if err != nil {
					errs <- err
					return
				}
				if err := j.EndStep(ctx, id, StepResult{Status: StepOK, Facts: map[string]string{"last": itoa(s)}, At: at(s)}); err != nil {
					errs <- err
					return
				}
				if _, err := j.ListSteps(ctx, "r1", key); err != nil { // readers alongside writers
					errs <- err
					return
				}
			}
			if err := j.UpsertVM(ctx, VM{RunID: "r1", VMKey: key, Status: VMFixed, UpdatedAt: at(9)}); err != nil {
				errs <- err
				return
			}
			errs <- j.Event(ctx, Event{RunID: "r1", VMKey: key, Kind: "vm.done", At: at(9)})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	s, err := j.Summarize(ctx, "r1")
	if err != nil || s.ByStatus[VMFixed] != vms || s.Steps[StepOK] != vms*steps || s.Steps[StepBegun] != 0 {
		t.Errorf("after concurrent writes: %+v, %v", s, err)
	}
	f, _ := j.Facts(ctx, "r1", "vm-7")
	if f["last"] != itoa(steps-1) {
		t.Errorf("facts of vm-7 = %v", f)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
