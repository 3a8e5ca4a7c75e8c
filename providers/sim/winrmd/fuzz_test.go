package winrmd_test

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/providers/sim/winrmd"
)

// The shell and command IDs in the seed requests (captured from the real
// WinRM client running a probe), replaced by the IDs of this run's shell
// and command before each request is sent.
const (
	seedShellID   = "461A27DD-DF27-4D75-9FB5-C546709F3A63"
	seedCommandID = "FA8684C8-9B31-44E8-BA06-B2310C7203D8"
)

// oneGuest is a network of one listening guest, hostA, with the canned
// machine; it keeps no history, so fuzzing does not grow it.
type oneGuest struct{ m winrmd.Machine }

func (g oneGuest) Listening(host string) bool { return host == hostA }
func (g oneGuest) Authenticate(host, user, password string) (winrmd.Machine, bool) {
	return g.m, host == hostA && user == adminUser && password == adminPass
}
func (oneGuest) Refused(string, string) {}

// wsReply is what FuzzRequest reads of every answer.
type wsReply struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  struct {
		RelatesTo *string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing RelatesTo"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body struct {
		ShellID   string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell>ShellId"`
		CommandID string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandResponse>CommandId"`
		Subcode   string `xml:"http://www.w3.org/2003/05/soap-envelope Fault>Code>Subcode>Value"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

// FuzzRequest: in an open shell, two requests (typically a Command, then a
// Send, Receive or Signal on it) are served without a panic, and every
// answer is a well-formed SOAP envelope, 200 or a 500 fault with a subcode,
// whose RelatesTo is the request's MessageID exactly (the echo is escaped).
// Seeds: testdata/fuzz/FuzzRequest, pairs of requests captured from
// masterzen/winrm running the probe and unlock scripts, and a pair of
// creates. Every shell the input opened is deleted after it: no shell is
// left open from one input to the next.
func FuzzRequest(f *testing.F) {
	srv, err := winrmd.Start(oneGuest{cannedMachine()}, winrmd.Options{ReceiveWait: time.Millisecond})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = srv.Close() })
	h := srv.Handler()
	create, err := os.ReadFile("testdata/create.xml")
	if err != nil {
		f.Fatal(err)
	}
	del, err := os.ReadFile("testdata/delete.xml")
	if err != nil {
		f.Fatal(err)
	}
	// Inputs that open shells of their own: each must be closed with the
	// input, or the guest's shells run out (MaxShellsPerHost) and every
	// later input fails to open its shell.
	f.Add(create, create)
	f.Fuzz(func(t *testing.T, req1, req2 []byte) {
		shell := post(t, h, create)
		if shell.Body.ShellID == "" {
			t.Fatal("no shell created")
		}
		sid := []byte(shell.Body.ShellID)
		opened := []string{shell.Body.ShellID}
		first := post(t, h, bytes.ReplaceAll(req1, []byte(seedShellID), sid))
		req2 = bytes.ReplaceAll(req2, []byte(seedShellID), sid)
		if first.Body.CommandID != "" {
			req2 = bytes.ReplaceAll(req2, []byte(seedCommandID), []byte(first.Body.CommandID))
		}
		second := post(t, h, req2)
		// A create among the inputs answers with its new shell's ID.
		for _, id := range []string{first.Body.ShellID, second.Body.ShellID} {
			if id != "" && id != shell.Body.ShellID {
				opened = append(opened, id)
			}
		}
		for _, id := range opened {
			post(t, h, bytes.ReplaceAll(del, []byte(seedShellID), []byte(id)))
		}
		if n := srv.OpenShells(); n != 0 {
			t.Fatalf("%d shell(s) left open after the input", n)
		}
	})
}

// post sends body to /wsman as the guest's administrator and checks the
// answer's shape.
func post(t *testing.T, h http.Handler, body []byte) wsReply {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "http://"+hostA+":5985/wsman", bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	r.SetBasicAuth(adminUser, adminPass)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	var rep wsReply
	if err := xml.Unmarshal(w.Body.Bytes(), &rep); err != nil {
		t.Fatalf("HTTP %d answer is not a SOAP envelope: %v\n%s", w.Code, err, w.Body.Bytes())
	}
	switch {
	case w.Code == http.StatusInternalServerError && rep.Body.Subcode == "":
		t.Fatalf("fault without a subcode:\n%s", w.Body.Bytes())
	case w.Code != http.StatusOK && w.Code != http.StatusInternalServerError:
		t.Fatalf("HTTP %d for an authenticated SOAP request", w.Code)
	}
	var req struct {
		Header struct {
			MessageID string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing MessageID"`
		} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	}
	if xml.Unmarshal(body, &req) != nil || req.Header.MessageID == "" {
		return rep // unparsable or anonymous: the fault relates to nothing
	}
	if rep.Header.RelatesTo == nil || *rep.Header.RelatesTo != req.Header.MessageID {
		t.Fatalf("RelatesTo %v, want the MessageID %q", rep.Header.RelatesTo, req.Header.MessageID)
	}
	return rep
}
