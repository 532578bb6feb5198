package webhook

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const testSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// fakeSubs is an in-memory Subscriptions.
type fakeSubs struct {
	mu   sync.Mutex
	subs map[string]fakeSub
}

type fakeSub struct {
	url          string
	secrets      []string
	allowPrivate bool
}

func newFakeSubs() *fakeSubs { return &fakeSubs{subs: map[string]fakeSub{}} }

func (f *fakeSubs) set(clientID, url string, allowPrivate bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.subs[clientID] = fakeSub{url: url, secrets: []string{testSecret}, allowPrivate: allowPrivate}
}

func (f *fakeSubs) Webhook(clientID string) (string, []string, bool, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.subs[clientID]
	return s.url, s.secrets, s.allowPrivate, ok
}

// fakeClock is a controllable clock.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// received is one request seen by the test receiver.
type received struct {
	id, timestamp, signature, contentType, userAgent string
	body                                             []byte
	verifyErr                                        error
	status                                           int
}

// receiver is a loopback webhook endpoint that verifies every request with
// the Standard Webhooks reference library and answers per a script.
type receiver struct {
	t      *testing.T
	srv    *httptest.Server
	wh     *standardwebhooks.Webhook
	strict bool // verify the timestamp tolerance too (real clock)

	mu      sync.Mutex
	reqs    []received
	respond func(n int, w http.ResponseWriter, r *http.Request) int // n = 0-based request number
}

func newReceiver(t *testing.T, strict bool, respond func(n int, w http.ResponseWriter, r *http.Request) int) *receiver {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	rc := &receiver{t: t, wh: wh, strict: strict, respond: respond}
	if rc.respond == nil {
		rc.respond = func(int, http.ResponseWriter, *http.Request) int { return http.StatusNoContent }
	}
	rc.srv = httptest.NewServer(http.HandlerFunc(rc.serve))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	verify := rc.wh.VerifyIgnoringTimestamp
	if rc.strict {
		verify = rc.wh.Verify
	}
	got := received{
		id: r.Header.Get("webhook-id"), timestamp: r.Header.Get("webhook-timestamp"),
		signature: r.Header.Get("webhook-signature"), contentType: r.Header.Get("content-type"),
		userAgent: r.Header.Get("user-agent"), body: body, verifyErr: verify(body, r.Header),
	}
	rc.mu.Lock()
	n := len(rc.reqs)
	rc.reqs = append(rc.reqs, got)
	rc.mu.Unlock()
	status := rc.respond(n, w, r)
	rc.mu.Lock()
	rc.reqs[n].status = status
	rc.mu.Unlock()
	w.WriteHeader(status)
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

func (rc *receiver) count() int {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.reqs)
}

// env is one test's Redis, subscriptions and receiver.
type env struct {
	t    *testing.T
	rdb  *redis.Client
	subs *fakeSubs
}

// newEnv uses an in-process miniredis, or the real Redis at
// WEBHOOK_TEST_REDIS_ADDR (flushed first: use a scratch server) to check
// the commands against the real thing.
func newEnv(t *testing.T) *env {
	t.Helper()
	addr := os.Getenv("WEBHOOK_TEST_REDIS_ADDR")
	if addr == "" {
		addr = miniredis.RunT(t).Addr()
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr})
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return &env{t: t, rdb: rdb, subs: newFakeSubs()}
}

// testConfig is fast: tiny schedule and poll interval.
func testConfig(consumer string) Config {
	return Config{
		Consumer:      consumer,
		Workers:       4,
		Schedule:      []time.Duration{0, 10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond},
		Timeout:       2 * time.Second,
		ClaimIdle:     time.Minute,
		PollInterval:  10 * time.Millisecond,
		ThrottlePause: 10 * time.Millisecond,
	}
}

// start runs a dispatcher until the test ends.
func (e *env) start(cfg Config) *Dispatcher {
	e.t.Helper()
	d := NewDispatcher(e.rdb, e.subs, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	e.t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("Run: %v", err)
		}
	})
	return d
}

// publish appends an event the way the tracking store does.
func (e *env) publish(clientID, messageID string, seq int, typ string, extra ...string) string {
	e.t.Helper()
	eventID := messageID + ":" + strconv.Itoa(seq)
	values := []any{"eventId", eventID, "messageId", messageID, "clientId", clientID, "type", typ,
		"state", "sent", "code", "", "display", "", "meshMessageId", "MESH-" + messageID,
		"at", time.Date(2026, 11, 24, 23, 0, 0, 123, time.UTC).Format(time.RFC3339Nano)}
	for _, x := range extra {
		values = append(values, x)
	}
	if err := e.rdb.XAdd(context.Background(), &redis.XAddArgs{Stream: StreamKey, Values: values}).Err(); err != nil {
		e.t.Fatal(err)
	}
	return eventID
}

// waitFor polls cond for up to 20 s (a bound for a stuck test, not a timing
// assertion).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// deliveriesOf fetches a message's deliveries or fails the test.
func deliveriesOf(t *testing.T, d *Dispatcher, messageID string) []Delivery {
	t.Helper()
	got, err := d.Deliveries(context.Background(), messageID)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// settled waits until the message has n deliveries all out of pending.
func settled(t *testing.T, d *Dispatcher, messageID string, n int) []Delivery {
	t.Helper()
	var got []Delivery
	waitFor(t, "deliveries of "+messageID+" to settle", func() bool {
		got = deliveriesOf(t, d, messageID)
		if len(got) != n {
			return false
		}
		for _, del := range got {
			if del.Status == StatusPending {
				return false
			}
		}
		return true
	})
	return got
}

func randomSecret(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}
