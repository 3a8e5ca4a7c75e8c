package azureapi

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// FuzzRequest: the emulator decodes any request (method, path and query,
// JSON body) without a panic, on a fresh world of three VMs; an ARM
// answer (a path under /subscriptions/) that is an error is a JSON object
// whose error.code is set, as azcore expects. In the path and body, SUB and
// VM stand for the account's subscription ID and the first VM's ID. Seeds:
// calls the Azure provider makes, and below.
func FuzzRequest(f *testing.F) {
	for _, seed := range []struct {
		method uint8
		path   string
		body   string
	}{
		{0, "/subscriptions/SUB/providers/Microsoft.Compute/virtualMachines?api-version=2024-11-01", ""},
		{0, "/subscriptions/SUB/resourceGroups/fleet/providers/Microsoft.Compute/virtualMachines/VM?$expand=instanceView", ""},
		{0, "/subscriptions/SUB/resourceGroups/fleet/providers/Microsoft.Compute/virtualMachines/VM/instanceView", ""},
		{2, "/subscriptions/SUB/resourceGroups/fleet/providers/Microsoft.Compute/virtualMachines/VM/deallocate", ""},
		{2, "/subscriptions/SUB/resourceGroups/fleet/providers/Microsoft.Compute/virtualMachines/VM/retrieveBootDiagnosticsData", ""},
		{1, "/subscriptions/SUB/resourceGroups/fleet/providers/Microsoft.Compute/snapshots/s1", `{"location":"japaneast","properties":{"creationData":{"createOption":"Copy","sourceResourceId":"x"}}}`},
		{4, "/subscriptions/SUB/resourceGroups/fleet/providers/Microsoft.Compute/virtualMachines/VM", `{"properties":{"storageProfile":{"osDisk":{"managedDisk":{"id":"d"}}}}}`},
		{3, "/subscriptions/SUB/resourceGroups/fleet/providers/Microsoft.Compute/disks/d1", ""},
		{0, "/subscriptions/SUB/providers/Microsoft.Compute/locations/japaneast/operations/op-1", ""},
	} {
		f.Add(seed.method, seed.path, []byte(seed.body))
	}
	methods := []string{http.MethodGet, http.MethodPut, http.MethodPost, http.MethodDelete, http.MethodPatch}
	f.Fuzz(func(t *testing.T, method uint8, path string, body []byte) {
		w, err := world.Generate(world.GenOptions{VMs: 3, Seed: 1, Zones: []string{"japaneast-1", "japaneast-2"},
			Clock: world.NewManualClock(world.DefaultOrigin), Faults: &world.Faults{Throttle: world.ThrottleOff}})
		if err != nil {
			t.Fatal(err)
		}
		vms, err := w.ListVMs(context.Background(), world.DefaultAccount, nil)
		if err != nil || len(vms) == 0 {
			t.Fatalf("world without VMs: %v", err)
		}
		s, err := New(w, Options{NoThrottle: true})
		if err != nil {
			t.Fatal(err)
		}
		ids := strings.NewReplacer("SUB", SubscriptionID(world.DefaultAccount), "VM", vms[0].ID)
		path = ids.Replace(path)
		body = []byte(ids.Replace(string(body)))
		r, err := http.NewRequest(methods[int(method)%len(methods)], "https://127.0.0.1"+path, bytes.NewReader(body))
		if err != nil || r.URL.Host != "127.0.0.1" {
			return // not a request a client could send
		}
		r.Header.Set("Authorization", "Bearer test-token")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if rec.Code < 400 || !strings.HasPrefix(strings.ToLower(r.URL.Path), "/subscriptions/") {
			return
		}
		var doc struct {
			Error struct {
				Code string `json:"code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil || doc.Error.Code == "" {
			t.Fatalf("%s %s: HTTP %d is not an ARM error (JSON with error.code): %v\n%s", r.Method, path, rec.Code, err, rec.Body.Bytes())
		}
	})
}
