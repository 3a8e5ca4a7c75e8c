package world

import (
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/providers/guest"
)

// TestWinRMWindow: a crashing boot of a VM with a WinRM window answers for
// that long, then crashes, every boot; deleting the bad file inside the
// window makes the next boot a normal one.
func TestWinRMWindow(t *testing.T) {
	v := vmSpec("1", img2019, badFile)
	v.LastBootAt = t0
	v.Condition.WinRMWindowSeconds = 40
	w, clk := load(t, scenario(v))
	w.mu.Lock()
	up, crash, cycle := w.upAfter(w.vms["vm-1"]), w.crashAfter(w.vms["vm-1"]), w.cycle(w.vms["vm-1"])
	w.mu.Unlock()
	if crash != up+40*time.Second || cycle < crash {
		t.Fatalf("up %v crash %v cycle %v", up, crash, cycle)
	}
	ip := "10.0.0.1"
	for boot := range 3 {
		start := t0.Add(time.Duration(boot) * cycle)
		for _, c := range []struct {
			at     time.Duration
			listen bool
		}{{up - time.Second, false}, {up, true}, {up + 39*time.Second, true}, {crash, false}, {cycle - time.Second, false}} {
			clk.Set(start.Add(c.at))
			if got := w.Listening(ip); got != c.listen {
				t.Fatalf("boot %d at +%v: listening %v, want %v", boot, c.at, got, c.listen)
			}
			if s := sig(t, w, "vm-1"); *s.InstanceReachable {
				t.Fatalf("boot %d at +%v: the cloud's check passes during a crashing boot", boot, c.at)
			}
		}
	}
	if truth, _ := w.Truth("vm-1"); truth != TruthBootLoop {
		t.Fatalf("truth %s", truth)
	}
	// Race the next boot: delete the file inside its window.
	start := t0.Add(3 * cycle)
	clk.Set(start.Add(up + 10*time.Second))
	m := machineOf(t, w, "vm-1")
	r, err := m.DeleteFiles(ctx, guest.DeleteParams{Root: "C:", Criteria: criteria()})
	if err != nil || len(r.Deleted) != 1 {
		t.Fatalf("delete in the window: %+v, %v", r, err)
	}
	clk.Set(start.Add(crash + time.Second))
	if w.Listening(ip) {
		t.Fatal("this boot still crashes: the driver was already loaded")
	}
	// Long after: one reset later it booted normally and stays up.
	clk.Set(start.Add(3 * cycle))
	s := sig(t, w, "vm-1")
	if truth, _ := w.Truth("vm-1"); truth != TruthHealthy || !*s.InstanceReachable || *s.BootCount != 4 {
		t.Fatalf("after the race: truth %s, %+v boots %d", truth, s, *s.BootCount)
	}
}
