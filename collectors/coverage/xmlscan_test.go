package coverage

import (
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// elements lists the start and end elements of a document, with their
// attributes, as a string.
func elements(next func() (xml.Token, error)) (string, error) {
	var b strings.Builder
	for {
		tok, err := next()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			fmt.Fprintf(&b, "<%s", t.Name.Local)
			for _, a := range t.Attr {
				fmt.Fprintf(&b, " %s=%q", a.Name.Local, a.Value)
			}
			b.WriteString(">")
		case xml.EndElement:
			fmt.Fprintf(&b, "</%s>", t.Name.Local)
		}
	}
}

// The tokenizer reads what encoding/xml reads — the reference, computed a
// second way — on the awkward shapes real reports have, and refuses what
// it refuses.
func TestXMLScannerAgreesWithEncodingXML(t *testing.T) {
	good := []string{
		`<?xml version="1.0" ?><!DOCTYPE coverage SYSTEM "http://cobertura.sourceforge.net/xml/coverage-04.dtd"><coverage a="1"><packages/></coverage>`,
		"<coverage>\n<!-- a comment with <tags> and > inside -->\n<class filename='src/a&amp;b.py' name=\"x &lt;y&gt; &quot;z&quot; &apos;w&apos; &#65;&#x42;\"/>\n</coverage>",
		`<coverage><class filename="a>b.py" name='c>d'><lines><line number="1" hits="2"/></lines></class></coverage>`,
		`<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]><coverage><![CDATA[ <not> a tag ]]><x  y = "1"	z='2' /></coverage>`,
		"<coverage>\r\n\t<line number=\"1\"\r\n hits=\"0\"/>\r\n</coverage>",
	}
	for _, doc := range good {
		dec := xml.NewDecoder(strings.NewReader(doc))
		dec.Strict = true
		want, werr := elements(dec.Token)
		got, gerr := elements(newXMLScanner(strings.NewReader(doc), 1<<20).Token)
		if werr != nil || gerr != nil || got != want {
			t.Errorf("%s\n got %s (%v)\nwant %s (%v)", doc, got, gerr, want, werr)
		}
	}
	bad := []string{
		`<coverage><packages></coverage>`,
		`<coverage><line number="1"`,
		`<coverage><line number=1/></coverage>`,
		`<coverage><line name="&lol;"/></coverage>`,
		`<coverage><line name="a<b"/></coverage>`,
		`<coverage></packages>`,
		"<coverage><line name=\"\xff\"/></coverage>",
		`<coverage>`,
	}
	for _, doc := range bad {
		dec := xml.NewDecoder(strings.NewReader(doc))
		dec.Strict = true
		if _, err := elements(dec.Token); err == nil {
			t.Fatalf("encoding/xml accepts %s", doc)
		}
		if _, err := elements(newXMLScanner(strings.NewReader(doc), 1<<20).Token); err == nil {
			t.Errorf("the scanner accepts %s", doc)
		}
	}
}
