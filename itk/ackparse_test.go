package itk

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestParseAckExamples(t *testing.T) {
	ts := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		file     string
		kind     AckKind
		code     string
		positive bool
		respCode string
		diag     int
	}{
		{"itk-response-20013.xml", AckInfrastructure, "20013", true, "ok", 0},
		{"itk-response-30001.json", AckBusiness, "30001", true, "ok", 0},
		{"itk-response-20009.xml", AckInfrastructure, "20009", false, "fatal-error", 1},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			ack, err := ParseAck(readExample(t, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			if ack.Kind != tc.kind || ack.Code != tc.code || ack.Positive != tc.positive || ack.ResponseCode != tc.respCode || len(ack.Diagnostics) != tc.diag {
				t.Errorf("ack = %+v", ack)
			}
			if ack.RespondsTo != "adcdf4b6-4c9d-4347-9dca-1264e1f51a4b" || ack.SenderReference != "urn:uuid:28182303-be8d-429f-a593-4bd1b4952fc5" ||
				ack.BundleID != "7d1f0d3e-3f5a-4c59-a7a4-3b9d1c2e8f01" || ack.MessageHeaderID != "7d1f0d3e-3f5a-4c59-a7a4-3b9d1c2e8f03" ||
				ack.SourceEndpoint != "RECEIVER_MAILBOX" || ack.SenderODSCode != "A12345" || !ack.Timestamp.Equal(ts) {
				t.Errorf("ids = %+v", ack)
			}
		})
	}
}

// A hand-written ack as a GP system might send it: namespace prefix, no
// code system on the coding, extra unknown elements, focus as an object.
func TestParseAckLenient(t *testing.T) {
	xml := `<?xml version="1.0"?>
<f:Bundle xmlns:f="http://hl7.org/fhir"><f:type value="message"/>
 <f:entry><f:fullUrl value="urn:uuid:1"/><f:resource><f:MessageHeader>
  <f:vendorThing value="x"/>
  <f:event><f:system value="https://fhir.nhs.uk/STU3/CodeSystem/ITK-MessageEvent-2"/><f:code value="ITK008M"/></f:event>
  <f:timestamp value="2024-05-01T09:00:00.123+01:00"/>
  <f:response><f:identifier value="orig-1"/><f:code value="fatal-error"/></f:response>
 </f:MessageHeader></f:resource></f:entry>
 <f:entry><f:resource><f:OperationOutcome><f:issue><f:severity value="fatal"/><f:code value="not-found"/>
  <f:details><f:coding><f:code value="30002"/></f:coding></f:details><f:diagnostics value="not registered here"/></f:issue>
 </f:OperationOutcome></f:resource></f:entry></f:Bundle>`
	ack, err := ParseAck([]byte(xml))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != "30002" || ack.Kind != AckBusiness || ack.Positive || ack.RespondsTo != "orig-1" || ack.Diagnostics[0] != "not registered here" ||
		ack.Timestamp.IsZero() || ack.Format != FormatXML {
		t.Errorf("ack = %+v", ack)
	}

	js := `{"resourceType":"Bundle","type":"message","entry":[{"fullUrl":"urn:uuid:h","resource":{"resourceType":"MessageHeader",
	 "event":{"code":"ITK008M"},"focus":{"reference":"urn:uuid:oo"},"response":{"identifier":"orig-2","code":"ok"}}},
	 {"fullUrl":"urn:uuid:oo","resource":{"resourceType":"OperationOutcome","issue":{"severity":"information","code":"informational",
	 "details":{"coding":[{"system":"https://fhir.nhs.uk/STU3/CodeSystem/ITK-ResponseCodes-1","code":"20013"}]}}}}]}`
	ack, err = ParseAck([]byte(js))
	if err != nil {
		t.Fatal(err)
	}
	if ack.Code != "20013" || !ack.Positive || ack.RespondsTo != "orig-2" || ack.Display != "Success" {
		t.Errorf("ack = %+v", ack)
	}
}

func TestParseAckErrors(t *testing.T) {
	sendDoc := readExample(t, "v2-send-document-generic.xml")
	if _, err := ParseAck(sendDoc); !errors.Is(err, ErrNotAcknowledgement) {
		t.Errorf("send document: err = %v", err)
	}
	noCode := `{"resourceType":"Bundle","type":"message","entry":[{"resource":{"resourceType":"MessageHeader","event":{"code":"ITK008M"}}}]}`
	for name, in := range map[string]string{
		"garbage": "9434765919 Smith", "truncated": "<Bundle xmlns=\"http://hl7.org/fhir\"><type value=\"9434765919\"",
		"no header": `{"resourceType":"Bundle","type":"message"}`, "no code": noCode,
	} {
		_, err := ParseAck([]byte(in))
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if strings.Contains(err.Error(), "9434765919") || strings.Contains(err.Error(), "Smith") {
			t.Errorf("%s: error leaks input: %v", name, err)
		}
	}
}

func TestExtractBundleInfo(t *testing.T) {
	info, err := ExtractBundleInfo(readExample(t, "v2-send-document-generic.json"))
	if err != nil {
		t.Fatal(err)
	}
	if info.Event != EventSendDocument || info.MessageHeaderID != "adcdf4b6-4c9d-4347-9dca-1264e1f51a4b" ||
		info.SenderReference != "urn:uuid:28182303-be8d-429f-a593-4bd1b4952fc5" || info.SenderODSCode != "FQW30" ||
		info.Format != FormatJSON || info.Timestamp.IsZero() {
		t.Errorf("info = %+v", info)
	}
}
