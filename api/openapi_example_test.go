package api

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/meshgateway/gateway/itk"
	"github.com/meshgateway/gateway/openapi"
)

// openapiExamples returns the definition examples of the committed
// swagger.json (what scripts/openapi.sh writes).
func openapiExamples(t *testing.T, doc []byte) map[string]json.RawMessage {
	t.Helper()
	var d struct {
		Definitions map[string]struct {
			Example json.RawMessage `json:"example"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("decode OpenAPI: %v", err)
	}
	out := map[string]json.RawMessage{}
	for name, def := range d.Definitions {
		if def.Example != nil {
			out[name] = def.Example
		}
	}
	return out
}

func committedExamples(t *testing.T) map[string]json.RawMessage {
	t.Helper()
	doc, err := os.ReadFile("../openapi/swagger.json")
	if err != nil {
		t.Fatal(err)
	}
	return openapiExamples(t, doc)
}

// decodeStrict decodes an example into the type the gateway uses, refusing
// fields the type does not have.
func decodeStrict(t *testing.T, name string, raw json.RawMessage, v any) {
	t.Helper()
	if raw == nil {
		t.Fatalf("openapi/swagger.json has no example for %s (run scripts/openapi.sh)", name)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("%s example does not decode: %v", name, err)
	}
}

func TestOpenAPISendRequestExampleIsAValidRequest(t *testing.T) {
	var req itk.SendRequest
	decodeStrict(t, "itk.SendRequest", committedExamples(t)["itk.SendRequest"], &req)
	msg, err := itk.Build(&req, itk.BuildOptions{})
	if err != nil {
		t.Fatalf("Swagger UI's pre-filled request would be refused: %v", err)
	}
	// Sent by GP lookup (no recipient) from the embedded demo's mailbox.
	if req.Recipient != nil || req.Replaces != nil || req.Author.Device != nil {
		t.Error("example should be a plain first send by a practitioner to the patient's GP")
	}
	if req.Sender.Mailbox != "X26ABC1" || !strings.HasPrefix(msg.Metadata.To, "GPPROVIDER_9000000009_19670126_") {
		t.Errorf("example not addressed from the demo mailbox to the demo patient's GP: from %s to %s", req.Sender.Mailbox, msg.Metadata.To)
	}
}

func TestOpenAPIOperationOutcomeExampleCarriesITK3Codes(t *testing.T) {
	var outcome itk.OperationOutcome
	decodeStrict(t, "itk.OperationOutcome", committedExamples(t)["itk.OperationOutcome"], &outcome)
	if outcome.ResourceType != "OperationOutcome" || len(outcome.Issue) == 0 {
		t.Fatalf("example is not an OperationOutcome with issues: %+v", outcome)
	}
	for i, is := range outcome.Issue {
		if is.Details == nil || len(is.Details.Coding) != 1 {
			t.Errorf("issue %d: want one ITK3 response coding, got %+v", i, is.Details)
			continue
		}
		c := is.Details.Coding[0]
		rc, known := itk.LookupResponseCode(c.Code)
		switch {
		case c.System != itk.SystemResponseCodes:
			t.Errorf("issue %d: coding system %q, want %q", i, c.System, itk.SystemResponseCodes)
		case !known || rc.Positive:
			t.Errorf("issue %d: %q is not a negative ITK3 response code", i, c.Code)
		case c.Display != rc.Display:
			t.Errorf("issue %d: display %q, want %q", i, c.Display, rc.Display)
		}
		if is.Severity != "error" || len(is.Expression) != 1 || !strings.HasPrefix(is.Expression[0], "Bundle.") {
			t.Errorf("issue %d: want an error located in the Bundle, got %+v", i, is)
		}
	}
}

// The problem example is what POST /v1/documents answers for the body Swagger
// UI used to pre-fill: an author with both a practitioner and a device, and a
// care setting date of "string".
func TestOpenAPIProblemExampleIsTheGatewaysAnswer(t *testing.T) {
	examples := committedExamples(t)
	var example Problem
	decodeStrict(t, "api.Problem", examples["api.Problem"], &example)

	var req itk.SendRequest
	decodeStrict(t, "itk.SendRequest", examples["itk.SendRequest"], &req)
	req.Author.Device = &itk.Device{Name: "Demo EPR"}
	req.CareSetting.Date = "string"
	_, err := itk.Build(&req, itk.BuildOptions{})
	if err == nil {
		t.Fatal("request with two authors was accepted")
	}
	e := buildError(err)
	want := Problem{
		Type: "https://mesh-gateway.nhs.uk/problems/" + e.Code, Title: e.Title, Status: e.Status,
		Detail: e.Detail, Instance: "/v1/documents", Code: e.Code, Errors: e.Problems,
	}
	if want.Status != http.StatusUnprocessableEntity || !reflect.DeepEqual(example, want) {
		t.Errorf("api.Problem example = %+v\nthe gateway answers %+v", example, want)
	}
}

// Swagger UI serves docs.go's template (openapi.SwaggerInfo), not
// swagger.json: both, and swagger.yaml, must carry the same examples.
func TestOpenAPIServedDocCarriesTheSameExamples(t *testing.T) {
	served := openapiExamples(t, []byte(openapi.SwaggerInfo.ReadDoc()))
	committed := committedExamples(t)
	if len(committed) == 0 {
		t.Fatal("openapi/swagger.json carries no examples")
	}
	for name, raw := range committed {
		var a, b any
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(served[name], &b); err != nil {
			t.Fatalf("served doc: %s example: %v", name, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Errorf("%s: served example differs from swagger.json", name)
		}
	}
}
