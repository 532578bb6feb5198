package telemetry

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing owns the tracer provider; Shutdown flushes spans.
type Tracing struct {
	Provider *sdktrace.TracerProvider
}

// SetupTracing builds a tracer provider. With an OTLP endpoint (the standard
// OTEL_EXPORTER_OTLP_* variables are honoured by the exporter) spans are
// exported; without one they are still created so trace ids reach the logs.
func SetupTracing(ctx context.Context, endpoint, serviceName, version string) (*Tracing, error) {
	// OTEL_SERVICE_NAME / OTEL_RESOURCE_ATTRIBUTES (in resource.Default) win over ours.
	res, err := resource.Merge(resource.NewWithAttributes(semconv.SchemaURL,
		semconv.ServiceName(serviceName), semconv.ServiceVersion(version)), resource.Default())
	if err != nil {
		res = resource.Default()
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res)}
	if endpoint != "" {
		exp, err := otlptracehttp.New(ctx)
		if err != nil {
			return nil, fmt.Errorf("otlptracehttp.New: %w", err)
		}
		opts = append(opts, sdktrace.WithSpanProcessor(PathRedactor{}), sdktrace.WithBatcher(exp))
	} else {
		// Nothing exports spans: keep the (valid) trace ids for the logs but
		// record nothing, which spares every request the attribute work.
		opts = append(opts, sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	tp := sdktrace.NewTracerProvider(opts...)
	// The global provider/propagator is how otelhttp and friends find it;
	// set once at startup from run().
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	return &Tracing{Provider: tp}, nil
}

// PathRedactor rewrites the raw request path that HTTP server
// instrumentation records (url.path, http.target) to the route in the span
// name, and empties url.query and url.full: a path or query can carry
// anything a caller typed, patient data included. Span names are routes
// already (see the gateway's span name formatter).
type PathRedactor struct{}

// OnStart implements sdktrace.SpanProcessor.
func (PathRedactor) OnStart(_ context.Context, s sdktrace.ReadWriteSpan) {
	if s.SpanKind() != trace.SpanKindServer {
		return
	}
	route := s.Name()
	if _, r, ok := strings.Cut(route, " "); ok {
		route = r
	}
	for _, kv := range s.Attributes() {
		switch kv.Key {
		case "url.path", "http.target":
			s.SetAttributes(attribute.String(string(kv.Key), route))
		case "url.query", "url.full":
			s.SetAttributes(attribute.String(string(kv.Key), ""))
		}
	}
}

// OnEnd implements sdktrace.SpanProcessor.
func (PathRedactor) OnEnd(sdktrace.ReadOnlySpan) {}

// Shutdown implements sdktrace.SpanProcessor.
func (PathRedactor) Shutdown(context.Context) error { return nil }

// ForceFlush implements sdktrace.SpanProcessor.
func (PathRedactor) ForceFlush(context.Context) error { return nil }

// Shutdown flushes and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil || t.Provider == nil {
		return nil
	}
	return t.Provider.Shutdown(ctx)
}

// Tracer returns a named tracer for spans around Redis-backed work.
func (t *Tracing) Tracer(name string) trace.Tracer { return t.Provider.Tracer(name) }

// TraceHandler adds trace_id/span_id to every record logged with a context
// that carries a span.
type TraceHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h TraceHandler) Handle(ctx context.Context, r slog.Record) error {
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h TraceHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return TraceHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h TraceHandler) WithGroup(name string) slog.Handler {
	return TraceHandler{h.Handler.WithGroup(name)}
}
