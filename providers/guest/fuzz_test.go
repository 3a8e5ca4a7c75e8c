package guest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"strings"
	"testing"
)

// FuzzDecodeResult: the client's decoding of a script's JSON output never
// panics, and a result it accepts, encoded and decoded again, encodes the
// same (nothing a guest says is lost or invented on the way). which picks
// the result type. Seeds: testdata/fuzz/FuzzDecodeResult, results as the
// simulated guests return them.
func FuzzDecodeResult(f *testing.F) {
	results := []func() any{
		func() any { return new(ProbeResult) },
		func() any { return new(DeleteResult) },
		func() any { return new(SafeBootResult) },
		func() any { return new(CheckHivesResult) },
		func() any { return new(ListDisksResult) },
		func() any { return new(DiskResult) },
		func() any { return new(UnlockResult) },
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		mk := results[int(which)%len(results)]
		r := mk()
		if err := decodeStrict(data, r); err != nil {
			return
		}
		first, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("an accepted %T does not encode: %v", r, err)
		}
		r2 := mk()
		if err := decodeStrict(first, r2); err != nil {
			t.Fatalf("an accepted %T, encoded, is refused: %v\n%s", r, err, first)
		}
		second, err := json.Marshal(r2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("%T changes on a round trip:\n%s\n%s", r, first, second)
		}
	})
}

// FuzzParseFault: the client's summary of a WS-Management fault never
// panics, is one line (it goes into an error message), and keeps
// "OperationTimeout" for a TimedOut fault, which masterzen/winrm polls
// again on. Seeds: testdata/fuzz/FuzzParseFault, faults as the simulated
// WinRM service sends them.
func FuzzParseFault(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		out, _ := parseFault(data)
		if strings.ContainsAny(out, "\r\n\t") {
			t.Fatalf("summary is not one line: %q", out)
		}
		var fl soapFault
		if out == "" || xml.Unmarshal(data, &fl) != nil {
			return
		}
		if strings.HasSuffix(fl.Subcode, "TimedOut") && !strings.Contains(out, "OperationTimeout") {
			t.Fatalf("TimedOut fault summarised without OperationTimeout: %q", out)
		}
	})
}
