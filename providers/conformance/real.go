package conformance

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// realEnv is one read-only scenario against a real account. There is no
// world to compare with: the checks are the contract's own (shapes,
// consistency between calls, error classes).
type realEnv struct {
	t   *testing.T
	ctx context.Context
	p   *providers.Provider
	r   Real
}

// realScenarios are the read-only scenarios RunReal runs.
func realScenarios() []Scenario {
	return []Scenario{
		{Name: "enumerate", Needs: []string{CapEnumerate}, ReadOnly: true, runReal: realEnumerate},
		{Name: "observe", Needs: []string{CapEnumerate, CapObserve}, ReadOnly: true, runReal: realObserve},
		{Name: "images", Needs: []string{CapHelpers}, ReadOnly: true, runReal: realImages},
		{Name: "backups-list", Needs: []string{CapEnumerate, CapBackups}, ReadOnly: true, runReal: realBackups},
		{Name: "describe-not-found", Needs: []string{CapDisks}, ReadOnly: true, runReal: realDescribeNotFound},
	}
}

func (e *realEnv) maxVMs() int {
	if e.r.MaxVMs > 0 {
		return e.r.MaxVMs
	}
	return 20
}

// vms lists the account's VMs, at most max of them.
func (e *realEnv) vms() []inventory.VM {
	e.t.Helper()
	vms, err := e.p.Enumerator.List(e.ctx)
	if err != nil {
		e.t.Fatalf("%s: List: %v", e.r.Name, err)
	}
	if len(vms) > e.maxVMs() {
		vms = vms[:e.maxVMs()]
	}
	return vms
}

// realEnumerate: List succeeds and every VM has an ID, a zone, a Windows
// release, a power state; no ID twice.
func realEnumerate(e *realEnv) {
	vms, err := e.p.Enumerator.List(e.ctx)
	if err != nil {
		e.t.Fatalf("%s: List: %v", e.r.Name, err)
	}
	seen := map[string]bool{}
	for _, v := range vms {
		if v.ID == "" || v.Zone == "" || v.Windows.Release == "" || v.Power == "" {
			e.t.Errorf("%s: List: VM %+v lacks an ID, zone, Windows release or power state", e.r.Name, v)
		}
		if seen[v.ID] {
			e.t.Errorf("%s: List returns VM %s twice", e.r.Name, v.ID)
		}
		seen[v.ID] = true
	}
	e.t.Logf("%s: %d Windows VMs", e.r.Name, len(vms))
}

// realObserve: an entry per listed VM, none for an unknown one.
func realObserve(e *realEnv) {
	vms := e.vms()
	if len(vms) == 0 {
		e.t.Skipf("%s: the account has no Windows VM to observe", e.r.Name)
	}
	refs := make([]providers.VMRef, 0, len(vms)+1)
	for _, v := range vms {
		refs = append(refs, providers.Ref(v))
	}
	if e.r.UnknownVM.ID != "" {
		refs = append(refs, e.r.UnknownVM)
	}
	sig, err := e.p.Observer.Observe(e.ctx, refs)
	if err != nil {
		e.t.Fatalf("%s: Observe: %v", e.r.Name, err)
	}
	for _, v := range vms {
		s, ok := sig[v.ID]
		if !ok {
			e.t.Errorf("%s: Observe has no entry for listed VM %s", e.r.Name, v.ID)
		} else if s.Power == "" {
			e.t.Errorf("%s: Observe %s: no power state", e.r.Name, v.ID)
		}
	}
	if _, ok := sig[e.r.UnknownVM.ID]; e.r.UnknownVM.ID != "" && ok {
		e.t.Errorf("%s: Observe has an entry for unknown VM %s", e.r.Name, e.r.UnknownVM.ID)
	}
}

// realImages: Images succeeds and finds at least one image (every cloud
// offers stock Windows images); every image has a zone, release and ID.
func realImages(e *realEnv) {
	ims, err := e.p.Helpers.Images(e.ctx)
	if err != nil {
		e.t.Fatalf("%s: Images: %v", e.r.Name, err)
	}
	if len(ims) == 0 {
		e.t.Errorf("%s: Images found no helper image: stock Windows images exist in every region, so the provider's search is wrong", e.r.Name)
	}
	for _, im := range ims {
		if im.Zone == "" || im.Windows.Release == "" || im.ImageID == "" {
			e.t.Errorf("%s: Images: %+v lacks a zone, release or image ID", e.r.Name, im)
		}
	}
	e.t.Logf("%s: %d helper images", e.r.Name, len(ims))
}

// realBackups: Backups.List succeeds for listed VMs, naming the VM and a
// time; ErrNotFound for an unknown VM.
func realBackups(e *realEnv) {
	for _, v := range e.vms() {
		bks, err := e.p.Backups.List(e.ctx, providers.Ref(v))
		if err != nil {
			e.t.Errorf("%s: Backups.List %s: %v", e.r.Name, v.ID, err)
			continue
		}
		for _, b := range bks {
			if b.ID == "" || b.VMID != v.ID || b.TakenAt.IsZero() {
				e.t.Errorf("%s: Backups.List %s: %+v, want an ID, VM %s and a time", e.r.Name, v.ID, b, v.ID)
			}
		}
	}
	if u := e.r.UnknownVM; u.ID != "" {
		_, err := e.p.Backups.List(e.ctx, u)
		e.wantNotFound(err, "Backups.List of unknown VM", u.ID)
	}
}

// realDescribeNotFound: Describe of an unknown disk is ErrNotFound naming it.
func realDescribeNotFound(e *realEnv) {
	if e.r.UnknownDisk.ID == "" {
		e.t.Skipf("%s: Real.UnknownDisk is not set", e.r.Name)
	}
	_, err := e.p.Disks.Describe(e.ctx, e.r.UnknownDisk)
	e.wantNotFound(err, "Describe of unknown disk", e.r.UnknownDisk.ID)
}

func (e *realEnv) wantNotFound(err error, what, id string) {
	e.t.Helper()
	if !errors.Is(err, providers.ErrNotFound) {
		e.t.Errorf("%s: %s %s: got %v, want ErrNotFound", e.r.Name, what, id, err)
	} else if !strings.Contains(err.Error(), id) {
		e.t.Errorf("%s: %s: error %q does not name %s", e.r.Name, what, err, id)
	}
}
