package itk

import (
	"bufio"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/meshgateway/gateway/itk/fhir"
)

// The wire encoders walk a small FHIR element tree (wireElem) and write FHIR STU3
// XML or JSON straight to an io.Writer. Hand-written rather than
// encoding/xml|json because FHIR needs things those packages cannot do
// without buffering: primitives as value attributes, resourceType-first JSON,
// and attachment bytes base64-streamed from a reader into the output.
// The tree holds only the structure (a few KB); document bytes stay with the
// caller until they are streamed.

type wireKind uint8

const (
	wkComplex  wireKind = iota // element with children
	wkString                   // primitive rendered as a JSON string
	wkBool                     // primitive rendered as a JSON boolean
	wkResource                 // a resource: XML <Type>, JSON {"resourceType": ...}
	wkXHTML                    // narrative div (value is well-formed XHTML)
	wkBase64                   // Binary.content streamed from a document
)

const (
	wireBufferSize = 32 << 10
	wireIndent     = "  "
)

// wireElem is one FHIR element. Elements appear in STU3 definition order; repeats
// marks 0..* elements so JSON renders them as arrays (consecutive siblings
// with the same name form one array).
type wireElem struct {
	name     string
	kind     wireKind
	value    string
	url      string // extension url (XML attribute, first JSON property)
	resType  string // wkResource: the resource type
	repeats  bool
	children []*wireElem
	doc      *Document // wkBase64
	consumed bool      // wkBase64: the document Reader has been read
}

func wComplex(name string, children ...*wireElem) *wireElem {
	return &wireElem{name: name, kind: wkComplex, children: wCompact(children)}
}

func wList(name string, children ...*wireElem) *wireElem {
	e := wComplex(name, children...)
	e.repeats = true
	return e
}

// wPrim returns a string primitive, or nil when the value is empty (FHIR
// forbids empty values), so optional fields can be passed unconditionally.
func wPrim(name, value string) *wireElem {
	if value == "" {
		return nil
	}
	return &wireElem{name: name, kind: wkString, value: value}
}

func wPrims(name string, values ...string) []*wireElem {
	var out []*wireElem
	for _, v := range values {
		if e := wPrim(name, v); e != nil {
			e.repeats = true
			out = append(out, e)
		}
	}
	return out
}

func wBool(name string, v bool) *wireElem {
	return &wireElem{name: name, kind: wkBool, value: strconv.FormatBool(v)}
}

func wExt(url string, children ...*wireElem) *wireElem {
	e := wList("extension", children...)
	e.url = url
	return e
}

func wResource(name, resType string, children ...*wireElem) *wireElem {
	return &wireElem{name: name, kind: wkResource, resType: resType, children: wCompact(children)}
}

// wCompact drops nil children so builders can pass optional elements inline.
func wCompact(children []*wireElem) []*wireElem {
	out := children[:0]
	for _, c := range children {
		if c != nil && (c.kind != wkComplex || len(c.children) > 0 || c.url != "") {
			out = append(out, c)
		}
	}
	return out
}

// wFlatten joins element groups (single elements and lists) in order.
func wFlatten(groups ...[]*wireElem) []*wireElem {
	var out []*wireElem
	for _, g := range groups {
		out = append(out, g...)
	}
	return out
}

// errWireReaderConsumed is returned when a streamed document is encoded twice.
var errWireReaderConsumed = errors.New("document reader already consumed by an earlier encode")

// wireEncoder carries what both formats share: the buffered output, a byte
// count, and the size-only mode used by EncodedSize.
type wireEncoder struct {
	w        *bufio.Writer
	counter  *wireCounter
	sizeOnly bool
	err      error
}

type wireCounter struct {
	w io.Writer
	n int64
}

func (c *wireCounter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

func newWireEncoder(w io.Writer, sizeOnly bool) *wireEncoder {
	cw := &wireCounter{w: w}
	size := wireBufferSize
	if sizeOnly {
		size = 4 << 10 // only counting: a small buffer keeps EncodedSize cheap
	}
	return &wireEncoder{w: bufio.NewWriterSize(cw, size), counter: cw, sizeOnly: sizeOnly}
}

func (e *wireEncoder) str(s string) {
	if e.err == nil {
		_, e.err = e.w.WriteString(s)
	}
}

func (e *wireEncoder) indent(depth int) {
	e.str("\n")
	for i := 0; i < depth; i++ {
		e.str(wireIndent)
	}
}

func (e *wireEncoder) finish() error {
	if e.err != nil {
		return e.err
	}
	return e.w.Flush()
}

// base64Content streams a document's bytes through a base64 encoder into
// the output; in size-only mode it adds the encoded length instead. A
// document Reader is read once; the element remembers that, so the caller's
// Document is never modified.
func (e *wireEncoder) base64Content(el *wireElem) {
	if e.err != nil {
		return
	}
	d := el.doc
	if e.sizeOnly {
		size, ok := streamedSize(el)
		if !ok {
			e.err = errors.New("document size unknown")
			return
		}
		if e.err = e.w.Flush(); e.err == nil {
			e.counter.n += int64(base64.StdEncoding.EncodedLen(int(size)))
		}
		return
	}
	enc := base64.NewEncoder(base64.StdEncoding, e.w)
	switch {
	case d.Reader == nil:
		_, e.err = enc.Write(d.Data)
	case el.consumed:
		e.err = errWireReaderConsumed
	default:
		el.consumed = true
		var n int64
		n, e.err = io.Copy(enc, onceReader{d.Reader})
		if e.err == nil && d.Size >= 0 && n != d.Size {
			e.err = fmt.Errorf("document stream: read %d bytes, declared size %d", n, d.Size)
		}
	}
	if e.err == nil {
		e.err = enc.Close()
	}
}

// onceReader hides the reader's WriterTo so io.Copy uses its bounded 32 KB
// buffer whatever the reader is.
type onceReader struct{ r io.Reader }

func (o onceReader) Read(p []byte) (int, error) { return o.r.Read(p) }

// streamedSize is the content length when known without reading.
func streamedSize(el *wireElem) (int64, bool) {
	d := el.doc
	if d.Reader == nil {
		return int64(len(d.Data)), true
	}
	if el.consumed || d.Size < 0 {
		return 0, false
	}
	return d.Size, true
}

// ---- XML ----

func encodeWireXML(w io.Writer, root *wireElem, sizeOnly bool) (int64, error) {
	e := newWireEncoder(w, sizeOnly)
	e.str(`<` + root.resType + ` xmlns="` + fhir.NamespaceFHIR + `">`)
	e.xmlChildren(root.children, 1)
	e.indent(0)
	e.str(`</` + root.resType + ">\n")
	err := e.finish()
	return e.counter.n, err
}

func (e *wireEncoder) xmlChildren(children []*wireElem, depth int) {
	for _, c := range children {
		e.xmlElem(c, depth)
	}
}

func (e *wireEncoder) xmlElem(el *wireElem, depth int) {
	e.indent(depth)
	switch el.kind {
	case wkString, wkBool:
		e.str("<" + el.name + ` value="`)
		e.xmlEscape(el.value)
		e.str(`"/>`)
	case wkBase64:
		e.str("<" + el.name + ` value="`)
		e.base64Content(el)
		e.str(`"/>`)
	case wkXHTML:
		e.str(el.value)
	case wkResource:
		e.str("<" + el.name + ">")
		e.indent(depth + 1)
		e.str("<" + el.resType + ">")
		e.xmlChildren(el.children, depth+2)
		e.indent(depth + 1)
		e.str("</" + el.resType + ">")
		e.indent(depth)
		e.str("</" + el.name + ">")
	default:
		e.str("<" + el.name)
		if el.url != "" {
			e.str(` url="`)
			e.xmlEscape(el.url)
			e.str(`"`)
		}
		if len(el.children) == 0 {
			e.str("/>")
			return
		}
		e.str(">")
		e.xmlChildren(el.children, depth+1)
		e.indent(depth)
		e.str("</" + el.name + ">")
	}
}

// xmlEscape writes s escaped for an attribute value or text node. Characters
// XML 1.0 cannot carry at all (most C0 controls, invalid UTF-8) become U+FFFD
// so the output always parses.
func (e *wireEncoder) xmlEscape(s string) {
	if e.err != nil {
		return
	}
	start := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == '&':
			esc = "&amp;"
		case r == '<':
			esc = "&lt;"
		case r == '>':
			esc = "&gt;"
		case r == '"':
			esc = "&quot;"
		case r == '\t':
			esc = "&#x9;"
		case r == '\n':
			esc = "&#xA;"
		case r == '\r':
			esc = "&#xD;"
		case r == utf8.RuneError && width == 1, !xmlCharAllowed(r):
			esc = "\uFFFD"
		default:
			i += width
			continue
		}
		e.str(s[start:i])
		e.str(esc)
		i += width
		start = i
	}
	e.str(s[start:])
}

func xmlCharAllowed(r rune) bool {
	return r == 0x09 || r == 0x0A || r == 0x0D ||
		(r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

// ---- JSON ----

func encodeWireJSON(w io.Writer, root *wireElem, sizeOnly bool) (int64, error) {
	e := newWireEncoder(w, sizeOnly)
	e.jsonObject(root.resType, "", root.children, 0)
	e.str("\n")
	err := e.finish()
	return e.counter.n, err
}

// jsonObject writes {"resourceType"?, "url"?, children...}.
func (e *wireEncoder) jsonObject(resType, url string, children []*wireElem, depth int) {
	e.str("{")
	first := true
	sep := func() {
		if !first {
			e.str(",")
		}
		first = false
		e.indent(depth + 1)
	}
	if resType != "" {
		sep()
		e.str(`"resourceType": `)
		e.jsonString(resType)
	}
	if url != "" {
		sep()
		e.str(`"url": `)
		e.jsonString(url)
	}
	for i := 0; i < len(children); {
		c := children[i]
		sep()
		e.jsonString(c.name)
		e.str(": ")
		if !c.repeats {
			e.jsonValue(c, depth+1)
			i++
			continue
		}
		j := i
		for j < len(children) && children[j].name == c.name && children[j].repeats {
			j++
		}
		e.str("[")
		for k := i; k < j; k++ {
			if k > i {
				e.str(",")
			}
			e.indent(depth + 2)
			e.jsonValue(children[k], depth+2)
		}
		e.indent(depth + 1)
		e.str("]")
		i = j
	}
	if !first {
		e.indent(depth)
	}
	e.str("}")
}

func (e *wireEncoder) jsonValue(el *wireElem, depth int) {
	switch el.kind {
	case wkString:
		e.jsonString(el.value)
	case wkBool:
		e.str(el.value)
	case wkXHTML:
		e.jsonString(el.value)
	case wkBase64:
		e.str(`"`)
		e.base64Content(el) // the base64 alphabet needs no JSON escaping
		e.str(`"`)
	case wkResource:
		e.jsonObject(el.resType, "", el.children, depth)
	default:
		e.jsonObject("", el.url, el.children, depth)
	}
}

const wireHex = "0123456789abcdef"

// jsonString writes s as a JSON string; invalid UTF-8 becomes U+FFFD.
func (e *wireEncoder) jsonString(s string) {
	if e.err != nil {
		return
	}
	e.str(`"`)
	start := 0
	for i := 0; i < len(s); {
		r, width := utf8.DecodeRuneInString(s[i:])
		var esc string
		switch {
		case r == '"':
			esc = `\"`
		case r == '\\':
			esc = `\\`
		case r == '\n':
			esc = `\n`
		case r == '\r':
			esc = `\r`
		case r == '\t':
			esc = `\t`
		case r < 0x20:
			esc = `\u00` + string(wireHex[r>>4]) + string(wireHex[r&0xF])
		case r == utf8.RuneError && width == 1:
			esc = "\uFFFD"
		case r == '\u2028', r == '\u2029':
			esc = `\u202` + string(wireHex[r&0xF])
		default:
			i += width
			continue
		}
		e.str(s[start:i])
		e.str(esc)
		i += width
		start = i
	}
	e.str(s[start:])
	e.str(`"`)
}

// encodeWire writes root in format f and returns the byte count.
func encodeWire(w io.Writer, root *wireElem, f Format, sizeOnly bool) (int64, error) {
	switch f {
	case FormatJSON:
		return encodeWireJSON(w, root, sizeOnly)
	case FormatXML, "":
		return encodeWireXML(w, root, sizeOnly)
	default:
		return 0, fmt.Errorf("itk: unknown format %q", f)
	}
}
