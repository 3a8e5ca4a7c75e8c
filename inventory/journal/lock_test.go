package journal

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestLock(t *testing.T) {
	ctx := context.Background()
	me := Owner{Host: "h1", PID: os.Getpid(), Command: "fixfleet apply plan.json"}
	wall := time.Date(2024, 7, 19, 6, 0, 0, 0, time.UTC)
	alive := func(int) bool { return true }
	j1, path := openTemp(t, WithHost("h1"), WithPIDAlive(alive), withNow(func() time.Time { return wall }))
	j2 := openAt(t, path, WithHost("h1"), WithPIDAlive(alive))

	release, err := j1.Lock(ctx, me)
	if err != nil {
		t.Fatal(err)
	}
	other := Owner{Host: "h1", PID: me.PID + 1, Command: "fixfleet apply again"}
	for _, tt := range []struct {
		name  string
		j     *Journal
		owner Owner
	}{
		{"same handle, same process", j1, me},
		{"other handle, same process", j2, me},
		{"other handle, other live process", j2, other},
		{"other host", j2, Owner{Host: "h2", PID: 7}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.j.Lock(ctx, tt.owner)
			var le *LockedError
			if !errors.As(err, &le) {
				t.Fatalf("second Lock = %v, want *LockedError", err)
			}
			if le.Holder != me || !le.Since.Equal(wall) || le.Path != path {
				t.Errorf("LockedError = %+v", le)
			}
			for _, m := range []string{"h1", "PID " + itoa(me.PID), "2024-07-19T06:00:00Z", "wait for it"} {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q lacks %q", err, m)
				}
			}
		})
	}
	if h, since, ok, err := j2.LockHolder(ctx); err != nil || !ok || h != me || !since.Equal(wall) {
		t.Errorf("LockHolder = %+v %v %v %v", h, since, ok, err)
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
	if err := release(); err != nil {
		t.Errorf("second release = %v, want nil", err)
	}
	if _, _, ok, _ := j2.LockHolder(ctx); ok {
		t.Error("lock still held after release")
	}
	release2, err := j2.Lock(ctx, other)
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	defer release2()
	if evs, _ := j1.Events(ctx, "", EventFilter{}); len(evs) != 0 {
		t.Errorf("events without a takeover: %+v", evs)
	}
}

func TestLockStale(t *testing.T) {
	ctx := context.Background()
	const deadPID, livePID = 4242, 4343
	tests := []struct {
		name      string
		holder    Owner
		alive     func(int) bool
		procID    func(int) string // identity now; the holder was recorded as "boot/100"
		wantTaken bool
	}{
		{"dead PID on this host", Owner{Host: "h1", PID: deadPID}, func(p int) bool { return p != deadPID }, nil, true},
		{"live PID on this host", Owner{Host: "h1", PID: deadPID}, func(int) bool { return true }, nil, false},
		{"dead PID on another host is not presumed dead", Owner{Host: "h2", PID: deadPID}, func(int) bool { return false }, nil, false},
		{"PID reused by another process", Owner{Host: "h1", PID: deadPID}, func(int) bool { return true },
			func(int) string { return "boot/999" }, true},
		{"same process identity", Owner{Host: "h1", PID: deadPID}, func(int) bool { return true },
			func(int) string { return "boot/100" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The holder took the lock when its process had identity boot/100.
			j0, path := openTemp(t, WithHost(tt.holder.Host), WithProcessIdentity(func(int) string { return "boot/100" }))
			if _, err := j0.Lock(ctx, tt.holder); err != nil { // never released: the process "died"
				t.Fatal(err)
			}
			procID := tt.procID
			if procID == nil {
				procID = func(int) string { return "" }
			}
			j := openAt(t, path, WithHost("h1"), WithPIDAlive(tt.alive), WithProcessIdentity(procID))
			release, err := j.Lock(ctx, Owner{Host: "h1", PID: livePID, Command: "fixfleet apply"})
			if !tt.wantTaken {
				var le *LockedError
				if !errors.As(err, &le) || le.Holder != tt.holder {
					t.Fatalf("Lock = %v, want *LockedError for %+v", err, tt.holder)
				}
				return
			}
			if err != nil {
				t.Fatalf("Lock over a stale holder: %v", err)
			}
			defer release()
			if h, _, _, _ := j.LockHolder(ctx); h.PID != livePID {
				t.Errorf("holder after takeover = %+v", h)
			}
			evs, err := j.Events(ctx, "", EventFilter{Kinds: []string{"lock.stale-takeover"}})
			if err != nil || len(evs) != 1 || !strings.Contains(evs[0].Message, "PID "+itoa(deadPID)) {
				t.Errorf("takeover events = %+v, %v", evs, err)
			}
		})
	}
}

func TestLockOldReleaseKeepsNewLock(t *testing.T) {
	ctx := context.Background()
	j, _ := openTemp(t, WithHost("h1"), WithPIDAlive(func(p int) bool { return p != 1 }))
	oldRelease, err := j.Lock(ctx, Owner{Host: "h1", PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	newRelease, err := j.Lock(ctx, Owner{Host: "h1", PID: 2}) // PID 1 is "dead": taken over
	if err != nil {
		t.Fatal(err)
	}
	defer newRelease()
	if err := oldRelease(); err != nil {
		t.Fatal(err)
	}
	if h, _, ok, _ := j.LockHolder(ctx); !ok || h.PID != 2 {
		t.Errorf("after the stale holder's release: holder %+v ok=%v, want PID 2", h, ok)
	}
}

// TestLockRace: many handles on one file race for the lock; exactly one wins.
func TestLockRace(t *testing.T) {
	ctx := context.Background()
	_, path := openTemp(t)
	const n = 8
	handles := make([]*Journal, n)
	for i := range handles {
		handles[i] = openAt(t, path, WithHost("h1"), WithPIDAlive(func(int) bool { return true }))
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, locked := 0, 0
	for i, h := range handles {
		wg.Go(func() {
			_, err := h.Lock(ctx, Owner{Host: "h1", PID: 1000 + i})
			mu.Lock()
			defer mu.Unlock()
			var le *LockedError
			switch {
			case err == nil:
				won++
			case errors.As(err, &le):
				locked++
			default:
				t.Errorf("Lock: %v", err)
			}
		})
	}
	wg.Wait()
	if won != 1 || locked != n-1 {
		t.Errorf("%d won, %d locked out; want 1 and %d", won, locked, n-1)
	}
}

func TestBreakLock(t *testing.T) {
	ctx := context.Background()
	j, _ := openTemp(t, WithHost("h1"))
	if _, ok, err := j.BreakLock(ctx, "nothing to break", at(1)); ok || err != nil {
		t.Errorf("BreakLock on unlocked journal = %v, %v", ok, err)
	}
	if _, err := j.Lock(ctx, Owner{Host: "lost-host", PID: 12}); err != nil {
		t.Fatal(err)
	}
	h, ok, err := j.BreakLock(ctx, "host lost in the incident", at(2))
	if err != nil || !ok || h.Host != "lost-host" {
		t.Fatalf("BreakLock = %+v, %v, %v", h, ok, err)
	}
	if _, err := j.Lock(ctx, Owner{Host: "h1", PID: 13}); err != nil {
		t.Errorf("Lock after BreakLock: %v", err)
	}
	evs, _ := j.Events(ctx, "", EventFilter{Kinds: []string{"lock.broken"}})
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "host lost in the incident") || !evs[0].At.Equal(at(2)) {
		t.Errorf("lock.broken events = %+v", evs)
	}
}
