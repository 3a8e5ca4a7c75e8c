package world

import (
	"context"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/sim/screens"
)

// Screen returns what VM id's console screen shows now, for a face to
// render (screens.Render) as the cloud's screenshot. Like Observe, it is
// the orchestrator's observation of the VM (the referee notes it) and
// passes the control plane's limits and faults. Errors: ErrNotFound.
func (w *World) Screen(ctx context.Context, account, id string) (screens.Kind, error) {
	var out screens.Kind
	err := w.call(ctx, account, "Screenshot", vmRes(id), bucketNonMutating, func(now time.Time) error {
		v := w.vmIn(account, id, now)
		if v == nil {
			return notFound("Screenshot", vmRes(id), "no such VM")
		}
		out = w.screen(v, now)
		v.observed, v.obsAt, v.obsHealthy = true, now, healthyNow(v, now)
		return nil
	})
	return out, err
}

// screen is the screen of v now, from the same state as its console text.
// Caller has advanced v.
func (w *World) screen(v *vm, now time.Time) screens.Kind {
	switch v.power {
	case inventory.PowerRunning:
	case inventory.PowerStarting, inventory.PowerStopping:
		return screens.Booting
	default:
		return screens.Off
	}
	switch v.boot.kind {
	case bootNormal, bootSafe:
		switch {
		case now.Before(v.boot.upAt):
			return screens.Booting
		case v.boot.kind == bootSafe:
			return screens.SafeMode
		}
		return screens.Login
	case bootCrash:
		if now.Before(v.boot.winrmUntil) && !now.Before(v.boot.upAt) {
			return screens.Login // up for a short while before the crash
		}
		if now.Before(v.lastBootAt.Add(w.crashAfter(v))) {
			return screens.Booting
		}
		return screens.Stop
	case bootRepair:
		if now.Before(v.lastBootAt.Add(w.crashAfter(v))) {
			return screens.Booting
		}
		return screens.Recovery
	case bootStuck, bootUnbootable:
		return screens.Recovery
	}
	return screens.Off
}
