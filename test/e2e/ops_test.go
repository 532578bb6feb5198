package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/meshgateway/gateway/meshbridge/fakemesh"
	"github.com/meshgateway/gateway/tracking"
)

// A client over its rate gets 429 with Retry-After; other clients are unaffected.
func TestRateLimit(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true, rateLimit: "2"})
	body, _ := json.Marshal(request(smith, "X26ABC1"))
	var limited response
	for i := 0; i < 5; i++ {
		r := e.do("POST", "/v1/documents", "application/json", e.token(clientA), body, nil)
		if r.Status == http.StatusTooManyRequests {
			limited = r
			break
		}
	}
	if limited.Status != http.StatusTooManyRequests || limited.Header.Get("Retry-After") == "" ||
		!strings.HasPrefix(limited.Header.Get("Content-Type"), "application/problem+json") {
		t.Fatalf("no 429 with Retry-After: %+v %s", limited.Header, limited.Body)
	}
	r := e.do("POST", "/FHIR/STU3/$process-message", "application/fhir+json", e.token(clientA), body, nil)
	if r.Status != http.StatusTooManyRequests || !strings.Contains(string(r.Body), "OperationOutcome") {
		t.Fatalf("FHIR route over the limit: %d %s", r.Status, r.Body)
	}
	other, _ := json.Marshal(request(smith, "X26ABC2"))
	if r := e.do("POST", "/v1/documents", "application/json", e.token(clientB), other, nil); r.Status != http.StatusAccepted {
		t.Fatalf("another client: %d %s", r.Status, r.Body)
	}
}

// The admin port exports the metrics operators need.
func TestMetrics(t *testing.T) {
	e := newEnv(t, envOptions{})
	id := e.accepted(clientA, request(smith, "X26ABC1"))
	e.waitState(clientA, id, tracking.StateBusAcked, 20*time.Second)
	resp, err := http.Get(e.apps[0].AdminURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	text := string(raw)
	for _, want := range []string{
		`meshgw_http_requests_total{method="POST",route="/v1/documents",status="202"}`,
		`meshgw_messages{state="bus_acked"} 1`,
		`meshgw_outbox_depth{queue="delayed"}`,
		`meshgw_outbox_oldest_age_seconds`,
		`meshgw_mesh_calls_total{operation="send",status="202"}`,
		`meshgw_inbox_polls_total{mailbox="X26ABC1",result="ok"}`,
		`meshgw_ack_latency_seconds_bucket{kind="business"`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if t.Failed() {
		t.Logf("metrics:\n%s", text)
	}
	// Request log lines, and the outbox's per-message lines, carry the
	// trace id of their span.
	sends := 0
	for _, line := range strings.Split(e.logs.String(), "\n") {
		isRequest := strings.Contains(line, `"msg":"http request"`)
		isSend := strings.Contains(line, `"component":"outbox"`) && strings.Contains(line, `"message_id":"`+id+`"`)
		if isSend {
			sends++
		}
		if (isRequest || isSend) && !strings.Contains(line, `"trace_id":"`) {
			t.Fatalf("log line without trace_id: %s", line)
		}
	}
	if sends == 0 {
		t.Fatal("no outbox log line for the message: the trace id check is vacuous")
	}
}

// Inbox messages nobody can correlate are kept and shown to operators.
func TestDeadLettersVisibleToOperators(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	// A stray message on the ack workflow that is not an ITK3 response.
	if _, err := e.mesh.InjectReport(fakemesh.Report{Mailbox: "X26ABC1", Code: "14", Description: "Message not collected by recipient after 5 days",
		Event: "TRANSFER", WorkflowID: "GPCONNECT_SEND_DOCUMENT", LinkedMessageID: "UNKNOWN-MESSAGE", Status: "error"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(e.apps[0].AdminURL() + "/deadletters")
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			DeadLetters []struct{ MeshMessageID, Reason, MessageType string }
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if len(out.DeadLetters) == 1 {
			if !strings.Contains(out.DeadLetters[0].Reason, "did not send") || out.DeadLetters[0].MessageType != "REPORT" {
				t.Fatalf("dead letter %+v", out.DeadLetters[0])
			}
			if left := e.mesh.Inbox("X26ABC1"); len(left) != 0 {
				t.Fatalf("dead-lettered message not acknowledged in MESH: %d left", len(left))
			}
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("no dead letter shown on the admin port")
}

// Documents over the size GP systems recommend are accepted with a warning
// naming the document, whichever way they are uploaded.
func TestLargeDocumentWarning(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true, recommended: "40"}) // secretDocument is 71 bytes
	meta := request(smith, "X26ABC1")
	delete(meta["documents"].([]any)[0].(map[string]any), "data")
	mpBody, ct := multipartBody(t, meta, secretDocument)
	small := request(smith, "X26ABC1")
	small["documents"].([]any)[0].(map[string]any)["data"] = "JVBERi0x" // 6 bytes
	smallBody, _ := json.Marshal(small)
	jsonBody, _ := json.Marshal(request(smith, "X26ABC1"))
	for _, tc := range []struct {
		name, ct string
		body     []byte
		warn     bool
	}{
		{"json over", "application/json", jsonBody, true},
		{"multipart over", ct, mpBody, true},
		{"json under", "application/json", smallBody, false},
	} {
		r := e.do("POST", "/v1/documents", tc.ct, e.token(clientA), tc.body, nil)
		if r.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", tc.name, r.Status, r.Body)
		}
		var out struct{ Warnings []string }
		r.json(t, &out)
		var size []string
		for _, w := range out.Warnings {
			if strings.Contains(w, "20015") {
				size = append(size, w)
			}
		}
		got := len(size) == 1 && strings.Contains(size[0], "documents[0]")
		if got != tc.warn || (!tc.warn && len(size) != 0) {
			t.Errorf("%s: warnings %q, want a size warning=%v", tc.name, out.Warnings, tc.warn)
		}
	}
}

// A request without a care setting type is accepted with a warning: Send
// Document v2 calls it required, its profile optional.
func TestCareSettingTypeWarning(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	with := request(smith, "X26ABC1")
	with["careSetting"] = map[string]any{"type": map[string]any{"code": "789718008", "display": "Cardiology service"}}
	for name, body := range map[string]map[string]any{"without": request(smith, "X26ABC1"), "with": with} {
		r := e.postJSON(clientA, body, nil)
		if r.Status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", name, r.Status, r.Body)
		}
		var out struct{ Warnings []string }
		r.json(t, &out)
		warned := len(out.Warnings) == 1 && strings.Contains(out.Warnings[0], "careSetting.type")
		if warned != (name == "without") {
			t.Errorf("%s a care setting type: warnings %q", name, out.Warnings)
		}
	}
}

// Operators see disabled webhook endpoints on the admin port (and in
// metrics) and enable them again there.
func TestDisabledWebhookEndpointsOnAdminPort(t *testing.T) {
	hooks := newHookReceiver(t, func(string, int) int { return http.StatusGone })
	e := newEnv(t, envOptions{webhookURL: hooks.URL(), noPractice: true})
	e.accepted(clientA, request(smith, "X26ABC1"))
	admin := e.apps[0].AdminURL()
	type listing struct {
		Disabled []struct{ ClientID, URL, Reason string }
	}
	get := func() listing {
		t.Helper()
		resp, err := http.Get(admin + "/webhooks/disabled")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out listing
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /webhooks/disabled: %d %v", resp.StatusCode, err)
		}
		return out
	}
	deadline := time.Now().Add(10 * time.Second)
	var got listing
	for got = get(); len(got.Disabled) == 0 && time.Now().Before(deadline); got = get() {
		time.Sleep(100 * time.Millisecond)
	}
	if len(got.Disabled) != 1 || got.Disabled[0].ClientID != clientA || got.Disabled[0].Reason != "410 Gone" {
		t.Fatalf("disabled endpoints %+v", got)
	}
	resp, err := http.Get(admin + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "meshgw_webhook_endpoints_disabled 1") {
		t.Errorf("metrics lack meshgw_webhook_endpoints_disabled 1")
	}
	for client, want := range map[string]int{"nobody": http.StatusNoContent, clientA: http.StatusNoContent} {
		resp, err := http.Post(admin+"/webhooks/"+client+"/enable", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("enable %s: %d, want %d", client, resp.StatusCode, want)
		}
	}
	if got = get(); len(got.Disabled) != 0 {
		t.Fatalf("still disabled after enabling: %+v", got)
	}
}

// A sender mailbox written in lower case is recorded as MESH's upper-case
// id, so per-mailbox limits and lookups see one mailbox.
func TestSenderMailboxRecordedUpperCase(t *testing.T) {
	e := newEnv(t, envOptions{noPractice: true})
	id := e.accepted(clientA, request(smith, "x26abc1"))
	if m := e.message(clientA, id); m.Mailbox != "X26ABC1" {
		t.Fatalf("recorded mailbox %q, want X26ABC1", m.Mailbox)
	}
}
