// Package fhir reads FHIR STU3 resources from XML or JSON into one
// format-neutral element tree and checks it strictly against hand-written
// STU3 structure definitions for the resources GP Connect Send Document uses.
//
// It is hand-written rather than built on encoding/json or encoding/xml
// because a Send Document message is mostly one large base64 string: the
// scanners here validate that string in place at several hundred MB/s,
// refuse DTDs and entities (XXE-safe) and keep what each format needs for
// strict checks (JSON value kinds and arrays, XML element order).
// google/fhir/go was measured (go-service-design.md §2) but adds ~28 MB and
// does not know the NHS profiles, which we check in package itk anyway.
package fhir

import (
	"strconv"
	"strings"
)

// Format is a FHIR wire format.
type Format string

const (
	XML  Format = "xml"
	JSON Format = "json"
)

// Value kinds recorded on a Node so format rules can be checked later.
const (
	KindNone   byte = 0   // complex element, no primitive value
	KindString byte = 's' // JSON string
	KindNumber byte = 'n' // JSON number
	KindBool   byte = 'b' // JSON true/false
	KindAttr   byte = 'a' // XML value attribute
	KindXHTML  byte = 'x' // xhtml div (raw markup)
)

// Node is one FHIR element in a format-neutral tree. XML attributes (id, url)
// and JSON properties become children named the same way; a JSON primitive
// and its "_name" companion are merged into one Node; every JSON array item is
// its own Node with InArray set. A resource is a Node named by its type; the
// element that holds it ("resource", "contained", "outcome") has it as its
// only child.
type Node struct {
	Name     string
	Value    string // primitive value (unescaped); raw markup for xhtml
	Kind     byte   // KindNone for complex elements
	Children []*Node
	InArray  bool // JSON: came from an array
	FromAttr bool // XML: came from an attribute
	Offset   int  // byte offset in the input, for diagnostics

	problem       string // a format-level fault found while reading, reported by Check
	companionOnly bool   // JSON: built from a "_name" object alone (primitive with no value)

	// Filled in by Check.
	Type    string // FHIR type name ("boolean", "Coding", "Bundle.entry", a resource type)
	Path    string // FHIRPath-style path, e.g. Bundle.entry[0].resource.event.code
	Repeats bool   // the element is 0..* (a JSON array)
}

// HasValue reports whether the node carries a primitive value.
func (n *Node) HasValue() bool { return n != nil && n.Kind != KindNone }

// Child returns the first child with the given name, or nil.
func (n *Node) Child(name string) *Node {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.Name == name {
			return c
		}
	}
	return nil
}

// All returns every child with the given name, in document order.
func (n *Node) All(name string) []*Node {
	if n == nil {
		return nil
	}
	var out []*Node
	for _, c := range n.Children {
		if c.Name == name {
			out = append(out, c)
		}
	}
	return out
}

// Get follows a dotted path of child names (first match at each step).
func (n *Node) Get(path string) *Node {
	for n != nil && path != "" {
		name := path
		if i := strings.IndexByte(path, '.'); i >= 0 {
			name, path = path[:i], path[i+1:]
		} else {
			path = ""
		}
		n = n.Child(name)
	}
	return n
}

// Str returns the primitive value at a dotted path, or "".
func (n *Node) Str(path string) string {
	if c := n.Get(path); c != nil && c.Kind != KindXHTML {
		return c.Value
	}
	return ""
}

// Resource returns the resource held by a resource-holding element
// (e.g. Bundle.entry.resource), or nil.
func (n *Node) Resource() *Node {
	if n == nil || len(n.Children) == 0 {
		return nil
	}
	for _, c := range n.Children {
		if c.Name != "" && c.Name[0] >= 'A' && c.Name[0] <= 'Z' {
			return c
		}
	}
	return nil
}

// Choice returns the child for a choice element (e.g. "value" finds
// valueBoolean) and the type suffix ("Boolean"), or nil.
func (n *Node) Choice(base string) (*Node, string) {
	if n == nil {
		return nil, ""
	}
	for _, c := range n.Children {
		if len(c.Name) > len(base) && strings.HasPrefix(c.Name, base) {
			s := c.Name[len(base):]
			if s[0] >= 'A' && s[0] <= 'Z' {
				return c, s
			}
		}
	}
	return nil, ""
}

// Issue is one problem found while reading or checking a resource.
// Messages never quote element values (they may be patient data).
type Issue struct {
	Severity string // error | warning | information
	Code     string // FHIR IssueType: structure | required | value | invalid | not-supported | ...
	Path     string
	Message  string
}

// SyntaxError is returned when the input is not well-formed XML or JSON.
// Its message gives a byte offset, never input content.
type SyntaxError struct {
	Format Format
	Offset int
	Msg    string
}

func (e *SyntaxError) Error() string {
	return string(e.Format) + " syntax error at byte " + strconv.Itoa(e.Offset) + ": " + e.Msg
}
