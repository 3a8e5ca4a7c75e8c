package ec2api

import (
	"context"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// ec2Call posts one EC2 Query request to s as world.DefaultAccount in
// ap-northeast-1 and returns the HTTP status and the body.
func ec2Call(t *testing.T, s *Server, form url.Values) (int, []byte) {
	t.Helper()
	form.Set("Version", APIVersion)
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/", strings.NewReader(form.Encode()))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+world.DefaultAccount+
		"/20240719/ap-northeast-1/ec2/aws4_request, SignedHeaders=host, Signature=00")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	return rec.Code, rec.Body.Bytes()
}

// volumeWorld is a world of three VMs in one zone served by an emulator,
// with: a running VM's root volume (attached), a stopped VM's root
// volume detached, a copy of a snapshot still being created, a ready copy
// attached to a VM as a data volume, and a ready copy detached. It
// returns the EC2 IDs of those five volumes, in that order.
func volumeWorld(t *testing.T) (*world.World, *Server, [5]string) {
	t.Helper()
	clk := world.NewManualClock(world.DefaultOrigin)
	w, err := world.Generate(world.GenOptions{VMs: 3, Seed: 1, Zones: []string{"ap-northeast-1a"},
		Clock: clk, Faults: &world.Faults{Throttle: world.ThrottleOff}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(w, Options{NoThrottle: true})
	ctx, acct := context.Background(), world.DefaultAccount
	vms := w.Export().VMs
	var running, other world.VMSpec
	for _, v := range vms {
		switch {
		case v.OSDisk == nil:
		case running.ID == "" && v.Power == inventory.PowerRunning:
			running = v
		case other.ID == "":
			other = v
		}
	}
	if running.ID == "" || other.ID == "" {
		t.Fatalf("the world has no running VM and another with a root volume: %+v", vms)
	}
	must := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	_, err = w.StopVMs(ctx, acct, []string{other.ID}, true)
	must(err, "StopVMs")
	clk.Advance(time.Hour)
	_, err = w.DetachDisk(ctx, acct, other.ID, other.OSDisk.ID)
	must(err, "DetachDisk")
	snap, err := w.Snapshot(ctx, acct, running.OSDisk.ID, map[string]string{"fixfleet-run": "r1"})
	must(err, "Snapshot")
	clk.Set(snap.ReadyAt.Add(time.Minute))
	var copies [3]world.DiskInfo
	for i := range copies {
		copies[i], err = w.DiskFromSnapshot(ctx, acct, snap.Ref.ID, running.Zone, map[string]string{"fixfleet-run": "r1"})
		must(err, "DiskFromSnapshot")
	}
	clk.Advance(time.Hour)
	_, err = w.AttachDisk(ctx, acct, running.ID, copies[1].Ref.ID, false)
	must(err, "AttachDisk")
	creating, err := w.DiskFromSnapshot(ctx, acct, snap.Ref.ID, running.Zone, map[string]string{"fixfleet-run": "r1"})
	must(err, "DiskFromSnapshot")
	return w, s, [5]string{s.ids.out(kindVolume, running.OSDisk.ID), s.ids.out(kindVolume, other.OSDisk.ID),
		s.ids.out(kindVolume, creating.Ref.ID), s.ids.out(kindVolume, copies[1].Ref.ID), s.ids.out(kindVolume, copies[2].Ref.ID)}
}

// TestDeleteVolume: DeleteVolume answers EC2's documents and codes, by
// the volume's EC2 ID, and deletes only an available copy.
func TestDeleteVolume(t *testing.T) {
	w, s, vol := volumeWorld(t)
	rootAttached, rootDetached, creating, copyAttached, copyFree := vol[0], vol[1], vol[2], vol[3], vol[4]
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string // "" for success
	}{
		{"no volume ID", url.Values{}, 400, "MissingParameter"},
		{"unknown volume", url.Values{"VolumeId": {"vol-0123456789abcdef0"}}, 400, "InvalidVolume.NotFound"},
		{"attached root volume", url.Values{"VolumeId": {rootAttached}}, 400, "VolumeInUse"},
		{"detached root volume (an original)", url.Values{"VolumeId": {rootDetached}}, 400, "OperationNotPermitted"},
		{"copy being created", url.Values{"VolumeId": {creating}}, 400, "IncorrectState"},
		{"attached copy", url.Values{"VolumeId": {copyAttached}}, 400, "VolumeInUse"},
		{"dry run", url.Values{"VolumeId": {copyFree}, "DryRun": {"true"}}, 412, "DryRunOperation"},
		{"available copy", url.Values{"VolumeId": {copyFree}}, 200, ""},
		{"deleted copy", url.Values{"VolumeId": {copyFree}}, 400, "InvalidVolume.NotFound"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("Action", "DeleteVolume")
			status, body := ec2Call(t, s, tc.form)
			if status != tc.status {
				t.Fatalf("HTTP %d, want %d:\n%s", status, tc.status, body)
			}
			if tc.code != "" {
				var rep ec2Reply
				if err := xml.Unmarshal(body, &rep); err != nil || len(rep.Codes) != 1 || rep.Codes[0] != tc.code {
					t.Fatalf("error codes %v (%v), want %s:\n%s", rep.Codes, err, tc.code, body)
				}
				if strings.Contains(string(body), "disk-") {
					t.Errorf("the answer names a world ID:\n%s", body)
				}
				return
			}
			var ok struct {
				XMLName   xml.Name
				RequestID string `xml:"requestId"`
				Return    bool   `xml:"return"`
			}
			if err := xml.Unmarshal(body, &ok); err != nil || ok.XMLName.Local != "DeleteVolumeResponse" ||
				ok.XMLName.Space != ec2NS || ok.RequestID == "" || !ok.Return {
				t.Fatalf("answer %+v (%v), want DeleteVolumeResponse with return true:\n%s", ok, err, body)
			}
		})
	}
	left := map[string]bool{}
	for _, d := range w.Export().Disks {
		left[s.ids.out(kindVolume, d.ID)] = true
	}
	for _, v := range w.Export().VMs {
		if v.OSDisk != nil {
			left[s.ids.out(kindVolume, v.OSDisk.ID)] = true
		}
	}
	for _, v := range []string{rootAttached, rootDetached, creating, copyAttached} {
		if !left[v] {
			t.Errorf("volume %s was deleted, want it kept", v)
		}
	}
	if left[copyFree] {
		t.Errorf("volume %s is still in the world after DeleteVolume", copyFree)
	}
	if n := s.Stats().Calls["DeleteVolume"]; n != 9 {
		t.Errorf("Stats counts %d DeleteVolume calls, want 9", n)
	}
}

// TestDeleteVolumeFaults: a DeleteVolume whose reply is lost after the
// world deleted the volume drops the connection (an httptest recorder
// cannot be hijacked: it reads HTTP 500 InternalError), and its retry
// answers InvalidVolume.NotFound; an outage answers 503 Unavailable and
// deletes nothing.
func TestDeleteVolumeFaults(t *testing.T) {
	w, s, vol := volumeWorld(t)
	copyFree := vol[4]
	del := url.Values{"Action": {"DeleteVolume"}, "VolumeId": {copyFree}}
	now := w.Clock().Now()
	if err := w.SetFaults(world.Faults{Throttle: world.ThrottleOff, Outages: []world.Outage{{From: now, Until: now.Add(time.Minute)}}}); err != nil {
		t.Fatal(err)
	}
	if status, body := ec2Call(t, s, del); status != 503 || !strings.Contains(string(body), "<Code>Unavailable</Code>") {
		t.Fatalf("during an outage: HTTP %d, want 503 Unavailable:\n%s", status, body)
	}
	w.Clock().(*world.ManualClock).Advance(time.Hour)
	if err := w.SetFaults(world.Faults{Throttle: world.ThrottleOff, DropReplies: []world.DropReply{{Op: "DeleteDisk", Nth: 1}}}); err != nil {
		t.Fatal(err)
	}
	before := s.Stats().Dropped
	if status, body := ec2Call(t, s, del); status != 500 || s.Stats().Dropped != before+1 {
		t.Fatalf("reply lost: HTTP %d, %d dropped, want the connection dropped:\n%s", status, s.Stats().Dropped-before, body)
	}
	if status, body := ec2Call(t, s, del); status != 400 || !strings.Contains(string(body), "<Code>InvalidVolume.NotFound</Code>") {
		t.Fatalf("retry after the lost reply: HTTP %d, want 400 InvalidVolume.NotFound:\n%s", status, body)
	}
}
