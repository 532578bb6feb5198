package telemetry

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// Exported server spans carry the route, never the raw path or query.
func TestPathRedactor(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(PathRedactor{}), sdktrace.WithSyncer(exp))
	h := otelhttp.NewHandler(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) }),
		"test", otelhttp.WithTracerProvider(tp),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return r.Method + " unmatched" }))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/v1/patients/9434765919/SMITH?dob=19800101", nil))
	spans := exp.GetSpans()
	if len(spans) != 1 {
		t.Fatalf("%d spans", len(spans))
	}
	sawPath := false
	for _, kv := range spans[0].Attributes {
		v := kv.Value.Emit()
		if strings.Contains(v, "9434765919") || strings.Contains(v, "SMITH") || strings.Contains(v, "19800101") {
			t.Errorf("span attribute %s = %q carries the raw path or query", kv.Key, v)
		}
		if kv.Key == "url.path" {
			sawPath = v == "unmatched"
		}
	}
	if !sawPath {
		t.Errorf("url.path not rewritten to the route: %v", spans[0].Attributes)
	}
}
