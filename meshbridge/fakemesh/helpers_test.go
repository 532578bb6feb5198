package fakemesh

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	v1 = "application/vnd.mesh.v1+json"
	v2 = "application/vnd.mesh.v2+json"
)

// testClock is a settable clock for expiry and token-window tests.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is one running fake MESH plus a raw HTTP client.
type env struct {
	t      *testing.T
	srv    *Server
	ts     *httptest.Server
	clock  *testClock
	client *http.Client
	nonce  atomic.Int64
}

func newEnv(t *testing.T, mutate func(*Config)) *env {
	t.Helper()
	clock := &testClock{t: time.Date(2026, 11, 24, 19, 22, 52, 375137000, time.UTC)}
	cfg := DefaultConfig()
	cfg.Now = clock.Now
	if mutate != nil {
		mutate(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	// DisableCompression: the tests set Accept-Encoding themselves and must see raw gzip.
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)
	return &env{t: t, srv: srv, ts: ts, clock: clock, client: client}
}

// tokenAt builds an NHSMESH header independently of the server code.
func tokenAt(sharedKey, mailbox, password, nonce string, count int, ts time.Time) string {
	stamp := ts.UTC().Format("200601021504")
	mac := hmac.New(sha256.New, []byte(sharedKey))
	mac.Write([]byte(mailbox + ":" + nonce + ":" + strconv.Itoa(count) + ":" + password + ":" + stamp))
	return "NHSMESH " + mailbox + ":" + nonce + ":" + strconv.Itoa(count) + ":" + stamp + ":" + hex.EncodeToString(mac.Sum(nil))
}

func (e *env) token(mailbox string) string {
	return tokenAt(DemoSharedKey, mailbox, DemoPassword, "test-nonce", int(e.nonce.Add(1)), e.clock.Now())
}

type resp struct {
	status int
	header http.Header
	body   []byte
}

func (r resp) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.body, &m); err != nil {
		t.Fatalf("body %q is not a JSON object: %v", r.body, err)
	}
	return m
}

// req sends one request. mailbox != "" adds a fresh valid token for it.
// hdr keys are set verbatim; "Authorization" in hdr overrides the token.
func (e *env) req(method, path, mailbox string, hdr map[string]string, body []byte) resp {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		e.t.Fatalf("new request: %v", err)
	}
	if mailbox != "" {
		r.Header.Set("Authorization", e.token(mailbox))
	}
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	res, err := e.client.Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatalf("read body: %v", err)
	}
	return resp{status: res.StatusCode, header: res.Header, body: b}
}

// send posts a single-chunk message and returns its id (v2).
func (e *env) send(from, to, workflow string, body []byte, extra map[string]string) string {
	e.t.Helper()
	h := map[string]string{"Accept": v2, "mex-To": to, "mex-WorkflowID": workflow, "Content-Type": "application/fhir+json"}
	for k, v := range extra {
		h[k] = v
	}
	r := e.req(http.MethodPost, "/messageexchange/"+from+"/outbox", from, h, body)
	if r.status != http.StatusAccepted {
		e.e(r, "send")
	}
	id, _ := r.json(e.t)["message_id"].(string)
	if id == "" {
		e.t.Fatalf("send: no message_id in %s", r.body)
	}
	return id
}

func (e *env) e(r resp, what string) {
	e.t.Helper()
	e.t.Fatalf("%s: status %d body %s", what, r.status, r.body)
}

func (e *env) inboxIDs(mailbox string) []string {
	e.t.Helper()
	r := e.req(http.MethodGet, "/messageexchange/"+mailbox+"/inbox", mailbox, map[string]string{"Accept": v2}, nil)
	if r.status != http.StatusOK {
		e.e(r, "inbox")
	}
	var body struct {
		Messages []string `json:"messages"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		e.t.Fatalf("inbox body: %v", err)
	}
	return body.Messages
}

func (e *env) tracking(mailbox, id, accept string) resp {
	e.t.Helper()
	return e.req(http.MethodGet, "/messageexchange/"+mailbox+"/outbox/tracking?messageID="+id, mailbox, map[string]string{"Accept": accept}, nil)
}

func wantStatus(t *testing.T, r resp, want int) {
	t.Helper()
	if r.status != want {
		t.Fatalf("status %d, want %d; body %s", r.status, want, r.body)
	}
}

func wantBody(t *testing.T, r resp, want string) {
	t.Helper()
	if string(r.body) != want {
		t.Fatalf("body\n got %s\nwant %s", r.body, want)
	}
}
