package sakuraapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/sacloud/iaas-api-go"
	"github.com/sacloud/iaas-api-go/naked"
	"github.com/sacloud/iaas-api-go/types"

	"github.com/fixfleet/fixfleet/inventory"
	"github.com/fixfleet/fixfleet/providers/sim/sakuraapi"
	"github.com/fixfleet/fixfleet/providers/sim/world"
)

func newWorld(t *testing.T) *world.World {
	t.Helper()
	f := world.Faults{Throttle: world.ThrottleOff}
	w, err := world.Generate(world.GenOptions{VMs: 30, Seed: 3, Clock: world.NewManualClock(world.DefaultOrigin), Faults: &f})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func start(t *testing.T, w *world.World) *sakuraapi.Server {
	t.Helper()
	s, err := sakuraapi.Start(w, "127.0.0.1:0", sakuraapi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// do sends one request as account "sim" (auth false: none) and returns
// status and body.
func do(t *testing.T, method, url, body string, auth bool) (int, http.Header, []byte) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, r)
	if err != nil {
		t.Fatal(err)
	}
	if auth {
		req.SetBasicAuth(world.DefaultAccount, "secret")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, b
}

// strict decodes b into v, failing on any field v's type does not have.
func strict(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("response does not decode strictly into %T: %v\n%s", v, err, b)
	}
}

// Envelopes with exactly the fields iaas-api-go's own envelopes decode
// (zz_envelopes.go), over the library's wire types.
type (
	serverFind struct {
		Total, From, Count int
		Servers            []*naked.Server
	}
	serverRead struct {
		IsOk    bool            `json:"is_ok,omitempty"`
		Success types.APIResult `json:",omitempty"`
		Server  *naked.Server
	}
	diskFind struct {
		Total, From, Count int
		Disks              []*naked.Disk
	}
	archiveFind struct {
		Total, From, Count int
		Archives           []*naked.Archive
	}
)

func TestShapes(t *testing.T) {
	w := newWorld(t)
	s := start(t, w)
	base := s.URL() + "/is1a/api/cloud/1.1"
	vms, err := w.ListVMs(context.Background(), world.DefaultAccount, []string{"is1a"})
	if err != nil || len(vms) == 0 {
		t.Fatalf("world has no VMs in is1a (%v)", err)
	}
	code, _, b := do(t, "GET", base+"/server", "", true)
	if code != http.StatusOK {
		t.Fatalf("GET server: %d %s", code, b)
	}
	var sf serverFind
	strict(t, b, &sf)
	if sf.Total != len(vms) || len(sf.Servers) != len(vms) {
		t.Fatalf("GET server: %d servers (total %d), world has %d", len(sf.Servers), sf.Total, len(vms))
	}
	first := sf.Servers[0]
	if first.Instance == nil || first.Instance.Status == "" || len(first.Disks) == 0 || first.Disks[0].ConnectionOrder != 1 {
		t.Fatalf("server lacks instance status or boot disk: %+v", first)
	}
	code, _, b = do(t, "GET", base+"/server/"+first.ID.String(), "", true)
	var sr serverRead
	if code != http.StatusOK {
		t.Fatalf("GET server/id: %d %s", code, b)
	}
	strict(t, b, &sr)
	// paging: Count and From
	code, _, b = do(t, "GET", base+`/server?{"Count":2,"From":1}`, "", true)
	var page serverFind
	strict(t, b, &page)
	if code != http.StatusOK || page.Count != 2 || page.From != 1 || page.Servers[0].ID != sf.Servers[1].ID {
		t.Fatalf("paging: %d %+v", code, page)
	}
	code, _, b = do(t, "GET", base+"/disk", "", true)
	var df diskFind
	if code != http.StatusOK {
		t.Fatalf("GET disk: %d %s", code, b)
	}
	strict(t, b, &df)
	code, _, b = do(t, "GET", base+"/archive", "", true)
	var af archiveFind
	if code != http.StatusOK {
		t.Fatalf("GET archive: %d %s", code, b)
	}
	strict(t, b, &af)
	public := 0
	for _, a := range af.Archives {
		if a.Scope == types.Scopes.Shared {
			public++
			if !strings.HasPrefix(a.Name, "Windows Server ") {
				t.Errorf("public archive %s named %q", a.ID, a.Name)
			}
		}
	}
	if public == 0 {
		t.Error("no public archive in is1a")
	}
	// The library decodes the same bytes into its models.
	var env struct{ Servers []*naked.Server }
	if err := json.Unmarshal(b, &env); err != nil {
		t.Fatal(err)
	}
	if sid := types.StringID(sakuraapi.ID(vms[0].ID)); sid.IsEmpty() {
		t.Fatalf("ID(%s) is not numeric", vms[0].ID)
	}
}

func TestErrors(t *testing.T) {
	running := func(w *world.World) string {
		vms, _ := w.ListVMs(context.Background(), world.DefaultAccount, []string{"is1a"})
		for _, v := range vms {
			if v.Power == inventory.PowerRunning {
				return sakuraapi.ID(v.ID)
			}
		}
		return ""
	}
	cases := []struct {
		name   string
		setup  func(w *world.World)
		method string
		path   func(w *world.World) string
		auth   bool
		status int
		code   string
	}{
		{"no credentials", nil, "GET", func(*world.World) string { return "/is1a/api/cloud/1.1/server" }, false, 401, "unauthorized"},
		{"unknown zone", nil, "GET", func(*world.World) string { return "/zz9z/api/cloud/1.1/server" }, true, 404, "not_found"},
		{"unknown server", nil, "GET", func(*world.World) string { return "/is1a/api/cloud/1.1/server/100000000099999" }, true, 404, "not_found"},
		{"unknown disk", nil, "GET", func(*world.World) string { return "/is1a/api/cloud/1.1/disk/123" }, true, 404, "not_found"},
		{"boot a running server", nil, "PUT", func(w *world.World) string { return "/is1a/api/cloud/1.1/server/" + running(w) + "/power" }, true, 409, "conflict"},
		{"unsupported filter", nil, "GET", func(*world.World) string { return `/is1a/api/cloud/1.1/server?{"Filter":{"Foo":"x"}}` }, true, 400, "bad_request"},
		{"outage", func(w *world.World) { w.SetOutage(true) }, "GET", func(*world.World) string { return "/is1a/api/cloud/1.1/server" }, true, 503, "service_unavailable"},
		{"unserved endpoint", nil, "GET", func(*world.World) string { return "/is1a/api/cloud/1.1/switch" }, true, 404, "not_found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t)
			path := c.path(w)
			if c.setup != nil {
				c.setup(w)
			}
			s := start(t, w)
			code, _, b := do(t, c.method, strings.TrimSuffix(s.URL(), "/cloud/zone")+"/cloud/zone"+path, "", c.auth)
			if code != c.status {
				t.Fatalf("status %d, want %d: %s", code, c.status, b)
			}
			var e iaas.APIErrorResponse
			strict(t, b, &e)
			if e.ErrorCode != c.code || !e.IsFatal || e.Status == "" || e.Serial == "" {
				t.Fatalf("error body %+v, want code %s", e, c.code)
			}
		})
	}
}

func TestThrottled(t *testing.T) {
	w := newWorld(t)
	if err := w.SetFaults(world.Faults{Throttle: world.ThrottleSimple}); err != nil {
		t.Fatal(err)
	}
	s := start(t, w)
	url := s.URL() + "/is1a/api/cloud/1.1/disk"
	// An unpaced burst: a millisecond apart (calls of one instant all
	// pass while the bucket holds a token at its start: providers/sim/bucket).
	for i := 0; i < 100; i++ {
		w.Clock().(*world.ManualClock).Advance(time.Millisecond)
		code, h, b := do(t, "GET", url, "", true)
		if code == http.StatusTooManyRequests {
			if h.Get("Retry-After") == "" {
				t.Fatal("429 without Retry-After")
			}
			var e iaas.APIErrorResponse
			strict(t, b, &e)
			if got := s.Stats()["Disk.Find"]; got != i+1 {
				t.Fatalf("Stats()[Disk.Find] = %d after %d requests", got, i+1)
			}
			return
		}
	}
	t.Fatal("never throttled")
}

func TestIDs(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"vm-00001", "110000000001"},
		{"disk-00012", "120000000012"},
		{"bk-00003-2", "150000030002"},
	} {
		if got := sakuraapi.ID(c.in); got != c.want {
			t.Errorf("ID(%q) = %s, want %s", c.in, got, c.want)
		}
	}
	if a, b := sakuraapi.ID("img-win2019-is1a"), sakuraapi.ID("img-win2019-is1a"); a != b || !strings.HasPrefix(a, "16") || len(a) != 12 {
		t.Errorf("image IDs: %s, %s", a, b)
	}
}
