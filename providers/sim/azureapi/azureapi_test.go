package azureapi_test

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/fixfleet/fixfleet/providers/sim/azureapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

func start(t *testing.T) (*azureapi.Server, *http.Client) {
	t.Helper()
	f := world.Faults{Throttle: world.ThrottleOff}
	w, err := world.Generate(world.GenOptions{VMs: 8, Seed: 1, Zones: []string{"japaneast-1", "japaneast-2"},
		Clock: world.NewManualClock(world.DefaultOrigin), Faults: &f})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := azureapi.Start(w, "127.0.0.1:0", azureapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	return srv, srv.Client()
}

func get(t *testing.T, c *http.Client, url, token string) *http.Response {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	return resp
}

// TestAuthAndThrottle: a request without a bearer token is refused; reads
// report what is left of the subscription's ARM bucket, and once it is
// empty (the clock does not move) the answer is 429 with Retry-After.
func TestAuthAndThrottle(t *testing.T) {
	srv, c := start(t)
	url := srv.URL() + "/subscriptions/" + azureapi.SubscriptionID(world.DefaultAccount) + "/providers/Microsoft.Compute/virtualMachines?api-version=2024-11-01"
	if r := get(t, c, url, ""); r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: HTTP %d, want 401", r.StatusCode)
	}
	if r := get(t, c, srv.URL()+"/subscriptions/00000000-0000-0000-0000-000000000000/providers/Microsoft.Compute/virtualMachines", "t"); r.StatusCode != http.StatusNotFound {
		t.Fatalf("unknown subscription: HTTP %d, want 404", r.StatusCode)
	}
	size := azureapi.ARMBuckets["reads"].Size
	for i := 1; i <= size; i++ {
		r := get(t, c, url, "t")
		left, _ := strconv.Atoi(r.Header.Get("x-ms-ratelimit-remaining-subscription-reads"))
		if r.StatusCode != http.StatusOK || left != size-i {
			t.Fatalf("read %d: HTTP %d, %d reads left; want 200 and %d", i, r.StatusCode, left, size-i)
		}
	}
	r := get(t, c, url, "t")
	if ra, _ := strconv.Atoi(r.Header.Get("Retry-After")); r.StatusCode != http.StatusTooManyRequests || ra < 1 {
		t.Fatalf("read past the bucket: HTTP %d, Retry-After %q; want 429 with a wait", r.StatusCode, r.Header.Get("Retry-After"))
	}
	if st := srv.Stats(); st.Throttled != 1 || st.Calls["VirtualMachines.ListAll"] != size+3 || st.Errors != 2 {
		t.Errorf("stats = %+v", st)
	}
}
