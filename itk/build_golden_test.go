package itk

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// goldenCase is one message checked against testdata/golden.
type goldenCase struct {
	name  string
	build func(t *testing.T) *Message
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{"realistic", func(t *testing.T) *Message { return buildFixture(t, realisticRequest(t)) }},
		{"minimal", func(t *testing.T) *Message { return buildFixture(t, minimalRequest()) }},
	}
}

func TestBuildGolden(t *testing.T) {
	for _, gc := range goldenCases() {
		for _, f := range []Format{FormatXML, FormatJSON} {
			t.Run(gc.name+"."+string(f), func(t *testing.T) {
				var buf bytes.Buffer
				if err := gc.build(t).EncodeFormat(&buf, f); err != nil {
					t.Fatalf("encode: %v", err)
				}
				checkGolden(t, filepath.Join("testdata", "golden", gc.name+"."+string(f)), buf.Bytes())
			})
		}
	}
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden (run go test ./itk -run Golden -update): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from output (%d vs %d bytes); inspect and rerun with -update", path, len(want), len(got))
	}
}

// xmlNode is a generic parsed FHIR XML element.
type xmlNode struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Children []xmlNode  `xml:",any"`
	Text     string     `xml:",chardata"`
}

func (n *xmlNode) attr(name string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value, true
		}
	}
	return "", false
}

func parseXML(t *testing.T, data []byte) *xmlNode {
	t.Helper()
	var root xmlNode
	dec := xml.NewDecoder(bytes.NewReader(data))
	dec.Strict = true
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("XML not well-formed: %v", err)
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if cd, ok := tok.(xml.CharData); err != nil || !ok || len(bytes.TrimSpace(cd)) > 0 {
			t.Fatalf("trailing content after root element: %v %v", tok, err)
		}
	}
	if root.XMLName.Space != "http://hl7.org/fhir" || root.XMLName.Local != "Bundle" {
		t.Fatalf("root is %v, want Bundle in the FHIR namespace", root.XMLName)
	}
	return &root
}

// stu3Order is the STU3 definition order of the elements this package emits
// (DomainResource elements first). Used to check every emitted element.
var stu3Order = map[string][]string{
	"Bundle":           {"id", "meta", "implicitRules", "language", "identifier", "type", "total", "link", "entry", "signature"},
	"entry":            {"link", "fullUrl", "resource", "search", "request", "response"},
	"MessageHeader":    {"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "event", "destination", "receiver", "sender", "timestamp", "enterer", "author", "source", "responsible", "reason", "response", "focus"},
	"Composition":      {"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "status", "type", "class", "subject", "encounter", "date", "author", "title", "confidentiality", "attester", "custodian", "relatesTo", "event", "section"},
	"Patient":          {"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "active", "name", "telecom", "gender", "birthDate", "deceasedBoolean", "deceasedDateTime", "address", "maritalStatus", "multipleBirth", "photo", "contact", "animal", "communication", "generalPractitioner", "managingOrganization", "link"},
	"Practitioner":     {"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "active", "name", "telecom", "address", "gender", "birthDate", "photo", "qualification", "communication"},
	"Organization":     {"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "active", "type", "name", "alias", "telecom", "address", "partOf", "contact", "endpoint"},
	"Device":           {"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "identifier", "udi", "status", "type", "lotNumber", "manufacturer", "manufactureDate", "expirationDate", "model", "version"},
	"Binary":           {"id", "meta", "implicitRules", "language", "contentType", "securityContext", "content"},
	"OperationOutcome": {"id", "meta", "implicitRules", "language", "text", "contained", "extension", "modifierExtension", "issue"},
	"issue":            {"severity", "code", "details", "diagnostics", "location", "expression"},
	"name":             {"use", "text", "family", "given", "prefix", "suffix", "period"},
	"identifier":       {"extension", "use", "type", "system", "value", "period", "assigner"},
	"coding":           {"system", "version", "code", "display", "userSelected"},
	"valueCoding":      {"system", "version", "code", "display", "userSelected"},
	"event":            {"system", "version", "code", "display", "userSelected", "period"},
	"telecom":          {"system", "value", "use", "rank", "period"},
	"address":          {"use", "type", "text", "line", "city", "district", "state", "postalCode", "country", "period"},
	"section":          {"title", "code", "text", "mode", "orderedBy", "entry", "emptyReason", "section"},
	"relatesTo":        {"code", "targetIdentifier", "targetReference"},
	"response":         {"identifier", "code", "details"},
	"extension":        {"extension", "valueBoolean", "valueCoding", "valueReference", "valueString", "valueCodeableConcept"},
	"text":             {"status", "div"},
	"meta":             {"versionId", "lastUpdated", "profile", "security", "tag"},
}

// checkOrder walks the tree and fails on any element out of STU3 order or
// any repeated element that is not adjacent to its siblings.
func checkOrder(t *testing.T, n *xmlNode, path string) {
	t.Helper()
	order, known := stu3Order[n.XMLName.Local]
	if n.XMLName.Local == "entry" && strings.HasSuffix(path, "/section/entry") {
		order = []string{"reference", "identifier", "display"} // Composition.section.entry is a Reference
	}
	if known && len(n.Children) > 0 {
		last := -1
		for _, c := range n.Children {
			idx := indexOf(order, c.XMLName.Local)
			if idx < 0 {
				t.Errorf("%s: unexpected element %q", path, c.XMLName.Local)
				continue
			}
			if idx < last {
				t.Errorf("%s: element %q out of STU3 order", path, c.XMLName.Local)
			}
			last = idx
		}
	}
	for i := range n.Children {
		c := &n.Children[i]
		if c.XMLName.Local == "div" {
			continue
		}
		checkOrder(t, c, path+"/"+c.XMLName.Local)
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

func TestBuildXMLStructure(t *testing.T) {
	for _, gc := range goldenCases() {
		t.Run(gc.name, func(t *testing.T) {
			m := gc.build(t)
			var buf bytes.Buffer
			if err := m.EncodeFormat(&buf, FormatXML); err != nil {
				t.Fatal(err)
			}
			root := parseXML(t, buf.Bytes())
			checkOrder(t, root, "Bundle")
			checkResourcesHaveIDMetaAndFullURL(t, root)

			// Message bundle entries: MessageHeader, header Organization, document Bundle.
			got := entryResourceTypes(root)
			if want := []string{"MessageHeader", "Organization", "Bundle"}; !reflect.DeepEqual(got, want) {
				t.Fatalf("message entries %v, want %v", got, want)
			}
			doc := entryResource(root, 2)
			docTypes := entryResourceTypes(doc)
			if docTypes[0] != "Composition" {
				t.Fatalf("document bundle first entry %q, want Composition", docTypes[0])
			}
			// The section lists every Binary, primary first, in entry order.
			comp := entryResource(doc, 0)
			var sectionRefs []string
			for _, s := range children(comp, "section") {
				for _, e := range children(&s, "entry") {
					sectionRefs = append(sectionRefs, value(&e, "reference"))
				}
			}
			var binaryURLs []string
			for i, e := range children(doc, "entry") {
				if docTypes[i] == "Binary" {
					binaryURLs = append(binaryURLs, value(&e, "fullUrl"))
				}
			}
			if len(binaryURLs) == 0 || !reflect.DeepEqual(sectionRefs, binaryURLs) {
				t.Fatalf("section entries %v, want binaries %v", sectionRefs, binaryURLs)
			}
			if len(children(comp, "confidentiality")) != 0 {
				t.Fatal("Composition.confidentiality must not be sent")
			}
		})
	}
}

func checkResourcesHaveIDMetaAndFullURL(t *testing.T, bundle *xmlNode) {
	t.Helper()
	for i, e := range children(bundle, "entry") {
		res := entryResource(bundle, i)
		id := value(res, "id")
		if id == "" || len(children(res, "meta")) != 1 || value(&children(res, "meta")[0], "profile") == "" {
			t.Errorf("%s entry %d lacks id or meta.profile", res.XMLName.Local, i)
		}
		if got := value(&e, "fullUrl"); got != "urn:uuid:"+id {
			t.Errorf("%s fullUrl %q, want urn:uuid:%s", res.XMLName.Local, got, id)
		}
		if res.XMLName.Local == "Bundle" {
			checkResourcesHaveIDMetaAndFullURL(t, res)
		}
	}
}

func children(n *xmlNode, name string) []xmlNode {
	var out []xmlNode
	for _, c := range n.Children {
		if c.XMLName.Local == name {
			out = append(out, c)
		}
	}
	return out
}

// value returns the value attribute of a path of child names ("a/b/c").
func value(n *xmlNode, path string) string {
	cur := n
	for _, part := range strings.Split(path, "/") {
		cs := children(cur, part)
		if len(cs) == 0 {
			return ""
		}
		cur = &cs[0]
	}
	v, _ := cur.attr("value")
	return v
}

func entryResource(bundle *xmlNode, i int) *xmlNode {
	e := children(bundle, "entry")[i]
	res := children(&e, "resource")[0]
	return &res.Children[0]
}

func entryResourceTypes(bundle *xmlNode) []string {
	var out []string
	for i := range children(bundle, "entry") {
		out = append(out, entryResource(bundle, i).XMLName.Local)
	}
	return out
}

// TestXMLAndJSONCarryTheSameContent converts both encodings to one generic
// shape (name -> list of values) and compares them, so the two hand-written
// encoders cannot drift apart.
func TestXMLAndJSONCarryTheSameContent(t *testing.T) {
	for _, gc := range goldenCases() {
		t.Run(gc.name, func(t *testing.T) {
			var xb, jb bytes.Buffer
			if err := gc.build(t).EncodeFormat(&xb, FormatXML); err != nil {
				t.Fatal(err)
			}
			if err := gc.build(t).EncodeFormat(&jb, FormatJSON); err != nil {
				t.Fatal(err)
			}
			var fromJSON any
			if err := json.Unmarshal(jb.Bytes(), &fromJSON); err != nil {
				t.Fatalf("JSON does not parse: %v", err)
			}
			fromXML := genericFromXML(parseXML(t, xb.Bytes()), true)
			normJSON := genericFromJSON(fromJSON)
			if !reflect.DeepEqual(fromXML, normJSON) {
				a, _ := json.MarshalIndent(fromXML, "", " ")
				b, _ := json.MarshalIndent(normJSON, "", " ")
				t.Fatalf("XML and JSON differ:\nXML:  %.3000s\nJSON: %.3000s", a, b)
			}
		})
	}
}

// genericFromXML: object = map[name][]value; primitives are strings.
func genericFromXML(n *xmlNode, isResource bool) map[string][]any {
	out := map[string][]any{}
	if isResource {
		out["resourceType"] = []any{n.XMLName.Local}
	}
	if url, ok := n.attr("url"); ok {
		out["url"] = []any{url}
	}
	for i := range n.Children {
		c := &n.Children[i]
		name := c.XMLName.Local
		switch {
		case name == "div":
			out[name] = append(out[name], "xhtml")
		case name == "resource":
			out[name] = append(out[name], genericFromXML(&c.Children[0], true))
		default:
			if v, ok := c.attr("value"); ok && len(c.Children) == 0 {
				out[name] = append(out[name], v)
			} else {
				out[name] = append(out[name], genericFromXML(c, false))
			}
		}
	}
	return out
}

func genericFromJSON(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := map[string][]any{}
		for k, val := range x {
			if k == "div" {
				out[k] = []any{"xhtml"}
				continue
			}
			if arr, ok := val.([]any); ok {
				for _, item := range arr {
					out[k] = append(out[k], genericFromJSON(item))
				}
				continue
			}
			out[k] = []any{genericFromJSON(val)}
		}
		return out
	default:
		return fmt.Sprint(x)
	}
}

func TestJSONShape(t *testing.T) {
	var buf bytes.Buffer
	if err := buildFixture(t, realisticRequest(t)).EncodeFormat(&buf, FormatJSON); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(buf.Bytes(), []byte("{\n  \"resourceType\": \"Bundle\",")) {
		t.Fatalf("JSON must start with resourceType: %.60q", buf.String())
	}
	var bundle struct {
		Identifier struct{ System, Value string }
		Entry      []struct {
			FullURL  string `json:"fullUrl"`
			Resource struct {
				ResourceType string
				Extension    []struct {
					URL       string
					Extension []struct {
						URL          string
						ValueBoolean *bool `json:"valueBoolean"`
					}
				}
				Focus []struct{ Reference string }
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &bundle); err != nil {
		t.Fatal(err)
	}
	if bundle.Identifier.System != "https://tools.ietf.org/html/rfc4122" || bundle.Identifier.Value != fixedIDs().BundleIdentifier {
		t.Fatalf("bundle identifier %+v", bundle.Identifier)
	}
	header := bundle.Entry[0].Resource
	if header.ResourceType != "MessageHeader" || len(header.Focus) != 1 || header.Focus[0].Reference != bundle.Entry[2].FullURL {
		t.Fatalf("header %+v", header)
	}
	bus := header.Extension[0].Extension[0]
	if bus.URL != "BusAckRequested" || bus.ValueBoolean == nil || !*bus.ValueBoolean {
		t.Fatalf("BusAckRequested must be a JSON boolean true: %+v", bus)
	}
}
