package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/meshgateway/gateway/itk"
	"github.com/meshgateway/gateway/meshbridge/fakemesh"
	"github.com/meshgateway/gateway/tracking"
)

// Each intake route lands in the practice's MESH inbox with the right mex-*
// headers and a valid ITK3 body, and the status reaches delivered (and the
// acks beyond it) after the practice downloads and acknowledges it.
func TestSendRoutesReachPracticeInbox(t *testing.T) {
	e := newEnv(t, envOptions{})
	sample, err := os.ReadFile("../../itk/testdata/sample.pdf")
	if err != nil {
		t.Fatal(err)
	}

	// Each $process-message case sends its own bundle: a practice answers a
	// repeated Bundle identifier with 20007 (duplicate), as it should.
	bundleAs := func(f itk.Format) []byte { return smithBundle(t, f) }
	bundle := func() []byte { return bundleAs(itk.FormatJSON) }

	tests := []struct {
		name string
		send func() response
	}{
		{"simple JSON", func() response { return e.postJSON(clientA, request(smith, "X26ABC1"), nil) }},
		{"multipart", func() response {
			meta := request(smith, "X26ABC1")
			meta["documents"].([]any)[0].(map[string]any)["data"] = nil
			delete(meta["documents"].([]any)[0].(map[string]any), "data")
			body, ct := multipartBody(t, meta, sample)
			return e.do("POST", "/v1/documents", ct, e.token(clientA), body, nil)
		}},
		{"$process-message JSON", func() response {
			return e.do("POST", "/FHIR/STU3/$process-message", "application/fhir+json", e.token(clientA), bundle(), nil)
		}},
		{"$process-message XML", func() response {
			return e.do("POST", "/FHIR/STU3/$process-message", "application/fhir+xml", e.token(clientA), bundleAs(itk.FormatXML), nil)
		}},
		{"$process-message XML Parameters", func() response {
			inner := bundleAs(itk.FormatXML)
			inner = bytes.Replace(inner, []byte(` xmlns="http://hl7.org/fhir"`), nil, 1) // inherits the namespace of Parameters
			wrapped := append([]byte(`<Parameters xmlns="http://hl7.org/fhir"><parameter><name value="content"/><resource>`), inner...)
			wrapped = append(wrapped, []byte(`</resource></parameter></Parameters>`)...)
			return e.do("POST", "/FHIR/STU3/$process-message", "application/fhir+xml", e.token(clientA), wrapped, nil)
		}},
		{"$process-message Parameters", func() response {
			wrapped, _ := json.Marshal(map[string]any{"resourceType": "Parameters", "parameter": []any{
				map[string]any{"name": "content", "resource": json.RawMessage(bundle())}}})
			return e.do("POST", "/FHIR/STU3/MessageHeader/$process-message", "application/fhir+json", e.token(clientA), wrapped, nil)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.send()
			if r.Status != http.StatusAccepted {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			loc := r.Header.Get("Location")
			if !strings.HasPrefix(loc, "/v1/messages/") {
				t.Fatalf("Location = %q", loc)
			}
			id := strings.TrimPrefix(loc, "/v1/messages/")
			m := e.waitState(clientA, id, tracking.StateBusAcked, 20*time.Second)
			if m.MeshMessageID == "" || m.DeliveredAt == nil || m.InfAck == nil || m.InfAck.Code != "20013" || m.BusAck == nil || m.BusAck.Code != "30001" {
				t.Fatalf("record incomplete: %+v", m)
			}
			info, body, ok := e.meshMessage(m.MeshMessageID)
			if !ok {
				t.Fatalf("MESH has no message %s", m.MeshMessageID)
			}
			if info.To != "X26GP001" || info.From != "X26ABC1" || info.WorkflowID != itk.WorkflowSendDocument {
				t.Fatalf("mex headers: to=%s from=%s workflow=%s", info.To, info.From, info.WorkflowID)
			}
			assertMexHeaders(t, info)
			res := itk.Validate(body, "")
			if !res.Valid {
				t.Fatalf("body in MESH is not a valid ITK3 message: %+v", res.Outcome.Issue)
			}
			if res.BundleIdentifier != m.BundleID {
				t.Fatalf("bundle identifier %s, record %s", res.BundleIdentifier, m.BundleID)
			}
			wantEvents := []tracking.EventType{tracking.EventAccepted, tracking.EventSendAttempt, tracking.EventSent}
			for i, w := range wantEvents {
				if m.Events[i].Type != w {
					t.Fatalf("event %d = %s, want %s (%+v)", i, m.Events[i].Type, w, m.Events)
				}
			}
		})
	}
}

func assertMexHeaders(t *testing.T, info fakemesh.MessageInfo) {
	t.Helper()
	h := info.Headers
	get := func(k string) string { return h[strings.ToLower(k)] }
	if got := get("Mex-Localid"); got != "X26" {
		t.Errorf("mex-LocalID = %q, want the sender ODS code X26", got)
	}
	if ct := get("Mex-Content-Type"); ct != itk.ContentTypeFHIRXML && ct != itk.ContentTypeFHIRJSON {
		t.Errorf("mex-Content-Type = %q", ct)
	}
	if s := get("Mex-Subject"); !strings.Contains(s, "NHS Number:") {
		t.Errorf("mex-Subject does not follow the v2 template")
	}
	if f := get("Mex-Filename"); f == "" {
		t.Errorf("mex-FileName missing")
	}
}

// The GP lookup address is the official YYYYMMDD form; an unknown patient
// gets an EPL-151 REPORT from MESH and the message becomes undeliverable.
func TestUnknownPatientIsUndeliverable(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.accepted(clientA, request(taylor, "X26ABC1"))
	m := e.waitState(clientA, id, tracking.StateUndeliverable, 20*time.Second)
	if m.LastError == nil || m.LastError.Code != "EPL-151" {
		t.Fatalf("last error = %+v", m.LastError)
	}
	last := m.Events[len(m.Events)-1]
	if last.Type != tracking.EventUndeliverable || last.Code != "EPL-151" || last.Display == "" {
		t.Fatalf("last event %+v", last)
	}
}

// Idempotency-Key: same key + same body → the original message; different body → 409.
func TestIdempotencyKey(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	body := request(smith, "X26ABC1")
	hdr := map[string]string{"Idempotency-Key": "6b1f0d2c-6c0e-4a4b-9d33-1b7f7c2d9a11"}
	r1 := e.postJSON(clientA, body, hdr)
	r2 := e.postJSON(clientA, body, hdr)
	if r1.Status != 202 || r2.Status != 202 {
		t.Fatalf("statuses %d %d: %s %s", r1.Status, r2.Status, r1.Body, r2.Body)
	}
	var a, b struct{ ID string }
	r1.json(t, &a)
	r2.json(t, &b)
	if a.ID != b.ID || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("ids %s %s, replayed header %q", a.ID, b.ID, r2.Header.Get("Idempotent-Replayed"))
	}
	other := request(jones, "X26ABC1")
	r3 := e.postJSON(clientA, other, hdr)
	if r3.Status != http.StatusConflict || !strings.Contains(r3.Header.Get("Content-Type"), "problem+json") {
		t.Fatalf("different body: %d %s", r3.Status, r3.Body)
	}
	// The key is per client: another client may use the same key.
	r4 := e.postJSON(clientB, request(smith, "X26ABC2"), hdr)
	if r4.Status != 202 {
		t.Fatalf("other client same key: %d %s", r4.Status, r4.Body)
	}
}
