package guest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fixfleet/fixfleet/providers"
)

const testPassword = "Pa55w0rd-do-not-print"

func TestCredentialsNeverShowPassword(t *testing.T) {
	cr := Credentials{User: "Administrator", Password: testPassword}
	var logBuf bytes.Buffer
	slog.New(slog.NewJSONHandler(&logBuf, nil)).Info("x", "creds", cr)
	slog.New(slog.NewTextHandler(&logBuf, nil)).Info("x", "creds", cr)
	js, err := json.Marshal(map[string]any{"c": cr, "p": &cr})
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String": cr.String(), "GoString": cr.GoString(), "json": string(js), "slog": logBuf.String(),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%10.3s"} {
		outputs[verb] = fmt.Sprintf(verb, cr)
		outputs[verb+" pointer"] = fmt.Sprintf(verb, &cr)
		outputs[verb+" in struct"] = fmt.Sprintf(verb, struct{ C Credentials }{cr})
	}
	for name, out := range outputs {
		if strings.Contains(out, testPassword) {
			t.Errorf("%s reveals the password: %s", name, out)
		}
		if !strings.Contains(out, "Administrator") && !strings.HasPrefix(name, "%x") && !strings.HasPrefix(name, "%d") && !strings.HasPrefix(name, "%10") {
			t.Errorf("%s does not name the user: %s", name, out)
		}
	}
}

// fakeProxy answers each CONNECT with status; on 200 it echoes the tunnel.
func fakeProxy(t *testing.T, status int) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				req, err := http.ReadRequest(br)
				if err != nil || req.Method != http.MethodConnect || req.Host != "10.0.0.5:5985" {
					_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
					return
				}
				fmt.Fprintf(c, "HTTP/1.1 %d %s\r\nContent-Length: 0\r\n\r\n", status, http.StatusText(status))
				if status == http.StatusOK {
					_, _ = io.Copy(c, br)
				}
			}()
		}
	}()
	return l.Addr().String()
}

func TestConnectDialer(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	_ = closed.Close()
	tests := []struct {
		name    string
		proxy   string
		wantErr error
	}{
		{"tunnel", fakeProxy(t, http.StatusOK), nil},
		{"bad gateway", fakeProxy(t, http.StatusBadGateway), ErrUnreachable},
		{"forbidden", fakeProxy(t, http.StatusForbidden), ErrUnreachable},
		{"proxy down", closedAddr, ErrUnreachable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := NewConnectDialer(tc.proxy)("tcp", "10.0.0.5:5985")
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, "ping"); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 4)
			if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "ping" {
				t.Fatalf("echo %q, %v", buf, err)
			}
		})
	}
}

func TestRunChecksParams(t *testing.T) {
	c := NewClient(ClientOptions{Dial: func(string, string) (net.Conn, error) {
		t.Error("Run dialled with bad parameters")
		return nil, errors.New("no")
	}})
	ep := providers.Endpoint{Host: "10.0.0.5"}
	cr := Credentials{User: "a", Password: testPassword}
	for name, tc := range map[string]struct {
		n      Name
		params any
	}{
		"unknown script":   {"format-disk", ProbeParams{}},
		"wrong params":     {Probe, DeleteParams{}},
		"nil params":       {ListDisks, nil},
		"wrong pointer":    {UnlockVolume, &DiskParams{}},
		"map params":       {Probe, map[string]any{"dir": "x"}},
		"secret elsewhere": {OnlineDisk, UnlockParams{RecoveryKey: "123456-123456"}},
	} {
		t.Run(name, func(t *testing.T) {
			err := c.Run(context.Background(), ep, cr, tc.n, tc.params, nil)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), testPassword) || strings.Contains(err.Error(), "123456") {
				t.Errorf("error reveals a secret: %v", err)
			}
		})
	}
}

func TestDecodeStrict(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{`{"was_set":true}`, true},
		{"{\"was_set\":true}\r\n", true},
		{`{"was_set":true,"extra":1}`, false},
		{`{"was_set":true}{"was_set":false}`, false},
		{`{"was_set":"yes"}`, false},
		{``, false},
		{`[]`, false},
	}
	for _, tc := range tests {
		var r SafeBootResult
		if err := decodeStrict([]byte(tc.in), &r); (err == nil) != tc.ok {
			t.Errorf("decodeStrict(%q) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}

func TestScriptErrorClasses(t *testing.T) {
	refused := &ScriptError{Host: "h", Name: Probe, ExitCode: ExitRefused, Stderr: "no"}
	failed := &ScriptError{Host: "h", Name: Probe, ExitCode: 1, Stderr: "boom"}
	if !errors.Is(refused, ErrRefused) || errors.Is(failed, ErrRefused) {
		t.Error("ErrRefused matches the wrong exit codes")
	}
	if !strings.Contains(failed.Error(), "boom") || !strings.Contains(failed.Error(), "h") {
		t.Errorf("message %q", failed.Error())
	}
	if got := scrub("key 1234 and 1234", []string{"1234", ""}, 0); got != "key [redacted] and [redacted]" {
		t.Errorf("scrub = %q", got)
	}
	if got := scrub(strings.Repeat("x", 100), nil, 10); !strings.HasPrefix(got, "xxxxxxxxxx…") {
		t.Errorf("truncation = %q", got)
	}
}

func TestParseFault(t *testing.T) {
	fault := func(sub, reason string) string {
		return `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value>` +
			`<s:Subcode><s:Value>` + sub + `</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">` + reason + `</s:Text></s:Reason>` +
			`</s:Fault></s:Body></s:Envelope>`
	}
	for _, c := range []struct {
		name, body, code string
		want             []string
	}{
		{"timed out", fault("w:TimedOut", "too slow"), "TimedOut", []string{"w:TimedOut", "too slow", "OperationTimeout"}},
		{"quota", fault("w:QuotaLimit", "too many shells"), "QuotaLimit", []string{"w:QuotaLimit", "too many shells"}},
		{"other prefix", fault("wsman:QuotaLimit", "x"), "QuotaLimit", []string{"wsman:QuotaLimit"}},
		{"junk", "not xml", "", nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, code := parseFault([]byte(c.body))
			if code != c.code {
				t.Errorf("code %q, want %q", code, c.code)
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("summary %q lacks %q", got, w)
				}
			}
			if c.want == nil && got != "" {
				t.Errorf("summary %q of junk", got)
			}
		})
	}
}

func TestFaultClass(t *testing.T) {
	for _, c := range []struct {
		code      string
		want      error
		transient bool
	}{
		{"QuotaLimit", ErrBusy, true},
		{"InvalidSelectors", ErrShellLost, true},
		{"AccessDenied", nil, false},
		{"", nil, false},
	} {
		got := faultClass(c.code)
		if got != c.want {
			t.Errorf("faultClass(%q) = %v, want %v", c.code, got, c.want)
		}
		if tr := Transient(&classError{class: got, msg: "x"}); tr != c.transient {
			t.Errorf("Transient(%q fault) = %v, want %v", c.code, tr, c.transient)
		}
	}
}

func TestCappedNeverBlocks(t *testing.T) {
	w := &capped{max: 4}
	for range 3 {
		if n, err := w.Write([]byte("abc")); n != 3 || err != nil {
			t.Fatalf("Write = %d, %v", n, err)
		}
	}
	if w.buf.String() != "abca" || !w.over {
		t.Errorf("kept %q, over=%v", w.buf.String(), w.over)
	}
}

func TestWSManDuration(t *testing.T) {
	for d, want := range map[string]string{"20s": "PT20S", "1m": "PT60S", "10ms": "PT1S"} {
		dur, _ := time.ParseDuration(d)
		if got := wsmanDuration(dur); got != want {
			t.Errorf("wsmanDuration(%s) = %s, want %s", d, got, want)
		}
	}
}
