package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/meshgateway/gateway/app"
	"github.com/meshgateway/gateway/config"
	"github.com/meshgateway/gateway/internal/redistest"
	"github.com/meshgateway/gateway/meshbridge/fakemesh"
	"github.com/meshgateway/gateway/tracking"
	"github.com/meshgateway/gateway/webhook"
)

// hookRequest is one webhook request as the receiver saw it.
type hookRequest struct {
	ID, Timestamp, Signature string
	Body                     []byte
	VerifyErr                error // from the Standard Webhooks reference library
	Status                   int   // what the receiver answered
	Event                    hookEvent
}

// hookEvent is the thin webhook payload.
type hookEvent struct {
	Type      string `json:"type"`
	Timestamp string `json:"timestamp"`
	Data      struct {
		ID            string `json:"id"`
		State         string `json:"state"`
		MeshMessageID string `json:"meshMessageId"`
		Code          string `json:"code"`
		Display       string `json:"display"`
		EventID       string `json:"eventId"`
	} `json:"data"`
}

// hookReceiver is a loopback webhook endpoint. Every request is verified
// with the independent Standard Webhooks library; respond decides the status
// from the webhook-id and how many times that id has been seen (1-based).
type hookReceiver struct {
	srv     *httptest.Server
	wh      *standardwebhooks.Webhook
	respond func(webhookID string, attempt int) int
	conns   atomic.Int64 // TCP connections accepted

	mu    sync.Mutex
	reqs  []hookRequest
	perID map[string]int
}

// newHookReceiver starts a plain-http receiver (respond nil: always 200).
func newHookReceiver(t *testing.T, respond func(webhookID string, attempt int) int) *hookReceiver {
	return startHookReceiver(t, respond, false)
}

func startHookReceiver(t *testing.T, respond func(string, int) int, tls bool) *hookReceiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(webhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	if respond == nil {
		respond = func(string, int) int { return http.StatusOK }
	}
	r := &hookReceiver{wh: wh, respond: respond, perID: map[string]int{}}
	r.srv = httptest.NewUnstartedServer(http.HandlerFunc(r.serve))
	r.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			r.conns.Add(1)
		}
	}
	if tls {
		r.srv.StartTLS()
	} else {
		r.srv.Start()
	}
	t.Cleanup(r.srv.Close)
	return r
}

func (r *hookReceiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	got := hookRequest{
		ID: req.Header.Get("webhook-id"), Timestamp: req.Header.Get("webhook-timestamp"),
		Signature: req.Header.Get("webhook-signature"), Body: body,
		VerifyErr: r.wh.Verify(body, req.Header), // timestamp tolerance enforced: real clock
	}
	if err := json.Unmarshal(body, &got.Event); err != nil && got.VerifyErr == nil {
		got.VerifyErr = fmt.Errorf("body is not JSON: %w", err)
	}
	r.mu.Lock()
	r.perID[got.ID]++
	got.Status = r.respond(got.ID, r.perID[got.ID])
	r.reqs = append(r.reqs, got)
	r.mu.Unlock()
	w.WriteHeader(got.Status)
}

// URL is where the gateway should POST.
func (r *hookReceiver) URL() string { return r.srv.URL + "/hooks/mesh" }

// requests returns a copy of every request so far.
func (r *hookReceiver) requests() []hookRequest {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]hookRequest(nil), r.reqs...)
}

// forMessage keeps the requests about one tracking message.
func forMessage(reqs []hookRequest, messageID string) []hookRequest {
	var out []hookRequest
	for _, q := range reqs {
		if q.Event.Data.ID == messageID {
			out = append(out, q)
		}
	}
	return out
}

// waitHooks polls until cond holds for the received requests.
func (r *hookReceiver) waitHooks(t *testing.T, within time.Duration, what string, cond func([]hookRequest) bool) []hookRequest {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		reqs := r.requests()
		if cond(reqs) {
			return reqs
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhooks: %s not seen within %s; received %s", what, within, describeHooks(reqs))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// delivered2xx returns, per webhook-id, how many 2xx answers the receiver gave.
func delivered2xx(reqs []hookRequest) map[string]int {
	out := map[string]int{}
	for _, q := range reqs {
		if q.Status >= 200 && q.Status < 300 {
			out[q.ID]++
		}
	}
	return out
}

// typesDelivered maps event type → webhook-ids answered 2xx, for one message.
func typesDelivered(reqs []hookRequest) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for _, q := range reqs {
		if q.Status < 200 || q.Status >= 300 {
			continue
		}
		if out[q.Event.Type] == nil {
			out[q.Event.Type] = map[string]bool{}
		}
		out[q.Event.Type][q.ID] = true
	}
	return out
}

func describeHooks(reqs []hookRequest) string {
	var b strings.Builder
	for _, q := range reqs {
		fmt.Fprintf(&b, "\n  %s %s msg=%s code=%s → %d", q.ID, q.Event.Type, q.Event.Data.ID, q.Event.Data.Code, q.Status)
	}
	return b.String()
}

// assertVerified fails for any request whose signature the reference library rejects.
func assertVerified(t *testing.T, reqs []hookRequest) {
	t.Helper()
	for _, q := range reqs {
		if q.VerifyErr != nil {
			t.Errorf("webhook %s (%s): Standard Webhooks verification failed: %v", q.ID, q.Event.Type, q.VerifyErr)
		}
	}
}

// patientNeedles is every demo patient identifier a webhook body must not carry.
func patientNeedles() []string {
	var needles []string
	for _, p := range []patient{smith, jones, mowers, taylor} {
		needles = append(needles, p.NHS, p.NHS[:3]+" "+p.NHS[3:6]+" "+p.NHS[6:], p.BirthDate,
			strings.ReplaceAll(p.BirthDate, "-", ""), p.Family, strings.ToUpper(p.Family), p.Given)
	}
	return append(needles, "GPPROVIDER_", "CONFIDENTIAL-CLINICAL-CONTENT", base64.StdEncoding.EncodeToString(secretDocument)[:24])
}

// assertThin fails when a webhook body carries patient data.
func assertThin(t *testing.T, reqs []hookRequest) {
	t.Helper()
	for _, q := range reqs {
		for _, n := range patientNeedles() {
			if bytes.Contains(q.Body, []byte(n)) {
				t.Errorf("webhook %s (%s) body carries patient data %q: %s", q.ID, q.Event.Type, n, q.Body)
			}
		}
	}
}

// deliveries reads GET /v1/messages/{id}/deliveries.
func (e *env) deliveries(client, id string) []webhook.Delivery {
	e.t.Helper()
	r := e.do("GET", "/v1/messages/"+id+"/deliveries", "", e.token(client), nil, nil)
	if r.Status != http.StatusOK {
		e.t.Fatalf("GET deliveries: %d %s", r.Status, r.Body)
	}
	var out struct {
		Deliveries []webhook.Delivery `json:"deliveries"`
	}
	r.json(e.t, &out)
	return out.Deliveries
}

// waitDeliveries polls the deliveries resource until n deliveries exist and
// none is pending.
func (e *env) waitDeliveries(client, id string, n int, within time.Duration) []webhook.Delivery {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ds := e.deliveries(client, id)
		settled := len(ds) == n
		for _, d := range ds {
			settled = settled && d.Status != webhook.StatusPending
		}
		if settled {
			return ds
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("deliveries of %s: want %d settled, have %+v", id, n, ds)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// attention reads GET /v1/messages?state=attention.
func (e *env) attention(client string) []*tracking.Message {
	e.t.Helper()
	r := e.do("GET", "/v1/messages?state=attention", "", e.token(client), nil, nil)
	if r.Status != http.StatusOK {
		e.t.Fatalf("GET attention: %d %s", r.Status, r.Body)
	}
	var out struct {
		Messages []*tracking.Message `json:"messages"`
	}
	r.json(e.t, &out)
	return out.Messages
}

// waitMessage polls the status resource until cond holds.
func (e *env) waitMessage(client, id string, within time.Duration, what string, cond func(*tracking.Message) bool) *tracking.Message {
	e.t.Helper()
	deadline := time.Now().Add(within)
	for {
		m := e.message(client, id)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("message %s: %s not reached within %s; state %s, events %+v", id, what, within, m.State, m.Events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// acceptedVia posts the JSON request to one replica's base URL.
func (e *env) acceptedVia(baseURL, client string, body any) string {
	e.t.Helper()
	raw, _ := json.Marshal(body)
	req, err := http.NewRequest("POST", baseURL+"/v1/documents", bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.token(client))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("POST %s: %v", baseURL, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		e.t.Fatalf("POST %s/v1/documents: %d %s", baseURL, resp.StatusCode, b)
	}
	var out struct{ ID string }
	if err := json.Unmarshal(b, &out); err != nil || out.ID == "" {
		e.t.Fatalf("202 body %s: %v", b, err)
	}
	return out.ID
}

// registryYAML is the e2e registry with client app-a's webhook lines given
// verbatim (the harness always sets allowPrivateWebhook; the SSRF tests
// need it unset).
func registryYAML(meshURL string, jwksA json.RawMessage, webhookLines string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "audience: %s\nmesh:\n  url: %s\n  sharedKey: TestKey\nmailboxes:\n", audience, meshURL)
	fmt.Fprintf(&b, "  - {id: X26ABC1, password: password, odsCode: X26}\n")
	fmt.Fprintf(&b, "clients:\n  - id: %s\n    jwks: '%s'\n    mailboxes: [X26ABC1]\n    odsCodes: [X26]\n%s", clientA, jwksA, webhookLines)
	return b.String()
}

// gatewayConfig writes a registry file and loads the gateway config for it.
func gatewayConfig(t *testing.T, redisAddr, registry string) (*config.Config, func(string) string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "registry.yaml")
	if err := os.WriteFile(path, []byte(registry), 0o600); err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{"REDIS_URL": "redis://" + redisAddr + "/0", "GATEWAY_CONFIG": path, "LOG_LEVEL": "debug"}
	getenv := func(k string) string { return vars[k] }
	cfg, err := config.Load(getenv)
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	return cfg, getenv
}

// newEnvWithWebhook starts a one-replica gateway (real redis-server, local
// MESH, no practices) whose client app-a has the given webhook registry
// lines, e.g. without allowPrivateWebhook. It fills the same env the
// harness does, so env helpers work, and checks the logs at cleanup.
func newEnvWithWebhook(t *testing.T, webhookLines string) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuffer{}}
	e.redis = redistest.Start(t)
	logger := slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	meshCfg := fakemesh.DefaultConfig()
	meshCfg.Logger = logger.With("component", "fakemesh")
	srv, err := fakemesh.New(meshCfg)
	if err != nil {
		t.Fatalf("fakemesh.New: %v", err)
	}
	e.mesh = srv
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e.meshURL = hs.URL

	var jwksA json.RawMessage
	e.keyA, jwksA = demoKey(t, kidA)
	e.keyB = e.keyA
	cfg, getenv := gatewayConfig(t, e.redis, registryYAML(e.meshURL, jwksA, webhookLines))
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	a, err := app.New(ctx, app.Options{Config: cfg, Getenv: getenv, Stdout: io.Discard, Logger: logger,
		Listener: listen(t), AdminListener: listen(t),
		Tuning: app.Tuning{Consumer: "replica-0", InboxInterval: 100 * time.Millisecond,
			TrackSchedule: []time.Duration{100 * time.Millisecond}, SendBackoff: []time.Duration{50 * time.Millisecond},
			WebhookSchedule: []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond}, WebhookThrottle: 100 * time.Millisecond,
			OverdueScan: 100 * time.Millisecond, WorkerPoll: 50 * time.Millisecond, OutboxClaimIdle: 2 * time.Second}})
	if err != nil {
		cancel()
		t.Fatalf("app.New: %v", err)
	}
	e.apps = []*app.App{a}
	e.url = a.URL()
	e.done.Add(1)
	go func() { defer e.done.Done(); _ = a.Run(ctx) }()
	waitReady(t, e.url)
	t.Cleanup(func() {
		cancel()
		e.done.Wait()
		assertNoPatientData(t, e.logs.String())
	})
	return e
}
