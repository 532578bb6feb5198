package fhir

import (
	"bytes"
	"strconv"
)

// ToJSON writes a checked tree (after Decode/Check, which set Type and
// Repeats) as FHIR JSON: resourceType first, arrays for repeating elements,
// JSON booleans and numbers for those primitives, "_name" for primitive ids
// and extensions. Used to convert the XML examples and in tests.
func ToJSON(root *Node) []byte {
	var b bytes.Buffer
	writeResourceJSON(&b, root, "")
	b.WriteByte('\n')
	return b.Bytes()
}

func writeResourceJSON(b *bytes.Buffer, n *Node, indent string) {
	b.WriteString("{\n" + indent + "  \"resourceType\": ")
	writeJSONString(b, n.Name)
	writeMembersJSON(b, n.Children, indent+"  ", true)
	b.WriteString("\n" + indent + "}")
}

func writeMembersJSON(b *bytes.Buffer, children []*Node, indent string, comma bool) {
	var order []string
	groups := map[string][]*Node{}
	for _, c := range children {
		if _, ok := groups[c.Name]; !ok {
			order = append(order, c.Name)
		}
		groups[c.Name] = append(groups[c.Name], c)
	}
	for _, name := range order {
		g := groups[name]
		first := g[0]
		if comma {
			b.WriteString(",")
		}
		comma = true
		b.WriteString("\n" + indent)
		writeJSONString(b, name)
		b.WriteString(": ")
		repeats := first.Repeats || len(g) > 1
		if primitiveTypes[first.Type] {
			writeList(b, g, repeats, indent, func(n *Node) {
				if n.Kind == KindNone {
					b.WriteString("null")
					return
				}
				writePrimitiveJSON(b, n)
			})
			hasExtra := false
			for _, n := range g {
				if len(n.Children) > 0 {
					hasExtra = true
				}
			}
			if hasExtra {
				b.WriteString(",\n" + indent)
				writeJSONString(b, "_"+name)
				b.WriteString(": ")
				writeList(b, g, repeats, indent, func(n *Node) {
					if len(n.Children) == 0 {
						b.WriteString("null")
						return
					}
					b.WriteString("{")
					writeMembersJSON(b, n.Children, indent+"    ", false)
					b.WriteString("\n" + indent + "  }")
				})
			}
			continue
		}
		writeList(b, g, repeats, indent, func(n *Node) {
			if res := n.Resource(); first.Type == "Resource" && res != nil {
				writeResourceJSON(b, res, indent+"  ")
				return
			}
			b.WriteString("{")
			writeMembersJSON(b, n.Children, indent+"    ", false)
			b.WriteString("\n" + indent + "  }")
		})
	}
}

func writeList(b *bytes.Buffer, g []*Node, repeats bool, indent string, item func(*Node)) {
	if !repeats {
		item(g[0])
		return
	}
	b.WriteString("[")
	for i, n := range g {
		if i > 0 {
			b.WriteString(", ")
		}
		item(n)
	}
	b.WriteString("]")
}

func writePrimitiveJSON(b *bytes.Buffer, n *Node) {
	switch jsonKindFor(n.Type) {
	case KindBool:
		b.WriteString(n.Value)
	case KindNumber:
		if validDecimal(n.Value) {
			b.WriteString(n.Value)
		} else {
			writeJSONString(b, n.Value)
		}
	default:
		writeJSONString(b, n.Value)
	}
}

func writeJSONString(b *bytes.Buffer, s string) {
	b.WriteByte('"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		b.WriteString(s[start:i])
		switch c {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			b.WriteString(`\u00`)
			b.WriteString(strconv.FormatInt(int64(c)>>4, 16))
			b.WriteString(strconv.FormatInt(int64(c)&0xF, 16))
		}
		start = i + 1
	}
	b.WriteString(s[start:])
	b.WriteByte('"')
}
