package e2e

import (
	"encoding/xml"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/google/fhir/go/fhirversion"
	"github.com/google/fhir/go/jsonformat"

	"github.com/meshgateway/gateway/itk"
)

var stu3 = sync.OnceValues(func() (*jsonformat.Unmarshaller, error) {
	return jsonformat.NewUnmarshaller("Europe/London", fhirversion.STU3)
})

// assertSTU3 checks a JSON resource with Google's FHIR library (STU3,
// validating), independent of the gateway's own validator.
func assertSTU3(t testing.TB, body []byte) {
	t.Helper()
	um, err := stu3()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := um.Unmarshal(body); err != nil {
		t.Fatalf("not valid FHIR STU3 (google/fhir): %v\n%s", err, body)
	}
}

// xmlOutcome is enough of an XML OperationOutcome to check it.
type xmlOutcome struct {
	XMLName xml.Name `xml:"http://hl7.org/fhir OperationOutcome"`
	Issue   []struct {
		Severity struct {
			Value string `xml:"value,attr"`
		} `xml:"severity"`
		Code struct {
			Value string `xml:"value,attr"`
		} `xml:"code"`
		Diagnostics struct {
			Value string `xml:"value,attr"`
		} `xml:"diagnostics"`
		Expression []struct {
			Value string `xml:"value,attr"`
		} `xml:"expression"`
	} `xml:"issue"`
}

// TestCapabilityStatement: GET [base]/metadata answers without a token, as
// FHIR clients (HAPI's generic client first of all) read it before their
// first request, in the format asked for.
func TestCapabilityStatement(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	tests := []struct {
		name, query, accept string
		want                itk.Format
	}{
		{"default", "", "", itk.FormatJSON},
		{"Accept XML", "", "application/fhir+xml", itk.FormatXML},
		{"HAPI's Accept: a tie goes to the first listed", "", "application/fhir+xml;q=1.0, application/fhir+json;q=1.0, application/xml+fhir;q=0.9, application/json+fhir;q=0.9", itk.FormatXML},
		{"HAPI's Accept with JSON first", "", "application/fhir+json;q=1.0, application/fhir+xml;q=1.0", itk.FormatJSON},
		{"Accept prefers JSON", "", "application/fhir+xml;q=0.5, application/fhir+json", itk.FormatJSON},
		{"_format=xml", "?_format=xml", "application/fhir+json", itk.FormatXML},
		{"_format with an unescaped plus", "?_format=application/fhir+xml", "", itk.FormatXML},
		{"_format=json", "?_format=json", "application/fhir+xml", itk.FormatJSON},
		{"unknown _format falls back to Accept", "?_format=turtle", "text/xml", itk.FormatXML},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("GET", "/FHIR/STU3/metadata"+tc.query, "", "", nil, map[string]string{"Accept": tc.accept})
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.want.ContentType()) {
				t.Fatalf("Content-Type %q, want %s", ct, tc.want.ContentType())
			}
			if r.Header.Get("Vary") != "Accept" {
				t.Errorf("Vary = %q", r.Header.Get("Vary"))
			}
			if tc.want == itk.FormatXML {
				var cs struct {
					XMLName     xml.Name `xml:"http://hl7.org/fhir CapabilityStatement"`
					FHIRVersion struct {
						Value string `xml:"value,attr"`
					} `xml:"fhirVersion"`
					Address struct {
						Value string `xml:"value,attr"`
					} `xml:"messaging>endpoint>address"`
				}
				if err := xml.Unmarshal(r.Body, &cs); err != nil || cs.FHIRVersion.Value != itk.FHIRVersion ||
					cs.Address.Value != e.url+"/FHIR/STU3/$process-message" {
					t.Fatalf("XML CapabilityStatement %+v, %v:\n%s", cs, err, r.Body)
				}
				return
			}
			var cs struct {
				ResourceType, Status, Kind, FHIRVersion, AcceptUnknown, Date string
				Format                                                       []string
				Implementation                                               struct{ URL string }
				Rest                                                         []struct {
					Mode      string
					Operation []struct {
						Name       string
						Definition struct{ Reference string }
					}
				}
				Messaging []struct {
					Endpoint []struct {
						Protocol struct{ System, Code string }
						Address  string
					}
					SupportedMessage []struct {
						Mode       string
						Definition struct{ Reference string }
					}
				}
			}
			r.json(t, &cs)
			assertSTU3(t, r.Body)
			ok := cs.ResourceType == "CapabilityStatement" && cs.Status == "active" && cs.Kind == "instance" &&
				cs.FHIRVersion == "3.0.2" && cs.AcceptUnknown == "no" && cs.Date != "" && len(cs.Format) == 2 &&
				cs.Implementation.URL == e.url+"/FHIR/STU3" &&
				len(cs.Rest) == 1 && cs.Rest[0].Mode == "server" && len(cs.Rest[0].Operation) == 1 &&
				cs.Rest[0].Operation[0].Name == "process-message" &&
				cs.Rest[0].Operation[0].Definition.Reference == "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message" &&
				len(cs.Messaging) == 1 && len(cs.Messaging[0].Endpoint) == 1 &&
				cs.Messaging[0].Endpoint[0].Protocol.Code == "http" &&
				cs.Messaging[0].Endpoint[0].Address == e.url+"/FHIR/STU3/$process-message" &&
				len(cs.Messaging[0].SupportedMessage) == 1 && cs.Messaging[0].SupportedMessage[0].Mode == "receiver" &&
				cs.Messaging[0].SupportedMessage[0].Definition.Reference == itk.MessageDefinitionURL
			if !ok {
				t.Fatalf("CapabilityStatement %+v:\n%s", cs, r.Body)
			}
		})
	}
}

// TestFHIRResponseFormat: OperationOutcomes on FHIR routes come in the
// format the caller asks for (Accept, _format), else in the request's own
// format, else JSON: an XML sender gets XML back.
func TestFHIRResponseFormat(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	bundle := func(f itk.Format) []byte { return smithBundle(t, f) }
	notMessage := []byte(`<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/></Bundle>`)
	tests := []struct {
		name, path, contentType, accept string
		body                            func() []byte
		bearer                          bool
		status                          int
		want                            itk.Format
		wantIssue                       string // code of the first issue
	}{
		{"XML bundle, no Accept", "/FHIR/STU3/$process-message", "application/fhir+xml", "", func() []byte { return bundle(itk.FormatXML) }, true, 202, itk.FormatXML, "informational"},
		{"XML bundle, Accept JSON", "/FHIR/STU3/$process-message", "application/fhir+xml", "application/fhir+json", func() []byte { return bundle(itk.FormatXML) }, true, 202, itk.FormatJSON, "informational"},
		{"JSON bundle, Accept XML", "/FHIR/STU3/$process-message", "application/fhir+json", "application/fhir+xml", func() []byte { return bundle(itk.FormatJSON) }, true, 202, itk.FormatXML, "informational"},
		{"JSON bundle, Accept anything", "/FHIR/STU3/$process-message", "application/fhir+json", "*/*", func() []byte { return bundle(itk.FormatJSON) }, true, 202, itk.FormatJSON, "informational"},
		{"invalid XML bundle", "/FHIR/STU3/$process-message", "application/fhir+xml", "", func() []byte { return notMessage }, true, 422, itk.FormatXML, ""},
		{"invalid XML bundle, _format=json", "/FHIR/STU3/$process-message?_format=json", "application/fhir+xml", "", func() []byte { return notMessage }, true, 422, itk.FormatJSON, ""},
		{"no token, Accept XML", "/FHIR/STU3/$process-message", "application/fhir+json", "application/fhir+xml", func() []byte { return bundle(itk.FormatJSON) }, false, 401, itk.FormatXML, "security"},
		{"unknown FHIR route, _format=xml", "/FHIR/STU3/Patient?_format=xml", "", "", func() []byte { return nil }, true, 404, itk.FormatXML, "not-found"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			bearer := ""
			if tc.bearer {
				bearer = e.token(clientA)
			}
			method := "POST"
			if tc.contentType == "" {
				method = "GET"
			}
			r := e.do(method, tc.path, tc.contentType, bearer, tc.body(), map[string]string{"Accept": tc.accept})
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.want.ContentType()) {
				t.Fatalf("Content-Type %q, want %s: %s", ct, tc.want.ContentType(), r.Body)
			}
			var first, severity string
			var n int
			if tc.want == itk.FormatXML {
				var oo xmlOutcome
				if err := xml.Unmarshal(r.Body, &oo); err != nil {
					t.Fatalf("XML OperationOutcome: %v\n%s", err, r.Body)
				}
				if n = len(oo.Issue); n > 0 {
					first, severity = oo.Issue[0].Code.Value, oo.Issue[0].Severity.Value
				}
			} else {
				var oo itk.OperationOutcome
				r.json(t, &oo)
				assertSTU3(t, r.Body)
				if oo.ResourceType != "OperationOutcome" {
					t.Fatalf("not an OperationOutcome: %s", r.Body)
				}
				if n = len(oo.Issue); n > 0 {
					first, severity = oo.Issue[0].Code, oo.Issue[0].Severity
				}
			}
			if n == 0 || severity == "" || (tc.wantIssue != "" && first != tc.wantIssue) {
				t.Fatalf("issues %d, first %q (%q), want %q: %s", n, first, severity, tc.wantIssue, r.Body)
			}
			if tc.status == 422 && severity != "error" && severity != "fatal" {
				t.Fatalf("422 with a %q issue: %s", severity, r.Body)
			}
		})
	}
}

// TestProcessMessageURLParameters: STU3 puts async and response-url in the
// URL. async=true is what the gateway does anyway; a response-url is not
// used (acknowledgements go to the client's webhook) and the 202 says so.
func TestProcessMessageURLParameters(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	tests := []struct {
		name, query string
		wantWarning bool
	}{
		{"no parameters", "", false},
		{"async=true", "?async=true", false},
		{"response-url", "?async=true&response-url=https%3A%2F%2Fapp.example%2Fresponses", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do("POST", "/FHIR/STU3/$process-message"+tc.query, "application/fhir+json", e.token(clientA), smithBundle(t, itk.FormatJSON), nil)
			if r.Status != http.StatusAccepted {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			assertSTU3(t, r.Body)
			var oo itk.OperationOutcome
			r.json(t, &oo)
			warned := false
			for _, is := range oo.Issue {
				warned = warned || (is.Severity == "warning" && strings.Contains(is.Diagnostics, "response-url is not used"))
			}
			if len(oo.Issue) == 0 || oo.Issue[0].Severity != "information" || warned != tc.wantWarning {
				t.Fatalf("warning %v, want %v: %s", warned, tc.wantWarning, r.Body)
			}
		})
	}
}
