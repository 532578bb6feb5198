package itk

import (
	"os"
	"strings"
	"testing"

	"github.com/meshgateway/gateway/itk/fhir"
)

func readExample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/examples/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func issuesWith(r *Result, sev string) []Issue {
	var out []Issue
	for _, is := range r.Outcome.Issue {
		if is.Severity == sev {
			out = append(out, is)
		}
	}
	return out
}

func itkCode(is Issue) string {
	if is.Details == nil || len(is.Details.Coding) == 0 {
		return ""
	}
	return is.Details.Coding[0].Code
}

func hasError(r *Result, path, code string) bool {
	for _, is := range r.Outcome.Issue {
		if (is.Severity == SeverityError || is.Severity == SeverityFatal) && itkCode(is) == code &&
			(path == "" && len(is.Expression) == 0 || len(is.Expression) > 0 && is.Expression[0] == path) {
			return true
		}
	}
	return false
}

// toJSON converts an XML message with the tree encoder so each rule is
// checked in both wire formats.
func toJSON(t *testing.T, xml []byte) []byte { return toJSONForBench(t, xml) }

func toJSONForBench(t testing.TB, xml []byte) []byte {
	t.Helper()
	root, _, err := fhir.Decode(xml, fhir.XML, 0)
	if err != nil {
		t.Fatalf("decode for JSON conversion: %v", err)
	}
	return fhir.ToJSON(root)
}

func TestVerbatimExamples(t *testing.T) {
	for _, tc := range []struct {
		file        string
		version     string
		wantWarning []string // expression of every warning expected (documented v1/v2 differences)
	}{
		{"v2-send-document-generic.xml", "2", nil},
		{"v2-send-document-generic.json", "2", nil},
		{"v1.5-consultation-report.xml", "1", []string{
			"Bundle.entry[0].resource.extension[0].extension[5].valueString"}},
		{"v1.5-consultation-report.json", "1", []string{
			"Bundle.entry[0].resource.extension[0].extension[5].valueString"}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			r := Validate(readExample(t, tc.file), "")
			if !r.Valid || r.InfAckCode != "20013" {
				t.Fatalf("not valid: %+v", r.Outcome.Issue)
			}
			var warned []string
			for _, is := range issuesWith(r, SeverityWarning) {
				warned = append(warned, is.Expression[0])
			}
			if strings.Join(warned, ",") != strings.Join(tc.wantWarning, ",") {
				t.Errorf("warnings at %v, want %v", warned, tc.wantWarning)
			}
			if r.Version != tc.version {
				t.Errorf("Version = %q, want %q", r.Version, tc.version)
			}
			if r.Metadata == nil || r.Metadata.WorkflowID != WorkflowSendDocument || !strings.HasPrefix(r.Metadata.To, "GPPROVIDER_") {
				t.Errorf("metadata = %+v", r.Metadata)
			}
		})
	}
}

func TestV2ExampleDerivedFields(t *testing.T) {
	r := Validate(readExample(t, "v2-send-document-generic.xml"), FormatXML)
	want := map[string]string{
		"BundleID":         r.BundleID,
		"BundleIdentifier": r.BundleIdentifier,
		"MessageHeaderID":  r.MessageHeaderID,
		"SenderReference":  r.SenderReference,
		"SourceEndpoint":   r.SourceEndpoint,
		"SenderODSCode":    r.SenderODSCode,
		"CompositionID":    r.CompositionID,
		"To":               r.Metadata.To,
		"LocalID":          r.Metadata.LocalID,
		"FileName":         r.Metadata.FileName,
		"ContentType":      r.Metadata.ContentType,
	}
	expect := map[string]string{
		"BundleID":         "send-document--generic-example",
		"BundleIdentifier": "send-document--generic-example",
		"MessageHeaderID":  "adcdf4b6-4c9d-4347-9dca-1264e1f51a4b",
		"SenderReference":  "urn:uuid:28182303-be8d-429f-a593-4bd1b4952fc5",
		"SourceEndpoint":   "SENDER_MESH_MAILBOX_ID",
		"SenderODSCode":    "FQW30",
		"CompositionID":    "28182303-be8d-429f-a593-4bd1b4952fc5",
		"To":               "GPPROVIDER_4857773456_19990815_[LAST-NAME]",
		"LocalID":          "FQW30",
		"FileName":         "send-document--generic-example.xml",
		"ContentType":      ContentTypeFHIRXML,
	}
	for k, v := range expect {
		if want[k] != v {
			t.Errorf("%s = %q, want %q", k, want[k], v)
		}
	}
	if !strings.HasPrefix(r.Metadata.Subject, "[document-title] for [first-name] [middle-name] [last-name], NHS Number: 485 777 3456") {
		t.Errorf("subject = %q", r.Metadata.Subject)
	}
}

// The example NHS numbers fail Modulus 11: reported as information with the
// 20009 a checking receiver would return, never as an error.
func TestNHSNumberCheckDigitIsInformation(t *testing.T) {
	r := Validate(readExample(t, "v2-send-document-generic.xml"), FormatXML)
	for _, is := range issuesWith(r, SeverityInformation) {
		if strings.Contains(is.Diagnostics, "Modulus 11") {
			if is.Expression[0] != "Bundle.entry[2].resource.entry[3].resource.identifier[0].value" || itkCode(is) != "20009" {
				t.Errorf("issue = %+v", is)
			}
			if strings.Contains(is.Diagnostics, "4857773456") {
				t.Error("diagnostics contain the NHS number")
			}
			return
		}
	}
	t.Fatal("no Modulus 11 information issue")
}

const (
	mh   = "Bundle.entry[0].resource"
	hExt = mh + ".extension[0]"
	doc  = "Bundle.entry[2].resource"
	comp = doc + ".entry[0].resource"
	pat  = doc + ".entry[3].resource"
	bin  = doc + ".entry[4].resource"
)

type ruleCase struct {
	name     string
	old, new string // mutation of the v2 example (first occurrence)
	path     string
	code     string
}

var ruleCases = []ruleCase{
	{"bundle type", `<type value="message" />`, `<type value="collection" />`, "Bundle.type", "20006"},
	{"bundle identifier", `<system value="https://fhir.provider.example/identifier/bundle" />
    <value value="send-document--generic-example" />`, `<system value="https://fhir.provider.example/identifier/bundle" />`, "Bundle.identifier", "20006"},
	{"first entry not MessageHeader", `<MessageHeader>`, `<MessageHeaderX>`, mh, "20006"},
	{"event code", `<code value="ITK007C" />`, `<code value="ITK006D" />`, mh + ".event.code", "10004"},
	{"event system", `<system value="https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2" />`, `<system value="https://example.org/events" />`, mh + ".event.system", "10004"},
	{"no handling extension", `Extension-ITK-MessageHandling-2`, `Extension-Other`, mh + ".extension", "10001"},
	{"BusAck false", `<extension url="BusAckRequested">
            <valueBoolean value="true" />`, `<extension url="BusAckRequested">
            <valueBoolean value="false" />`, hExt + ".extension[0].valueBoolean", "10008"},
	{"InfAck false", `<extension url="InfAckRequested">
            <valueBoolean value="true" />`, `<extension url="InfAckRequested">
            <valueBoolean value="false" />`, hExt + ".extension[1].valueBoolean", "10008"},
	{"BusAck missing", `url="BusAckRequested"`, `url="BusinessAck"`, hExt + ".extension", "10003"},
	{"InfAck not boolean", `<extension url="InfAckRequested">
            <valueBoolean value="true" />`, `<extension url="InfAckRequested">
            <valueString value="true" />`, hExt + ".extension[1]", "10002"},
	{"RecipientType code", `<code value="FI" />`, `<code value="XX" />`, hExt + ".extension[2].valueCoding.code", "10010"},
	{"RecipientType system", `https://fhir.nhs.uk/STU3/CodeSystem/ITK-RecipientType-1`, `https://example.org/rt`, hExt + ".extension[2].valueCoding.system", "10010"},
	{"MessageDefinition", `ITK-GPConnectSendDocument-MessageDefinition-1`, `ITK-Other-MessageDefinition-1`, hExt + ".extension[3].valueReference.reference", "10004"},
	{"MessageDefinition version", `ITK-GPConnectSendDocument-MessageDefinition-1" />`, `ITK-GPConnectSendDocument-MessageDefinition-1|9.9.9" />`, hExt + ".extension[3].valueReference.reference", "10005"},
	{"SenderReference too long", `<valueString value="urn:uuid:28182303-be8d-429f-a593-4bd1b4952fc5" />`, `<valueString value="` + strings.Repeat("r", 256) + `" />`, hExt + ".extension[4].valueString", "10007"},
	{"SenderReference missing", `url="SenderReference"`, `url="SenderRef"`, hExt + ".extension", "10007"},
	{"sender unresolved", `<reference value="urn:uuid:41abf8ce-2d2e-11ee-be56-0242ac120002" />`, `<reference value="urn:uuid:00000000-2d2e-11ee-be56-0242ac120002" />`, mh + ".sender.reference", "20006"},
	{"sender without ODS code", `<system value="https://fhir.nhs.uk/Id/ods-organization-code" />
          <value value="FQW30" />`, `<system value="https://example.org/org" />
          <value value="FQW30" />`, "Bundle.entry[1].resource.identifier", "20006"},
	{"focus unresolved", `<reference value="urn:uuid:2eefc87f-8a16-45a1-a666-1753237608a3" />`, `<reference value="urn:uuid:00000000-8a16-45a1-a666-1753237608a3" />`, mh + ".focus[0].reference", "20006"},
	{"header timestamp format", `<timestamp value="2023-08-15T10:40:53.3713512+01:00" />`, `<timestamp value="2023-08-15T10:40" />`, mh + ".timestamp", "20006"},
	{"header unknown element", `<source>`, `<colour value="red" /><source>`, mh + ".colour", "20006"},
	{"document bundle type", `<type value="document" />`, `<type value="collection" />`, doc + ".type", "20009"},
	{"Composition not first", `<Composition>`, `<CompositionX>`, doc + ".entry[0].resource", "20009"},
	{"Composition status", `<status value="final" />`, `<status value="preliminary" />`, comp + ".status", "20009"},
	{"Composition type not SNOMED", `<system value="http://snomed.info/sct" />
                  <code value="325871000000103" />`, `<system value="http://loinc.org" />
                  <code value="325871000000103" />`, comp + ".type.coding", "20009"},
	{"confidentiality R", `<title value="[document-title]" />`, `<title value="[document-title]" /><confidentiality value="R" />`, comp + ".confidentiality", "20009"},
	{"subject not a Patient", `<subject>
                <reference value="urn:uuid:0192624d-34ff-419a-9814-4705fadb5c56" />`, `<subject>
                <reference value="urn:uuid:d850c18b-5143-4ae6-bf5f-96f102e7d3d7" />`, comp + ".subject.reference", "20009"},
	{"section entry unresolved", `<reference value="urn:uuid:27efad31-ca2b-4a3c-9369-a897489bb96a" />`, `<reference value="urn:uuid:00000000-ca2b-4a3c-9369-a897489bb96a" />`, comp + ".section[0].entry[3].reference", "20009"},
	{"Binary not referenced", `<reference value="urn:uuid:27efad31-ca2b-4a3c-9369-a897489bb96a" />`, `<reference value="urn:uuid:0192624d-34ff-419a-9814-4705fadb5c56" />`, bin, "20009"},
	{"author unresolved", `<author>
                <reference value="urn:uuid:5d7e5ef0-dddb-4cb3-905a-d21e26eb64e6" />`, `<author>
                <reference value="urn:uuid:00000000-dddb-4cb3-905a-d21e26eb64e6" />`, comp + ".author[0].reference", "20009"},
	{"author an Organization (R4 only)", `<author>
                <reference value="urn:uuid:5d7e5ef0-dddb-4cb3-905a-d21e26eb64e6" />`, `<author>
                <reference value="urn:uuid:d850c18b-5143-4ae6-bf5f-96f102e7d3d7" />`, comp + ".author[0].reference", "20009"},
	{"document identifier without value (bdl-9)", `<value value="2eefc87f-8a16-45a1-a666-1753237608a3" />`, ``, doc + ".identifier", "20009"},
	{"section with only a title (cmp-1)", `</section>
            </Composition>`, `</section><section><title value="Empty" /></section>
            </Composition>`, comp + ".section[1]", "20009"},
	{"unsupported attachment type", `<contentType value="application/pdf" />`, `<contentType value="application/x-msdownload" />`, bin + ".contentType", "20005"},
	{"bad base64", `<content value="JVBER`, `<content value="*VBER`, bin + ".content", "20009"},
	{"no NHS number", `<system value="https://fhir.nhs.uk/Id/nhs-number" />`, `<system value="https://example.org/id" />`, pat + ".identifier", "20009"},
	{"NHS number not 10 digits", `<value value="4857773456" />`, `<value value="485777345" />`, pat + ".identifier[0].value", "20009"},
	{"no birthDate", `<birthDate value="1999-08-15" />`, ``, pat + ".birthDate", "20009"},
	{"birthDate in future", `<birthDate value="1999-08-15" />`, `<birthDate value="2999-08-15" />`, pat + ".birthDate", "20009"},
	{"birthDate partial", `<birthDate value="1999-08-15" />`, `<birthDate value="1999-08" />`, pat + ".birthDate", "20009"},
	{"no official name", `<use value="official" />`, `<use value="usual" />`, pat + ".name", "20009"},
	{"no family name", `<family value="[last-name]" />
                <given value="[first-name]" />
                <given value="[middle-name]" />
              </name>
              <gender`, `<given value="[first-name]" />
                <given value="[middle-name]" />
              </name>
              <gender`, pat + ".name[0].family", "20009"},
	{"payload unknown element", `<gender value="male" />`, `<sex value="male" />`, pat + ".sex", "20009"},
}

// mutate applies a rule case; renaming a resource (<Name> → <NameX>) also
// renames its end tag.
func mutate(s string, tc ruleCase) string {
	s = strings.Replace(s, tc.old, tc.new, 1)
	if strings.HasPrefix(tc.old, "<") && strings.HasSuffix(tc.new, "X>") {
		name := strings.Trim(tc.old, "<>")
		s = strings.Replace(s, "</"+name+">", "</"+name+"X>", 1)
	}
	return s
}

func TestValidationRules(t *testing.T) {
	base := string(readExample(t, "v2-send-document-generic.xml"))
	for _, tc := range ruleCases {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(base, tc.old) {
				t.Fatalf("mutation does not apply")
			}
			x := []byte(mutate(base, tc))
			for _, in := range []struct {
				f    Format
				data []byte
			}{{FormatXML, x}, {FormatJSON, toJSON(t, x)}} {
				r := Validate(in.data, in.f)
				if r.Valid {
					t.Fatalf("%s: still valid", in.f)
				}
				if !hasError(r, tc.path, tc.code) {
					t.Fatalf("%s: want %s at %s; got %+v", in.f, tc.code, tc.path, r.Outcome.Issue)
				}
				if r.Metadata != nil {
					t.Errorf("%s: metadata derived from an invalid message", in.f)
				}
			}
		})
	}
}

func TestEveryProblemReportedAtOnce(t *testing.T) {
	x := string(readExample(t, "v2-send-document-generic.xml"))
	picked := []ruleCase{ruleCases[3], ruleCases[6], ruleCases[23], ruleCases[30], ruleCases[35]}
	for _, tc := range picked {
		x = mutate(x, tc)
	}
	r := Validate([]byte(x), FormatXML)
	errs := issuesWith(r, SeverityError)
	if len(errs) != len(picked) {
		t.Errorf("got %d errors, want %d: %+v", len(errs), len(picked), errs)
	}
	for _, tc := range picked {
		if !hasError(r, tc.path, tc.code) {
			t.Errorf("missing %s at %s", tc.code, tc.path)
		}
	}
	// The handling-key code wins over header and payload codes.
	if r.InfAckCode != "10004" {
		t.Errorf("InfAckCode = %s, want 10004", r.InfAckCode)
	}
}

func TestUnreadableInput(t *testing.T) {
	for _, in := range []string{"", "hello", "<Bundle", `{"resourceType":`, "<!DOCTYPE x><Bundle/>"} {
		r := Validate([]byte(in), "")
		if r.Valid || r.InfAckCode != "10009" || !hasError(r, "", "10009") {
			t.Errorf("%q: %+v", in, r)
		}
	}
}

func TestNotABundle(t *testing.T) {
	r := Validate([]byte(`{"resourceType":"Patient","gender":"male"}`), FormatJSON)
	if r.Valid || !hasError(r, "Patient", "20006") {
		t.Fatalf("%+v", r.Outcome.Issue)
	}
}

func TestDiagnosticsCarryNoPatientData(t *testing.T) {
	base := string(readExample(t, "v2-send-document-generic.xml"))
	// Corrupt several patient values so their rules fire.
	x := strings.NewReplacer(`<value value="4857773456" />`, `<value value="48577734X6" />`,
		`<birthDate value="1999-08-15" />`, `<birthDate value="2999-08-15" />`).Replace(base)
	r := Validate([]byte(x), FormatXML)
	for _, is := range r.Outcome.Issue {
		for _, secret := range []string{"48577734X6", "2999-08-15", "[last-name]", "JVBER"} {
			if strings.Contains(is.Diagnostics, secret) {
				t.Errorf("diagnostics leak %q: %s", secret, is.Diagnostics)
			}
		}
	}
}

func TestDetectFormat(t *testing.T) {
	for in, want := range map[string]Format{" \n<Bundle/>": FormatXML, "\xEF\xBB\xBF{}": FormatJSON, "abc": "", "": ""} {
		if got := DetectFormat([]byte(in)); got != want {
			t.Errorf("DetectFormat(%q) = %q, want %q", in, got, want)
		}
	}
}
