package winrmd

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// WS-Management namespaces and the actions and URIs the server speaks, as
// the Windows WinRM service does (and masterzen/winrm sends and reads).
const (
	nsSOAP     = "http://www.w3.org/2003/05/soap-envelope"
	nsAddr     = "http://schemas.xmlsoap.org/ws/2004/08/addressing"
	nsWSMan    = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"
	nsShell    = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell"
	nsTransfer = "http://schemas.xmlsoap.org/ws/2004/09/transfer"

	actionCreate   = nsTransfer + "/Create"
	actionDelete   = nsTransfer + "/Delete"
	actionCommand  = nsShell + "/Command"
	actionSend     = nsShell + "/Send"
	actionReceive  = nsShell + "/Receive"
	actionSignal   = nsShell + "/Signal"
	actionFault    = "http://schemas.dmtf.org/wbem/wsman/1/wsman/fault"
	resourceCmd    = nsShell + "/cmd"
	stateDone      = nsShell + "/CommandState/Done"
	stateRunning   = nsShell + "/CommandState/Running"
	signalTerm     = nsShell + "/signal/terminate"
	addrAnonymous  = "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous"
	soapContentTyp = "application/soap+xml;charset=UTF-8"
)

// envelope is the part of a WS-Management request the server reads
// (parseEnvelope).
type envelope struct {
	XMLName xml.Name `xml:"http://www.w3.org/2003/05/soap-envelope Envelope"`
	Header  struct {
		Action           string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing Action"`
		MessageID        string `xml:"http://schemas.xmlsoap.org/ws/2004/08/addressing MessageID"`
		ResourceURI      string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd ResourceURI"`
		OperationTimeout string `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd OperationTimeout"`
		SelectorSet      struct {
			Selectors []envSelector `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd Selector"`
		} `xml:"http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd SelectorSet"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Header"`
	Body struct {
		Shell       *envShell       `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Shell"`
		CommandLine *envCommandLine `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell CommandLine"`
		Send        *envSend        `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Send"`
		Receive     *envReceive     `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Receive"`
		Signal      *envSignal      `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Signal"`
	} `xml:"http://www.w3.org/2003/05/soap-envelope Body"`
}

type envSelector struct {
	Name  string `xml:"Name,attr"`
	Value string `xml:",chardata"`
}

type envShell struct {
	IdleTimeOut   string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell IdleTimeOut"`
	InputStreams  string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell InputStreams"`
	OutputStreams string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell OutputStreams"`
}

type envCommandLine struct {
	Command   string   `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Command"`
	Arguments []string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Arguments"`
}

type envSend struct {
	Streams []envStream `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Stream"`
}

type envStream struct {
	Name      string `xml:"Name,attr"`
	CommandID string `xml:"CommandId,attr"`
	End       string `xml:"End,attr"`
	Data      string `xml:",chardata"`
}

type envReceive struct {
	DesiredStream struct {
		CommandID string `xml:"CommandId,attr"`
		Streams   string `xml:",chardata"`
	} `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell DesiredStream"`
}

type envSignal struct {
	CommandID string `xml:"CommandId,attr"`
	Code      string `xml:"http://schemas.microsoft.com/wbem/wsman/1/windows/shell Code"`
}

// selector returns the value of the named selector ("" if absent).
func (e *envelope) selector(name string) string {
	for _, s := range e.Header.SelectorSet.Selectors {
		if s.Name == name {
			return strings.TrimSpace(s.Value)
		}
	}
	return ""
}

// operationTimeout parses the request's OperationTimeout; def if absent
// or unparsable.
func (e *envelope) operationTimeout(def time.Duration) time.Duration {
	d, err := parseDuration(e.Header.OperationTimeout)
	if err != nil || d <= 0 {
		return def
	}
	return d
}

// parseDuration parses the time part of an xs:duration, such as "PT60S",
// "PT60.000S" or "PT1H30M".
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "PT") {
		return 0, fmt.Errorf("duration %q does not start with PT", s)
	}
	s = s[2:]
	var total time.Duration
	for s != "" {
		i := strings.IndexAny(s, "HMS")
		if i <= 0 {
			return 0, fmt.Errorf("duration part %q has no number before its unit", s)
		}
		v, err := strconv.ParseFloat(s[:i], 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("duration part %q is not a non-negative number", s[:i])
		}
		unit := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second}[s[i]]
		total += time.Duration(v * float64(unit))
		s = s[i+1:]
	}
	return total, nil
}

// esc escapes s for XML text or attribute content.
func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// writeEnvelope writes a 200 response with action and body.
func writeEnvelope(w http.ResponseWriter, relatesTo, action, body string) {
	writeXML(w, http.StatusOK, envelopeXML(relatesTo, action, body))
}

func envelopeXML(relatesTo, action, body string) string {
	var b strings.Builder
	b.Grow(len(body) + 800)
	b.WriteString(`<s:Envelope xml:lang="en-US" xmlns:s="` + nsSOAP + `" xmlns:a="` + nsAddr +
		`" xmlns:x="` + nsTransfer + `" xmlns:w="` + nsWSMan + `" xmlns:rsp="` + nsShell +
		`" xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd"><s:Header>`)
	b.WriteString(`<a:Action>` + esc(action) + `</a:Action>`)
	b.WriteString(`<a:MessageID>uuid:` + newID() + `</a:MessageID>`)
	b.WriteString(`<a:To>` + addrAnonymous + `</a:To>`)
	if relatesTo != "" {
		b.WriteString(`<a:RelatesTo>` + esc(relatesTo) + `</a:RelatesTo>`)
	}
	b.WriteString(`</s:Header><s:Body>`)
	b.WriteString(body)
	b.WriteString(`</s:Body></s:Envelope>`)
	return b.String()
}

func writeXML(w http.ResponseWriter, status int, doc string) {
	h := w.Header()
	h.Set("Content-Type", soapContentTyp)
	h.Set("Content-Length", strconv.Itoa(len(doc)))
	w.WriteHeader(status)
	_, _ = w.Write([]byte(doc))
}

// fault is a WS-Management fault: HTTP 500 with a SOAP 1.2 Fault, shaped as
// the Windows WinRM service shapes it.
type fault struct {
	code    string // "s:Sender" or "s:Receiver"
	subcode string // e.g. "w:TimedOut"
	reason  string
	wsman   int // WSManFault Code, e.g. 2150858793
}

// Faults the server returns.
var (
	faultTimedOut = fault{"s:Receiver", "w:TimedOut",
		"The WS-Management service cannot complete the operation within the time specified in OperationTimeout.", 2150858793}
	faultNoShell = fault{"s:Sender", "w:InvalidSelectors",
		"The request for the Windows Remote Shell failed because the shell was not found on the server.", 2150858843}
	faultNoCommand = fault{"s:Sender", "w:InvalidSelectors",
		"The request for the Windows Remote Shell failed because the command was not found in the shell.", 2150858843}
	faultQuota = fault{"s:Receiver", "w:QuotaLimit",
		"The WS-Management service cannot process the request. This user is allowed a maximum number of concurrent shells, which has been exceeded.", 2150859173}
	faultAction = fault{"s:Sender", "a:ActionNotSupported",
		"The WS-Management service cannot process the request because the action is not supported.", 2150858749}
	faultResource = fault{"s:Sender", "w:DestinationUnreachable",
		"The WS-Management service cannot process the request because the resource URI is not supported.", 2150858770}
	faultSchema = fault{"s:Sender", "w:SchemaValidationError",
		"The SOAP XML in the message does not match the corresponding XML schema definition.", 2150858817}
	faultEncoding = fault{"s:Sender", "w:EncodingLimit",
		"The WS-Management service cannot process the request because the input is too large.", 2150858790}
	faultStdin = fault{"s:Sender", "w:InvalidParameter",
		"The command does not accept input at this point.", 2150858755}
)

func writeFault(w http.ResponseWriter, relatesTo string, f fault) {
	body := `<s:Fault><s:Code><s:Value>` + f.code + `</s:Value><s:Subcode><s:Value>` + f.subcode +
		`</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">` + esc(f.reason) +
		`</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="` +
		strconv.Itoa(f.wsman) + `" Machine="localhost"><f:Message>` + esc(f.reason) +
		`</f:Message></f:WSManFault></s:Detail></s:Fault>`
	writeXML(w, http.StatusInternalServerError, envelopeXML(relatesTo, actionFault, body))
}

// Response bodies.

func createResponse(addr, shellID string) string {
	return `<x:ResourceCreated><a:Address>` + esc(addr) + `</a:Address><a:ReferenceParameters><w:ResourceURI>` +
		resourceCmd + `</w:ResourceURI><w:SelectorSet><w:Selector Name="ShellId">` + shellID +
		`</w:Selector></w:SelectorSet></a:ReferenceParameters></x:ResourceCreated>` +
		`<rsp:Shell><rsp:ShellId>` + shellID + `</rsp:ShellId><rsp:ResourceUri>` + resourceCmd +
		`</rsp:ResourceUri><rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>`
}

func commandResponse(commandID string) string {
	return `<rsp:CommandResponse><rsp:CommandId>` + commandID + `</rsp:CommandId></rsp:CommandResponse>`
}

// receiveResponse reports a finished command's output and exit code.
func receiveResponse(commandID string, stdout, stderr []byte, exitCode int) string {
	var b strings.Builder
	b.WriteString(`<rsp:ReceiveResponse>`)
	stream := func(name string, data []byte) {
		if len(data) > 0 {
			fmt.Fprintf(&b, `<rsp:Stream Name="%s" CommandId="%s">%s</rsp:Stream>`, name, commandID, b64(data))
		}
	}
	stream("stdout", stdout)
	stream("stderr", stderr)
	fmt.Fprintf(&b, `<rsp:Stream Name="stdout" CommandId="%s" End="true"></rsp:Stream>`, commandID)
	fmt.Fprintf(&b, `<rsp:Stream Name="stderr" CommandId="%s" End="true"></rsp:Stream>`, commandID)
	fmt.Fprintf(&b, `<rsp:CommandState CommandId="%s" State="%s"><rsp:ExitCode>%d</rsp:ExitCode></rsp:CommandState>`,
		commandID, stateDone, exitCode)
	b.WriteString(`</rsp:ReceiveResponse>`)
	return b.String()
}
