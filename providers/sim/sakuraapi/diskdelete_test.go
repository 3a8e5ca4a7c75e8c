package sakuraapi_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/sacloud/iaas-api-go"
	"github.com/sacloud/iaas-api-go/naked"
	"github.com/sacloud/iaas-api-go/types"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers"
	"github.com/fixfleet/fixfleet/providers/sim/sakuraapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// diskDeleted is iaas-api-go's envelope of a disk's DELETE answer.
type diskDeleted struct {
	IsOk    bool            `json:"is_ok,omitempty"`
	Success types.APIResult `json:",omitempty"`
	Disk    *naked.Disk
}

// TestDiskDelete: DELETE /disk/{id} deletes a disconnected copy (200, the
// disk as it was; gone from the world, then 404), and refuses, keeping the
// disk, one connected to a server (409), a copy still being created (409
// still_creating), an original disk (400, the world deletes only copies),
// an unknown one (404) and any during an outage (503); a reply lost after
// the delete is a failure although the copy is gone.
func TestDiskDelete(t *testing.T) {
	ctx := context.Background()
	acct := world.DefaultAccount
	// vmIn returns a fleet VM of zone is1a.
	vmIn := func(t *testing.T, w *world.World) inventory.VM {
		t.Helper()
		vms, err := w.ListVMs(ctx, acct, []string{"is1a"})
		if err != nil || len(vms) == 0 {
			t.Fatalf("world has no VMs in is1a (%v)", err)
		}
		return vms[0]
	}
	clk := func(w *world.World) *world.ManualClock { return w.Clock().(*world.ManualClock) }
	// copyOf makes a copy of v's OS disk from a snapshot, tagged, and
	// waits until it is created unless creating is set.
	copyOf := func(t *testing.T, w *world.World, v inventory.VM, creating bool) string {
		t.Helper()
		sn, err := w.Snapshot(ctx, acct, v.OSDisk.ID, map[string]string{providers.TagRun: "r1", providers.TagRole: "snapshot"})
		if err != nil {
			t.Fatal(err)
		}
		clk(w).Set(sn.ReadyAt.Add(time.Second))
		d, err := w.DiskFromSnapshot(ctx, acct, sn.Ref.ID, v.Zone, map[string]string{providers.TagRun: "r1", providers.TagRole: "copy"})
		if err != nil {
			t.Fatal(err)
		}
		if !creating {
			clk(w).Set(d.ReadyAt.Add(time.Second))
		}
		return d.Ref.ID
	}
	done := func(t *testing.T, w *world.World, p world.Pending, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		clk(w).Set(p.Until.Add(time.Second))
	}
	cases := []struct {
		name   string
		setup  func(t *testing.T, w *world.World) string // the disk's world ID ("": an unknown one)
		opts   sakuraapi.Options
		status int
		code   string // error_code of a refusal
		gone   bool   // the disk is gone from the world after
	}{
		{name: "unknown disk", setup: func(*testing.T, *world.World) string { return "" }, status: 404, code: "not_found"},
		{name: "copy connected to a server", setup: func(t *testing.T, w *world.World) string {
			v := vmIn(t, w)
			id := copyOf(t, w, v, false)
			p, err := w.AttachDisk(ctx, acct, v.ID, id, false)
			done(t, w, p, err)
			return id
		}, status: 409, code: "conflict"},
		{name: "original disk connected to its server", setup: func(t *testing.T, w *world.World) string {
			return vmIn(t, w).OSDisk.ID
		}, status: 409, code: "conflict"},
		{name: "original disk disconnected", setup: func(t *testing.T, w *world.World) string {
			v := vmIn(t, w)
			p, err := w.StopVMs(ctx, acct, []string{v.ID}, true)
			done(t, w, p, err)
			p, err = w.DetachDisk(ctx, acct, v.ID, v.OSDisk.ID)
			done(t, w, p, err)
			return v.OSDisk.ID
		}, status: 400, code: "bad_request"},
		{name: "copy still being created", setup: func(t *testing.T, w *world.World) string {
			return copyOf(t, w, vmIn(t, w), true)
		}, status: 409, code: "still_creating"},
		{name: "outage", setup: func(t *testing.T, w *world.World) string {
			id := copyOf(t, w, vmIn(t, w), false)
			w.SetOutage(true)
			return id
		}, status: 503, code: "service_unavailable"},
		{name: "reply lost after the delete", setup: func(t *testing.T, w *world.World) string {
			id := copyOf(t, w, vmIn(t, w), false)
			if err := w.SetFaults(world.Faults{Throttle: world.ThrottleOff, DropReplies: []world.DropReply{{Op: "DeleteDisk", Nth: 1}}}); err != nil {
				t.Fatal(err)
			}
			return id
		}, opts: sakuraapi.Options{SimulatedDrops: true}, status: 503, code: "service_unavailable", gone: true},
		{name: "disconnected copy", setup: func(t *testing.T, w *world.World) string {
			return copyOf(t, w, vmIn(t, w), false)
		}, status: 200, gone: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			id := c.setup(t, w)
			s, err := sakuraapi.Start(w, "127.0.0.1:0", c.opts)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = s.Close() })
			num := "123"
			if id != "" {
				num = sakuraapi.ID(id)
			}
			url := s.URL() + "/is1a/api/cloud/1.1/disk/" + num
			code, _, b := do(t, http.MethodDelete, url, "", true)
			if code != c.status {
				t.Fatalf("DELETE disk: status %d, want %d: %s", code, c.status, b)
			}
			if c.status == http.StatusOK {
				var env diskDeleted
				strict(t, b, &env)
				if !env.IsOk || env.Disk == nil || env.Disk.ID.String() != num {
					t.Fatalf("DELETE disk: answer %s, want is_ok and disk %s", b, num)
				}
			} else {
				var e iaas.APIErrorResponse
				strict(t, b, &e)
				if e.ErrorCode != c.code || !e.IsFatal {
					t.Fatalf("DELETE disk: error body %+v, want code %s", e, c.code)
				}
			}
			if id == "" {
				return
			}
			w.SetOutage(false)
			_, err = w.DescribeDisk(ctx, acct, id)
			if gone := errors.Is(err, providers.ErrNotFound); gone != c.gone {
				t.Fatalf("after DELETE the world's disk %s: %v, want gone=%v", id, err, c.gone)
			}
			if c.gone {
				if code, _, b := do(t, http.MethodGet, url, "", true); code != http.StatusNotFound {
					t.Fatalf("GET deleted disk: status %d, want 404: %s", code, b)
				}
				if code, _, b := do(t, http.MethodDelete, url, "", true); code != http.StatusNotFound {
					t.Fatalf("DELETE deleted disk: status %d, want 404: %s", code, b)
				}
			}
		})
	}
}
