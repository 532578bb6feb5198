package fhir

import (
	"strconv"
)

// Decode reads data in the given format and checks it against the STU3
// schema. err is non-nil only when the input is not well-formed; issues
// holds every FHIR-level problem at once. Large values (attachments) share
// memory with data: do not modify data while the tree is in use.
func Decode(data []byte, f Format, maxDepth int) (*Node, []Issue, error) {
	var root *Node
	var err error
	switch f {
	case XML:
		root, err = ParseXML(data, maxDepth)
	case JSON:
		root, err = ParseJSON(data, maxDepth)
	default:
		return nil, nil, &SyntaxError{Format: f, Msg: "unknown format"}
	}
	if err != nil {
		return nil, nil, err
	}
	return root, STU3().Check(root, f, maxDepth), nil
}

// Parse reads data without checking it (for lenient readers such as ITK3
// acknowledgement parsing). Paths are still filled in. Like Decode, large
// values share memory with data.
func Parse(data []byte, f Format, maxDepth int) (*Node, error) {
	var root *Node
	var err error
	switch f {
	case XML:
		root, err = ParseXML(data, maxDepth)
	case JSON:
		root, err = ParseJSON(data, maxDepth)
	default:
		return nil, &SyntaxError{Format: f, Msg: "unknown format"}
	}
	if err != nil {
		return nil, err
	}
	STU3().Check(root, f, maxDepth)
	return root, nil
}

type checker struct {
	schema   *Schema
	format   Format
	maxDepth int
	issues   []Issue
}

// Check validates a tree read by ParseXML/ParseJSON, sets Path and Type on
// every node it can place, and returns every problem found.
func (s *Schema) Check(root *Node, f Format, maxDepth int) []Issue {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	c := &checker{schema: s, format: f, maxDepth: maxDepth}
	c.resource(root, root.Name)
	return c.issues
}

func (c *checker) add(severity, code, path, msg string) {
	c.issues = append(c.issues, Issue{Severity: severity, Code: code, Path: path, Message: msg})
}

// safeName quotes an element name from the input only when it looks like one
// (names are structure, not patient data, but input is untrusted).
func safeName(s string) string {
	if len(s) > 64 {
		return "(long name)"
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) || s[i] >= 0x80 {
			return "(invalid name)"
		}
	}
	return s
}

func (c *checker) resource(n *Node, path string) {
	n.Path, n.Type = path, n.Name
	if n.problem != "" {
		c.add("error", "structure", path, n.problem)
	}
	t := c.schema.types[n.Name]
	if t == nil || !t.resource {
		c.add("warning", "not-supported", path, "resource type "+safeName(n.Name)+" is not checked")
		c.setPaths(n, path)
		return
	}
	c.complex(n, t, path)
}

// setPaths fills Path on an unchecked subtree so callers can still report.
func (c *checker) setPaths(n *Node, path string) {
	total := map[string]int{}
	for _, ch := range n.Children {
		total[ch.Name]++
	}
	seen := map[string]int{}
	for _, ch := range n.Children {
		p := path + "." + ch.Name
		if ch.InArray || total[ch.Name] > 1 {
			p += "[" + strconv.Itoa(seen[ch.Name]) + "]"
			seen[ch.Name]++
		}
		ch.Path = p
		if r := ch.Resource(); r != nil && len(ch.Children) == 1 && ch.Kind == KindNone {
			r.Path, r.Type = p, r.Name
			c.setPaths(r, p)
			continue
		}
		c.setPaths(ch, p)
	}
}

func (c *checker) complex(n *Node, t *typeDef, path string) {
	if n.Kind != KindNone {
		c.add("error", "structure", path, "element of type "+t.name+" must not have a value")
	}
	if len(n.Children) == 0 && !t.resource {
		c.add("error", "structure", path, "element has no content (FHIR ele-1)")
	}
	counts := make([]int, len(t.elems))
	lastOrder := -1
	orderReported := false
	for _, ch := range n.Children {
		d, ty := t.lookup(ch.Name)
		if d == nil {
			ch.Path = path + "." + ch.Name
			c.add("error", "structure", path+"."+safeName(ch.Name), "unknown element '"+safeName(ch.Name)+"' in "+t.name)
			c.setPaths(ch, ch.Path)
			continue
		}
		idx := counts[d.order]
		counts[d.order]++
		cp := path + "." + ch.Name
		if d.max != 1 {
			cp += "[" + strconv.Itoa(idx) + "]"
		}
		ch.Path, ch.Type, ch.Repeats = cp, ty, d.max != 1
		if c.format == JSON {
			switch {
			case d.max != 1 && !ch.InArray:
				c.add("error", "structure", cp, "'"+ch.Name+"' repeats (0..*) and must be a JSON array")
			case d.max == 1 && ch.InArray:
				c.add("error", "structure", cp, "'"+ch.Name+"' is 0..1 or 1..1 and must not be a JSON array")
			}
		} else {
			switch {
			case d.attr && !ch.FromAttr:
				c.add("error", "structure", cp, "'"+ch.Name+"' must be an XML attribute here")
			case !d.attr && ch.FromAttr:
				c.add("error", "structure", cp, "'"+ch.Name+"' must be an element, not an attribute, here")
			}
			if ch.FromAttr {
				// Attributes have no element order.
			} else if d.order < lastOrder && !orderReported {
				c.add("information", "structure", cp, "element '"+ch.Name+"' is out of the STU3 definition order (FHIR XML expects definition order)")
				orderReported = true
			}
			if !ch.FromAttr && d.order > lastOrder {
				lastOrder = d.order
			}
		}
		c.element(ch, ty, cp)
	}
	for _, d := range t.elems {
		k := counts[d.order]
		name := d.name
		if d.choice {
			name += "[x]"
		}
		if k < d.min {
			c.add("error", "required", path+"."+name, "required element '"+name+"' is missing in "+t.name)
		}
		if d.max >= 0 && k > d.max {
			c.add("error", "structure", path+"."+name, "'"+name+"' appears "+strconv.Itoa(k)+" times; at most "+strconv.Itoa(d.max)+" allowed")
		}
	}
	if t.name == "Extension" {
		v, _ := n.Choice("value")
		if (v != nil) == (n.Child("extension") != nil) {
			c.add("error", "invariant", path, "an extension must have either a value or nested extensions, not both or neither (FHIR ext-1)")
		}
	}
}

func (c *checker) element(n *Node, ty, path string) {
	if n.problem != "" {
		c.add("error", "structure", path, n.problem)
	}
	if ty == "Resource" {
		res := n.Resource()
		if n.Kind != KindNone || len(n.Children) != 1 || res == nil {
			c.add("error", "structure", path, "must contain exactly one resource")
			c.setPaths(n, path)
			return
		}
		c.resource(res, path)
		return
	}
	if primitiveTypes[ty] {
		c.primitive(n, ty, path)
		return
	}
	t := c.schema.types[ty]
	if t == nil {
		c.add("error", "not-supported", path, "type "+ty+" is not known")
		return
	}
	c.complex(n, t, path)
}

func jsonKindFor(ty string) byte {
	switch ty {
	case "boolean":
		return KindBool
	case "integer", "decimal", "unsignedInt", "positiveInt":
		return KindNumber
	}
	return KindString
}

func (c *checker) primitive(n *Node, ty, path string) {
	nExt := 0
	for _, ch := range n.Children {
		switch ch.Name {
		case "id":
			ch.Path, ch.Type = path+".id", "string"
			if c.format == XML && !ch.FromAttr {
				c.add("error", "structure", ch.Path, "'id' must be an XML attribute here")
			}
			if ch.Kind == KindNone || ch.Value == "" || (c.format == JSON && ch.Kind != KindString) {
				c.add("error", "value", ch.Path, "element id must be a non-empty string")
			}
		case "extension":
			ch.Path, ch.Type, ch.Repeats = path+".extension["+strconv.Itoa(nExt)+"]", "Extension", true
			nExt++
			if c.format == JSON && !ch.InArray {
				c.add("error", "structure", ch.Path, "'extension' must be a JSON array")
			}
			c.element(ch, "Extension", ch.Path)
		default:
			ch.Path = path + "." + ch.Name
			c.add("error", "structure", path+"."+safeName(ch.Name), "unknown element '"+safeName(ch.Name)+"' in a "+ty+" value")
		}
	}
	if n.Kind == KindNone {
		switch {
		case c.format == JSON && !n.companionOnly:
			c.add("error", "structure", path, "a "+ty+" must be a JSON "+kindName(jsonKindFor(ty))+", not an object")
		case nExt == 0:
			c.add("error", "value", path, "a "+ty+" element must have a value or extensions")
		}
		return
	}
	switch c.format {
	case JSON:
		if want := jsonKindFor(ty); n.Kind != want {
			c.add("error", "value", path, "a "+ty+" must be a JSON "+kindName(want)+", not a "+kindName(n.Kind))
			return
		}
		if ty == "xhtml" {
			if !CheckXHTML(n.Value, c.maxDepth) {
				c.add("error", "value", path, "narrative div must be one well-formed xhtml div in the xhtml namespace")
			}
			return
		}
	case XML:
		if ty == "xhtml" {
			if n.Kind != KindXHTML {
				c.add("error", "value", path, "narrative div must be an xhtml element in the xhtml namespace")
			}
			return
		}
		if n.Kind == KindXHTML {
			c.add("error", "structure", path, "xhtml is only allowed in Narrative.div")
			return
		}
	}
	if msg := checkPrimitive(ty, n.Value); msg != "" {
		c.add("error", "value", path, msg)
	}
}

func kindName(k byte) string {
	switch k {
	case KindBool:
		return "boolean (true/false, unquoted)"
	case KindNumber:
		return "number"
	case KindString:
		return "string"
	}
	return "value"
}
