package world

import (
	"slices"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/guest"
)

// A denied action fails the real call as access denied and shows in a dry
// run; the dry run changes nothing and touches no VM.
func TestDeniedActions(t *testing.T) {
	sc := scenario(vmSpec("1", img2019, goodFile))
	sc.Limits.Denied = map[string][]providers.Action{DefaultAccount: {providers.ActCreateHelper}}
	w, _ := load(t, sc)
	got := must[[]bool](t)(w.DryRun(ctx, DefaultAccount, []providers.Action{providers.ActStop, providers.ActCreateHelper}))
	if !slices.Equal(got, []bool{true, false}) {
		t.Errorf("dry run: got %v, want [true false]", got)
	}
	_, err := w.CreateHelper(ctx, DefaultAccount, "is1a", win2019, nil, "")
	wantClass(t, err, providers.ErrPermanent)
	if a := w.Audit(); a.HealthyTouched != 0 || a.LeakedResources != 0 {
		t.Errorf("audit after a dry run and a denied create: %+v", a.Invariants())
	}
	if other := must[[]bool](t)(w.DryRun(ctx, "other", []providers.Action{providers.ActCreateHelper})); !other[0] {
		t.Error("another account is denied too")
	}
}

func TestDeniedUnknownActionRefused(t *testing.T) {
	sc := scenario(vmSpec("1", img2019, goodFile))
	sc.Limits.Denied = map[string][]providers.Action{DefaultAccount: {"format-disk"}}
	if _, err := Load(sc, NewManualClock(sc.Now)); err == nil {
		t.Fatal("an unknown action loaded")
	}
}

func TestHelperQuotaRead(t *testing.T) {
	sc := scenario(vmSpec("1", img2019, goodFile))
	sc.Limits.HelpersPerAccount = 3
	w, _ := load(t, sc)
	must[HelperInfo](t)(w.CreateHelper(ctx, DefaultAccount, "is1a", win2019, nil, ""))
	limit, inUse, err := w.HelperQuota(ctx, DefaultAccount)
	if err != nil || limit != 3 || inUse != 1 {
		t.Errorf("HelperQuota = %d, %d, %v; want 3, 1, nil", limit, inUse, err)
	}
}

// The read-only script reports the VM's condition and touches nothing.
func TestReadinessFacts(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		v := vmSpec("1", img2019, goodFile)
		v.Condition.SafeModeWinRM = enabled
		w, _ := load(t, scenario(v))
		r := must[guest.ReadinessFactsResult](t)(machineOf(t, w, "vm-1").ReadinessFacts(ctx, guest.ReadinessFactsParams{}))
		if r.SafeModeWinRM != enabled || r.BitLocker || r.KeyID != "" {
			t.Errorf("SafeModeWinRM %v, no BitLocker: read %+v", enabled, r)
		}
		if a := w.Audit(); a.HealthyTouched != 0 {
			t.Errorf("healthy_touched %d after a read", a.HealthyTouched)
		}
		if w.vms["vm-1"].power != inventory.PowerRunning {
			t.Error("the VM's power changed")
		}
	}
}

func TestReadinessFactsBitLocker(t *testing.T) {
	v := vmSpec("1", img2019, goodFile)
	v.OSDisk.BitLocker = &BitLockerSpec{KeyID: "0A1B2C3D-0000-4000-8000-000000000001", RecoveryKey: testKey}
	w, _ := load(t, scenario(v))
	r := must[guest.ReadinessFactsResult](t)(machineOf(t, w, "vm-1").ReadinessFacts(ctx, guest.ReadinessFactsParams{}))
	if !r.BitLocker || r.KeyID != "0A1B2C3D-0000-4000-8000-000000000001" {
		t.Errorf("read %+v, want BitLocker with its key ID", r)
	}
}

// TestCreateHelperAnswersItsAddress: the create call answers the helper's
// address, as EC2's RunInstances does, so that a face need not ask again
// (a second call may be throttled; the EC2 face once recorded helpers
// without an address that way, and their disks were left on them).
func TestCreateHelperAnswersItsAddress(t *testing.T) {
	w, _ := load(t, scenario(vmSpec("1", img2019, goodFile)))
	info := must[HelperInfo](t)(w.CreateHelper(ctx, DefaultAccount, "is1a", win2019, nil, ""))
	ep := must[providers.Endpoint](t)(w.GuestEndpoint(ctx, DefaultAccount, info.Ref.ID))
	if info.PrivateIP == "" || info.PrivateIP != ep.Host {
		t.Errorf("CreateHelper answered address %q, GuestEndpoint says %q", info.PrivateIP, ep.Host)
	}
}
