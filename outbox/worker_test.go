package outbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/tracking"
)

// clock is a test clock the worker and store share.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type sendCall struct {
	opts meshbridge.SendOptions
	body []byte
	size int64
	from int
	mesh string
}

// fakeSender is a scripted MeshSender that records every call.
type fakeSender struct {
	mu        sync.Mutex
	sends     []sendCall
	continues []sendCall
	tracks    int
	// send answers call n (0-based); nil = success with id "MESH-<n>".
	send  func(ctx context.Context, n int) (meshbridge.SendResult, error)
	cont  func(n int) (meshbridge.SendResult, error)
	track func(n int) (*meshbridge.Tracking, error)
	// afterID runs once OnMessageID returned, where chunk 2 would be sent.
	afterID  func(meshID string)
	inflight int
	maxIn    int
	hold     time.Duration
	gzips    atomic.Bool // what Gzips answers (the client's compression settings)
}

func (f *fakeSender) enter() {
	f.mu.Lock()
	f.inflight++
	f.maxIn = max(f.maxIn, f.inflight)
	f.mu.Unlock()
}

func (f *fakeSender) leave() { f.mu.Lock(); f.inflight--; f.mu.Unlock() }

func (f *fakeSender) Send(ctx context.Context, opts meshbridge.SendOptions, body io.Reader, size int64) (meshbridge.SendResult, error) {
	f.enter()
	defer f.leave()
	b, err := io.ReadAll(body)
	if err != nil {
		return meshbridge.SendResult{}, err
	}
	f.mu.Lock()
	n := len(f.sends)
	f.sends = append(f.sends, sendCall{opts: opts, body: b, size: size})
	script := f.send
	f.mu.Unlock()
	if f.hold > 0 {
		time.Sleep(f.hold)
	}
	if script != nil {
		if res, err := script(ctx, n); err != nil || res.MessageID != "" {
			return res, err
		}
	}
	id := fmt.Sprintf("MESH-%d", n)
	if opts.OnMessageID != nil {
		if err := opts.OnMessageID(ctx, id); err != nil {
			return meshbridge.SendResult{MessageID: id, Chunks: 1}, err
		}
	}
	if f.afterID != nil {
		f.afterID(id)
	}
	return meshbridge.SendResult{MessageID: id, Chunks: 1}, nil
}

func (f *fakeSender) ContinueSend(_ context.Context, messageID string, fromChunk int, body io.Reader, size int64, opts meshbridge.SendOptions) (meshbridge.SendResult, error) {
	b, err := io.ReadAll(body)
	if err != nil {
		return meshbridge.SendResult{}, err
	}
	f.mu.Lock()
	n := len(f.continues)
	f.continues = append(f.continues, sendCall{opts: opts, body: b, size: size, from: fromChunk, mesh: messageID})
	f.mu.Unlock()
	if f.cont != nil {
		return f.cont(n)
	}
	return meshbridge.SendResult{MessageID: messageID, Chunks: 3}, nil
}

func (f *fakeSender) Track(_ context.Context, messageID string) (*meshbridge.Tracking, error) {
	f.mu.Lock()
	n := f.tracks
	f.tracks++
	f.mu.Unlock()
	if f.track != nil {
		return f.track(n)
	}
	return &meshbridge.Tracking{MessageID: messageID, Status: meshbridge.TrackingAccepted}, nil
}

func (f *fakeSender) Gzips(int64) bool { return f.gzips.Load() }

func (f *fakeSender) counts() (sends, continues, tracks int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.sends), len(f.continues), f.tracks
}

type senderMap map[string]MeshSender

func (m senderMap) ForMailbox(id string) (MeshSender, bool) { s, ok := m[id]; return s, ok }

// syncBuffer collects log output from concurrent goroutines.
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

type harness struct {
	t     *testing.T
	m     *miniredis.Miniredis
	rdb   redis.UniversalClient
	store *tracking.Store
	clock *clock
	logs  *syncBuffer
}

const (
	patientTo      = "9434765919_SMITH_19800101"
	patientSubject = "Discharge summary for Jane Smith"
	payloadText    = "<Bundle>patient document 9434765919</Bundle>"
)

func newHarness(t *testing.T) *harness {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{m.Addr()}})
	t.Cleanup(func() { _ = rdb.Close() })
	c := &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
	h := &harness{t: t, m: m, rdb: rdb, clock: c, logs: &syncBuffer{},
		store: tracking.NewStore(rdb, tracking.StoreOptions{Now: c.Now})}
	t.Cleanup(func() {
		// Whatever happened, no patient data reached the logs.
		out := h.logs.String()
		for _, secret := range []string{patientTo, patientSubject, "9434765919", "Jane"} {
			if strings.Contains(out, secret) {
				t.Errorf("logs contain patient data %q", secret)
			}
		}
	})
	return h
}

func (h *harness) config(consumer string) Config {
	return Config{
		Consumer: consumer, Concurrency: 4, PerMailbox: 2, ClaimIdle: 2 * time.Minute,
		Backoff: []time.Duration{time.Minute}, MaxAttempts: 5, ChunkSize: 8,
		TrackSchedule: []time.Duration{2 * time.Minute, 5 * time.Minute, 15 * time.Minute},
		PollInterval:  5 * time.Millisecond, Now: h.clock.Now, DrainTimeout: 2 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
}

func (h *harness) accept(id, mailbox, payload string) {
	h.t.Helper()
	msg := &tracking.Message{ID: id, ClientID: "client-1", Mailbox: mailbox, To: patientTo,
		WorkflowID: "GPFED_CONSULT_REPORT", Subject: patientSubject, ContentType: "application/fhir+xml"}
	if _, _, err := h.store.Accept(context.Background(), msg, strings.NewReader(payload)); err != nil {
		h.t.Fatal(err)
	}
}

// run starts a worker and returns a stop function that waits for Run.
func (h *harness) run(senders Senders, cfg Config) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	w := NewWorker(h.store, h.rdb, senders, cfg)
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				h.t.Errorf("Run: %v", err)
			}
		})
	}
	h.t.Cleanup(stop)
	return stop
}

// waitState waits (bounded) until message id is in state want.
func (h *harness) waitState(id string, want tracking.State) *tracking.Message {
	h.t.Helper()
	var rec *tracking.Message
	for range 2000 {
		var err error
		rec, err = h.store.Get(context.Background(), id)
		if err == nil && rec.State == want {
			return rec
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("message %s never reached %s (last %+v)", id, want, rec)
	return nil
}

func (h *harness) waitUntil(what string, cond func() bool) {
	h.t.Helper()
	for range 2000 {
		if cond() {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("timed out waiting for %s", what)
}

// pollDueIn reports whether message id's next tracking poll is d from now.
func (h *harness) pollDueIn(id string, d time.Duration) func() bool {
	return func() bool {
		score, err := h.rdb.ZScore(context.Background(), tracking.TrackDue, id).Result()
		return err == nil && int64(score) == h.clock.Now().Add(d).UnixMilli()
	}
}

func eventTypes(m *tracking.Message) string {
	var s []string
	for _, e := range m.Events {
		s = append(s, string(e.Type))
	}
	return strings.Join(s, ",")
}

func (h *harness) streamEmpty() bool {
	n, _ := h.rdb.XLen(context.Background(), tracking.OutboxStream).Result()
	p, err := h.rdb.XPending(context.Background(), tracking.OutboxStream, Group).Result()
	return n == 0 && err == nil && p.Count == 0
}

func TestHappyPath(t *testing.T) {
	h := newHarness(t)
	// The attempt is on record before chunk 1 goes out, and the MESH id
	// before chunk 2 would.
	var before, afterID *tracking.Message
	f := &fakeSender{
		send: func(context.Context, int) (meshbridge.SendResult, error) {
			before, _ = h.store.Get(context.Background(), "m1")
			return meshbridge.SendResult{}, nil
		},
		afterID: func(string) { afterID, _ = h.store.Get(context.Background(), "m1") },
	}
	h.accept("m1", "MBX1", payloadText)
	h.run(senderMap{"MBX1": f}, h.config("a"))
	rec := h.waitState("m1", tracking.StateSent)
	if before.State != tracking.StateSending || before.FirstChunkAttempts != 1 || !before.FirstChunkUnconfirmed ||
		eventTypes(before) != "accepted,send_attempt" {
		t.Fatalf("record while chunk 1 was in flight: %+v", before)
	}
	if afterID.MeshMessageID != "MESH-0" || afterID.FirstChunkUnconfirmed || afterID.State != tracking.StateSending {
		t.Fatalf("record after OnMessageID: %+v", afterID)
	}
	if rec.MeshMessageID != "MESH-0" || rec.SentAt == nil || rec.FirstChunkAttempts != 1 || rec.FirstChunkUnconfirmed {
		t.Fatalf("record = %+v", rec)
	}
	if got := eventTypes(rec); got != "accepted,send_attempt,sent" {
		t.Fatalf("events = %s", got)
	}
	sends, conts, _ := f.counts()
	if sends != 1 || conts != 0 {
		t.Fatalf("sends=%d continues=%d", sends, conts)
	}
	c := f.sends[0]
	if string(c.body) != payloadText || c.size != int64(len(payloadText)) || c.opts.To != patientTo ||
		c.opts.WorkflowID != "GPFED_CONSULT_REPORT" || c.opts.ChunkSize != 8 || c.opts.Subject != patientSubject {
		t.Fatalf("send call = %+v", c)
	}
	h.waitUntil("stream drained", h.streamEmpty)
	h.waitUntil("first tracking poll 2m after sending", h.pollDueIn("m1", 2*time.Minute))
	if found, err := h.store.FindByMeshMessageID(context.Background(), "MESH-0"); err != nil || found.ID != "m1" {
		t.Fatalf("FindByMeshMessageID = %v, %v", found, err)
	}
}

func TestRejections(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		wantCode  string
		wantLevel string
	}{
		{"417 unregistered", &meshbridge.FirstChunkError{Err: &meshbridge.Error{HTTPStatus: 417, Event: "SEND",
			Code: "12", Description: "Unregistered to address"}}, "12", `"level":"WARN"`},
		{"400 malformed", &meshbridge.FirstChunkError{Err: &meshbridge.Error{HTTPStatus: 400, Event: "TRANSFER",
			Code: "06", Description: "MalformedControlFile"}}, "06", `"level":"WARN"`},
		{"417 workflow not permitted", &meshbridge.FirstChunkError{Err: &meshbridge.Error{HTTPStatus: 417, Event: "SEND",
			Code: "17", Description: "Workflow ID not registered for mailbox"}}, "17", `"level":"WARN"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			f := &fakeSender{send: func(context.Context, int) (meshbridge.SendResult, error) { return meshbridge.SendResult{}, tt.err }}
			h.accept("m1", "MBX1", payloadText)
			h.run(senderMap{"MBX1": f}, h.config("a"))
			rec := h.waitState("m1", tracking.StateRejected)
			me, _ := meshbridge.AsError(tt.err)
			if rec.LastError == nil || rec.LastError.Code != tt.wantCode || rec.LastError.HTTPStatus != me.HTTPStatus ||
				rec.LastError.Description != me.Description || rec.LastError.Event != me.Event {
				t.Fatalf("LastError = %+v", rec.LastError)
			}
			if got := eventTypes(rec); got != "accepted,send_attempt,rejected" {
				t.Fatalf("events = %s", got)
			}
			h.waitUntil("stream drained", h.streamEmpty)
			if sends, _, _ := f.counts(); sends != 1 {
				t.Fatalf("sends = %d", sends)
			}
			logs := h.logs.String()
			if !strings.Contains(logs, tt.wantLevel) || !strings.Contains(logs, "MESH rejected the message") {
				t.Fatalf("logs lack %s rejection: %s", tt.wantLevel, logs)
			}
		})
	}
}

// MESH answers 403 (or 401) when the mailbox's authentication fails:
// password rotation, an inactive mailbox, clock drift. Nothing was created,
// so the message is retried with the usual backoff (an ERROR line naming
// the mailbox alerts operations) and fails only at MaxAttempts.
func TestAuthFailureRetries(t *testing.T) {
	for _, tt := range []struct {
		name string
		res  meshbridge.SendResult
		err  error
	}{
		{"403 invalid token", meshbridge.SendResult{}, &meshbridge.FirstChunkError{Err: &meshbridge.Error{HTTPStatus: 403,
			Description: "Invalid Authentication Token"}}},
		{"403 inactive mailbox", meshbridge.SendResult{}, &meshbridge.FirstChunkError{Err: &meshbridge.Error{HTTPStatus: 403,
			Description: "Request Received from Inactive Mailbox"}}},
		{"401", meshbridge.SendResult{}, &meshbridge.FirstChunkError{Err: &meshbridge.Error{HTTPStatus: 401, Description: "Unauthorized"}}},
		{"403 on chunk 2", meshbridge.SendResult{MessageID: "MESH-9", Chunks: 1}, &meshbridge.ChunkError{MessageID: "MESH-9", Chunk: 2, Total: 2,
			Err: &meshbridge.Error{HTTPStatus: 403, Description: "Invalid Authentication Token"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			me, _ := meshbridge.AsError(tt.err)
			f := &fakeSender{
				send: func(context.Context, int) (meshbridge.SendResult, error) { return tt.res, tt.err },
				cont: func(int) (meshbridge.SendResult, error) { return tt.res, tt.err },
				track: func(int) (*meshbridge.Tracking, error) {
					return &meshbridge.Tracking{Status: meshbridge.TrackingUploading}, nil
				},
			}
			cfg := h.config("a")
			cfg.MaxAttempts = 3
			h.accept("m1", "MBX1", payloadText)
			h.run(senderMap{"MBX1": f}, cfg)
			for i := 1; i < cfg.MaxAttempts; i++ {
				h.waitUntil("retry scheduled", func() bool {
					n, _ := h.rdb.ZCard(context.Background(), tracking.OutboxDelayed).Result()
					s, c, _ := f.counts()
					return n == 1 && s+c == i
				})
				rec, _ := h.store.Get(context.Background(), "m1")
				if rec.State != tracking.StateSending || rec.LastError == nil || rec.LastError.HTTPStatus != me.HTTPStatus ||
					rec.LastError.Description != me.Description {
					t.Fatalf("after attempt %d: %+v", i, rec)
				}
				if _, first := tt.err.(*meshbridge.FirstChunkError); first && rec.FirstChunkUnconfirmed {
					t.Fatalf("a refused chunk 1 is not a reconcile: %+v", rec)
				}
				h.clock.Add(2 * time.Minute)
			}
			rec := h.waitState("m1", tracking.StateFailed)
			if rec.LastError == nil || rec.LastError.Code != CodeGaveUp || rec.LastError.HTTPStatus != me.HTTPStatus ||
				rec.Attempts != cfg.MaxAttempts {
				t.Fatalf("record = %+v", rec)
			}
			if got := eventTypes(rec); strings.Contains(got, "rejected") || strings.Count(got, "send_retry") != cfg.MaxAttempts-1 {
				t.Fatalf("events = %s", got)
			}
			logs := h.logs.String()
			if strings.Contains(logs, "MESH rejected the message") {
				t.Fatalf("auth failure logged as a rejection: %s", logs)
			}
			var alert string
			for line := range strings.Lines(logs) {
				if strings.Contains(line, "MESH refused the mailbox's authentication") {
					alert = line
					break
				}
			}
			if !strings.Contains(alert, `"level":"ERROR"`) || !strings.Contains(alert, `"mailbox":"MBX1"`) ||
				!strings.Contains(alert, fmt.Sprintf(`"http_status":%d`, me.HTTPStatus)) {
				t.Fatalf("no ERROR alert naming mailbox and status: %q\n%s", alert, logs)
			}
		})
	}
}

func TestTransientThenSuccess(t *testing.T) {
	h := newHarness(t)
	f := &fakeSender{send: func(_ context.Context, n int) (meshbridge.SendResult, error) {
		if n == 0 {
			return meshbridge.SendResult{}, &meshbridge.FirstChunkError{Err: &meshbridge.Error{HTTPStatus: 503,
				Description: "Service Unavailable", RetryAfter: 10 * time.Minute}}
		}
		return meshbridge.SendResult{}, nil
	}}
	h.accept("m1", "MBX1", payloadText)
	h.run(senderMap{"MBX1": f}, h.config("a"))
	h.waitUntil("retry scheduled", func() bool {
		n, _ := h.rdb.ZCard(context.Background(), tracking.OutboxDelayed).Result()
		return n == 1
	})
	score, _ := h.rdb.ZScore(context.Background(), tracking.OutboxDelayed, "m1").Result()
	// Retry-After (10m) wins over the 1m backoff.
	if due := time.UnixMilli(int64(score)); due.Before(h.clock.Now().Add(10 * time.Minute)) {
		t.Fatalf("retry due %v, want >= now+10m", due)
	}
	rec, _ := h.store.Get(context.Background(), "m1")
	if rec.State != tracking.StateSending || rec.LastError == nil || rec.LastError.HTTPStatus != 503 {
		t.Fatalf("after 503: %+v", rec)
	}
	h.clock.Add(11 * time.Minute)
	rec = h.waitState("m1", tracking.StateSent)
	// A definite 503 created nothing in MESH: the second try is a plain send.
	if got := eventTypes(rec); got != "accepted,send_attempt,send_retry,send_attempt,sent" {
		t.Fatalf("events = %s", got)
	}
	if rec.Attempts != 2 || rec.LastError != nil || rec.MeshMessageID != "MESH-1" {
		t.Fatalf("record = %+v", rec)
	}
}

func TestGivesUpAfterMaxAttempts(t *testing.T) {
	h := newHarness(t)
	f := &fakeSender{send: func(context.Context, int) (meshbridge.SendResult, error) {
		return meshbridge.SendResult{}, &meshbridge.FirstChunkError{Err: &meshbridge.Error{HTTPStatus: 502}, Uncertain: false}
	}}
	cfg := h.config("a")
	cfg.MaxAttempts = 3
	h.accept("m1", "MBX1", payloadText)
	h.run(senderMap{"MBX1": f}, cfg)
	for i := 1; i < 3; i++ {
		h.waitUntil("retry scheduled", func() bool {
			n, _ := h.rdb.ZCard(context.Background(), tracking.OutboxDelayed).Result()
			s, _, _ := f.counts()
			return n == 1 && s == i
		})
		h.clock.Add(2 * time.Minute)
	}
	rec := h.waitState("m1", tracking.StateFailed)
	if rec.LastError == nil || rec.LastError.Code != CodeGaveUp || rec.Attempts != 3 {
		t.Fatalf("record = %+v", rec)
	}
	if sends, _, _ := f.counts(); sends != 3 {
		t.Fatalf("sends = %d", sends)
	}
}

func TestUncertainFirstChunkResends(t *testing.T) {
	h := newHarness(t)
	f := &fakeSender{send: func(_ context.Context, n int) (meshbridge.SendResult, error) {
		if n == 0 {
			return meshbridge.SendResult{}, &meshbridge.FirstChunkError{Err: errors.New("read: connection reset"), Uncertain: true}
		}
		return meshbridge.SendResult{}, nil
	}}
	h.accept("m1", "MBX1", payloadText)
	h.run(senderMap{"MBX1": f}, h.config("a"))
	h.waitUntil("retry scheduled", func() bool {
		n, _ := h.rdb.ZCard(context.Background(), tracking.OutboxDelayed).Result()
		return n == 1
	})
	rec, _ := h.store.Get(context.Background(), "m1")
	if !rec.FirstChunkUnconfirmed || rec.LastError.Code != CodeTransportErr {
		t.Fatalf("after uncertain: %+v", rec)
	}
	h.clock.Add(2 * time.Minute)
	rec = h.waitState("m1", tracking.StateSent)
	if got := eventTypes(rec); got != "accepted,send_attempt,send_retry,resent,sent" {
		t.Fatalf("events = %s", got)
	}
	sends, _, _ := f.counts()
	if sends != 2 || rec.FirstChunkAttempts != 2 || !bytes.Equal(f.sends[0].body, f.sends[1].body) {
		t.Fatalf("sends=%d firstChunkAttempts=%d", sends, rec.FirstChunkAttempts)
	}
}

// A replica crashed after MESH accepted chunk 1 (id recorded) but before the
// last chunk: the next owner continues from chunk 2, never re-sends chunk 1.
func TestCrashMidChunksContinues(t *testing.T) {
	h := newHarness(t)
	payload := "AAAAAAAABBBBBBBBCCCC" // 3 chunks of 8
	h.accept("m1", "MBX1", payload)
	if _, err := h.store.Transition(context.Background(), "m1", nil, tracking.StateSending,
		tracking.Event{Type: tracking.EventSendAttempt}, func(m *tracking.Message) {
			m.FirstChunkAttempts, m.Attempts, m.ChunkSize = 1, 1, 8
		}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.store.Update(context.Background(), "m1", func(m *tracking.Message) error {
		m.MeshMessageID, m.ChunksSent = "MESH-77", 1
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f := &fakeSender{track: func(int) (*meshbridge.Tracking, error) {
		return &meshbridge.Tracking{Status: meshbridge.TrackingUploading}, nil
	}}
	h.run(senderMap{"MBX1": f}, h.config("b"))
	rec := h.waitState("m1", tracking.StateSent)
	sends, conts, _ := f.counts()
	if sends != 0 || conts != 1 {
		t.Fatalf("sends=%d continues=%d", sends, conts)
	}
	c := f.continues[0]
	if c.mesh != "MESH-77" || c.from != 2 || string(c.body) != payload[8:] || c.size != 20 || c.opts.ChunkSize != 8 {
		t.Fatalf("continue call = %+v body %q", c, c.body)
	}
	if c.opts.Gzip != nil {
		// A record from before the encoding was kept: the client decides.
		t.Fatalf("continue of a record without Gzipped passed Gzip=%v, want nil", *c.opts.Gzip)
	}
	if rec.MeshMessageID != "MESH-77" || rec.ChunksSent != 3 {
		t.Fatalf("record = %+v", rec)
	}
}

// Chunk 1's encoding is recorded before it is sent and every later chunk
// repeats it, also after a restart with other compression settings (MESH
// refuses a change of Content-Encoding with 417).
func TestGzipDecisionKeptOnResume(t *testing.T) {
	for _, first := range []bool{true, false} {
		t.Run(fmt.Sprintf("gzipped=%v", first), func(t *testing.T) {
			h := newHarness(t)
			payload := "AAAAAAAABBBBBBBBCCCCCCCCDD" // 4 chunks of 8
			h.accept("m1", "MBX1", payload)
			var before *tracking.Message
			f := &fakeSender{
				send: func(ctx context.Context, n int) (meshbridge.SendResult, error) {
					before, _ = h.store.Get(context.Background(), "m1")
					return meshbridge.SendResult{MessageID: "MESH-5", Chunks: 2},
						&meshbridge.ChunkError{MessageID: "MESH-5", Chunk: 3, Total: 4, Err: &meshbridge.Error{HTTPStatus: 503}}
				},
				track: func(int) (*meshbridge.Tracking, error) {
					return &meshbridge.Tracking{Status: meshbridge.TrackingUploading}, nil
				},
			}
			f.gzips.Store(first)
			h.run(senderMap{"MBX1": f}, h.config("a"))
			h.waitUntil("retry scheduled", func() bool {
				n, _ := h.rdb.ZCard(context.Background(), tracking.OutboxDelayed).Result()
				return n == 1
			})
			if before.Gzipped == nil || *before.Gzipped != first {
				t.Fatalf("record while chunk 1 was in flight: Gzipped=%v, want %v", before.Gzipped, first)
			}
			if g := f.sends[0].opts.Gzip; g == nil || *g != first {
				t.Fatalf("Send got Gzip=%v, want %v", g, first)
			}
			f.gzips.Store(!first) // e.g. MESH_COMPRESS_THRESHOLD changed at a restart
			h.clock.Add(2 * time.Minute)
			rec := h.waitState("m1", tracking.StateSent)
			if _, conts, _ := f.counts(); conts != 1 || f.continues[0].from != 3 {
				t.Fatalf("continues = %+v", f.continues)
			}
			if g := f.continues[0].opts.Gzip; g == nil || *g != first {
				t.Fatalf("ContinueSend got Gzip=%v, want chunk 1's %v", g, first)
			}
			if rec.Gzipped == nil || *rec.Gzipped != first {
				t.Fatalf("record Gzipped=%v, want %v", rec.Gzipped, first)
			}
		})
	}
}

// A chunk failure records progress; the retry resumes after the last
// accepted chunk.
func TestChunkFailureResumesFromFailedChunk(t *testing.T) {
	h := newHarness(t)
	payload := "AAAAAAAABBBBBBBBCCCCCCCCDD" // 4 chunks of 8
	h.accept("m1", "MBX1", payload)
	f := &fakeSender{
		send: func(ctx context.Context, n int) (meshbridge.SendResult, error) {
			return meshbridge.SendResult{MessageID: "MESH-5", Chunks: 2},
				&meshbridge.ChunkError{MessageID: "MESH-5", Chunk: 3, Total: 4, Err: &meshbridge.Error{HTTPStatus: 503}}
		},
		track: func(int) (*meshbridge.Tracking, error) {
			return &meshbridge.Tracking{Status: meshbridge.TrackingUploading}, nil
		},
	}
	h.run(senderMap{"MBX1": f}, h.config("a"))
	h.waitUntil("retry scheduled", func() bool {
		n, _ := h.rdb.ZCard(context.Background(), tracking.OutboxDelayed).Result()
		return n == 1
	})
	h.clock.Add(2 * time.Minute)
	rec := h.waitState("m1", tracking.StateSent)
	sends, conts, _ := f.counts()
	if sends != 1 || conts != 1 || f.continues[0].from != 3 || string(f.continues[0].body) != payload[16:] {
		t.Fatalf("sends=%d continues=%d calls=%+v", sends, conts, f.continues)
	}
	if rec.MeshMessageID != "MESH-5" || eventTypes(rec) != "accepted,send_attempt,send_retry,sent" {
		t.Fatalf("record = %+v events %s", rec, eventTypes(rec))
	}
}

// Worker A dies mid-send without acking; worker B takes the entry over once
// it has been idle for ClaimIdle (miniredis clock), and reconciles.
func TestReclaimFromDeadConsumer(t *testing.T) {
	h := newHarness(t)
	start := time.Now()
	h.m.SetTime(start)
	h.accept("m1", "MBX1", payloadText)
	entered := make(chan struct{})
	stuck := &fakeSender{send: func(ctx context.Context, _ int) (meshbridge.SendResult, error) {
		close(entered)
		<-ctx.Done()
		return meshbridge.SendResult{}, &meshbridge.FirstChunkError{Err: ctx.Err(), Uncertain: true}
	}}
	stopA := h.run(senderMap{"MBX1": stuck}, h.config("replica-a"))
	<-entered
	stopA()
	p, err := h.rdb.XPendingExt(context.Background(), &redis.XPendingExtArgs{
		Stream: tracking.OutboxStream, Group: Group, Start: "-", End: "+", Count: 10}).Result()
	if err != nil || len(p) != 1 || p[0].Consumer != "replica-a" {
		t.Fatalf("pending after crash = %+v, %v", p, err)
	}

	healthy := &fakeSender{}
	h.run(senderMap{"MBX1": healthy}, h.config("replica-b"))
	// Not idle long enough yet: B must leave it alone.
	for range 20 {
		time.Sleep(5 * time.Millisecond)
		if s, _, _ := healthy.counts(); s != 0 {
			t.Fatal("entry taken over before ClaimIdle")
		}
	}
	h.m.SetTime(start.Add(3 * time.Minute))
	rec := h.waitState("m1", tracking.StateSent)
	if got := eventTypes(rec); got != "accepted,send_attempt,resent,sent" {
		t.Fatalf("events = %s", got)
	}
	if s, _, _ := healthy.counts(); s != 1 {
		t.Fatalf("B sends = %d", s)
	}
	h.waitUntil("stream drained", h.streamEmpty)
}

// Sends per mailbox are bounded: by PerMailbox, or by a mailbox's own limit
// (the registry's maxConcurrentSends) in either direction.
func TestPerMailboxConcurrency(t *testing.T) {
	tests := []struct {
		name        string
		perMailbox  int
		own         map[string]int
		wantA       [2]int // allowed range of the most concurrent sends for MBXA
		wantB       [2]int
		concurrency int
	}{
		{"global limit", 2, nil, [2]int{1, 2}, [2]int{1, 2}, 6},
		{"own limits", 2, map[string]int{"mbxa": 1, "MBXB": 4}, [2]int{1, 1}, [2]int{3, 4}, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t)
			a := &fakeSender{hold: 50 * time.Millisecond}
			b := &fakeSender{hold: 50 * time.Millisecond}
			for i := range 8 {
				h.accept(fmt.Sprintf("a%d", i), "MBXA", payloadText)
				h.accept(fmt.Sprintf("b%d", i), "MBXB", payloadText)
			}
			cfg := h.config("a")
			cfg.Concurrency, cfg.PerMailbox, cfg.MailboxPerMailbox = tc.concurrency, tc.perMailbox, tc.own
			h.run(senderMap{"MBXA": a, "MBXB": b}, cfg)
			for i := range 8 {
				h.waitState(fmt.Sprintf("a%d", i), tracking.StateSent)
				h.waitState(fmt.Sprintf("b%d", i), tracking.StateSent)
			}
			for name, c := range map[string]struct {
				f    *fakeSender
				want [2]int
			}{"MBXA": {a, tc.wantA}, "MBXB": {b, tc.wantB}} {
				c.f.mu.Lock()
				if c.f.maxIn < c.want[0] || c.f.maxIn > c.want[1] || len(c.f.sends) != 8 {
					t.Errorf("%s: max concurrent %d (want %d..%d), sends %d", name, c.f.maxIn, c.want[0], c.want[1], len(c.f.sends))
				}
				c.f.mu.Unlock()
			}
		})
	}
}

func TestTrackingPollDelivered(t *testing.T) {
	h := newHarness(t)
	f := &fakeSender{track: func(n int) (*meshbridge.Tracking, error) {
		if n == 0 {
			return &meshbridge.Tracking{Status: meshbridge.TrackingAccepted}, nil
		}
		return &meshbridge.Tracking{Status: meshbridge.TrackingAcknowledged}, nil
	}}
	h.accept("m1", "MBX1", payloadText)
	h.run(senderMap{"MBX1": f}, h.config("a"))
	h.waitState("m1", tracking.StateSent)
	h.waitUntil("first poll scheduled 2m after sending", h.pollDueIn("m1", 2*time.Minute))
	h.clock.Add(2 * time.Minute) // first poll: still accepted
	h.waitUntil("second poll scheduled 5m later", h.pollDueIn("m1", 5*time.Minute))
	if rec, _ := h.store.Get(context.Background(), "m1"); rec.TrackPolls != 1 {
		t.Fatalf("TrackPolls = %d", rec.TrackPolls)
	}
	h.clock.Add(5 * time.Minute)
	rec := h.waitState("m1", tracking.StateDelivered)
	if rec.DeliveredAt == nil || !rec.DeliveredAt.Equal(h.clock.Now()) {
		t.Fatalf("DeliveredAt = %v", rec.DeliveredAt)
	}
	h.waitUntil("polling stopped", func() bool {
		n, _ := h.rdb.ZCard(context.Background(), tracking.TrackDue).Result()
		return n == 0
	})
	if _, _, tracks := f.counts(); tracks != 2 {
		t.Fatalf("tracks = %d", tracks)
	}
}

func TestTrackingPollUndeliverableAndExhaustion(t *testing.T) {
	h := newHarness(t)
	f := &fakeSender{track: func(n int) (*meshbridge.Tracking, error) {
		return &meshbridge.Tracking{Status: meshbridge.TrackingUndeliverable, StatusEvent: "SEND",
			StatusCode: "14", StatusDescription: "Message not collected by recipient after 5 days"}, nil
	}}
	quiet := &fakeSender{}
	h.accept("m1", "MBX1", payloadText)
	h.accept("m2", "MBX2", payloadText)
	h.run(senderMap{"MBX1": f, "MBX2": quiet}, h.config("a"))
	h.waitState("m1", tracking.StateSent)
	h.waitState("m2", tracking.StateSent)
	// Time moves on an hour per check until nothing is left to poll.
	h.waitUntil("polling stopped", func() bool {
		h.clock.Add(time.Hour)
		n, _ := h.rdb.ZCard(context.Background(), tracking.TrackDue).Result()
		return n == 0
	})
	rec := h.waitState("m1", tracking.StateUndeliverable)
	if rec.LastError == nil || rec.LastError.Code != "14" {
		t.Fatalf("record = %+v", rec)
	}
	// m2 stayed "accepted" in MESH: exactly one poll per schedule slot, then stop.
	if _, _, tracks := quiet.counts(); tracks != 3 {
		t.Fatalf("polls of m2 = %d, want 3", tracks)
	}
	rec2, _ := h.store.Get(context.Background(), "m2")
	if rec2.State != tracking.StateSent || rec2.TrackPolls != 3 {
		t.Fatalf("m2 = %+v", rec2)
	}
}

func TestUnknownMailboxFails(t *testing.T) {
	h := newHarness(t)
	h.accept("m1", "NOPE", payloadText)
	h.run(senderMap{}, h.config("a"))
	rec := h.waitState("m1", tracking.StateFailed)
	if rec.LastError == nil || rec.LastError.Code != CodeNoMailbox {
		t.Fatalf("record = %+v", rec)
	}
}

func TestMailboxSendersIgnoresCase(t *testing.T) {
	f := &fakeSender{}
	m := MailboxSenders{"X26HC001": f}
	for _, id := range []string{"X26HC001", "x26hc001"} {
		if s, ok := m.ForMailbox(id); !ok || s != f {
			t.Errorf("ForMailbox(%s) = %v, %v", id, s, ok)
		}
	}
	if _, ok := m.ForMailbox("OTHER"); ok {
		t.Error("unknown mailbox found")
	}
}

// A mailbox's own chunk size (the registry's chunkSize) wins over the global
// one, for the send and on the record a resume splits the payload by.
func TestMailboxChunkSize(t *testing.T) {
	h := newHarness(t)
	payload := "AAAAAAAAAAAAAAAABBBBBBBBBBBBBBBBCCCC" // 36 bytes
	h.accept("m1", "MBX1", payload)
	h.accept("m2", "MBX2", payload)
	// m3 is from before chunk sizes were recorded, MESH holds chunk 1: it
	// resumes with its mailbox's chunk size.
	h.accept("m3", "MBX3", payload)
	if _, err := h.store.Transition(context.Background(), "m3", nil, tracking.StateSending,
		tracking.Event{Type: tracking.EventSendAttempt}, func(m *tracking.Message) {
			m.FirstChunkAttempts, m.Attempts, m.MeshMessageID, m.ChunksSent = 1, 1, "MESH-33", 1
		}); err != nil {
		t.Fatal(err)
	}
	uploading := func(int) (*meshbridge.Tracking, error) {
		return &meshbridge.Tracking{Status: meshbridge.TrackingUploading}, nil
	}
	f1, f2, f3 := &fakeSender{}, &fakeSender{}, &fakeSender{track: uploading}
	cfg := h.config("a") // ChunkSize 8
	cfg.MailboxChunkSize = map[string]int64{"mbx1": 16, "MBX2": 0, "MBX3": 12}
	h.run(senderMap{"MBX1": f1, "MBX2": f2, "MBX3": f3}, cfg)
	rec1 := h.waitState("m1", tracking.StateSent)
	rec2 := h.waitState("m2", tracking.StateSent)
	h.waitState("m3", tracking.StateSent)
	if s, _, _ := f1.counts(); s != 1 || f1.sends[0].opts.ChunkSize != 16 {
		t.Fatalf("MBX1 sends = %+v, want one with its own chunk size 16", f1.sends)
	}
	if s, _, _ := f2.counts(); s != 1 || f2.sends[0].opts.ChunkSize != 8 {
		t.Fatalf("MBX2 sends = %+v, want one with the global chunk size 8", f2.sends)
	}
	if rec1.ChunkSize != 16 || rec1.ChunksSent != 3 || rec2.ChunkSize != 8 || rec2.ChunksSent != 5 {
		t.Fatalf("recorded chunk size/chunks: MBX1 %d/%d (want 16/3), MBX2 %d/%d (want 8/5)",
			rec1.ChunkSize, rec1.ChunksSent, rec2.ChunkSize, rec2.ChunksSent)
	}
	if s, c, _ := f3.counts(); s != 0 || c != 1 || f3.continues[0].from != 2 || string(f3.continues[0].body) != payload[12:] ||
		f3.continues[0].opts.ChunkSize != 12 {
		t.Fatalf("MBX3 resume = %+v, want from chunk 2 of 12 bytes", f3.continues)
	}
}

// Large (multi-chunk) sends share a memory budget for their chunk buffers;
// small ones never wait for it.
func TestSendMemoryBudget(t *testing.T) {
	h := newHarness(t)
	big := strings.Repeat("B", 40) // 5 chunks of 8 bytes: reserves 2 chunks (16 bytes)
	for i := range 5 {
		h.accept(fmt.Sprintf("big%d", i), "MBXA", big)
	}
	release := make(chan struct{})
	var mu sync.Mutex
	inflight, maxBig, smallDuringBig := 0, 0, 0
	f := &fakeSender{}
	f.send = func(ctx context.Context, n int) (meshbridge.SendResult, error) {
		f.mu.Lock()
		size := f.sends[n].size
		f.mu.Unlock()
		if size <= 8 {
			mu.Lock()
			if inflight > 0 {
				smallDuringBig++
			}
			mu.Unlock()
			return meshbridge.SendResult{}, nil
		}
		mu.Lock()
		inflight++
		maxBig = max(maxBig, inflight)
		mu.Unlock()
		select { // a worker stopped by a failing test must not hang here
		case <-release:
		case <-ctx.Done():
		}
		mu.Lock()
		inflight--
		mu.Unlock()
		return meshbridge.SendResult{}, nil
	}
	cfg := h.config("a")
	cfg.Concurrency, cfg.PerMailbox, cfg.SendMemory = 8, 8, 32 // room for two large sends
	h.run(senderMap{"MBXA": f}, cfg)
	h.waitUntil("two large sends in flight", func() bool { mu.Lock(); defer mu.Unlock(); return inflight >= 2 })
	time.Sleep(50 * time.Millisecond) // a third would have started by now
	for i := range 3 {
		h.accept(fmt.Sprintf("small%d", i), "MBXA", "tiny")
	}
	for i := range 3 {
		h.waitState(fmt.Sprintf("small%d", i), tracking.StateSent)
	}
	close(release)
	for i := range 5 {
		h.waitState(fmt.Sprintf("big%d", i), tracking.StateSent)
	}
	mu.Lock()
	defer mu.Unlock()
	if maxBig != 2 || smallDuringBig != 3 {
		t.Fatalf("max concurrent large sends %d (budget allows 2), small sends during them %d (want 3)", maxBig, smallDuringBig)
	}
	if !strings.Contains(h.logs.String(), "large send waiting for send memory") {
		t.Error("no log line for a send waiting for memory")
	}
}

// redisOutage fails every Redis command from the moment the worker asks for
// a mailbox's sender, and ends as soon as the worker logs that it could not
// record the failure: so the write of the failed state is lost and the
// entry's settling is not.
type redisOutage struct {
	m    *miniredis.Miniredis
	once sync.Once
}

func (o *redisOutage) ForMailbox(string) (MeshSender, bool) {
	o.m.SetError("LOADING Redis is loading the dataset in memory")
	return nil, false
}

func (o *redisOutage) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("outbox record failure failed")) {
		o.once.Do(func() { o.m.SetError("") })
	}
	return len(p), nil
}

// A failure the worker could not record leaves the outbox entry pending, so
// a later pass records it; acking it would leave the message 'accepted'
// forever with nobody to look at it again.
func TestUnrecordedFailureStaysPending(t *testing.T) {
	h := newHarness(t)
	h.accept("m1", "NOBOX", payloadText)
	outage := &redisOutage{m: h.m}
	cfg := h.config("a")
	cfg.Logger = slog.New(slog.NewJSONHandler(io.MultiWriter(h.logs, outage), &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.run(outage, cfg)
	h.waitUntil("the failure could not be recorded", func() bool {
		return strings.Contains(h.logs.String(), "outbox record failure failed")
	})
	time.Sleep(50 * time.Millisecond) // the handler settles the entry right after
	pending, err := h.rdb.XPending(context.Background(), tracking.OutboxStream, Group).Result()
	if err != nil {
		t.Fatal(err)
	}
	rec, err := h.store.Get(context.Background(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != tracking.StateAccepted || pending.Count != 1 {
		t.Fatalf("state %s, pending entries %d: want the message still queued (accepted, 1 pending)", rec.State, pending.Count)
	}
}

// Once MESH has accepted a message, a Redis blip while recording it must not
// lead to a second send: the worker keeps trying to record 'sent'.
func TestSentRecordedThroughRedisBlip(t *testing.T) {
	h := newHarness(t)
	h.accept("m1", "MBXA", payloadText)
	f := &fakeSender{}
	f.send = func(ctx context.Context, n int) (meshbridge.SendResult, error) {
		h.m.Close()                                                            // Redis goes away just as MESH answers 202, and comes back
		go func() { time.Sleep(2500 * time.Millisecond); _ = h.m.Restart() }() // longer than go-redis retries itself
		return meshbridge.SendResult{MessageID: fmt.Sprintf("MESH-%d", n)}, nil
	}
	h.run(senderMap{"MBXA": f}, h.config("a"))
	rec := h.waitState("m1", tracking.StateSent)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 1 || rec.MeshMessageID != "MESH-0" {
		t.Fatalf("%d sends (want 1), MESH id %q", len(f.sends), rec.MeshMessageID)
	}
	if !strings.Contains(h.logs.String(), "outbox record sent failed, retrying") {
		t.Fatal("the blip did not hit the sent record: the test did not exercise the retry")
	}
}

// A message whose every attempt ends without an outcome (the replica dies
// mid-send) is failed once MaxAttempts attempts are on record, instead of
// being taken up again forever.
func TestAttemptsWithoutOutcomeGiveUp(t *testing.T) {
	h := newHarness(t)
	h.accept("m1", "MBXA", payloadText)
	cfg := h.config("a")
	for range cfg.MaxAttempts { // as left by replicas killed during each send
		if _, err := h.store.Update(context.Background(), "m1", func(m *tracking.Message) error { m.Attempts++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	f := &fakeSender{}
	h.run(senderMap{"MBXA": f}, cfg)
	rec := h.waitState("m1", tracking.StateFailed)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.sends) != 0 || rec.LastError == nil || rec.LastError.Code != CodeGaveUp {
		t.Fatalf("sends %d, last error %+v: want no send and %s", len(f.sends), rec.LastError, CodeGaveUp)
	}
}

// Stopping the worker lets a send in flight finish and be recorded, instead
// of cutting it off with MESH's answer unknown (the next owner would send it
// again).
func TestStopDrainsSendsInFlight(t *testing.T) {
	h := newHarness(t)
	h.accept("m1", "MBXA", payloadText)
	f := &fakeSender{}
	f.send = func(ctx context.Context, n int) (meshbridge.SendResult, error) {
		select {
		case <-time.After(300 * time.Millisecond): // MESH takes its time to answer
			return meshbridge.SendResult{MessageID: fmt.Sprintf("MESH-%d", n)}, nil
		case <-ctx.Done():
			return meshbridge.SendResult{}, ctx.Err()
		}
	}
	stop := h.run(senderMap{"MBXA": f}, h.config("a"))
	h.waitUntil("a send in flight", func() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.inflight == 1 })
	stop()
	rec, err := h.store.Get(context.Background(), "m1")
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != tracking.StateSent || rec.MeshMessageID != "MESH-0" {
		t.Fatalf("after stop: state %s, MESH id %q; want the send finished and recorded", rec.State, rec.MeshMessageID)
	}
}

// A mailbox id written in another case is the same mailbox: one limit.
func TestMailboxLimitIgnoresCase(t *testing.T) {
	h := newHarness(t)
	a := &fakeSender{hold: 30 * time.Millisecond}
	for i := range 4 {
		h.accept(fmt.Sprintf("u%d", i), "MBXA", payloadText)
		h.accept(fmt.Sprintf("l%d", i), "mbxa", payloadText)
	}
	cfg := h.config("a")
	cfg.Concurrency, cfg.MailboxPerMailbox = 8, map[string]int{"MBXA": 1}
	h.run(senderMap{"MBXA": a, "mbxa": a}, cfg)
	for i := range 4 {
		h.waitState(fmt.Sprintf("u%d", i), tracking.StateSent)
		h.waitState(fmt.Sprintf("l%d", i), tracking.StateSent)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.maxIn != 1 {
		t.Fatalf("%d concurrent sends for MBXA/mbxa, limit 1", a.maxIn)
	}
}

// A backlog for one tightly limited mailbox does not hold every handler:
// another mailbox's message goes out without waiting for the backlog.
func TestBusyMailboxDoesNotBlockOthers(t *testing.T) {
	h := newHarness(t)
	a := &fakeSender{hold: 100 * time.Millisecond}
	b := &fakeSender{}
	for i := range 8 {
		h.accept(fmt.Sprintf("a%d", i), "MBXA", payloadText)
	}
	h.accept("b0", "MBXB", payloadText)
	cfg := h.config("a")
	cfg.Concurrency, cfg.MailboxPerMailbox = 4, map[string]int{"MBXA": 1}
	h.run(senderMap{"MBXA": a, "MBXB": b}, cfg)
	h.waitState("b0", tracking.StateSent)
	started, _, _ := a.counts()
	if started > 3 {
		t.Fatalf("MBXB's message waited for %d of MBXA's 8 sends (one at a time, 100 ms each)", started)
	}
	for i := range 8 {
		h.waitState(fmt.Sprintf("a%d", i), tracking.StateSent)
	}
}

// A send from chunk 1 reserves memory for the chunk size it will use now;
// a resume, for the one MESH already has.
func TestChunkSizeForReservation(t *testing.T) {
	w := &Worker{cfg: Config{ChunkSize: 8, MailboxChunkSize: map[string]int64{"MBX1": 16}}}
	for _, tc := range []struct {
		name string
		rec  tracking.Message
		want int64
	}{
		{"new message", tracking.Message{Mailbox: "mbx1"}, 16},
		{"chunk 1 again, recorded size from an earlier attempt", tracking.Message{Mailbox: "MBX1", ChunkSize: 8}, 16},
		{"resume", tracking.Message{Mailbox: "MBX1", ChunkSize: 8, MeshMessageID: "M-1"}, 8},
		{"other mailbox", tracking.Message{Mailbox: "MBX2"}, 8},
	} {
		if got := w.chunkSize(&tc.rec); got != tc.want {
			t.Errorf("%s: chunk size %d, want %d", tc.name, got, tc.want)
		}
	}
}
