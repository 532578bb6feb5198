package meshbridge

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestErrorShapes(t *testing.T) {
	const soap = `<?xml version="1.0"?><SOAP-ENV:Envelope><SOAP-ENV:Body><SOAP-ENV:Fault>` +
		`<faultcode>SOAP-ENV:Server</faultcode><faultstring>{"detail":[{"code":"99"}]}</faultstring></SOAP-ENV:Fault></SOAP-ENV:Body></SOAP-ENV:Envelope>`
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantEvent  string
		wantCode   string
		wantDesc   string // substring
		wantMsgID  string
		wantRetry  time.Duration
		temporary  bool
		wantBodyIn string
	}{
		{name: "403 v2 bad token", status: 403,
			body:     `{"detail":[{"event":"","code":"","msg":"Invalid Authentication Token"}]}`,
			wantDesc: "Invalid Authentication Token"},
		{name: "403 v1 bad token", status: 403,
			body:     `{"errorEvent":"","errorCode":"","errorDescription":"Error reading from Authorization header"}`,
			wantDesc: "Error reading from Authorization header"},
		{name: "403 empty body", status: 403, wantDesc: "Forbidden"},
		{name: "417 v2 unregistered to address", status: 417,
			body:      `{"message_id":"20200529155357895317_3573F8","internal_id":"x","detail":[{"event":"SEND","code":"12","msg":"Unregistered to address"}]}`,
			wantEvent: "SEND", wantCode: CodeUnregisteredRecipient, wantDesc: "Unregistered to address", wantMsgID: "20200529155357895317_3573F8"},
		{name: "417 v1 unregistered to address", status: 417,
			body:      `{"messageID":"20200529155357895317_3573F8","errorEvent":"SEND","errorCode":"12","errorDescription":"Unregistered to address"}`,
			wantEvent: "SEND", wantCode: "12", wantDesc: "Unregistered to address", wantMsgID: "20200529155357895317_3573F8"},
		{name: "417 v2 workflow not registered", status: 417,
			body:      `{"detail":[{"event":"SEND","code":"17","msg":"Workflow ID not registered for mailbox"}]}`,
			wantEvent: "SEND", wantCode: CodeWorkflowNotRegistered, wantDesc: "Workflow ID not registered"},
		{name: "400 v1 malformed control file", status: 400,
			body:      `{"errorEvent":"TRANSFER","errorCode":"06","errorDescription":"MalformedControlFile","fields":["mex-subject"]}`,
			wantEvent: "TRANSFER", wantCode: CodeMalformedHeaders, wantDesc: "MalformedControlFile"},
		{name: "400 v2 malformed control file", status: 400,
			body:      `{"detail":[{"event":"TRANSFER","code":"06","msg":"MalformedControlFile"}]}`,
			wantEvent: "TRANSFER", wantCode: "06", wantDesc: "MalformedControlFile"},
		{name: "417 v2 empty body data file missing", status: 417,
			body:      `{"detail":[{"event":"COLLECT","code":"02","msg":"Data file is missing or inaccessible."}]}`,
			wantEvent: "COLLECT", wantCode: CodeDataFileMissing, wantDesc: "Data file is missing"},
		{name: "417 v2 EPL-151 no mailbox matched", status: 417,
			body:      `{"detail":[{"event":"SEND","code":"EPL-151","msg":"No mailbox matched"}]}`,
			wantEvent: "SEND", wantCode: CodeNoMailboxMatched, wantDesc: "No mailbox matched"},
		{name: "417 v1 numeric code", status: 417,
			body:     `{"errorEvent":"SEND","errorCode":17,"errorDescription":"Workflow ID not registered"}`,
			wantCode: "17", wantEvent: "SEND", wantDesc: "Workflow ID not registered"},
		{name: "400 FastAPI validation", status: 400,
			body:     `{"detail":[{"loc":["header","mex-to"],"msg":"field required","type":"value_error.missing"},{"loc":["header","mex-workflowid"],"msg":"field required","type":"value_error.missing"}]}`,
			wantDesc: "header mex-to: field required; header mex-workflowid: field required"},
		{name: "404 v2 message does not exist", status: 404,
			body:      `{"detail":[{"event":"RECEIVE","code":"20","msg":"Message does not exist"}]}`,
			wantEvent: "RECEIVE", wantCode: CodeMessageDoesNotExist, wantDesc: "Message does not exist"},
		{name: "410 FastAPI string detail", status: 410, body: `{"detail":"Gone"}`, wantDesc: "Gone"},
		{name: "423 message body", status: 423,
			body:     `{"message":"An internal error occurred while processing the request"}`,
			wantDesc: "An internal error occurred"},
		{name: "500 SOAP XML not parsed", status: 500, body: soap,
			wantDesc: "Internal Server Error", wantBodyIn: "SOAP-ENV:Fault"},
		{name: "503 JSON-looking body ignored", status: 503,
			body:     `{"detail":[{"event":"SEND","code":"12","msg":"nope"}]}`,
			wantDesc: "Service Unavailable", temporary: true},
		{name: "502 HTML", status: 502, body: "<html>bad gateway</html>", wantDesc: "Bad Gateway", temporary: true},
		{name: "429 Retry-After seconds", status: 429, header: map[string]string{"Retry-After": "7"},
			wantDesc: "Too Many Requests", wantRetry: 7 * time.Second, temporary: true},
		{name: "400 non-JSON text", status: 400, body: "Accept header api format incorrect", wantDesc: "Bad Request"},
		{name: "400 accept format v1", status: 400, body: `{"errorDescription":"Accept header api format incorrect"}`,
			wantDesc: "Accept header api format incorrect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hits atomic.Int64
			c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = w.Write([]byte(tc.body))
			}), func(cfg *Config) { cfg.Retry.Attempts = 1 })
			err := c.Handshake(context.Background())
			var merr *Error
			if !errors.As(err, &merr) {
				t.Fatalf("err = %v (%T), want *Error", err, err)
			}
			if hits.Load() != 1 {
				t.Fatalf("hits = %d with Attempts=1", hits.Load())
			}
			if merr.HTTPStatus != tc.status || merr.Event != tc.wantEvent || merr.Code != tc.wantCode {
				t.Fatalf("got status=%d event=%q code=%q, want %d %q %q", merr.HTTPStatus, merr.Event, merr.Code, tc.status, tc.wantEvent, tc.wantCode)
			}
			if !strings.Contains(merr.Description, tc.wantDesc) {
				t.Fatalf("description %q, want it to contain %q", merr.Description, tc.wantDesc)
			}
			if merr.MessageID != tc.wantMsgID {
				t.Fatalf("MessageID = %q, want %q", merr.MessageID, tc.wantMsgID)
			}
			if merr.RetryAfter != tc.wantRetry {
				t.Fatalf("RetryAfter = %v, want %v", merr.RetryAfter, tc.wantRetry)
			}
			if merr.Temporary() != tc.temporary {
				t.Fatalf("Temporary = %v, want %v", merr.Temporary(), tc.temporary)
			}
			if tc.wantBodyIn != "" && !strings.Contains(string(merr.Body), tc.wantBodyIn) {
				t.Fatalf("Body does not keep the raw response")
			}
			if s := merr.Error(); !strings.Contains(s, "HTTP ") || (tc.wantCode != "" && !strings.Contains(s, tc.wantCode)) {
				t.Fatalf("Error() = %q", s)
			}
		})
	}
}

func TestErrorBodyTruncated(t *testing.T) {
	e := newError(400, http.Header{}, []byte(strings.Repeat("x", 10000)))
	if len(e.Body) != maxErrorBody {
		t.Fatalf("Body len %d, want %d", len(e.Body), maxErrorBody)
	}
	long := `{"errorDescription":"` + strings.Repeat("y", 1000) + `"}`
	if e := newError(400, http.Header{}, []byte(long)); len(e.Description) > maxDescription+len("…") {
		t.Fatalf("Description not truncated: %d", len(e.Description))
	}
}

func TestParseRetryAfterHTTPDate(t *testing.T) {
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	if d := parseRetryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); d != 90*time.Second {
		t.Fatalf("got %v", d)
	}
	for _, v := range []string{"", "-3", "soon", now.Add(-time.Minute).Format(http.TimeFormat)} {
		if d := parseRetryAfter(v, now); d != 0 {
			t.Fatalf("%q → %v, want 0", v, d)
		}
	}
}

func TestIsRetryableStatus(t *testing.T) {
	for status, want := range map[int]bool{425: true, 429: true, 502: true, 503: true, 504: true,
		400: false, 403: false, 404: false, 410: false, 417: false, 423: false, 500: false} {
		if got := IsRetryableStatus(status); got != want {
			t.Errorf("IsRetryableStatus(%d) = %v", status, got)
		}
	}
}

// Retry-After is honoured, and a Retry-After beyond MaxDelay ends the retries.
func TestRetryAfterHonoured(t *testing.T) {
	var hits atomic.Int64
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if hits.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		w.WriteHeader(http.StatusOK)
	}), func(cfg *Config) { cfg.Retry.MaxDelay = 5 * time.Second })
	start := time.Now()
	if err := c.Handshake(context.Background()); err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	if hits.Load() != 2 {
		t.Fatalf("hits = %d, want 2", hits.Load())
	}
	if waited := time.Since(start); waited < 900*time.Millisecond {
		t.Fatalf("retried after %v, before Retry-After", waited)
	}

	hits.Store(0)
	c2, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Retry-After", "3600")
		w.WriteHeader(http.StatusTooManyRequests)
	}), nil)
	err := c2.Handshake(context.Background())
	if merr, ok := AsError(err); !ok || merr.RetryAfter != time.Hour || hits.Load() != 1 {
		t.Fatalf("err=%v hits=%d: want one attempt and RetryAfter=1h", err, hits.Load())
	}
}
