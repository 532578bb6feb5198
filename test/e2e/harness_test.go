// Package e2e drives the real gateway (app.New, real HTTP listeners) against a
// real redis-server, the local MESH server and simulated GP practices.
// Every test also checks that no patient data reached the logs.
package e2e

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/meshgateway/gateway/app"
	"github.com/meshgateway/gateway/auth"
	"github.com/meshgateway/gateway/config"
	"github.com/meshgateway/gateway/internal/redistest"
	"github.com/meshgateway/gateway/itk"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/meshbridge/fakemesh"
	"github.com/meshgateway/gateway/practice"
	"github.com/meshgateway/gateway/telemetry"
	"github.com/meshgateway/gateway/tracking"
)

const (
	audience = "https://mesh-gateway.test"
	clientA  = "app-a" // sends as X26ABC1
	clientB  = "app-b" // sends as X26ABC2
	kidA     = "a-1"
	kidB     = "b-1"
)

// Demo patients of the local MESH server (fakemesh.DefaultConfig).
var (
	smith  = patient{"9000000009", "1967-01-26", "Smith", "Jane"}   // → X26GP001
	jones  = patient{"9000000017", "2001-02-14", "Jones", "Alex"}   // → X26GP001, business ack 30003 (configured below)
	mowers = patient{"9000000025", "1955-01-09", "Mowers", "Lorne"} // → X26GP002, business ack 30002 (configured below)
	taylor = patient{"9000000033", "1980-01-01", "Taylor", "Chris"} // no practice mailbox → EPL-151
)

type patient struct{ NHS, BirthDate, Family, Given string }

// secretDocument is content that must never reach a log line.
var secretDocument = []byte("%PDF-1.4\n% CONFIDENTIAL-CLINICAL-CONTENT-7f3a9 consultation notes\n%%EOF\n")

type envOptions struct {
	webhookURL      string
	replicas        int
	infAckDeadline  time.Duration
	busAckDeadline  time.Duration
	practiceInfCode map[string]string // NHS number → negative infrastructure code
	noPractice      bool
	webhookSchedule []time.Duration
	maxBody         int64
	rateLimit       string // CLIENT_RATE_LIMIT
	recommended     string // RECOMMENDED_DOCUMENT_BYTES
}

type env struct {
	t       testing.TB
	redis   string
	mesh    *fakemesh.Server
	meshURL string
	apps    []*app.App
	url     string
	keyA    *rsa.PrivateKey
	keyB    *rsa.PrivateKey
	logs    *syncBuffer
	cancel  context.CancelFunc
	done    sync.WaitGroup
	// sent holds every DATA message as MESH received it (bodies are freed after the practice acknowledges).
	sent sync.Map // MESH id → meshCopy
}

type meshCopy struct {
	info fakemesh.MessageInfo
	body []byte
}

// meshMessage returns a message as MESH received it.
func (e *env) meshMessage(id string) (fakemesh.MessageInfo, []byte, bool) {
	v, ok := e.sent.Load(id)
	if !ok {
		return fakemesh.MessageInfo{}, nil, false
	}
	c := v.(meshCopy)
	return c.info, c.body, true
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t, logs: &syncBuffer{}}
	e.redis = redistest.Start(t)
	logger := slog.New(telemetry.TraceHandler{Handler: slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})})

	meshCfg := fakemesh.DefaultConfig()
	meshCfg.Logger = logger.With("component", "fakemesh")
	srv, err := fakemesh.New(meshCfg)
	if err != nil {
		t.Fatalf("fakemesh.New: %v", err)
	}
	e.mesh = srv
	srv.OnMessage(func(mi fakemesh.MessageInfo) {
		info, body, _ := srv.Message(mi.ID)
		e.sent.Store(mi.ID, meshCopy{info, body})
	})
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	e.meshURL = hs.URL

	var jwksA, jwksB json.RawMessage
	e.keyA, jwksA = demoKey(t, kidA)
	e.keyB, jwksB = demoKey(t, kidB)
	regPath := filepath.Join(t.TempDir(), "registry.yaml")
	var b strings.Builder
	fmt.Fprintf(&b, "audience: %s\nmesh:\n  url: %s\n  sharedKey: TestKey\nmailboxes:\n", audience, e.meshURL)
	fmt.Fprintf(&b, "  - {id: X26ABC1, password: password, odsCode: X26}\n  - {id: X26ABC2, password: password, odsCode: X26}\n")
	fmt.Fprintf(&b, "clients:\n  - id: %s\n    jwks: '%s'\n    mailboxes: [X26ABC1]\n    odsCodes: [X26]\n", clientA, jwksA)
	if o.webhookURL != "" {
		fmt.Fprintf(&b, "    allowPrivateWebhook: true\n    webhook: {url: %s, secret: %s}\n", o.webhookURL, webhookSecret)
	}
	fmt.Fprintf(&b, "  - id: %s\n    jwks: '%s'\n    mailboxes: [X26ABC2]\n    odsCodes: [X26]\n", clientB, jwksB)
	if err := os.WriteFile(regPath, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	env := map[string]string{"REDIS_URL": "redis://" + e.redis + "/0", "GATEWAY_CONFIG": regPath, "LOG_LEVEL": "debug"}
	if o.infAckDeadline > 0 {
		env["INF_ACK_DEADLINE"] = o.infAckDeadline.String()
	}
	if o.busAckDeadline > 0 {
		env["BUS_ACK_DEADLINE"] = o.busAckDeadline.String()
	}
	if o.rateLimit != "" {
		env["CLIENT_RATE_LIMIT"], env["CLIENT_RATE_BURST"] = o.rateLimit, o.rateLimit
	}
	if o.recommended != "" {
		env["RECOMMENDED_DOCUMENT_BYTES"] = o.recommended
	}
	if o.maxBody > 0 {
		env["MAX_BODY_BYTES"] = fmt.Sprint(o.maxBody)
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config.Load: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel = cancel
	replicas := max(o.replicas, 1)
	schedule := o.webhookSchedule
	if schedule == nil {
		schedule = []time.Duration{0, 100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond}
	}
	for i := range replicas {
		ln := listen(t)
		admin := listen(t)
		a, err := app.New(ctx, app.Options{Config: cfg, Getenv: func(k string) string { return env[k] }, Stdout: io.Discard,
			Logger: logger.With("replica", i), Listener: ln, AdminListener: admin,
			Tuning: app.Tuning{
				Consumer: fmt.Sprintf("replica-%d", i), InboxInterval: 100 * time.Millisecond,
				TrackSchedule:   []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, time.Second},
				SendBackoff:     []time.Duration{50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond},
				WebhookSchedule: schedule, WebhookThrottle: 50 * time.Millisecond, OverdueScan: 100 * time.Millisecond, WorkerPoll: 50 * time.Millisecond,
				OutboxClaimIdle: 2 * time.Second,
			}})
		if err != nil {
			cancel()
			t.Fatalf("app.New: %v", err)
		}
		e.apps = append(e.apps, a)
		e.done.Add(1)
		go func() { defer e.done.Done(); _ = a.Run(ctx) }()
	}
	e.url = e.apps[0].URL()

	if !o.noPractice {
		for _, mb := range []string{"X26GP001", "X26GP002"} {
			c, err := meshbridge.New(meshbridge.Config{BaseURL: e.meshURL, MailboxID: mb, Password: "password", SharedKey: "TestKey"})
			if err != nil {
				t.Fatal(err)
			}
			p := practice.New(c, practice.Config{ODSCode: "A81001", Name: "Test practice", Interval: 100 * time.Millisecond,
				BusinessCodes: map[string]string{jones.NHS: "30003", mowers.NHS: "30002"}, InfAckCodes: o.practiceInfCode,
				Logger: logger.With("component", "practice")})
			e.done.Add(1)
			go func() { defer e.done.Done(); _ = p.Run(ctx) }()
		}
	}
	waitReady(t, e.url)
	t.Cleanup(func() {
		cancel()
		e.done.Wait()
		assertNoPatientData(t, e.logs.String())
	})
	return e
}

func listen(t testing.TB) net.Listener {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

func waitReady(t testing.TB, url string) {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("gateway not ready")
}

func demoKey(t testing.TB, kid string) (*rsa.PrivateKey, json.RawMessage) {
	key, jwks, err := auth.GenerateDemoKey()
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	for _, k := range set.Keys {
		k["kid"] = kid
	}
	raw, _ := json.Marshal(set)
	return key, raw
}

// token signs a fresh JWT for a client.
func (e *env) token(client string) string {
	key, kid := e.keyA, kidA
	if client == clientB {
		key, kid = e.keyB, kidB
	}
	tok, err := auth.SignToken(key, kid, "RS512", client, audience, 4*time.Minute, time.Now())
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// request builds the simple JSON request for a patient.
func request(p patient, mailbox string) map[string]any {
	return map[string]any{
		"patient": map[string]any{"nhsNumber": p.NHS, "birthDate": p.BirthDate, "name": map[string]any{"family": p.Family, "given": []string{p.Given}}},
		"sender":  map[string]any{"odsCode": "X26", "name": "Test Urgent Care", "mailbox": mailbox},
		"author":  map[string]any{"practitioner": map[string]any{"sdsUserId": "123456789012", "name": map[string]any{"family": "Doctor", "given": []string{"Dee"}}}},
		"documents": []any{map[string]any{"title": "Consultation summary", "type": map[string]any{"code": "371531000", "display": "Report of clinical encounter"},
			"contentType": "application/pdf", "data": base64.StdEncoding.EncodeToString(secretDocument)}},
	}
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r response) json(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

func (e *env) do(method, path, contentType, bearer string, body []byte, hdr map[string]string) response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

func (e *env) postJSON(client string, body any, hdr map[string]string) response {
	raw, _ := json.Marshal(body)
	return e.do("POST", "/v1/documents", "application/json", e.token(client), raw, hdr)
}

// multipartBody builds metadata + file parts.
func multipartBody(t testing.TB, metadata any, file []byte) ([]byte, string) {
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	meta, _ := json.Marshal(metadata)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="metadata"`)
	h.Set("Content-Type", "application/json")
	pw, _ := w.CreatePart(h)
	pw.Write(meta)
	if file != nil {
		h = textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="file"; filename="summary.pdf"`)
		h.Set("Content-Type", "application/pdf")
		fw, _ := w.CreatePart(h)
		fw.Write(file)
	}
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func (e *env) message(client, id string) *tracking.Message {
	e.t.Helper()
	r := e.do("GET", "/v1/messages/"+id, "", e.token(client), nil, nil)
	if r.Status != 200 {
		e.t.Fatalf("GET message: %d %s", r.Status, r.Body)
	}
	var m tracking.Message
	r.json(e.t, &m)
	return &m
}

// waitState polls the status resource until the message reaches want.
func (e *env) waitState(client, id string, want tracking.State, within time.Duration) *tracking.Message {
	e.t.Helper()
	deadline := time.Now().Add(within)
	var m *tracking.Message
	for time.Now().Before(deadline) {
		m = e.message(client, id)
		if m.State == want {
			return m
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.t.Fatalf("message %s: state %s, want %s; events %+v", id, m.State, want, m.Events)
	return nil
}

// accepted posts a JSON request and returns the tracking id.
func (e *env) accepted(client string, body any) string {
	e.t.Helper()
	r := e.postJSON(client, body, nil)
	if r.Status != http.StatusAccepted {
		e.t.Fatalf("POST /v1/documents: %d %s", r.Status, r.Body)
	}
	var out struct{ ID string }
	r.json(e.t, &out)
	return out.ID
}

// assertNoPatientData fails when any patient identifier, name, birth date or
// document byte appears in the captured logs.
func assertNoPatientData(t testing.TB, logs string) {
	t.Helper()
	var needles []string
	for _, p := range []patient{smith, jones, mowers, taylor} {
		compact := strings.ReplaceAll(p.BirthDate, "-", "")
		needles = append(needles, p.NHS, p.NHS[:3]+" "+p.NHS[3:6]+" "+p.NHS[6:], p.BirthDate, compact,
			strings.ToUpper(p.Family), p.Family, p.Given)
	}
	needles = append(needles, "CONFIDENTIAL-CLINICAL-CONTENT", base64.StdEncoding.EncodeToString(secretDocument)[:24], "GPPROVIDER_")
	for _, n := range needles {
		if strings.Contains(logs, n) {
			i := strings.Index(logs, n)
			start := max(0, i-200)
			t.Errorf("patient data %q found in logs: …%s…", n, logs[start:min(len(logs), i+80)])
		}
	}
	if len(logs) == 0 {
		t.Error("no logs captured: the patient-data check would be vacuous")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

const webhookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// smithBundle is a fresh ITK3 Send Document Bundle for patient smith from
// X26ABC1 in format f (fresh ids: a practice answers a repeated Bundle
// identifier with 20007).
func smithBundle(t testing.TB, f itk.Format) []byte {
	t.Helper()
	var req itk.SendRequest
	raw, _ := json.Marshal(request(smith, "X26ABC1"))
	if err := json.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	req.Format = f
	msg, err := itk.Build(&req, itk.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := msg.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
