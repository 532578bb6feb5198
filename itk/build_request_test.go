package itk

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestBuildRejectsInvalidRequests(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(r *SendRequest)
		want   []string // exact field paths, in order
	}{
		{"missing NHS number", func(r *SendRequest) { r.Patient.NHSNumber = "" }, []string{"patient.nhsNumber"}},
		{"sender without a name, no care organisation", func(r *SendRequest) { r.Sender.Name, r.CareSetting.Organization = " ", nil }, []string{"sender.name"}},
		{"care organisation without a name", func(r *SendRequest) { r.CareSetting.Organization.Name = "" }, []string{"careSetting.organization.name"}},
		{"NHS number bad check digit", func(r *SendRequest) { r.Patient.NHSNumber = "9434765918" }, []string{"patient.nhsNumber"}},
		{"NHS number letters", func(r *SendRequest) { r.Patient.NHSNumber = "94347659AB" }, []string{"patient.nhsNumber"}},
		{"birth date missing", func(r *SendRequest) { r.Patient.BirthDate = "" }, []string{"patient.birthDate"}},
		{"birth date format", func(r *SendRequest) { r.Patient.BirthDate = "09/01/1957" }, []string{"patient.birthDate"}},
		{"birth date in future", func(r *SendRequest) { r.Patient.BirthDate = "2026-11-25" }, []string{"patient.birthDate"}},
		{"missing family name", func(r *SendRequest) { r.Patient.Name.Family = " " }, []string{"patient.name.family"}},
		{"underscore in family name", func(r *SendRequest) { r.Patient.Name.Family = "Smith_Jones" }, []string{"patient.name.family"}},
		{"bad gender", func(r *SendRequest) { r.Patient.Gender = "M" }, []string{"patient.gender"}},
		{"missing sender ODS", func(r *SendRequest) { r.Sender.ODSCode = "" }, []string{"sender.odsCode"}},
		{"bad sender ODS", func(r *SendRequest) { r.Sender.ODSCode = "RX1 AB" }, []string{"sender.odsCode"}},
		{"missing sender mailbox", func(r *SendRequest) { r.Sender.Mailbox = "" }, []string{"sender.mailbox"}},
		{"no author", func(r *SendRequest) { r.Author = Author{} }, []string{"author"}},
		{"two authors", func(r *SendRequest) { r.Author.Device = &Device{Name: "x"} }, []string{"author"}},
		{"practitioner without family", func(r *SendRequest) { r.Author.Practitioner.Name.Family = "" }, []string{"author.practitioner.name.family"}},
		{"bad SDS user id", func(r *SendRequest) { r.Author.Practitioner.SDSUserID = "G123" }, []string{"author.practitioner.sdsUserId"}},
		{"device without name", func(r *SendRequest) { r.Author = Author{Device: &Device{}} }, []string{"author.device.name"}},
		{"care setting type not SNOMED", func(r *SendRequest) { r.CareSetting.Type.Code = "cardio" }, []string{"careSetting.type.code"}},
		{"care setting date", func(r *SendRequest) { r.CareSetting.Date = "yesterday" }, []string{"careSetting.date"}},
		{"care organisation without ODS", func(r *SendRequest) { r.CareSetting.Organization.ODSCode = "" }, []string{"careSetting.organization.odsCode"}},
		{"no documents", func(r *SendRequest) { r.Documents = nil }, []string{"documents"}},
		{"empty content", func(r *SendRequest) { r.Documents[1].Data = nil }, []string{"documents[1].data"}},
		{"empty streamed content", func(r *SendRequest) {
			r.Documents[0].Data, r.Documents[0].Reader, r.Documents[0].Size = nil, strings.NewReader(""), 0
		}, []string{"documents[0].data"}},
		{"missing title", func(r *SendRequest) { r.Documents[0].Title = "" }, []string{"documents[0].title"}},
		{"missing type", func(r *SendRequest) { r.Documents[1].Type = Code{} }, []string{"documents[1].type.code"}},
		{"missing content type", func(r *SendRequest) { r.Documents[0].ContentType = "" }, []string{"documents[0].contentType"}},
		{"unaccepted content type", func(r *SendRequest) { r.Documents[0].ContentType = "application/zip" }, []string{"documents[0].contentType"}},
		{"recipient type", func(r *SendRequest) { r.RecipientType = "CC" }, []string{"recipientType"}},
		{"recipient ODS without mailbox", func(r *SendRequest) { r.Recipient = &Recipient{ODSCode: "Y12345"} }, []string{"recipient.mailbox"}},
		{"empty recipient", func(r *SendRequest) { r.Recipient = &Recipient{} }, []string{"recipient"}},
		{"replaces not a UUID", func(r *SendRequest) { r.Replaces.DocumentID = "doc-1" }, []string{"replaces.documentId"}},
		{"sender reference too long", func(r *SendRequest) { r.SenderReference = strings.Repeat("x", 256) }, []string{"senderReference"}},
		{"format", func(r *SendRequest) { r.Format = "yaml" }, []string{"format"}},
		{"negative version", func(r *SendRequest) { r.Version = -1 }, []string{"version"}},
		{"every problem at once", func(r *SendRequest) {
			r.Patient = Patient{NHSNumber: "123"}
			r.Sender = Sender{}
			r.Documents[0].ContentType = "video/mp4"
		}, []string{"patient.nhsNumber", "patient.birthDate", "patient.name.family", "sender.odsCode", "sender.mailbox", "documents[0].contentType"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := realisticRequest(t)
			tt.mutate(req)
			_, err := Build(req, BuildOptions{IDs: fixedIDs(), Now: fixedClock})
			var reqErr *RequestError
			if !errors.As(err, &reqErr) {
				t.Fatalf("Build error = %v, want *RequestError", err)
			}
			var fields []string
			for _, p := range reqErr.Problems {
				fields = append(fields, p.Field)
				if p.Message == "" {
					t.Errorf("%s: empty message", p.Field)
				}
			}
			if !reflect.DeepEqual(fields, tt.want) {
				t.Fatalf("fields %v, want %v (%v)", fields, tt.want, err)
			}
			assertNoPatientData(t, err.Error(), req)
		})
	}
}

// assertNoPatientData fails if an error text repeats any patient value.
func assertNoPatientData(t *testing.T, text string, req *SendRequest) {
	t.Helper()
	p := req.Patient
	for _, v := range append([]string{p.NHSNumber, p.BirthDate, p.Name.Family}, p.Name.Given...) {
		if len(v) >= 3 && strings.Contains(text, v) {
			t.Fatalf("error text contains patient data %q: %s", v, text)
		}
	}
}

func TestBuildErrorMessages(t *testing.T) {
	req := realisticRequest(t)
	req.Patient.NHSNumber = "9434765918"
	_, err := Build(req, BuildOptions{Now: fixedClock})
	if err == nil || !strings.Contains(err.Error(), "patient.nhsNumber: fails the Modulus 11 check") {
		t.Fatalf("error = %v", err)
	}
}

func TestValidNHSNumber(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want bool
	}{
		{"9434765919", true},
		{"9000000009", true},
		{"4010232137", true},
		{"9434765918", false},
		{"1234567890", false}, // check digit would be 10
		{"123", false},
		{"94347659190", false},
		{"943476591A", false},
		{"abcdefghij", false},
		{"", false},
	} {
		if got := ValidNHSNumber(tt.in); got != tt.want {
			t.Errorf("ValidNHSNumber(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestGPProviderAddress(t *testing.T) {
	dob := time.Date(1967, 1, 26, 0, 0, 0, 0, time.UTC)
	if got, want := GPProviderAddress("9434765919", dob, " Smith "), "GPPROVIDER_9434765919_19670126_SMITH"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	m := buildFixture(t, realisticRequest(t))
	if got, want := m.Metadata.To, "GPPROVIDER_9434765919_19570109_O'BRIEN-SMITH"; got != want {
		t.Fatalf("To = %q, want %q", got, want)
	}
}

func TestSendMetadata(t *testing.T) {
	m := buildFixture(t, realisticRequest(t))
	want := MeshMetadata{
		WorkflowID:  "GPCONNECT_SEND_DOCUMENT",
		To:          "GPPROVIDER_9434765919_19570109_O'BRIEN-SMITH",
		Subject:     "Outpatient letter <cardiology> for Mr Richard John O'Brien-Smith, NHS Number: 943 476 5919, seen at Cardiology Outpatients & Day Unit, ODS code: RX1AB, version 2",
		LocalID:     "RX1",
		FileName:    "d12dc439-ca5c-4177-bb70-4fece88edab0.xml",
		ContentType: "application/fhir+xml",
	}
	if m.Metadata != want {
		t.Fatalf("metadata\n got %+v\nwant %+v", m.Metadata, want)
	}

	req := minimalRequest()
	req.Recipient = &Recipient{Mailbox: " X26HC006 "}
	req.Format = FormatJSON
	m = buildFixture(t, req)
	want = MeshMetadata{
		WorkflowID:  "GPCONNECT_SEND_DOCUMENT",
		To:          "X26HC006",
		Subject:     "Discharge summary for Smith, NHS Number: 900 000 0009, seen at Example Surgery, ODS code: GP0001, version 1",
		LocalID:     "GP0001",
		FileName:    "d12dc439-ca5c-4177-bb70-4fece88edab0.json",
		ContentType: "application/fhir+json",
	}
	if m.Metadata != want || m.Format != FormatJSON {
		t.Fatalf("metadata\n got %+v\nwant %+v", m.Metadata, want)
	}
	if strings.Contains(m.Metadata.FileName, req.Patient.NHSNumber) || strings.Contains(m.Metadata.LocalID, req.Patient.NHSNumber) {
		t.Fatal("file name / local id must not carry patient data")
	}
}

func TestSendSubjectLimits(t *testing.T) {
	req := realisticRequest(t)
	req.Documents[0].Title = strings.Repeat("é", 400) // 800 bytes
	s := SendSubject(req)
	if len(s) > 500 {
		t.Fatalf("subject is %d bytes", len(s))
	}
	if !strings.HasSuffix(s, "..."+" for Mr Richard John O'Brien-Smith, NHS Number: 943 476 5919, seen at Cardiology Outpatients & Day Unit, ODS code: RX1AB, version 2") {
		t.Fatalf("title must be shortened first, keeping the identifiers: %q", s)
	}
	if !utf8Valid(s) {
		t.Fatal("subject cut inside a UTF-8 character")
	}

	req.Patient.Name.Given = []string{strings.Repeat("Ä", 300)}
	req.Documents[0].Title = "Letter\r\nInjected: header"
	s = SendSubject(req)
	if len(s) > 500 || !utf8Valid(s) || strings.ContainsAny(s, "\r\n") {
		t.Fatalf("subject not header-safe: %d bytes %q", len(s), s)
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\x00") == s }

func TestBuildDefaultsAndIDs(t *testing.T) {
	req := minimalRequest()
	m, err := Build(req, BuildOptions{Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	if m.SenderReference != "urn:uuid:"+m.CompositionID {
		t.Fatalf("default SenderReference %q, want urn:uuid:<composition id>", m.SenderReference)
	}
	for _, id := range []string{m.BundleID, m.BundleIdentifier, m.MessageHeaderID, m.CompositionID, m.DocumentBundleID} {
		if len(id) != 36 {
			t.Fatalf("generated id %q is not a UUID", id)
		}
	}
	m2, _ := Build(req, BuildOptions{Now: fixedClock})
	if m2.BundleIdentifier == m.BundleIdentifier {
		t.Fatal("random ids repeat")
	}
	// A caller resending with the same identifier gets the same Bundle.identifier (20007 detection).
	m3, err := Build(req, BuildOptions{Now: fixedClock, IDs: &IDs{BundleIdentifier: m.BundleIdentifier}})
	if err != nil || m3.BundleIdentifier != m.BundleIdentifier {
		t.Fatalf("fixed BundleIdentifier not kept: %v", err)
	}
}

func TestBuildRejectsBadFixedIDs(t *testing.T) {
	for name, ids := range map[string]*IDs{
		"not a uuid": {Bundle: "bundle-1"},
		"duplicate":  {Patient: "31686b67-9f20-4644-9a54-193d2f91de11", Author: "31686b67-9f20-4644-9a54-193d2f91de11"},
		"binary":     {Binaries: []string{"x"}},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Build(minimalRequest(), BuildOptions{IDs: ids, Now: fixedClock}); err == nil {
				t.Fatal("expected an error")
			}
		})
	}
	m, err := Build(minimalRequest(), BuildOptions{IDs: &IDs{Bundle: "D12DC439-CA5C-4177-BB70-4FECE88EDAB0"}, Now: fixedClock})
	if err != nil || m.BundleID != "d12dc439-ca5c-4177-bb70-4fece88edab0" {
		t.Fatalf("upper-case UUID not canonicalised: %v", err)
	}
}
