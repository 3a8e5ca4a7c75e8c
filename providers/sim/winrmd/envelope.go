package winrmd

import (
	"bytes"
	"encoding/xml"
	"strings"
)

// parseEnvelope reads a WS-Management request into env, as
// xml.Unmarshal(data, env) does and with the same result and errors.
//
// encoding/xml reads a byte at a time: the script a Command carries on
// its command line (several KB of base64) made it most of the simulated
// guests' CPU. The plain subset every WS-Management client sends (the
// XML declaration, elements, attributes, namespace declarations, character
// data in printable ASCII with the five predefined entities, CDATA
// sections) is read here a run at a time; anything else (comments,
// DOCTYPE, numeric character references, carriage returns, non-ASCII text
// or names, an undeclared prefix, a malformed document) is left to
// xml.Unmarshal, which also gives every error. FuzzParseEnvelope holds the two to the
// same envelope.
func parseEnvelope(data []byte, env *envelope) error {
	if root, ok := parsePlain(data); ok && root.space == nsSOAP && root.local == "Envelope" {
		env.fill(root)
		return nil
	}
	return xml.Unmarshal(data, env)
}

// element is one element of a plain document: its translated name, its
// attributes by local name in document order, the character data directly
// inside it, and its child elements.
type element struct {
	space, local string
	attrs        []attr
	text         []byte
	kids         []*element
}

type attr struct{ local, value string }

// plain parses the plain subset (see parseEnvelope). ok is false for
// anything outside it, and for any document encoding/xml would refuse.
type plain struct {
	data []byte
	i    int
	ns   []binding // the namespace declarations in scope, innermost last
}

type binding struct{ prefix, uri string }

func parsePlain(data []byte) (*element, bool) {
	p := &plain{data: data}
	p.space()
	if bytes.HasPrefix(p.data[p.i:], []byte("<?")) {
		p.i += 2
		end := bytes.Index(p.data[p.i:], []byte("?>"))
		if end < 0 || !plainDeclaration(string(p.data[p.i:p.i+end])) {
			return nil, false
		}
		p.i += end + 2
		p.space()
	}
	if !p.at('<') {
		return nil, false
	}
	// What follows the root element is not read, as by xml.Unmarshal.
	return p.element()
}

// plainDeclaration reports whether content (between "<?" and "?>") is an
// XML declaration encoding/xml accepts without a charset reader: version
// 1.0 and UTF-8, in the plain forms clients write.
func plainDeclaration(content string) bool {
	switch strings.TrimRight(content, " ") {
	case `xml version="1.0" encoding="utf-8"`, `xml version="1.0" encoding="UTF-8"`, `xml version="1.0"`:
		return true
	}
	return false
}

func (p *plain) at(b byte) bool { return p.i < len(p.data) && p.data[p.i] == b }

func (p *plain) space() {
	for p.i < len(p.data) && isSpace(p.data[p.i]) {
		p.i++
	}
}

// name reads an ASCII XML name with at most one colon, not at either end,
// split into prefix and local part.
func (p *plain) name() (prefix, local string, ok bool) {
	start, colon := p.i, -1
scan:
	for p.i < len(p.data) {
		c := p.data[p.i]
		switch {
		case c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_':
		case (c >= '0' && c <= '9' || c == '.' || c == '-') && p.i > start && p.i != colon+1:
		case c == ':' && colon < 0 && p.i > start:
			colon = p.i
		default:
			break scan
		}
		p.i++
	}
	switch {
	case p.i == start || colon == p.i-1:
		return "", "", false
	case colon < 0:
		return "", string(p.data[start:p.i]), true
	}
	return string(p.data[start:colon]), string(p.data[colon+1 : p.i]), true
}

// element reads an element whose '<' is at p.i.
func (p *plain) element() (*element, bool) {
	p.i++
	nameStart := p.i
	prefix, local, ok := p.name()
	if !ok {
		return nil, false
	}
	rawName := p.data[nameStart:p.i]
	scope := len(p.ns)
	defer func() { p.ns = p.ns[:scope] }()
	e := &element{local: local}
	for {
		p.space()
		if p.i >= len(p.data) {
			return nil, false
		}
		if c := p.data[p.i]; c == '>' || c == '/' {
			break
		}
		if p.i > 0 && !isSpace(p.data[p.i-1]) {
			return nil, false // attributes are separated by space
		}
		aprefix, alocal, ok := p.name()
		if !ok {
			return nil, false
		}
		p.space()
		if !p.at('=') {
			return nil, false
		}
		p.i++
		p.space()
		if !p.at('"') && !p.at('\'') {
			return nil, false
		}
		quote := p.data[p.i]
		p.i++
		end := bytes.IndexByte(p.data[p.i:], quote)
		if end < 0 {
			return nil, false
		}
		v, ok := plainText(p.data[p.i:p.i+end], true)
		if !ok {
			return nil, false
		}
		p.i += end + 1
		value := string(v)
		switch {
		case aprefix == "xmlns":
			p.ns = append(p.ns, binding{alocal, value})
		case aprefix == "" && alocal == "xmlns":
			p.ns = append(p.ns, binding{"", value})
		}
		e.attrs = append(e.attrs, attr{alocal, value})
	}
	if e.space, ok = p.lookup(prefix); !ok {
		return nil, false
	}
	if p.at('/') {
		p.i++
		if !p.at('>') {
			return nil, false
		}
		p.i++
		return e, true
	}
	p.i++ // '>'
	for {
		lt := bytes.IndexByte(p.data[p.i:], '<')
		if lt < 0 {
			return nil, false
		}
		t, ok := plainText(p.data[p.i:p.i+lt], false)
		if !ok {
			return nil, false
		}
		e.text = append(e.text, t...)
		p.i += lt
		if p.i+1 >= len(p.data) {
			return nil, false
		}
		switch p.data[p.i+1] {
		case '/':
			p.i += 2
			if !bytes.HasPrefix(p.data[p.i:], rawName) {
				return nil, false
			}
			p.i += len(rawName)
			p.space()
			if !p.at('>') {
				return nil, false
			}
			p.i++
			return e, true
		case '?':
			return nil, false
		case '!':
			// A CDATA section (masterzen/winrm sends its command line in
			// one) is character data as it stands; comments and the rest
			// are outside the plain subset.
			const open, end = "<![CDATA[", "]]>"
			if !bytes.HasPrefix(p.data[p.i:], []byte(open)) {
				return nil, false
			}
			p.i += len(open)
			n := bytes.Index(p.data[p.i:], []byte(end))
			if n < 0 || !plainChars(p.data[p.i:p.i+n], false) {
				return nil, false
			}
			e.text = append(e.text, p.data[p.i:p.i+n]...)
			p.i += n + len(end)
			continue
		}
		kid, ok := p.element()
		if !ok {
			return nil, false
		}
		e.kids = append(e.kids, kid)
	}
}

// lookup translates an element's prefix as encoding/xml does; an
// undeclared prefix (which it keeps as the namespace) and the reserved
// ones are outside the plain subset.
func (p *plain) lookup(prefix string) (string, bool) {
	if prefix == "xml" || prefix == "xmlns" {
		return "", false
	}
	for i := len(p.ns) - 1; i >= 0; i-- {
		if p.ns[i].prefix == prefix {
			return p.ns[i].uri, true
		}
	}
	return "", prefix == ""
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' }

// plainText decodes character data (inQuote: an attribute's value) made
// of printable ASCII, tabs and newlines, with the five predefined
// entities; ok is false for anything else, and for "]]>" outside quotes,
// which encoding/xml refuses.
func plainText(b []byte, inQuote bool) ([]byte, bool) {
	if !plainChars(b, inQuote) {
		return nil, false
	}
	if !inQuote && bytes.Contains(b, []byte("]]>")) {
		return nil, false
	}
	amp := bytes.IndexByte(b, '&')
	if amp < 0 {
		return b, true
	}
	out := append([]byte(nil), b[:amp]...)
	for b = b[amp:]; len(b) > 0; {
		if b[0] != '&' {
			next := bytes.IndexByte(b, '&')
			if next < 0 {
				next = len(b)
			}
			out, b = append(out, b[:next]...), b[next:]
			continue
		}
		semi := bytes.IndexByte(b, ';')
		if semi < 0 {
			return nil, false
		}
		var r byte
		switch string(b[1:semi]) {
		case "lt":
			r = '<'
		case "gt":
			r = '>'
		case "amp":
			r = '&'
		case "quot":
			r = '"'
		case "apos":
			r = '\''
		default:
			return nil, false
		}
		out, b = append(out, r), b[semi+1:]
	}
	return out, true
}

// plainChars reports whether b is printable ASCII, tabs and newlines,
// with no '<' inQuote.
func plainChars(b []byte, inQuote bool) bool {
	for _, c := range b {
		if (c < 0x20 && c != '\t' && c != '\n') || c >= 0x7f || (inQuote && c == '<') {
			return false
		}
	}
	return true
}

// fill sets env from the plain document's root element as xml.Unmarshal
// does: a field takes the children with its name and namespace (a string
// the character data directly inside the last one, a slice one entry per
// child, a struct all of them merged), an attribute field the last
// attribute of its local name, whatever its prefix.
func (env *envelope) fill(root *element) {
	env.XMLName = xml.Name{Space: root.space, Local: root.local}
	for _, k := range root.kids {
		switch {
		case k.is(nsSOAP, "Header"):
			env.fillHeader(k)
		case k.is(nsSOAP, "Body"):
			env.fillBody(k)
		}
	}
}

func (e *element) is(space, local string) bool { return e.space == space && e.local == local }

// setAttr sets *dst to e's last attribute local, if it has one.
func (e *element) setAttr(local string, dst *string) {
	for _, a := range e.attrs {
		if a.local == local {
			*dst = a.value
		}
	}
}

func (env *envelope) fillHeader(h *element) {
	hd := &env.Header
	for _, k := range h.kids {
		switch {
		case k.is(nsAddr, "Action"):
			hd.Action = string(k.text)
		case k.is(nsAddr, "MessageID"):
			hd.MessageID = string(k.text)
		case k.is(nsWSMan, "ResourceURI"):
			hd.ResourceURI = string(k.text)
		case k.is(nsWSMan, "OperationTimeout"):
			hd.OperationTimeout = string(k.text)
		case k.is(nsWSMan, "SelectorSet"):
			for _, s := range k.kids {
				if s.is(nsWSMan, "Selector") {
					sel := envSelector{Value: string(s.text)}
					s.setAttr("Name", &sel.Name)
					hd.SelectorSet.Selectors = append(hd.SelectorSet.Selectors, sel)
				}
			}
		}
	}
}

func (env *envelope) fillBody(b *element) {
	bd := &env.Body
	for _, k := range b.kids {
		switch {
		case k.is(nsShell, "Shell"):
			if bd.Shell == nil {
				bd.Shell = &envShell{}
			}
			for _, f := range k.kids {
				switch {
				case f.is(nsShell, "IdleTimeOut"):
					bd.Shell.IdleTimeOut = string(f.text)
				case f.is(nsShell, "InputStreams"):
					bd.Shell.InputStreams = string(f.text)
				case f.is(nsShell, "OutputStreams"):
					bd.Shell.OutputStreams = string(f.text)
				}
			}
		case k.is(nsShell, "CommandLine"):
			if bd.CommandLine == nil {
				bd.CommandLine = &envCommandLine{}
			}
			for _, f := range k.kids {
				switch {
				case f.is(nsShell, "Command"):
					bd.CommandLine.Command = string(f.text)
				case f.is(nsShell, "Arguments"):
					bd.CommandLine.Arguments = append(bd.CommandLine.Arguments, string(f.text))
				}
			}
		case k.is(nsShell, "Send"):
			if bd.Send == nil {
				bd.Send = &envSend{}
			}
			for _, f := range k.kids {
				if f.is(nsShell, "Stream") {
					s := envStream{Data: string(f.text)}
					f.setAttr("Name", &s.Name)
					f.setAttr("CommandId", &s.CommandID)
					f.setAttr("End", &s.End)
					bd.Send.Streams = append(bd.Send.Streams, s)
				}
			}
		case k.is(nsShell, "Receive"):
			if bd.Receive == nil {
				bd.Receive = &envReceive{}
			}
			for _, f := range k.kids {
				if f.is(nsShell, "DesiredStream") {
					ds := &bd.Receive.DesiredStream
					ds.Streams = string(f.text)
					f.setAttr("CommandId", &ds.CommandID)
				}
			}
		case k.is(nsShell, "Signal"):
			if bd.Signal == nil {
				bd.Signal = &envSignal{}
			}
			k.setAttr("CommandId", &bd.Signal.CommandID)
			for _, f := range k.kids {
				if f.is(nsShell, "Code") {
					bd.Signal.Code = string(f.text)
				}
			}
		}
	}
}
