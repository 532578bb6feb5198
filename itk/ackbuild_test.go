package itk

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func fixedAckRequest(code, diagnostics string) AckRequest {
	return AckRequest{
		Code:             code,
		Diagnostics:      diagnostics,
		RespondsTo:       "ea7221b8-3cc0-4b11-bc95-585b056b5428",
		SenderReference:  "846ebe66-5ff8-4499-bc57-a112d3d0daa3",
		SourceEndpoint:   "MESHGP0001",
		ResponderODSCode: "GP0001",
		ResponderName:    "Example Surgery",
		Now:              func() time.Time { return time.Date(2026, 11, 24, 11, 0, 0, 0, time.UTC) },
		IDs: &AckIDs{
			Bundle:           "4f8c2a9e-1b7d-4e3a-9c6f-0d2e8b1a5c73",
			BundleIdentifier: "9a1e7c3b-5d2f-4b8a-a6e4-3c0f1d9b7e25",
			MessageHeader:    "2c7e9a1f-8b3d-4f6e-b0a5-7d1c3e9f2b48",
			Organization:     "6b3d1f8e-0a7c-4e2b-9f5d-1e8a4c6b2d90",
			OperationOutcome: "8e5a2c7d-3f1b-4a9e-8d6c-5b0e2f7a1c34",
		},
	}
}

func TestBuildAckMapping(t *testing.T) {
	tests := []struct {
		code, diagnostics          string
		severity, issue, response  string
		kind                       AckKind
		positive                   bool
		wantDiagnostics, wantDispl string
	}{
		{"20013", "", "information", "informational", "ok", AckInfrastructure, true, "", "Success"},
		{"30001", "", "information", "informational", "ok", AckBusiness, true, "", "Patient known here"},
		{"30002", "", "fatal", "not-found", "fatal-error", AckBusiness, false, "Patient not known here", "Patient not known here"},
		{"30003", "", "fatal", "business-rule", "fatal-error", AckBusiness, false, "Patient no longer at this clinical setting", "Patient no longer at this clinical setting"},
		{"20009", "Composition.confidentiality R is not accepted", "fatal", "invalid", "fatal-error", AckInfrastructure, false, "Composition.confidentiality R is not accepted", "Payload validation failure"},
		{"10008", "InfAckRequested must be true", "fatal", "processing", "fatal-error", AckInfrastructure, false, "InfAckRequested must be true", "Handling Specification Business Rule Error"},
	}
	for _, tt := range tests {
		for _, f := range []Format{FormatXML, FormatJSON} {
			t.Run(tt.code+"."+string(f), func(t *testing.T) {
				var buf bytes.Buffer
				ack, err := BuildAck(fixedAckRequest(tt.code, tt.diagnostics), f, &buf)
				if err != nil {
					t.Fatal(err)
				}
				if ack.Kind != tt.kind || ack.Positive != tt.positive || ack.ResponseCode != tt.response || ack.Display != tt.wantDispl || ack.Format != f {
					t.Fatalf("ack %+v", ack)
				}
				var wantDiag []string
				if tt.wantDiagnostics != "" {
					wantDiag = []string{tt.wantDiagnostics}
				}
				if !reflect.DeepEqual(ack.Diagnostics, wantDiag) {
					t.Fatalf("diagnostics %q, want %q", ack.Diagnostics, wantDiag)
				}
				got := ackFieldsFromWire(t, f, buf.Bytes())
				want := ackWire{
					Event: "ITK008M", ResponseID: "ea7221b8-3cc0-4b11-bc95-585b056b5428", ResponseCode: tt.response,
					Severity: tt.severity, IssueCode: tt.issue, DetailSystem: SystemResponseCodes, DetailCode: tt.code,
					Diagnostics: tt.wantDiagnostics, BusAck: "false", InfAck: "false", Definition: ResponseDefinitionURL,
					SenderReference: "846ebe66-5ff8-4499-bc57-a112d3d0daa3", Endpoint: "MESHGP0001",
					Focus: "urn:uuid:8e5a2c7d-3f1b-4a9e-8d6c-5b0e2f7a1c34", Details: "urn:uuid:8e5a2c7d-3f1b-4a9e-8d6c-5b0e2f7a1c34",
					OutcomeProfile: "https://fhir.nhs.uk/STU3/StructureDefinition/ITK-Response-OperationOutcome-1",
				}
				if got != want {
					t.Fatalf("wire\n got %+v\nwant %+v", got, want)
				}
			})
		}
	}
}

// ackWire is what a receiver reads back from a response message.
type ackWire struct {
	Event, ResponseID, ResponseCode, Severity, IssueCode, DetailSystem, DetailCode, Diagnostics string
	BusAck, InfAck, Definition, SenderReference, Endpoint, Focus, Details, OutcomeProfile       string
}

// ackFieldsFromWire reads the fields from XML via the generic tree; for
// JSON it converts to the same generic shape (see TestXMLAndJSONCarryTheSameContent).
func ackFieldsFromWire(t *testing.T, f Format, data []byte) ackWire {
	t.Helper()
	var root map[string][]any
	if f == FormatXML {
		root = genericFromXML(parseXML(t, data), true)
	} else {
		var v any
		if err := json.Unmarshal(data, &v); err != nil {
			t.Fatalf("JSON: %v", err)
		}
		root = genericFromJSON(v).(map[string][]any)
	}
	get := func(m map[string][]any, path ...string) any {
		var cur any = m
		for _, p := range path {
			obj, ok := cur.(map[string][]any)
			if !ok || len(obj[p]) == 0 {
				return nil
			}
			cur = obj[p][0]
		}
		return cur
	}
	str := func(v any) string { s, _ := v.(string); return s }
	entries := root["entry"]
	if len(entries) != 3 {
		t.Fatalf("response bundle has %d entries, want 3", len(entries))
	}
	header := get(entries[0].(map[string][]any), "resource").(map[string][]any)
	outcome := get(entries[2].(map[string][]any), "resource").(map[string][]any)
	if str(get(header, "resourceType")) != "MessageHeader" || str(get(outcome, "resourceType")) != "OperationOutcome" ||
		str(get(get(entries[1].(map[string][]any), "resource").(map[string][]any), "resourceType")) != "Organization" {
		t.Fatal("response entries must be MessageHeader, Organization, OperationOutcome")
	}
	w := ackWire{
		Event:          str(get(header, "event", "code")),
		ResponseID:     str(get(header, "response", "identifier")),
		ResponseCode:   str(get(header, "response", "code")),
		Details:        str(get(header, "response", "details", "reference")),
		Endpoint:       str(get(header, "source", "endpoint")),
		Focus:          str(get(header, "focus", "reference")),
		Severity:       str(get(outcome, "issue", "severity")),
		IssueCode:      str(get(outcome, "issue", "code")),
		DetailSystem:   str(get(outcome, "issue", "details", "coding", "system")),
		DetailCode:     str(get(outcome, "issue", "details", "coding", "code")),
		Diagnostics:    str(get(outcome, "issue", "diagnostics")),
		OutcomeProfile: str(get(outcome, "meta", "profile")),
	}
	handling := get(header, "extension").(map[string][]any)
	if str(get(handling, "url")) != ExtMessageHandling {
		t.Fatalf("first header extension is not the handling extension")
	}
	for _, sub := range handling["extension"] {
		s := sub.(map[string][]any)
		switch str(get(s, "url")) {
		case "BusAckRequested":
			w.BusAck = str(get(s, "valueBoolean"))
		case "InfAckRequested":
			w.InfAck = str(get(s, "valueBoolean"))
		case "MessageDefinition":
			w.Definition = str(get(s, "valueReference", "reference"))
		case "SenderReference":
			w.SenderReference = str(get(s, "valueString"))
		}
	}
	return w
}

func TestBuildAckStructure(t *testing.T) {
	var buf bytes.Buffer
	if _, err := BuildAck(fixedAckRequest("20009", "Binary.contentType missing"), FormatXML, &buf); err != nil {
		t.Fatal(err)
	}
	root := parseXML(t, buf.Bytes())
	checkOrder(t, root, "Bundle")
	checkResourcesHaveIDMetaAndFullURL(t, root)
}

func TestBuildAckGolden(t *testing.T) {
	for _, tc := range []struct {
		code, diagnostics string
		f                 Format
	}{
		{"20013", "", FormatXML},
		{"30001", "", FormatJSON},
		{"20009", "Composition.confidentiality R is not accepted", FormatXML},
	} {
		var buf bytes.Buffer
		if _, err := BuildAck(fixedAckRequest(tc.code, tc.diagnostics), tc.f, &buf); err != nil {
			t.Fatal(err)
		}
		checkGolden(t, filepath.Join("testdata", "golden", "ack-"+tc.code+"."+string(tc.f)), buf.Bytes())
	}
}

func TestBuildAckErrors(t *testing.T) {
	for name, mutate := range map[string]func(*AckRequest){
		"unknown code":    func(r *AckRequest) { r.Code = "99999" },
		"no endpoint":     func(r *AckRequest) { r.SourceEndpoint = "" },
		"no ODS code":     func(r *AckRequest) { r.ResponderODSCode = "" },
		"long sender ref": func(r *AckRequest) { r.SenderReference = strings.Repeat("r", 256) },
		"responds to URN": func(r *AckRequest) { r.RespondsTo = "urn:uuid:ea7221b8-3cc0-4b11-bc95-585b056b5428" },
		"bad fixed id":    func(r *AckRequest) { r.IDs.Bundle = "bundle" },
	} {
		t.Run(name, func(t *testing.T) {
			req := fixedAckRequest("20013", "")
			mutate(&req)
			var buf bytes.Buffer
			if _, err := BuildAck(req, FormatXML, &buf); err == nil {
				t.Fatal("expected an error")
			}
			if buf.Len() != 0 {
				t.Fatal("nothing may be written on error")
			}
		})
	}
	if _, err := BuildAck(fixedAckRequest("20013", ""), "yaml", &bytes.Buffer{}); err == nil {
		t.Fatal("unknown format accepted")
	}
}

func TestBuildAckUnreadableOriginal(t *testing.T) {
	req := fixedAckRequest("10009", "")
	req.RespondsTo, req.SenderReference = "", ""
	var buf bytes.Buffer
	ack, err := BuildAck(req, FormatXML, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if ack.RespondsTo != UnreadableInOriginal || ack.SenderReference != UnreadableInOriginal {
		t.Fatalf("ack %+v", ack)
	}
	if w := ackFieldsFromWire(t, FormatXML, buf.Bytes()); w.ResponseID != UnreadableInOriginal || w.Diagnostics != "Unreadable message received" {
		t.Fatalf("wire %+v", w)
	}
}

func TestAckMetadata(t *testing.T) {
	ack, err := BuildAck(fixedAckRequest("10004", ""), FormatJSON, &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	got := AckMetadata(ack, WorkflowSendDocument, " X26OT123 ")
	want := MeshMetadata{
		WorkflowID:  "GPCONNECT_SEND_DOCUMENT_ACK",
		To:          "X26OT123",
		Subject:     "ITK3 Response 10004 Message Definition Value - Processing Error",
		LocalID:     "GP0001",
		FileName:    "4f8c2a9e-1b7d-4e3a-9c6f-0d2e8b1a5c73.json",
		ContentType: "application/fhir+json",
	}
	if got != want {
		t.Fatalf("got %+v\nwant %+v", got, want)
	}
	if v1 := AckMetadata(ack, "GPFED_CONSULT_REPORT", "X26OT123"); v1.WorkflowID != "GPFED_CONSULT_REPORT_ACK" {
		t.Fatalf("v1 original: workflow %q", v1.WorkflowID)
	}
}
