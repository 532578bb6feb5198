package fhir

import (
	"errors"
	"os"
	"strings"
	"testing"
)

const patientXML = `<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment before the root -->
<Patient xmlns="http://hl7.org/fhir">
  <id value="pat-1"/>
  <text>
    <status value="generated"/>
    <div xmlns="http://www.w3.org/1999/xhtml"><p>Patient &amp; <b>note</b><![CDATA[ <raw> ]]></p></div>
  </text>
  <identifier>
    <system value="https://fhir.nhs.uk/Id/nhs-number"/>
    <value value="9434765919"/>
  </identifier>
  <active value="true"/>
  <name>
    <use value="official"/>
    <family value="Smith"/>
    <given value="Anne"/>
  </name>
  <birthDate value="1980-02-29">
    <extension url="http://example.org/ext">
      <valueDateTime value="1980-02-29T10:00:00Z"/>
    </extension>
  </birthDate>
</Patient>`

const patientJSON = `{
  "resourceType": "Patient",
  "id": "pat-1",
  "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\"><p>Patient</p></div>"},
  "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": "9434765919"}],
  "active": true,
  "name": [{"use": "official", "family": "Smith", "given": ["Anne", "Marie"], "_given": [null, {"extension": [{"url": "http://example.org/x", "valueBoolean": true}]}]}],
  "birthDate": "1980-02-29",
  "_birthDate": {"extension": [{"url": "http://example.org/ext", "valueDateTime": "1980-02-29T10:00:00Z"}]},
  "multipleBirthInteger": 2
}`

func errorsOf(issues []Issue) []Issue {
	var out []Issue
	for _, is := range issues {
		if is.Severity == "error" {
			out = append(out, is)
		}
	}
	return out
}

func TestValidResourcesAreClean(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Format
		data string
	}{{"xml", XML, patientXML}, {"json", JSON, patientJSON}} {
		t.Run(tc.name, func(t *testing.T) {
			root, issues, err := Decode([]byte(tc.data), tc.f, 0)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if len(issues) != 0 {
				t.Fatalf("issues on a valid Patient: %+v", issues)
			}
			if got := root.Str("birthDate"); got != "1980-02-29" {
				t.Errorf("birthDate = %q", got)
			}
			bd := root.Child("birthDate")
			if bd.Path != "Patient.birthDate" || bd.Type != "date" || bd.Child("extension") == nil {
				t.Errorf("birthDate node = %+v", bd)
			}
			if fam := root.Get("name.family"); fam.Path != "Patient.name[0].family" {
				t.Errorf("family path = %q", fam.Path)
			}
		})
	}
}

// One strict STU3 fault per case: the exact path and issue type.
func TestStrictSTU3(t *testing.T) {
	cases := []struct {
		name, path, code string
		f                Format
		data             string
	}{
		{"xml unknown element", "Patient.colour", "structure", XML,
			`<Patient xmlns="http://hl7.org/fhir"><colour value="red"/></Patient>`},
		{"json unknown element", "Patient.colour", "structure", JSON,
			`{"resourceType":"Patient","colour":"red"}`},
		{"bad date", "Patient.birthDate", "value", XML,
			`<Patient xmlns="http://hl7.org/fhir"><birthDate value="1980-02-30"/></Patient>`},
		{"bad date format json", "Patient.birthDate", "value", JSON,
			`{"resourceType":"Patient","birthDate":"09/01/1957"}`},
		{"dateTime without timezone", "Patient.deceasedDateTime", "value", JSON,
			`{"resourceType":"Patient","deceasedDateTime":"2020-01-01T10:00:00"}`},
		{"bad id", "Patient.id", "value", XML,
			`<Patient xmlns="http://hl7.org/fhir"><id value="has space"/><active value="true"/></Patient>`},
		{"bad base64", "Binary.content", "value", XML,
			`<Binary xmlns="http://hl7.org/fhir"><contentType value="application/pdf"/><content value="JVBER!0x"/></Binary>`},
		{"base64 bad padding", "Binary.content", "value", JSON,
			`{"resourceType":"Binary","contentType":"application/pdf","content":"JVBERi0=="}`},
		{"string true for boolean", "Patient.active", "value", JSON,
			`{"resourceType":"Patient","active":"true"}`},
		{"boolean literal in xml", "Patient.active", "value", XML,
			`<Patient xmlns="http://hl7.org/fhir"><active value="TRUE"/></Patient>`},
		{"array for 0..1", "Patient.birthDate", "structure", JSON,
			`{"resourceType":"Patient","birthDate":["1980-01-01"]}`},
		{"object for 0..*", "Patient.identifier[0]", "structure", JSON,
			`{"resourceType":"Patient","identifier":{"value":"x"}}`},
		{"missing 1..1", "Bundle.type", "required", XML,
			`<Bundle xmlns="http://hl7.org/fhir"><id value="b1"/></Bundle>`},
		{"max 1 exceeded", "Patient.gender", "structure", XML,
			`<Patient xmlns="http://hl7.org/fhir"><gender value="male"/><gender value="female"/></Patient>`},
		{"wrong namespace", "Patient", "structure", XML,
			`<Patient xmlns="http://hl7.org/fhir/wrong"><active value="true"/></Patient>`},
		{"unknown attribute", "Patient.gender", "structure", XML,
			`<Patient xmlns="http://hl7.org/fhir"><gender value="male" lang="en"/></Patient>`},
		{"no namespace", "Patient", "structure", XML,
			`<Patient><active value="true"/></Patient>`},
		{"integer out of range", "Patient.multipleBirthInteger", "value", JSON,
			`{"resourceType":"Patient","multipleBirthInteger":3000000000}`},
		{"integer as string", "Patient.multipleBirthInteger", "value", JSON,
			`{"resourceType":"Patient","multipleBirthInteger":"2"}`},
		{"code with trailing space", "Patient.gender", "value", XML,
			`<Patient xmlns="http://hl7.org/fhir"><gender value="male "/></Patient>`},
		{"uri with space", "Patient.identifier[0].system", "value", XML,
			`<Patient xmlns="http://hl7.org/fhir"><identifier><system value="http://a b"/></identifier></Patient>`},
		{"instant without seconds", "MessageHeader.timestamp", "value", XML,
			`<MessageHeader xmlns="http://hl7.org/fhir"><event><code value="x"/></event><timestamp value="2020-01-01T10:00Z"/><source><endpoint value="X"/></source></MessageHeader>`},
		{"choice type not allowed", "Patient.deceasedString", "structure", JSON,
			`{"resourceType":"Patient","deceasedString":"yes"}`},
		{"text content in xml", "Patient.gender", "structure", XML,
			`<Patient xmlns="http://hl7.org/fhir"><gender value="male">oops</gender></Patient>`},
		{"value on complex element", "Patient.name[0]", "structure", XML,
			`<Patient xmlns="http://hl7.org/fhir"><name value="x"><family value="A"/></name></Patient>`},
		{"empty element", "Patient.name[0]", "structure", XML,
			`<Patient xmlns="http://hl7.org/fhir"><name/></Patient>`},
		{"empty string", "Patient.gender", "value", JSON,
			`{"resourceType":"Patient","gender":""}`},
		{"null", "Patient.gender", "structure", JSON,
			`{"resourceType":"Patient","gender":null}`},
		{"misaligned _given", "Patient.name[0].given[0]", "structure", JSON,
			`{"resourceType":"Patient","name":[{"given":["a","b"],"_given":[null]}]}`},
		{"extension value and children", "Patient.extension[0]", "invariant", XML,
			`<Patient xmlns="http://hl7.org/fhir"><extension url="http://x"><extension url="a"><valueString value="v"/></extension><valueString value="v"/></extension></Patient>`},
		{"extension without url", "Patient.extension[0].url", "required", JSON,
			`{"resourceType":"Patient","extension":[{"valueString":"v"}]}`},
		{"url as element in xml", "Patient.extension[0].url", "structure", XML,
			`<Patient xmlns="http://hl7.org/fhir"><extension><url value="http://x"/><valueString value="v"/></extension></Patient>`},
		{"narrative div not xhtml ns", "Patient.text.div", "value", JSON,
			`{"resourceType":"Patient","text":{"status":"generated","div":"<div><p>x</p></div>"}}`},
		{"duplicate json property", "Patient", "structure", JSON,
			`{"resourceType":"Patient","gender":"male","gender":"female"}`},
		{"nested resource path", "Bundle.entry[0].resource.birthDate", "value", JSON,
			`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient","birthDate":"1980-13-01"}}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, issues, err := Decode([]byte(tc.data), tc.f, 0)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			for _, is := range errorsOf(issues) {
				if is.Path == tc.path && is.Code == tc.code {
					return
				}
			}
			t.Fatalf("want error %s at %s; got %+v", tc.code, tc.path, issues)
		})
	}
}

func TestUnreadableAndUnsafeInput(t *testing.T) {
	cases := []struct {
		name string
		f    Format
		data string
	}{
		{"doctype", XML, `<?xml version="1.0"?><!DOCTYPE Patient [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><Patient xmlns="http://hl7.org/fhir"><gender value="&xxe;"/></Patient>`},
		{"external entity reference", XML, `<Patient xmlns="http://hl7.org/fhir"><gender value="&xxe;"/></Patient>`},
		{"entity in narrative", XML, `<Patient xmlns="http://hl7.org/fhir"><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml">&nbsp;</div></text></Patient>`},
		{"mismatched tags", XML, `<Patient xmlns="http://hl7.org/fhir"><gender value="male"></Patient>`},
		{"not a resource", JSON, `{"gender":"male"}`},
		{"trailing garbage", JSON, `{"resourceType":"Patient"} x`},
		{"bad utf8", JSON, "{\"resourceType\":\"Patient\",\"gender\":\"\xff\"}"},
		{"truncated", JSON, `{"resourceType":"Patient","gender":"ma`},
		{"too deep", JSON, `{"resourceType":"Patient","name":[` + strings.Repeat(`{"extension":[`, 80) + `]}]}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Decode([]byte(tc.data), tc.f, 0)
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("want SyntaxError, got %v", err)
			}
			if strings.Contains(err.Error(), "passwd") || strings.Contains(err.Error(), "male") {
				t.Errorf("error leaks input: %v", err)
			}
		})
	}
}

func TestXSIAttributesIgnored(t *testing.T) {
	_, issues, err := Decode([]byte(`<Patient xmlns="http://hl7.org/fhir" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:schemaLocation="http://hl7.org/fhir patient.xsd"><active value="true"/></Patient>`), XML, 0)
	if err != nil || len(issues) != 0 {
		t.Fatalf("err %v issues %+v", err, issues)
	}
}

func TestUnknownResourceIsWarningNotError(t *testing.T) {
	_, issues, err := Decode([]byte(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Questionnaire","status":"draft"}}]}`), JSON, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(issues) != 1 || issues[0].Severity != "warning" || issues[0].Code != "not-supported" || issues[0].Path != "Bundle.entry[0].resource" {
		t.Fatalf("issues = %+v", issues)
	}
}

func TestXMLOrderIsInformation(t *testing.T) {
	_, issues, err := Decode([]byte(`<Patient xmlns="http://hl7.org/fhir"><active value="true"/><identifier><value value="1"/></identifier></Patient>`), XML, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(issues) != 1 || issues[0].Severity != "information" || issues[0].Path != "Patient.identifier[0]" {
		t.Fatalf("issues = %+v", issues)
	}
}

func TestPrimitiveFormats(t *testing.T) {
	cases := []struct {
		ty, v string
		ok    bool
	}{
		{"date", "2024", true}, {"date", "2024-02", true}, {"date", "2024-02-29", true}, {"date", "2023-02-29", false},
		{"date", "2024-2-1", false}, {"dateTime", "2024-01-01T10:00:00+01:00", true}, {"dateTime", "2024-01-01T10:00:00", false},
		{"dateTime", "2024-01-01T25:00:00Z", false}, {"instant", "2023-08-15T10:40:53.3713512+01:00", true}, {"instant", "2023-08-15", false},
		{"id", strings.Repeat("a", 64), true}, {"id", strings.Repeat("a", 65), false}, {"id", "a_b", false},
		{"code", "a b", true}, {"code", " a", false}, {"code", "a  b", false},
		{"boolean", "true", true}, {"boolean", "yes", false},
		{"integer", "-5", true}, {"integer", "05", false}, {"positiveInt", "0", false}, {"unsignedInt", "0", true},
		{"decimal", "1.50", true}, {"decimal", "1.", false}, {"decimal", "01", false},
		{"base64Binary", "SGVsbG8=", true}, {"base64Binary", "SGVs\nbG8=", true}, {"base64Binary", "SGVsbG8", false},
		{"base64Binary", "SGV=bG8=", false}, {"base64Binary", "SGVsbG8h", true}, {"base64Binary", "SGVsbA==", true},
		{"uri", "urn:uuid:1", true}, {"oid", "urn:oid:1.2.3", true}, {"oid", "urn:oid:1.02", false},
		{"time", "10:00:00", true}, {"time", "10:00", false}, {"string", "  ", false},
	}
	for _, tc := range cases {
		if got := checkPrimitive(tc.ty, tc.v) == ""; got != tc.ok {
			t.Errorf("%s %q: valid=%v, want %v (%s)", tc.ty, tc.v, got, tc.ok, checkPrimitive(tc.ty, tc.v))
		}
	}
}

// The committed JSON examples are the XML examples converted by ToJSON.
func TestExamplesRoundTripToJSON(t *testing.T) {
	for _, name := range []string{"v2-send-document-generic", "v1.5-consultation-report"} {
		x, err := os.ReadFile("../testdata/examples/" + name + ".xml")
		if err != nil {
			t.Fatal(err)
		}
		j, err := os.ReadFile("../testdata/examples/" + name + ".json")
		if err != nil {
			t.Fatal(err)
		}
		rx, _, err := Decode(x, XML, 0)
		if err != nil {
			t.Fatal(err)
		}
		rj, issues, err := Decode(j, JSON, 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(issues) != 0 {
			t.Errorf("%s.json: %+v", name, issues)
		}
		if a, b := string(ToJSON(rx)), string(ToJSON(rj)); a != b {
			t.Errorf("%s: XML and JSON trees differ", name)
		}
	}
}
