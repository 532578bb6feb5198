package fhir

import (
	"bytes"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Namespaces FHIR XML uses.
const (
	NamespaceFHIR  = "http://hl7.org/fhir"
	NamespaceXHTML = "http://www.w3.org/1999/xhtml"
	namespaceXSI   = "http://www.w3.org/2001/XMLSchema-instance"
)

type nsBinding struct{ prefix, uri string }

type xmlParser struct {
	data     []byte
	pos      int
	maxDepth int
	ns       []nsBinding // in-scope declarations, innermost last
}

func (p *xmlParser) fail(msg string) error {
	return &SyntaxError{Format: XML, Offset: p.pos, Msg: msg}
}

// ParseXML reads a FHIR XML resource into a Node tree. It refuses DTDs and
// entity references other than the five predefined ones and character
// references (no XXE, no entity expansion). It fails only on malformed XML;
// FHIR-level problems (wrong namespace, text content, unknown attributes)
// are left on the tree for Check.
func ParseXML(data []byte, maxDepth int) (*Node, error) {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if !utf8.Valid(data) {
		return nil, &SyntaxError{Format: XML, Msg: "input is not valid UTF-8"}
	}
	p := &xmlParser{data: data, maxDepth: maxDepth}
	if bytes.HasPrefix(p.data, []byte("\xEF\xBB\xBF")) {
		p.pos = 3
	}
	if err := p.misc(true); err != nil {
		return nil, err
	}
	if p.pos >= len(p.data) || p.data[p.pos] != '<' {
		return nil, p.fail("expected the root element")
	}
	root, err := p.element(1)
	if err != nil {
		return nil, err
	}
	if err := p.misc(false); err != nil {
		return nil, err
	}
	if p.pos != len(p.data) {
		return nil, p.fail("unexpected content after the root element")
	}
	if !validName(root.Name) {
		return nil, &SyntaxError{Format: XML, Msg: "root element is not a FHIR resource"}
	}
	return root, nil
}

// misc skips whitespace, comments and processing instructions outside the
// root element. DOCTYPE is refused.
func (p *xmlParser) misc(prolog bool) error {
	for {
		p.skipWS()
		d := p.data[p.pos:]
		switch {
		case bytes.HasPrefix(d, []byte("<!--")):
			if err := p.comment(); err != nil {
				return err
			}
		case bytes.HasPrefix(d, []byte("<?")):
			if err := p.pi(); err != nil {
				return err
			}
		case bytes.HasPrefix(d, []byte("<!")):
			return p.fail("DTDs and declarations are not allowed")
		default:
			return nil
		}
	}
}

func (p *xmlParser) skipWS() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *xmlParser) comment() error {
	i := bytes.Index(p.data[p.pos+4:], []byte("-->"))
	if i < 0 {
		return p.fail("unterminated comment")
	}
	p.pos += 4 + i + 3
	return nil
}

func (p *xmlParser) pi() error {
	i := bytes.Index(p.data[p.pos+2:], []byte("?>"))
	if i < 0 {
		return p.fail("unterminated processing instruction")
	}
	p.pos += 2 + i + 2
	return nil
}

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '_' || c == '-' || c == '.' || c == ':' || c >= 0x80
}

func (p *xmlParser) name() (string, error) {
	start := p.pos
	for p.pos < len(p.data) && isNameByte(p.data[p.pos]) {
		p.pos++
	}
	if p.pos == start {
		return "", p.fail("expected a name")
	}
	return string(p.data[start:p.pos]), nil
}

// maxAttributes bounds attributes per element (FHIR uses at most four:
// value, id, url, xmlns), keeping the duplicate check cheap.
const maxAttributes = 32

type xmlAttr struct {
	name, value string
	off         int
}

// startTag reads "<name attrs" up to and including ">" or "/>".
func (p *xmlParser) startTag() (name string, attrs []xmlAttr, empty bool, err error) {
	p.pos++ // '<'
	if name, err = p.name(); err != nil {
		return
	}
	for {
		hadWS := p.pos < len(p.data) && isSpace(p.data[p.pos])
		p.skipWS()
		if p.pos >= len(p.data) {
			err = p.fail("unterminated start tag")
			return
		}
		switch p.data[p.pos] {
		case '>':
			p.pos++
			return
		case '/':
			if p.pos+1 < len(p.data) && p.data[p.pos+1] == '>' {
				p.pos += 2
				empty = true
				return
			}
			err = p.fail("expected '/>'")
			return
		}
		if !hadWS {
			err = p.fail("expected whitespace before an attribute")
			return
		}
		off := p.pos
		var an string
		if an, err = p.name(); err != nil {
			return
		}
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != '=' {
			err = p.fail("expected '=' after an attribute name")
			return
		}
		p.pos++
		p.skipWS()
		var v string
		if v, err = p.attrValue(); err != nil {
			return
		}
		if len(attrs) >= maxAttributes {
			err = p.fail("too many attributes")
			return
		}
		for _, a := range attrs {
			if a.name == an {
				err = p.fail("duplicate attribute")
				return
			}
		}
		attrs = append(attrs, xmlAttr{an, v, off})
	}
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// attrValue reads a quoted attribute value. The fast path (no entity, no
// whitespace to normalise: e.g. a large base64 value) uses SIMD-backed
// searches and one copy.
func (p *xmlParser) attrValue() (string, error) {
	if p.pos >= len(p.data) || (p.data[p.pos] != '"' && p.data[p.pos] != '\'') {
		return "", p.fail("expected a quoted attribute value")
	}
	q := p.data[p.pos]
	start := p.pos + 1
	end := bytes.IndexByte(p.data[start:], q)
	if end < 0 {
		return "", p.fail("unterminated attribute value")
	}
	seg := p.data[start : start+end]
	if bytes.IndexByte(seg, '<') >= 0 {
		p.pos = start + bytes.IndexByte(seg, '<')
		return "", p.fail("'<' in an attribute value")
	}
	p.pos = start + end + 1
	if bytes.IndexByte(seg, '&') < 0 && bytes.IndexByte(seg, '\n') < 0 &&
		bytes.IndexByte(seg, '\t') < 0 && bytes.IndexByte(seg, '\r') < 0 {
		return bytesToString(seg), nil
	}
	out, err := unescapeXML(seg, true)
	if err != nil {
		p.pos = start
		return "", p.fail(err.Error())
	}
	return out, nil
}

type xmlEscapeError string

func (e xmlEscapeError) Error() string { return string(e) }

// unescapeXML expands the predefined entities and character references;
// any other entity is refused (there is no DTD to define it). Attribute
// values get whitespace normalised as XML 1.0 §3.3.3 requires.
func unescapeXML(seg []byte, attr bool) (string, error) {
	buf := make([]byte, 0, len(seg))
	for i := 0; i < len(seg); i++ {
		c := seg[i]
		if attr && (c == '\t' || c == '\n' || c == '\r') {
			if c == '\r' && i+1 < len(seg) && seg[i+1] == '\n' {
				i++
			}
			buf = append(buf, ' ')
			continue
		}
		if c != '&' {
			buf = append(buf, c)
			continue
		}
		j := bytes.IndexByte(seg[i:], ';')
		if j < 0 {
			return "", xmlEscapeError("unterminated entity reference")
		}
		ref := string(seg[i+1 : i+j])
		i += j
		switch ref {
		case "lt":
			buf = append(buf, '<')
		case "gt":
			buf = append(buf, '>')
		case "amp":
			buf = append(buf, '&')
		case "quot":
			buf = append(buf, '"')
		case "apos":
			buf = append(buf, '\'')
		default:
			r, ok := charRef(ref)
			if !ok {
				return "", xmlEscapeError("undefined entity reference (DTD entities are not allowed)")
			}
			buf = utf8.AppendRune(buf, r)
		}
	}
	return string(buf), nil
}

func charRef(ref string) (rune, bool) {
	if len(ref) < 2 || ref[0] != '#' {
		return 0, false
	}
	var v uint64
	var err error
	if ref[1] == 'x' {
		v, err = strconv.ParseUint(ref[2:], 16, 32)
	} else {
		v, err = strconv.ParseUint(ref[1:], 10, 32)
	}
	if err != nil || v == 0 || v > utf8.MaxRune || (v >= 0xD800 && v < 0xE000) {
		return 0, false
	}
	if v < 0x20 && v != 9 && v != 10 && v != 13 {
		return 0, false
	}
	return rune(v), true
}

// resolve maps a qualified name to its namespace and local name.
func (p *xmlParser) resolve(qname string) (uri, local string, ok bool) {
	prefix := ""
	local = qname
	if i := strings.IndexByte(qname, ':'); i >= 0 {
		prefix, local = qname[:i], qname[i+1:]
	}
	for k := len(p.ns) - 1; k >= 0; k-- {
		if p.ns[k].prefix == prefix {
			return p.ns[k].uri, local, true
		}
	}
	return "", local, prefix == ""
}

// element parses one FHIR element (p.pos on '<').
func (p *xmlParser) element(depth int) (*Node, error) {
	if depth > p.maxDepth {
		return nil, p.fail("nesting too deep")
	}
	off := p.pos
	qname, attrs, empty, err := p.startTag()
	if err != nil {
		return nil, err
	}
	mark := len(p.ns)
	defer func() { p.ns = p.ns[:mark] }()
	for _, a := range attrs {
		switch {
		case a.name == "xmlns":
			p.ns = append(p.ns, nsBinding{"", a.value})
		case len(a.name) > 6 && a.name[:6] == "xmlns:":
			p.ns = append(p.ns, nsBinding{a.name[6:], a.value})
		}
	}
	uri, local, ok := p.resolve(qname)
	if !ok {
		p.pos = off
		return nil, p.fail("undeclared namespace prefix")
	}
	if uri == NamespaceXHTML {
		// Narrative: keep the markup as the value, checked by the xhtml scanner.
		p.pos = off
		end, err := scanXHTMLElement(p.data, off, depth, p.maxDepth, true)
		if err != nil {
			return nil, err
		}
		p.pos = end
		n := &Node{Name: local, Value: string(p.data[off:end]), Kind: KindXHTML, Offset: off}
		if local != "div" {
			n.problem = "xhtml element other than div"
		}
		return n, nil
	}
	n := &Node{Name: local, Offset: off}
	if uri != NamespaceFHIR {
		n.problem = "element is not in the FHIR namespace " + NamespaceFHIR
	}
	for _, a := range attrs {
		switch a.name {
		case "value":
			n.Value, n.Kind = a.value, KindAttr
		case "id", "url":
			n.Children = append(n.Children, &Node{Name: a.name, Value: a.value, Kind: KindAttr, FromAttr: true, Offset: a.off})
		case "xmlns":
		default:
			if len(a.name) > 6 && a.name[:6] == "xmlns:" {
				continue
			}
			if uri, _, ok := p.resolve(a.name); ok && uri == namespaceXSI && strings.Contains(a.name, ":") {
				continue // xsi:schemaLocation and friends carry no data
			}
			if n.problem == "" {
				n.problem = "unknown attribute " + a.name
			}
		}
	}
	if empty {
		return n, nil
	}
	for {
		start := p.pos
		for p.pos < len(p.data) && p.data[p.pos] != '<' {
			p.pos++
		}
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated element")
		}
		if text := bytes.TrimSpace(p.data[start:p.pos]); len(text) > 0 && n.problem == "" {
			n.problem = "text content is not allowed in FHIR elements (use the value attribute)"
		}
		d := p.data[p.pos:]
		switch {
		case bytes.HasPrefix(d, []byte("</")):
			if err := p.endTag(qname); err != nil {
				return nil, err
			}
			return n, nil
		case bytes.HasPrefix(d, []byte("<!--")):
			if err := p.comment(); err != nil {
				return nil, err
			}
		case bytes.HasPrefix(d, []byte("<![CDATA[")):
			i := bytes.Index(d, []byte("]]>"))
			if i < 0 {
				return nil, p.fail("unterminated CDATA section")
			}
			p.pos += i + 3
			if n.problem == "" {
				n.problem = "CDATA is only allowed inside the xhtml narrative"
			}
		case bytes.HasPrefix(d, []byte("<!")):
			return nil, p.fail("DTDs and declarations are not allowed")
		case bytes.HasPrefix(d, []byte("<?")):
			if err := p.pi(); err != nil {
				return nil, err
			}
		default:
			c, err := p.element(depth + 1)
			if err != nil {
				return nil, err
			}
			n.Children = append(n.Children, c)
		}
	}
}

// endTag reads "</qname>" (p.pos on '<').
func (p *xmlParser) endTag(qname string) error {
	p.pos += 2
	end, err := p.name()
	if err != nil {
		return err
	}
	if end != qname {
		return p.fail("mismatched end tag")
	}
	p.skipWS()
	if p.pos >= len(p.data) || p.data[p.pos] != '>' {
		return p.fail("expected '>'")
	}
	p.pos++
	return nil
}

// scanXHTMLElement checks the well-formedness of one xhtml element starting
// at data[off] ('<') and returns the offset just past it. Text, CDATA,
// comments and the predefined/character entity references are allowed
// inside; DTD entities and declarations are not. needNS says the element
// must declare the xhtml namespace itself (JSON narrative).
func scanXHTMLElement(data []byte, off, depth, maxDepth int, inherited bool) (int, error) {
	p := &xmlParser{data: data, pos: off, maxDepth: maxDepth}
	if err := p.xhtml(depth, inherited); err != nil {
		return 0, err
	}
	return p.pos, nil
}

func (p *xmlParser) xhtml(depth int, nsKnown bool) error {
	if depth > p.maxDepth {
		return p.fail("nesting too deep")
	}
	qname, attrs, empty, err := p.startTag()
	if err != nil {
		return err
	}
	if !nsKnown {
		for _, a := range attrs {
			if a.name == "xmlns" && a.value == NamespaceXHTML {
				nsKnown = true
			}
		}
		if !nsKnown {
			return p.fail("narrative div must be in the xhtml namespace")
		}
	}
	if empty {
		return nil
	}
	for {
		start := p.pos
		i := bytes.IndexByte(p.data[p.pos:], '<')
		if i < 0 {
			return p.fail("unterminated xhtml element")
		}
		p.pos += i
		if t := p.data[start:p.pos]; bytes.IndexByte(t, '&') >= 0 {
			if _, err := unescapeXML(t, false); err != nil {
				p.pos = start
				return p.fail(err.Error())
			}
		}
		d := p.data[p.pos:]
		switch {
		case bytes.HasPrefix(d, []byte("</")):
			return p.endTag(qname)
		case bytes.HasPrefix(d, []byte("<!--")):
			if err := p.comment(); err != nil {
				return err
			}
		case bytes.HasPrefix(d, []byte("<![CDATA[")):
			j := bytes.Index(d, []byte("]]>"))
			if j < 0 {
				return p.fail("unterminated CDATA section")
			}
			p.pos += j + 3
		case bytes.HasPrefix(d, []byte("<!")):
			return p.fail("DTDs and declarations are not allowed")
		case bytes.HasPrefix(d, []byte("<?")):
			if err := p.pi(); err != nil {
				return err
			}
		default:
			if err := p.xhtml(depth+1, true); err != nil {
				return err
			}
		}
	}
}

// CheckXHTML reports whether s is one well-formed xhtml div (the JSON form
// of Narrative.div).
func CheckXHTML(s string, maxDepth int) bool {
	b := []byte(s)
	if !bytes.HasPrefix(b, []byte("<div")) {
		return false
	}
	end, err := scanXHTMLElement(b, 0, 1, maxDepth, false)
	return err == nil && len(bytes.TrimSpace(b[end:])) == 0
}
