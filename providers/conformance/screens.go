package conformance

import (
	"errors"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/inventory/screen"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// screens: on a provider whose Observer also reads screens
// (providers.Screens), each running VM's screenshot classifies as the
// screen the world shows it (read just before and just after, on a clock
// that may move), a stopped VM has none (ErrConflict) or a black one, and
// an unknown VM is ErrNotFound. Skipped on providers without screens.
func screensScenario(e *env) {
	sc, ok := e.p.Observer.(providers.Screens)
	if !ok {
		e.t.Skipf("%s: the observer reads no screens (providers.Screens)", e.h.Name)
	}
	running := e.pick(12, "running VMs", func(v world.VMSpec) bool { return v.Power == inventory.PowerRunning })
	seen := map[inventory.Screen]int{}
	for _, v := range running {
		before, err := e.w.Screen(e.ctx, e.acct, v.ID)
		e.must(err, "world screen of %s", v.ID)
		img, err := sc.Screenshot(e.ctx, e.ref(v))
		e.must(err, "Screenshot %s", v.ID)
		after, err := e.w.Screen(e.ctx, e.acct, v.ID)
		e.must(err, "world screen of %s", v.ID)
		got := screen.ClassifyBytes(img)
		if got != before.Shows() && got != after.Shows() {
			e.t.Errorf("%s: Screenshot of %s classifies as %q; the world shows %v", e.h.Name, v.ID, got, before)
		}
		seen[got]++
	}
	if len(seen) < 2 {
		e.t.Errorf("%s: %d running VMs all showed %v: the scenario needs a varied fleet", e.h.Name, len(running), seen)
	}
	// pick fails the scenario when the world has no stopped VM: the check
	// must not pass by finding none.
	v := e.pick(1, "stopped", func(v world.VMSpec) bool { return v.Power == inventory.PowerStopped })[0]
	img, err := sc.Screenshot(e.ctx, e.ref(v))
	if err == nil && screen.ClassifyBytes(img) != inventory.ScreenBlack {
		e.t.Errorf("%s: stopped VM %s shows %q", e.h.Name, v.ID, screen.ClassifyBytes(img))
	}
	if err != nil && !errors.Is(err, providers.ErrConflict) {
		e.t.Errorf("%s: Screenshot of stopped VM %s: %v, want ErrConflict or a black screen", e.h.Name, v.ID, err)
	}
	_, err = sc.Screenshot(e.ctx, e.unknownVM())
	e.wantClass(err, providers.ErrNotFound, "Screenshot of an unknown VM")
}
