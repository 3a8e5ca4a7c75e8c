package sakuraapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// FuzzRequest: the emulator decodes any request (method, path, find
// condition, JSON body) without a panic, on a fresh world of three VMs,
// and answers JSON; an error status carries the API's error_code. In the
// path and body, ZONE, SERVER and DISK stand for the first VM's zone,
// server ID and OS disk ID. Seeds: testdata/fuzz/FuzzRequest, the calls
// iaas-api-go makes for the Sakura provider.
func FuzzRequest(f *testing.F) {
	methods := []string{http.MethodGet, http.MethodPost, http.MethodPut, http.MethodDelete}
	f.Fuzz(func(t *testing.T, method uint8, path string, body []byte) {
		w, err := world.Generate(world.GenOptions{VMs: 3, Seed: 1, Clock: world.NewManualClock(world.DefaultOrigin),
			Faults: &world.Faults{Throttle: world.ThrottleOff}})
		if err != nil {
			t.Fatal(err)
		}
		vms, err := w.ListVMs(context.Background(), world.DefaultAccount, nil)
		if err != nil || len(vms) == 0 {
			t.Fatalf("world without VMs: %v", err)
		}
		s := New(w, Options{})
		ids := strings.NewReplacer("ZONE", vms[0].Zone,
			"SERVER", strconv.FormatInt(s.idOf(vms[0].ID), 10),
			"DISK", strconv.FormatInt(s.idOf(vms[0].OSDisk.ID), 10))
		path = ids.Replace(path)
		body = []byte(ids.Replace(string(body)))
		r, err := http.NewRequest(methods[int(method)%len(methods)], "http://127.0.0.1"+path, bytes.NewReader(body))
		if err != nil || r.URL.Host != "127.0.0.1" {
			return // not a request a client could send
		}
		r.SetBasicAuth(world.DefaultAccount, "secret")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if rec.Code >= 300 && rec.Code < 400 {
			return // the router's redirect to a cleaned path
		}
		var doc map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("%s %s: HTTP %d answer is not a JSON object: %v\n%s", r.Method, path, rec.Code, err, rec.Body.Bytes())
		}
		if rec.Code >= 400 {
			if code, _ := doc["error_code"].(string); code == "" {
				t.Fatalf("%s %s: HTTP %d without an error_code:\n%s", r.Method, path, rec.Code, rec.Body.Bytes())
			}
		}
	})
}
