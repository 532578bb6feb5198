package fhir

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// DefaultMaxDepth bounds element nesting (a DoS guard); a Send Document
// message needs about 20.
const DefaultMaxDepth = 64

type jsonParser struct {
	data     []byte
	pos      int
	maxDepth int
}

func (p *jsonParser) fail(msg string) error {
	return &SyntaxError{Format: JSON, Offset: p.pos, Msg: msg}
}

// ParseJSON reads a FHIR JSON resource into a Node tree. It fails only on
// malformed JSON or a root that is not a resource; FHIR-level problems are
// left on the tree for Check.
func ParseJSON(data []byte, maxDepth int) (*Node, error) {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	if !utf8.Valid(data) {
		return nil, &SyntaxError{Format: JSON, Msg: "input is not valid UTF-8"}
	}
	p := &jsonParser{data: data, maxDepth: maxDepth}
	p.skipWS()
	if p.pos >= len(p.data) || p.data[p.pos] != '{' {
		return nil, p.fail("expected a JSON object")
	}
	n, err := p.object("", 1)
	if err != nil {
		return nil, err
	}
	p.skipWS()
	if p.pos != len(p.data) {
		return nil, p.fail("unexpected data after the resource")
	}
	res := n.Resource()
	if res == nil || len(n.Children) != 1 {
		return nil, &SyntaxError{Format: JSON, Msg: "root object has no resourceType"}
	}
	return res, nil
}

func (p *jsonParser) skipWS() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// member is one object property before "_name" companions are merged.
type member struct {
	key   string
	nodes []*Node // one per array item (nil for a JSON null in an array)
	array bool
	off   int
}

// object parses {...}. The returned node is named name; if the object has a
// resourceType, its properties go to a child node named by that type.
func (p *jsonParser) object(name string, depth int) (*Node, error) {
	if depth > p.maxDepth {
		return nil, p.fail("nesting too deep")
	}
	start := p.pos
	p.pos++ // '{'
	var members []member
	resourceType := ""
	seen := make(map[string]bool)
	var dup []string
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == '}' {
		p.pos++
		n := &Node{Name: name, Offset: start}
		n.problem = "empty object"
		return n, nil
	}
	for {
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.fail("expected a property name")
		}
		koff := p.pos
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		p.skipWS()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.fail("expected ':'")
		}
		p.pos++
		p.skipWS()
		if seen[key] {
			dup = append(dup, key)
		}
		seen[key] = true
		if key == "resourceType" {
			if p.pos >= len(p.data) || p.data[p.pos] != '"' {
				return nil, p.fail("resourceType must be a string")
			}
			rt, err := p.str()
			if err != nil {
				return nil, err
			}
			resourceType = rt
		} else {
			m := member{key: key, off: koff}
			if p.pos < len(p.data) && p.data[p.pos] == '[' {
				m.array = true
				m.nodes, err = p.array(key, depth+1)
			} else {
				var n *Node
				n, err = p.value(key, depth+1, false)
				m.nodes = []*Node{n}
			}
			if err != nil {
				return nil, err
			}
			members = append(members, m)
		}
		p.skipWS()
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated object")
		}
		if p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.data[p.pos] == '}' {
			p.pos++
			break
		}
		return nil, p.fail("expected ',' or '}'")
	}
	children := mergeCompanions(members)
	holder := &Node{Name: name, Offset: start}
	if len(dup) > 0 {
		holder.problem = "duplicate property " + dup[0]
	}
	if resourceType == "" {
		holder.Children = children
		return holder, nil
	}
	res := &Node{Name: resourceType, Offset: start, Children: children}
	if !validName(resourceType) {
		res.problem = "resourceType is not a valid resource name"
	}
	holder.Children = []*Node{res}
	holder.problem, res.problem = "", firstNonEmpty(res.problem, holder.problem)
	return holder, nil
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func validName(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// mergeCompanions folds "_name" members into "name" so a primitive and its
// id/extensions become one Node.
func mergeCompanions(members []member) []*Node {
	index := make(map[string]int, len(members))
	for i, m := range members {
		if len(m.key) == 0 || m.key[0] != '_' {
			index[m.key] = i
		}
	}
	for _, m := range members {
		if len(m.key) > 1 && m.key[0] == '_' {
			if i, ok := index[m.key[1:]]; ok {
				mergeInto(&members[i], m)
			}
		}
	}
	out := make([]*Node, 0, len(members))
	for _, m := range members {
		if len(m.key) > 1 && m.key[0] == '_' {
			base := m.key[1:]
			if _, ok := index[base]; ok {
				continue
			}
			// A primitive with extensions but no value: the companion stands alone.
			for _, n := range m.nodes {
				if n == nil {
					continue
				}
				n.Name = base
				n.InArray = m.array
				if n.Kind != KindNone {
					n.problem = "a _" + base + " property must be an object"
				}
				n.companionOnly = true
			}
			out = appendNonNil(out, m.nodes, base, m.off)
			continue
		}
		out = appendNonNil(out, m.nodes, m.key, m.off)
	}
	return out
}

func appendNonNil(out []*Node, nodes []*Node, name string, off int) []*Node {
	for _, n := range nodes {
		if n == nil {
			n = &Node{Name: name, Offset: off, InArray: true, problem: "null array item with no matching _" + name + " item"}
		}
		out = append(out, n)
	}
	return out
}

func mergeInto(base *member, comp member) {
	if base.array != comp.array || len(base.nodes) != len(comp.nodes) {
		for _, n := range base.nodes {
			if n != nil {
				n.problem = "_" + base.key + " does not line up with " + base.key
				break
			}
		}
		return
	}
	for i, c := range comp.nodes {
		b := base.nodes[i]
		if c == nil {
			continue
		}
		if c.Kind != KindNone {
			c.problem = "a _" + base.key + " item must be an object"
		}
		if b == nil {
			c.Name = base.key
			c.InArray = base.array
			c.companionOnly = true
			base.nodes[i] = c
			continue
		}
		if b.Kind == KindNone {
			b.problem = "_" + base.key + " given for a non-primitive value"
		}
		b.Children = append(b.Children, c.Children...)
		if b.problem == "" {
			b.problem = c.problem
		}
	}
	// A null with no companion is reported by appendNonNil.
}

func (p *jsonParser) array(name string, depth int) ([]*Node, error) {
	if depth > p.maxDepth {
		return nil, p.fail("nesting too deep")
	}
	start := p.pos
	p.pos++ // '['
	var out []*Node
	p.skipWS()
	if p.pos < len(p.data) && p.data[p.pos] == ']' {
		p.pos++
		return []*Node{{Name: name, Offset: start, InArray: true, problem: "empty array"}}, nil
	}
	for {
		p.skipWS()
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated array")
		}
		if p.data[p.pos] == '[' {
			return nil, p.fail("nested arrays are not FHIR")
		}
		n, err := p.value(name, depth, true)
		if err != nil {
			return nil, err
		}
		if n != nil {
			n.InArray = true
		}
		out = append(out, n)
		p.skipWS()
		if p.pos >= len(p.data) {
			return nil, p.fail("unterminated array")
		}
		if p.data[p.pos] == ',' {
			p.pos++
			continue
		}
		if p.data[p.pos] == ']' {
			p.pos++
			return out, nil
		}
		return nil, p.fail("expected ',' or ']'")
	}
}

// value parses one non-array JSON value as a Node named name. A null is
// returned as nil inside arrays (aligned with a "_name" companion).
func (p *jsonParser) value(name string, depth int, inArray bool) (*Node, error) {
	if p.pos >= len(p.data) {
		return nil, p.fail("unexpected end of input")
	}
	off := p.pos
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object(name, depth)
	case c == '"':
		s, err := p.str()
		if err != nil {
			return nil, err
		}
		n := &Node{Name: name, Value: s, Kind: KindString, Offset: off}
		return n, nil
	case c == 't' || c == 'f':
		lit := "true"
		if c == 'f' {
			lit = "false"
		}
		if !bytes.HasPrefix(p.data[p.pos:], []byte(lit)) {
			return nil, p.fail("invalid literal")
		}
		p.pos += len(lit)
		return &Node{Name: name, Value: lit, Kind: KindBool, Offset: off}, nil
	case c == 'n':
		if !bytes.HasPrefix(p.data[p.pos:], []byte("null")) {
			return nil, p.fail("invalid literal")
		}
		p.pos += 4
		if inArray {
			return nil, nil
		}
		return &Node{Name: name, Offset: off, problem: "null is not allowed"}, nil
	case c == '-' || c >= '0' && c <= '9':
		s, err := p.number()
		if err != nil {
			return nil, err
		}
		return &Node{Name: name, Value: s, Kind: KindNumber, Offset: off}, nil
	case c == '[':
		return nil, p.fail("nested arrays are not FHIR")
	default:
		return nil, p.fail("unexpected character")
	}
}

func (p *jsonParser) number() (string, error) {
	start := p.pos
	d := p.data
	i := p.pos
	if i < len(d) && d[i] == '-' {
		i++
	}
	if i >= len(d) {
		return "", p.fail("invalid number")
	}
	if d[i] == '0' {
		i++
	} else if d[i] >= '1' && d[i] <= '9' {
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
	} else {
		return "", p.fail("invalid number")
	}
	if i < len(d) && d[i] == '.' {
		i++
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return "", p.fail("invalid number")
		}
	}
	if i < len(d) && (d[i] == 'e' || d[i] == 'E') {
		i++
		if i < len(d) && (d[i] == '+' || d[i] == '-') {
			i++
		}
		j := i
		for i < len(d) && d[i] >= '0' && d[i] <= '9' {
			i++
		}
		if i == j {
			return "", p.fail("invalid number")
		}
	}
	p.pos = i
	return string(d[start:i]), nil
}

// str parses a JSON string at p.pos (on the opening quote). The common case,
// a long run with no escapes (base64), is one tight loop and one copy.
func (p *jsonParser) str() (string, error) {
	d := p.data
	start := p.pos + 1
	i := start
	for {
		// Eight bytes at a time until a word may hold a quote, backslash or
		// control character; then look at that word byte by byte.
		for i+8 <= len(d) && !specialInWord(binary.LittleEndian.Uint64(d[i:])) {
			i += 8
		}
		end := min(i+8, len(d))
		for ; i < end; i++ {
			c := d[i]
			if c == '"' {
				p.pos = i + 1
				return bytesToString(d[start:i]), nil
			}
			if c == '\\' {
				return p.strSlow(start)
			}
			if c < 0x20 {
				p.pos = i
				return "", p.fail("control character in string")
			}
		}
		if i >= len(d) {
			p.pos = i
			return "", p.fail("unterminated string")
		}
	}
}

func (p *jsonParser) strSlow(start int) (string, error) {
	d := p.data
	buf := make([]byte, 0, 64)
	i := start
	for i < len(d) {
		c := d[i]
		switch {
		case c == '"':
			p.pos = i + 1
			return string(buf), nil
		case c < 0x20:
			p.pos = i
			return "", p.fail("control character in string")
		case c != '\\':
			buf = append(buf, c)
			i++
			continue
		}
		i++
		if i >= len(d) {
			break
		}
		switch d[i] {
		case '"', '\\', '/':
			buf = append(buf, d[i])
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, n := hex4(d[i+1:])
			if n < 0 {
				p.pos = i
				return "", p.fail("invalid \\u escape")
			}
			i += 4
			if r >= 0xD800 && r < 0xDC00 && i+6 < len(d) && d[i+1] == '\\' && d[i+2] == 'u' {
				if r2, n2 := hex4(d[i+3:]); n2 >= 0 && r2 >= 0xDC00 && r2 < 0xE000 {
					r = 0x10000 + (r-0xD800)<<10 + (r2 - 0xDC00)
					i += 6
				}
			}
			if r >= 0xD800 && r < 0xE000 {
				r = utf8.RuneError
			}
			buf = utf8.AppendRune(buf, r)
		default:
			p.pos = i
			return "", p.fail("invalid escape")
		}
		i++
	}
	p.pos = i
	return "", p.fail("unterminated string")
}

func hex4(b []byte) (rune, int) {
	if len(b) < 4 {
		return 0, -1
	}
	var r rune
	for _, c := range b[:4] {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		default:
			return 0, -1
		}
	}
	return r, 4
}

const (
	swarOnes = 0x0101010101010101
	swarHigh = 0x8080808080808080
)

// specialInWord reports whether any byte of w may be '"', '\\' or < 0x20
// (SWAR; false positives only cost a trip through the byte loop).
func specialInWord(w uint64) bool {
	hasZero := func(x uint64) uint64 { return (x - swarOnes) & ^x & swarHigh }
	less20 := (w - swarOnes*0x20) & ^w & swarHigh
	return less20|hasZero(w^(swarOnes*'"'))|hasZero(w^(swarOnes*'\\')) != 0
}
