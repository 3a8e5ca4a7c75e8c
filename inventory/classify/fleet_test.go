package classify

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/internal/clock"
	"github.com/fixfleet/fixfleet/internal/retry"
	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
)

// fakeBackups gives every VM but "gone" one backup named after it,
// counting its calls.
type fakeBackups struct {
	mu    sync.Mutex
	calls int
}

func (f *fakeBackups) List(_ context.Context, vm providers.VMRef) ([]inventory.Backup, error) {
	f.mu.Lock()
	f.calls++
	f.mu.Unlock()
	if vm.ID == "gone" {
		return nil, providers.Errorf(providers.ErrNotFound, "List", "vm gone", "no such VM")
	}
	return []inventory.Backup{{ID: "bk-" + vm.ID, VMID: vm.ID}}, nil
}

func (f *fakeBackups) Restore(context.Context, inventory.Backup, string, providers.Tags) (providers.DiskRef, error) {
	return providers.DiskRef{}, nil
}

// manyBackups also lists many VMs in one call.
type manyBackups struct{ *fakeBackups }

func (m manyBackups) ListMany(_ context.Context, vms []providers.VMRef) (map[string][]inventory.Backup, error) {
	m.mu.Lock()
	m.calls++
	m.mu.Unlock()
	out := map[string][]inventory.Backup{}
	for _, vm := range vms {
		if vm.ID != "gone" {
			out[vm.ID] = []inventory.Backup{{ID: "bk-" + vm.ID, VMID: vm.ID}}
		}
	}
	return out, nil
}

// TestListBackups: the backups of every VM the planner may restore are
// listed, ListBatch VMs per call where the provider lists many at once,
// one per call otherwise; healthy and unknown VMs are skipped.
func TestListBackups(t *testing.T) {
	assessed := func(n int, last string) []inventory.Assessed {
		var out []inventory.Assessed
		for i := range n {
			out = append(out, inventory.Assessed{VM: inventory.VM{ID: fmt.Sprintf("vm-%03d", i)}, Classification: inventory.Classification{State: inventory.StateBootLoop}})
		}
		out = append(out,
			inventory.Assessed{VM: inventory.VM{ID: "fine"}, Classification: inventory.Classification{State: inventory.StateHealthy}},
			inventory.Assessed{VM: inventory.VM{ID: last}, Classification: inventory.Classification{State: inventory.StateSafeMode}})
		return out
	}
	tests := []struct {
		name      string
		many      bool
		last      string // the last VM's ID
		wantCalls int    // when no error
		wantErr   bool
	}{
		{"one VM per call", false, "vm-last", 2*ListBatch + 1, false},
		{"batched", true, "vm-last", 3, false},
		{"batched, a VM the cloud no longer has", true, "gone", 3, false},
		{"one per call, a VM the cloud no longer has", false, "gone", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeBackups{}
			var b providers.Backups = f
			if tt.many {
				b = manyBackups{f}
			}
			vms := assessed(2*ListBatch, tt.last)
			err := listBackups(context.Background(), b, vms, false, clock.Real{}, retry.Policy{Attempts: 1, Base: time.Millisecond})
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				if !errors.Is(err, providers.ErrNotFound) || !strings.Contains(err.Error(), "gone") {
					t.Errorf("err = %v, want ErrNotFound naming the VM", err)
				}
				return
			}
			if f.calls != tt.wantCalls {
				t.Errorf("%d calls, want %d", f.calls, tt.wantCalls)
			}
			for _, a := range vms {
				want := 1
				if a.VM.ID == "fine" || a.VM.ID == "gone" {
					want = 0
				}
				if len(a.VM.Backups) != want || (want == 1 && a.VM.Backups[0].ID != "bk-"+a.VM.ID) {
					t.Errorf("%s: backups %v, want %d of its own", a.VM.ID, a.VM.Backups, want)
				}
			}
		})
	}
}
