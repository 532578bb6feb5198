package itk

import (
	"bytes"
	"testing"
)

// Build → encode → Validate: no errors in either format, and the metadata
// Validate derives from the wire message equals what Build computed.
func TestRoundTripBuildValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		req  func(testing.TB) *SendRequest
	}{
		{"realistic", realisticRequest},
		{"minimal", func(testing.TB) *SendRequest { return minimalRequest() }},
	} {
		for _, f := range []Format{FormatXML, FormatJSON} {
			t.Run(tc.name+"."+string(f), func(t *testing.T) {
				req := tc.req(t)
				req.Format = f
				m := buildFixture(t, req)
				var buf bytes.Buffer
				if err := m.Encode(&buf); err != nil {
					t.Fatal(err)
				}
				r := Validate(buf.Bytes(), "")
				if !r.Valid || r.Format != f {
					t.Fatalf("invalid (%s): %+v", r.Format, r.Outcome.Issue)
				}
				for _, is := range issuesWith(r, SeverityWarning) {
					t.Logf("warning: %s %v", is.Diagnostics, is.Expression)
				}
				if r.Metadata == nil || *r.Metadata != m.Metadata {
					t.Errorf("metadata\n got %+v\nwant %+v", r.Metadata, m.Metadata)
				}
				if r.MessageHeaderID != m.MessageHeaderID || r.SenderReference != m.SenderReference ||
					r.BundleID != m.BundleID || r.BundleIdentifier != m.BundleIdentifier || r.CompositionID != m.CompositionID {
					t.Errorf("ids: got %+v", r)
				}
			})
		}
	}
}
