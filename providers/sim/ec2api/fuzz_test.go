package ec2api

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/fixfleet/fixfleet/providers/sim/world"
)

// ec2Reply is what FuzzRequest reads of an EC2 or STS answer.
type ec2Reply struct {
	XMLName xml.Name
	Codes   []string `xml:"Errors>Error>Code"`
	STSCode string   `xml:"Error>Code"`
}

// FuzzRequest: the emulator decodes any signed request body (a Query
// form, or with target set an SSM JSON document) without a panic, on a
// fresh world of three VMs, and answers a well-formed document: EC2/STS
// XML or SSM JSON; an error status carries an error code. Seeds:
// testdata/fuzz/FuzzRequest, the calls the AWS provider makes, plus
// filters with many wildcards.
func FuzzRequest(f *testing.F) {
	f.Fuzz(func(t *testing.T, target string, body []byte) {
		w, err := world.Generate(world.GenOptions{VMs: 3, Seed: 1, Zones: []string{"ap-northeast-1a", "ap-northeast-1c"},
			Clock: world.NewManualClock(world.DefaultOrigin), Faults: &world.Faults{Throttle: world.ThrottleOff}})
		if err != nil {
			t.Fatal(err)
		}
		s := New(w, Options{})
		r := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/", bytes.NewReader(body))
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+world.DefaultAccount+
			"/20240719/ap-northeast-1/ec2/aws4_request, SignedHeaders=host, Signature=00")
		if target != "" {
			r.Header.Set("X-Amz-Target", target)
			r.Header.Set("Content-Type", "application/x-amz-json-1.1")
		} else {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		out := rec.Body.Bytes()
		if rec.Header().Get("Content-Type") == "application/x-amz-json-1.1" {
			var doc map[string]any
			if err := json.Unmarshal(out, &doc); err != nil {
				t.Fatalf("HTTP %d: JSON answer does not parse: %v\n%s", rec.Code, err, out)
			}
			if rec.Code != http.StatusOK && doc["__type"] == "" {
				t.Fatalf("HTTP %d without an error type:\n%s", rec.Code, out)
			}
			return
		}
		var rep ec2Reply
		if err := xml.Unmarshal(out, &rep); err != nil {
			t.Fatalf("HTTP %d: XML answer does not parse: %v\n%s", rec.Code, err, out)
		}
		if rec.Code != http.StatusOK && len(rep.Codes) == 0 && rep.STSCode == "" {
			t.Fatalf("HTTP %d without an error code:\n%s", rec.Code, out)
		}
	})
}
