package guest

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"

	"github.com/fixfleet/fixfleet/internal/sizedread"
)

// WS-Management actions the transport treats as cleanup: they are sent even
// after the caller's context ended, so that the guest frees the shell.
const (
	actionSignal = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell/Signal"
	actionDelete = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Delete"
)

// actionCreate opens a shell (openShell).
const actionCreate = "http://schemas.xmlsoap.org/ws/2004/09/transfer/Create"

// maxResponse bounds one WS-Management response body.
const maxResponse = 8 << 20

// transporter is the masterzen/winrm Transporter of one Run: it posts SOAP
// messages through the Client's shared HTTP transport (one connection pool
// for every guest), under the Run's context, and turns failures into the
// package's error classes. Its error messages never contain the password or
// the script's parameters.
type transporter struct {
	c        *Client
	ctx      context.Context
	url      string
	user     string
	password string
	secrets  []string // scrubbed from any text the guest sends back
}

var _ winrm.Transporter = (*transporter)(nil)

// Transport implements winrm.Transporter; the shared transport is already
// configured.
func (t *transporter) Transport(*winrm.Endpoint) error { return nil }

// Post implements winrm.Transporter.
func (t *transporter) Post(_ *winrm.Client, m *soap.SoapMessage) (string, error) {
	body := m.String()
	ctx := t.ctx
	if strings.Contains(body, actionSignal) || strings.Contains(body, actionDelete) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(context.WithoutCancel(t.ctx), t.c.opts.CleanupTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.url, strings.NewReader(body))
	if err != nil {
		return "", &classError{msg: "building request: " + err.Error()}
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(t.user, t.password)
	resp, err := t.c.http.Do(req)
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			return "", &classError{cause: cerr, msg: cerr.Error()}
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL wrapper: masterzen retries forever on url.Error timeouts
		}
		var ce *classError
		if errors.As(err, &ce) {
			return "", &classError{class: ErrUnreachable, msg: ce.msg}
		}
		return "", &classError{class: ErrUnreachable, msg: scrub(err.Error(), t.secrets, 512)}
	}
	data, rerr := sizedread.ReadAll(io.LimitReader(resp.Body, maxResponse), resp.ContentLength, maxResponse)
	_ = resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		return "", &classError{class: ErrAuth, msg: ErrAuth.Error() + " (HTTP 401)"}
	case rerr != nil:
		return "", &classError{class: ErrUnreachable, msg: "reading response: " + scrub(rerr.Error(), t.secrets, 512)}
	case resp.StatusCode == http.StatusOK:
		if !strings.Contains(resp.Header.Get("Content-Type"), "application/soap+xml") {
			return "", &classError{msg: "WinRM answered with content type " + scrub(resp.Header.Get("Content-Type"), t.secrets, 100)}
		}
		return string(data), nil
	}
	// A fault. Its text must keep "OperationTimeout" for a timed-out
	// Receive: masterzen polls again on that.
	msg := fmt.Sprintf("WinRM fault (HTTP %d)", resp.StatusCode)
	sum, code := parseFault(data)
	if sum != "" {
		msg += ": " + sum
	}
	return "", &classError{class: faultClass(code), msg: scrub(msg, t.secrets, 1024)}
}

// soapFault is the part of a SOAP 1.2 fault worth reporting.
type soapFault struct {
	Subcode string `xml:"Body>Fault>Code>Subcode>Value"`
	Reason  string `xml:"Body>Fault>Reason>Text"`
	Message string `xml:"Body>Fault>Detail>WSManFault>Message"`
}

// parseFault summarises a fault body (its subcode, reason and message,
// each once) and returns its WS-Management subcode without the namespace
// prefix (e.g. "QuotaLimit" for w:QuotaLimit); "", "" if it is not one.
func parseFault(data []byte) (summary, code string) {
	var f soapFault
	if err := xml.Unmarshal(data, &f); err != nil {
		return "", ""
	}
	sub := strings.TrimSpace(f.Subcode)
	code = sub[strings.LastIndex(sub, ":")+1:]
	parts := []string{}
	for _, s := range []string{f.Subcode, f.Reason, f.Message} {
		s = strings.Join(strings.Fields(s), " ")
		if s != "" && !slices.Contains(parts, s) {
			parts = append(parts, s)
		}
	}
	summary = strings.Join(parts, ": ")
	if code == "TimedOut" && !strings.Contains(summary, "OperationTimeout") {
		summary += " (OperationTimeout)"
	}
	return summary, code
}
