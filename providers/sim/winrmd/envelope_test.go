package winrmd

import (
	"bufio"
	"encoding/xml"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// capturedRequests are the requests masterzen/winrm sent, as captured in
// testdata: the create and delete envelopes and every request of
// FuzzRequest's seed corpus.
func capturedRequests(t testing.TB) [][]byte {
	var reqs [][]byte
	for _, f := range []string{"testdata/create.xml", "testdata/delete.xml"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, b)
	}
	seeds, err := filepath.Glob("testdata/fuzz/FuzzRequest/*")
	if err != nil || len(seeds) == 0 {
		t.Fatalf("FuzzRequest's seed corpus: %v (%d files)", err, len(seeds))
	}
	for _, f := range seeds {
		file, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "[]byte(")
			if !ok {
				continue
			}
			s, err := strconv.Unquote(strings.TrimSuffix(line, ")"))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			reqs = append(reqs, []byte(s))
		}
		_ = file.Close()
		if err := sc.Err(); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
	}
	return reqs
}

// TestParseEnvelopeReadsClientsPlainly: every request the real client
// sent is in the plain subset (so the fast reading is the one used), and
// reads as xml.Unmarshal reads it.
func TestParseEnvelopeReadsClientsPlainly(t *testing.T) {
	for i, req := range capturedRequests(t) {
		root, ok := parsePlain(req)
		if !ok || root.local != "Envelope" {
			t.Errorf("request %d is not read plainly: %.200s", i, req)
			continue
		}
		checkSameEnvelope(t, req)
	}
}

// TestParseEnvelopeEdges: documents at the edges of the plain subset
// read as xml.Unmarshal reads them, or fail as it fails.
func TestParseEnvelopeEdges(t *testing.T) {
	const head = `<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope" xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" xmlns:r="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">`
	for _, tc := range []struct{ name, doc string }{
		{"entities", head + `<e:Header><a:Action>x&lt;&amp;&gt;&quot;&apos;y</a:Action></e:Header></e:Envelope>`},
		{"unknown entity", head + `<e:Header><a:Action>&nbsp;</a:Action></e:Header></e:Envelope>`},
		{"numeric reference", head + `<e:Header><a:Action>&#65;</a:Action></e:Header></e:Envelope>`},
		{"carriage return", head + "<e:Header><a:Action>a\r\nb</a:Action></e:Header></e:Envelope>"},
		{"]]> in text", head + `<e:Header><a:Action>a]]>b</a:Action></e:Header></e:Envelope>`},
		{"]]> broken by an entity", head + `<e:Header><a:Action>a]&amp;]>b</a:Action></e:Header></e:Envelope>`},
		{"mismatched end tag", head + `<e:Header></e:Body></e:Envelope>`},
		{"undeclared prefix", head + `<x:Header></x:Header></e:Envelope>`},
		{"default namespace", `<Envelope xmlns="http://www.w3.org/2003/05/soap-envelope"><Header/></Envelope>`},
		{"another root", `<Other/>`},
		{"empty", ``},
		{"truncated", head + `<e:Body><r:Signal CommandId="c1"><r:Code>x</r:Code>`},
		{"two headers merge", head + `<e:Header><a:Action>1</a:Action></e:Header><e:Header><a:MessageID>m</a:MessageID></e:Header></e:Envelope>`},
		{"text and children", head + `<e:Header><a:Action>a<x:y xmlns:x="u">z</x:y>b</a:Action></e:Header></e:Envelope>`},
		{"last attribute wins", head + `<e:Body><r:Signal CommandId="c1" x:CommandId="c2" xmlns:x="u"/></e:Body></e:Envelope>`},
		{"< in attribute", head + `<e:Body><r:Signal CommandId="c<1"/></e:Body></e:Envelope>`},
		{"unquoted attribute", head + `<e:Body><r:Signal CommandId=c1/></e:Body></e:Envelope>`},
		{"attributes without space", head + `<e:Body><r:Signal CommandId="c1"x="2"/></e:Body></e:Envelope>`},
		{"comment", head + `<!-- c --><e:Header/></e:Envelope>`},
		{"CDATA", head + `<e:Header><a:Action><![CDATA[x]]></a:Action></e:Header></e:Envelope>`},
		{"CDATA with markup", head + `<e:Body><r:CommandLine><r:Command>a<![CDATA[<b>&amp;]]]>c</r:Command></r:CommandLine></e:Body></e:Envelope>`},
		{"declaration", `<?xml version="1.0" encoding="UTF-8"?>` + head + `</e:Envelope>`},
		{"other version", `<?xml version="1.1"?>` + head + `</e:Envelope>`},
		{"trailing garbage", head + `</e:Envelope><<<`},
		{"streams", head + `<e:Body><r:Send><r:Stream Name="stdin" CommandId="c" End="true">aGk=</r:Stream><r:Stream Name="stdin">eA==</r:Stream></r:Send></e:Body></e:Envelope>`},
	} {
		t.Run(tc.name, func(t *testing.T) { checkSameEnvelope(t, []byte(tc.doc)) })
	}
}

// FuzzParseEnvelope: whatever the input, parseEnvelope gives what
// xml.Unmarshal gives (the same envelope, or an error where it errs), and
// the plain reading never accepts a document encoding/xml refuses.
func FuzzParseEnvelope(f *testing.F) {
	for _, req := range capturedRequests(f) {
		f.Add(req)
	}
	f.Fuzz(func(t *testing.T, data []byte) { checkSameEnvelope(t, data) })
}

func checkSameEnvelope(t *testing.T, data []byte) {
	t.Helper()
	var want, got envelope
	werr := xml.Unmarshal(data, &want)
	gerr := parseEnvelope(data, &got)
	if (werr == nil) != (gerr == nil) {
		t.Fatalf("xml.Unmarshal: %v; parseEnvelope: %v; input %q", werr, gerr, data)
	}
	if werr == nil && !reflect.DeepEqual(want, got) {
		t.Fatalf("xml.Unmarshal read %+v; parseEnvelope %+v; input %q", want, got, data)
	}
	if root, ok := parsePlain(data); ok && root.local == "Envelope" && root.space == nsSOAP && werr != nil {
		t.Fatalf("the plain reading accepts what xml.Unmarshal refuses (%v): %q", werr, data)
	}
}
