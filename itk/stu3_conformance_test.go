package itk

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"
)

// TestSTU3ConformanceGoogleFHIR parses everything the gateway emits as
// FHIR JSON with Google's FHIR library (github.com/google/fhir/go, STU3,
// validating unmarshaller: element names, types, cardinality, required
// elements, code values, primitive formats) — a validator independent of
// the one in this package. The NHS's own example messages go through it
// too, so a false alarm would show there first.
func TestSTU3ConformanceGoogleFHIR(t *testing.T) {
	um, err := jsonformat.NewUnmarshaller("Europe/London", fhirversion.STU3)
	if err != nil {
		t.Fatal(err)
	}
	encode := func(write func(*bytes.Buffer) error) []byte {
		t.Helper()
		var buf bytes.Buffer
		if err := write(&buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	sendBundle := func(req *SendRequest) []byte {
		return encode(func(b *bytes.Buffer) error { return buildFixture(t, req).EncodeFormat(b, FormatJSON) })
	}
	ack := func(code, diagnostics string) []byte {
		return encode(func(b *bytes.Buffer) error {
			_, err := BuildAck(fixedAckRequest(code, diagnostics), FormatJSON, b)
			return err
		})
	}
	invalid := Validate([]byte(`{"resourceType":"Bundle","type":"collection","entry":[{"resource":{"resourceType":"Patient"}}]}`), FormatJSON)
	if invalid.Valid {
		t.Fatal("a collection Bundle passed Validate")
	}
	outcomeJSON := encode(func(b *bytes.Buffer) error { return invalid.Outcome.EncodeFormat(b, FormatJSON) })

	cases := map[string][]byte{
		"Send Document bundle, realistic":  sendBundle(realisticRequest(t)),
		"Send Document bundle, minimal":    sendBundle(minimalRequest()),
		"ITK3 response 20013":              ack("20013", ""),
		"ITK3 response 30001":              ack("30001", ""),
		"ITK3 response 20009":              ack("20009", "Composition.confidentiality R is not accepted"),
		"OperationOutcome from Validate":   outcomeJSON,
		"CapabilityStatement":              encode(func(b *bytes.Buffer) error { return EncodeCapabilityStatement(b, FormatJSON, testCapability) }),
		"CapabilityStatement, no security": encode(func(b *bytes.Buffer) error { return EncodeCapabilityStatement(b, FormatJSON, CapabilityOptions{}) }),
	}
	for _, name := range []string{"v2-send-document-generic.json", "v1.5-consultation-report.json", "itk-response-30001.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "examples", name))
		if err != nil {
			t.Fatal(err)
		}
		cases["NHS example "+name] = b
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := um.Unmarshal(b); err != nil {
				t.Fatalf("not valid FHIR STU3: %v\n%s", err, b)
			}
		})
	}

	// The validator does reject what STU3 forbids.
	for name, b := range map[string]string{
		"issue without severity": `{"resourceType":"OperationOutcome","issue":[{"code":"invalid"}]}`,
		"unknown element":        `{"resourceType":"CapabilityStatement","status":"active","date":"2026","kind":"instance","fhirVersion":"3.0.2","acceptUnknown":"no","format":["json"],"colour":"blue"}`,
		"bad code":               `{"resourceType":"OperationOutcome","issue":[{"severity":"bad","code":"invalid"}]}`,
	} {
		if _, err := um.Unmarshal([]byte(b)); err == nil {
			t.Errorf("%s: accepted %s", name, b)
		}
	}
}

var testCapability = CapabilityOptions{BaseURL: "https://gateway.example.nhs.uk/FHIR/STU3/", SoftwareName: "mesh-gateway",
	SoftwareVersion: "1.2.3", Date: time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC), Security: "Signed JWT, RS512."}

// The version a sender gives is where ITK-Document-Bundle-1 defines it, and
// Validate reads the same subject back as Build wrote.
func TestDocumentVersionRoundTrip(t *testing.T) {
	req := minimalRequest()
	req.Version = 3
	req.Replaces = &Replacement{DocumentID: "7f3c3f56-2f5e-4a4f-9d0f-2c1c5a0b6e11"}
	m := buildFixture(t, req)
	for _, f := range []Format{FormatXML, FormatJSON} {
		var buf bytes.Buffer
		if err := m.EncodeFormat(&buf, f); err != nil {
			t.Fatal(err)
		}
		res := Validate(buf.Bytes(), f)
		if !res.Valid {
			t.Fatalf("%s: invalid: %+v", f, res.Outcome.Issue)
		}
		if res.Metadata.Subject != m.Metadata.Subject || !strings.HasSuffix(m.Metadata.Subject, "version 3") {
			t.Errorf("%s: subject read back %q, built %q", f, res.Metadata.Subject, m.Metadata.Subject)
		}
	}
}
