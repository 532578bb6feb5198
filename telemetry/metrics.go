// Package telemetry holds the gateway's Prometheus metrics, OpenTelemetry
// tracing and the slog handler that stamps trace ids on log lines.
package telemetry

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is every metric the gateway exports on the admin port.
type Metrics struct {
	Registry *prometheus.Registry

	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	meshCalls     *prometheus.CounterVec
	meshDuration  *prometheus.HistogramVec
	ackLatency    *prometheus.HistogramVec
	webhooks      *prometheus.CounterVec
	inboxPolls    *prometheus.CounterVec
	inboxMessages *prometheus.CounterVec
}

// NewMetrics registers the metrics on a fresh registry (no global state).
func NewMetrics() *Metrics {
	m := &Metrics{Registry: prometheus.NewRegistry()}
	m.Registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.httpRequests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "meshgw", Name: "http_requests_total",
		Help: "HTTP requests by route template, method and status."}, []string{"route", "method", "status"})
	m.httpDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "meshgw", Name: "http_request_duration_seconds",
		Help: "HTTP request latency by route template.", Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}},
		[]string{"route", "method"})
	m.meshCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "meshgw", Name: "mesh_calls_total",
		Help: "MESH API calls by operation and HTTP status (\"error\" = no response)."}, []string{"operation", "status"})
	m.meshDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "meshgw", Name: "mesh_call_duration_seconds",
		Help: "MESH API call latency by operation.", Buckets: prometheus.DefBuckets}, []string{"operation"})
	m.ackLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "meshgw", Name: "ack_latency_seconds",
		Help:    "Time from MESH send to the ITK3 acknowledgement, by kind (infrastructure, business).",
		Buckets: []float64{1, 10, 60, 300, 900, 3600, 4 * 3600, 12 * 3600, 24 * 3600, 72 * 3600}}, []string{"kind"})
	m.webhooks = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "meshgw", Name: "webhook_deliveries_total",
		Help: "Webhook delivery attempts by outcome (delivered, retry, failed, disabled, refused)."}, []string{"outcome"})
	m.inboxPolls = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "meshgw", Name: "inbox_polls_total",
		Help: "MESH inbox polls by mailbox and result."}, []string{"mailbox", "result"})
	m.inboxMessages = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "meshgw", Name: "inbox_messages_total",
		Help: "Inbox message ids listed by mailbox."}, []string{"mailbox"})
	m.Registry.MustRegister(m.httpRequests, m.httpDuration, m.meshCalls, m.meshDuration, m.ackLatency, m.webhooks, m.inboxPolls, m.inboxMessages)
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{Registry: m.Registry})
}

// GinMiddleware counts requests by route template (never the raw path).
func (m *Metrics) GinMiddleware(c *gin.Context) {
	start := time.Now()
	c.Next()
	route := c.FullPath()
	if route == "" {
		route = "unmatched"
	}
	m.httpRequests.WithLabelValues(route, c.Request.Method, strconv.Itoa(c.Writer.Status())).Inc()
	m.httpDuration.WithLabelValues(route, c.Request.Method).Observe(time.Since(start).Seconds())
}

// InboxPolled implements collector.Observer.
func (m *Metrics) InboxPolled(mailbox, outcome string, messages int) {
	m.inboxPolls.WithLabelValues(mailbox, outcome).Inc()
	m.inboxMessages.WithLabelValues(mailbox).Add(float64(messages))
}

// AckLatency implements collector.Observer.
func (m *Metrics) AckLatency(kind string, d time.Duration) {
	if d >= 0 {
		m.ackLatency.WithLabelValues(kind).Observe(d.Seconds())
	}
}

// Delivered counts a webhook delivery outcome.
func (m *Metrics) Delivered(outcome string) { m.webhooks.WithLabelValues(outcome).Inc() }

// MeshTransport wraps a MESH client transport to count calls by operation.
func (m *Metrics) MeshTransport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		op := MeshOperation(r.Method, r.URL.Path)
		start := time.Now()
		resp, err := next.RoundTrip(r)
		m.meshDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
		status := "error"
		if err == nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		m.meshCalls.WithLabelValues(op, status).Inc()
		return resp, err
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// MeshOperation names a MESH API call from its method and path, so metrics
// and spans never carry message ids.
func MeshOperation(method, path string) string {
	p := strings.Split(strings.Trim(path, "/"), "/")
	if len(p) < 2 || p[0] != "messageexchange" {
		return "other"
	}
	switch {
	case p[1] == "endpointlookup":
		return "endpoint_lookup"
	case p[1] == "workflowsearch":
		return "workflow_search"
	case len(p) == 2:
		return "handshake"
	case p[2] == "outbox" && len(p) == 3:
		return "send"
	case p[2] == "outbox" && len(p) >= 4 && strings.HasPrefix(p[3], "tracking"):
		return "track"
	case p[2] == "outbox":
		return "send_chunk"
	case p[2] == "inbox" && len(p) == 3:
		return "inbox"
	case p[2] == "inbox" && len(p) >= 5 && p[4] == "status":
		return "acknowledge"
	case p[2] == "inbox" && method == http.MethodHead:
		return "head"
	case p[2] == "inbox":
		return "download"
	case p[2] == "count":
		return "count"
	}
	return "other"
}

// GaugeFunc registers a gauge computed at scrape time (outbox depth, states).
func (m *Metrics) GaugeVecFunc(name, help string, labels []string, collect func(ctx context.Context) (map[string]float64, error)) {
	m.Registry.MustRegister(&funcCollector{desc: prometheus.NewDesc("meshgw_"+name, help, labels, nil), collect: collect})
}

type funcCollector struct {
	desc    *prometheus.Desc
	collect func(ctx context.Context) (map[string]float64, error)
}

func (f *funcCollector) Describe(ch chan<- *prometheus.Desc) { ch <- f.desc }

func (f *funcCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	values, err := f.collect(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(f.desc, err)
		return
	}
	for label, v := range values {
		if label == "" {
			ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, v)
			continue
		}
		ch <- prometheus.MustNewConstMetric(f.desc, prometheus.GaugeValue, v, label)
	}
}
