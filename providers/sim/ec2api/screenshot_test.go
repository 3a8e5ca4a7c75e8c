package ec2api

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// TestScreenshotShowsEC2IDs: GetConsoleScreenshot of a running instance,
// asked by its EC2 ID, answers a JPEG under that same EC2 ID (never the
// world ID behind it), as every other response naming an instance does.
func TestScreenshotShowsEC2IDs(t *testing.T) {
	w, err := world.Generate(world.GenOptions{VMs: 3, Seed: 1, Zones: []string{"ap-northeast-1a"},
		Clock: world.NewManualClock(world.DefaultOrigin), Faults: &world.Faults{Throttle: world.ThrottleOff}})
	if err != nil {
		t.Fatal(err)
	}
	s := New(w, Options{})
	var vm string
	for _, v := range w.Export().VMs {
		if v.Power == inventory.PowerRunning {
			vm = v.ID
			break
		}
	}
	if vm == "" {
		t.Fatal("the world has no running VM")
	}
	form := url.Values{"Action": {"GetConsoleScreenshot"}, "Version": {APIVersion}, "InstanceId": {ID(vm)}}
	r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/", strings.NewReader(form.Encode()))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+world.DefaultAccount+
		"/20240719/ap-northeast-1/ec2/aws4_request, SignedHeaders=host, Signature=00")
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Fatalf("HTTP %d:\n%s", rec.Code, rec.Body)
	}
	var got struct {
		InstanceID string `xml:"instanceId"`
		ImageData  string `xml:"imageData"`
	}
	if err := xml.Unmarshal(rec.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.InstanceID != ID(vm) {
		t.Errorf("instanceId %q, want the EC2 ID %q of %s", got.InstanceID, ID(vm), vm)
	}
	img, err := base64.StdEncoding.DecodeString(got.ImageData)
	if err != nil || len(img) < 2 || img[0] != 0xFF || img[1] != 0xD8 {
		t.Errorf("imageData is not a base64 JPEG (err %v, %d bytes)", err, len(img))
	}
}
