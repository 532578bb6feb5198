package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestMeshOperation(t *testing.T) {
	tests := []struct{ method, path, want string }{
		{"POST", "/messageexchange/X26ABC1", "handshake"},
		{"POST", "/messageexchange/X26ABC1/outbox", "send"},
		{"POST", "/messageexchange/X26ABC1/outbox/20200529155357895317_3573F8/2", "send_chunk"},
		{"GET", "/messageexchange/X26ABC1/outbox/tracking", "track"},
		{"GET", "/messageexchange/X26ABC1/inbox", "inbox"},
		{"GET", "/messageexchange/X26ABC1/inbox/ID", "download"},
		{"GET", "/messageexchange/X26ABC1/inbox/ID/2", "download"},
		{"HEAD", "/messageexchange/X26ABC1/inbox/ID", "head"},
		{"PUT", "/messageexchange/X26ABC1/inbox/ID/status/acknowledged", "acknowledge"},
		{"GET", "/messageexchange/endpointlookup/X26/GPCONNECT_SEND_DOCUMENT", "endpoint_lookup"},
		{"GET", "/messageexchange/workflowsearch/GPCONNECT_SEND_DOCUMENT", "workflow_search"},
		{"GET", "/health", "other"},
	}
	for _, tc := range tests {
		if got := MeshOperation(tc.method, tc.path); got != tc.want {
			t.Errorf("MeshOperation(%s %s) = %s, want %s", tc.method, tc.path, got, tc.want)
		}
	}
}

func TestMeshTransportCountsByOperation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) }))
	defer srv.Close()
	m := NewMetrics()
	c := &http.Client{Transport: m.MeshTransport(nil)}
	resp, err := c.Post(srv.URL+"/messageexchange/X26ABC1/outbox", "application/octet-stream", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `meshgw_mesh_calls_total{operation="send",status="202"} 1`) {
		t.Fatalf("metrics:\n%s", rec.Body.String())
	}
}

func TestTraceHandlerStampsTraceID(t *testing.T) {
	tr, err := SetupTracing(context.Background(), "", "test", "0")
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Shutdown(context.Background())
	var buf bytes.Buffer
	log := slog.New(TraceHandler{slog.NewJSONHandler(&buf, nil)})
	ctx, span := tr.Tracer("t").Start(context.Background(), "op")
	log.InfoContext(ctx, "inside")
	span.End()
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.Contains(lines[0], `"trace_id":"`+span.SpanContext().TraceID().String()+`"`) {
		t.Fatalf("no trace id: %s", lines[0])
	}
	if strings.Contains(lines[1], "trace_id") {
		t.Fatalf("trace id without a span: %s", lines[1])
	}
}
