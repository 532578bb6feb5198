package webhook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestDeliversSignedThinPayload(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, nil)
	e.subs.set("client-a", rc.srv.URL+"/hooks?token=abc", true)
	d := e.start(testConfig("r1"))

	eventID := e.publish("client-a", "m1", 3, "delivered",
		"nhsNumber", "9434765919", "subject", "PATIENT NAME") // must not leak into the payload
	dels := settled(t, d, "m1", 1)

	reqs := rc.requests()
	if len(reqs) != 1 {
		t.Fatalf("receiver got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.verifyErr != nil {
		t.Fatalf("standard-webhooks Verify: %v", r.verifyErr)
	}
	if want := WebhookID("client-a", eventID); r.id != want {
		t.Errorf("webhook-id = %q, want %q", r.id, want)
	}
	if r.contentType != "application/json" || r.userAgent != "MESH-Gateway-Webhooks/1" {
		t.Errorf("content-type %q, user-agent %q", r.contentType, r.userAgent)
	}
	if !strings.HasPrefix(r.signature, "v1,") {
		t.Errorf("signature %q", r.signature)
	}
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"type":      "message.delivered",
		"timestamp": "2026-11-24T23:00:00.000000123Z",
		"data": map[string]any{
			"id": "m1", "state": "sent", "meshMessageId": "MESH-m1", "eventId": eventID,
		},
	}
	if fmt.Sprint(body) != fmt.Sprint(want) {
		t.Errorf("body = %s\nwant %v", r.body, want)
	}
	if strings.Contains(string(r.body), "9434765919") || strings.Contains(string(r.body), "PATIENT") {
		t.Error("payload carries patient data")
	}
	if len(r.body) > 20<<10 {
		t.Errorf("payload %d bytes", len(r.body))
	}

	del := dels[0]
	if del.Status != StatusDelivered || del.ID != r.id || len(del.Attempts) != 1 || del.Attempts[0].StatusCode != 204 {
		t.Errorf("delivery = %+v", del)
	}
	if del.NextAttemptAt != nil || del.LastError != "" || del.ClientID != "client-a" || del.Type != "message.delivered" {
		t.Errorf("delivery = %+v", del)
	}
	if strings.Contains(del.URL, "token") {
		t.Errorf("stored URL %q keeps its query", del.URL)
	}
}

func TestRetriesUntilSuccessWithStableID(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, func(n int, w http.ResponseWriter, _ *http.Request) int {
		if n < 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	e.subs.set("c", rc.srv.URL, true)
	d := e.start(testConfig("r1"))

	e.publish("c", "m2", 1, "sent")
	dels := settled(t, d, "m2", 1)

	reqs := rc.requests()
	if len(reqs) != 3 {
		t.Fatalf("attempts = %d, want 3", len(reqs))
	}
	ok := 0
	for i, r := range reqs {
		if r.verifyErr != nil {
			t.Errorf("attempt %d: Verify: %v", i, r.verifyErr)
		}
		if r.id != reqs[0].id || string(r.body) != string(reqs[0].body) {
			t.Errorf("attempt %d: id %q body %s differ from the first", i, r.id, r.body)
		}
		if r.status/100 == 2 {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("2xx deliveries = %d, want 1", ok)
	}
	var codes []int
	for _, a := range dels[0].Attempts {
		codes = append(codes, a.StatusCode)
	}
	if fmt.Sprint(codes) != "[503 503 200]" || dels[0].Status != StatusDelivered {
		t.Errorf("delivery %s attempts %v", dels[0].Status, codes)
	}
}

func TestGivesUpAfterLastAttempt(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, func(int, http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError })
	e.subs.set("c", rc.srv.URL, true)
	d := e.start(testConfig("r1"))

	e.publish("c", "m3", 1, "failed")
	dels := settled(t, d, "m3", 1)
	if rc.count() != 4 || dels[0].Status != StatusFailed || len(dels[0].Attempts) != 4 {
		t.Fatalf("requests %d, delivery %+v; want 4 attempts then failed", rc.count(), dels[0])
	}
	if !strings.Contains(dels[0].LastError, "gave up after 4 attempts: HTTP 500") {
		t.Errorf("lastError %q", dels[0].LastError)
	}
	if n, _ := e.rdb.ZCard(context.Background(), dueKey).Result(); n != 0 {
		t.Errorf("due queue holds %d entries after the last attempt", n)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	tests := []struct {
		name       string
		retryAfter func(now time.Time) string
		want       time.Duration
	}{
		{"seconds", func(time.Time) string { return "120" }, 120 * time.Second},
		{"HTTP-date", func(now time.Time) string { return now.Add(300 * time.Second).UTC().Format(http.TimeFormat) }, 300 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			clock := &fakeClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
			rc := newReceiver(t, false, func(n int, w http.ResponseWriter, _ *http.Request) int {
				if n == 0 {
					w.Header().Set("Retry-After", tc.retryAfter(clock.Now()))
					return http.StatusTooManyRequests
				}
				return http.StatusOK
			})
			e.subs.set("c", rc.srv.URL, true)
			cfg := testConfig("r1")
			cfg.Now = clock.Now
			cfg.MaxRetryAfter = time.Hour
			d := e.start(cfg)

			e.publish("c", "m4", 1, "infack")
			var del Delivery
			waitFor(t, "first attempt", func() bool {
				dels := deliveriesOf(t, d, "m4")
				if len(dels) == 1 && len(dels[0].Attempts) == 1 && dels[0].NextAttemptAt != nil {
					del = dels[0]
					return true
				}
				return false
			})
			if got := del.NextAttemptAt.Sub(clock.Now()); got < tc.want-time.Second || got > tc.want+time.Second {
				t.Fatalf("next attempt in %s, want %s (schedule says 10ms)", got, tc.want)
			}
			// Several poll intervals pass on the wall clock, none on ours: no retry.
			time.Sleep(100 * time.Millisecond)
			if rc.count() != 1 {
				t.Fatalf("retried before Retry-After: %d requests", rc.count())
			}
			clock.Advance(tc.want + time.Second)
			dels := settled(t, d, "m4", 1)
			if rc.count() != 2 || dels[0].Status != StatusDelivered {
				t.Fatalf("requests %d, status %s", rc.count(), dels[0].Status)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := map[string]time.Duration{
		"": 0, "0": 0, "-5": 0, "junk": 0, "30": 30 * time.Second,
		now.Add(90 * time.Second).Format(http.TimeFormat):  90 * time.Second,
		now.Add(-90 * time.Second).Format(http.TimeFormat): 0,
	}
	for in, want := range tests {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestGoneDisablesEndpoint(t *testing.T) {
	e := newEnv(t)
	gone := true
	var mu sync.Mutex
	rc := newReceiver(t, true, func(int, http.ResponseWriter, *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		if gone {
			return http.StatusGone
		}
		return http.StatusOK
	})
	e.subs.set("c", rc.srv.URL, true)
	d := e.start(testConfig("r1"))

	e.publish("c", "m5", 1, "sent")
	dels := settled(t, d, "m5", 1)
	if dels[0].Status != StatusDisabled || len(dels[0].Attempts) != 1 || dels[0].Attempts[0].StatusCode != 410 {
		t.Fatalf("delivery = %+v", dels[0])
	}
	if ok, _ := e.rdb.HExists(context.Background(), disabledKey, "c").Result(); !ok {
		t.Fatal("endpoint disablement not persisted")
	}

	// Later events are not sent to the disabled endpoint.
	e.publish("c", "m5", 2, "delivered")
	dels = settled(t, d, "m5", 2)
	if rc.count() != 1 || dels[1].Status != StatusDisabled || len(dels[1].Attempts) != 0 {
		t.Fatalf("requests %d, second delivery %+v", rc.count(), dels[1])
	}

	// Re-enabled and replayed: both arrive.
	mu.Lock()
	gone = false
	mu.Unlock()
	if err := d.EnableEndpoint(context.Background(), "c"); err != nil {
		t.Fatal(err)
	}
	n, err := d.Replay(context.Background(), "c", "m5")
	if err != nil || n != 2 {
		t.Fatalf("Replay = %d, %v; want 2", n, err)
	}
	dels = settled(t, d, "m5", 2)
	for _, del := range dels {
		if del.Status != StatusDelivered {
			t.Errorf("after re-enable: %+v", del)
		}
	}
	if rc.count() != 3 {
		t.Errorf("requests %d, want 3", rc.count())
	}
}

func TestRedirectNotFollowed(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, func(_ int, w http.ResponseWriter, r *http.Request) int {
		if r.URL.Path == "/elsewhere" {
			return http.StatusOK
		}
		w.Header().Set("Location", "/elsewhere")
		return http.StatusFound
	})
	e.subs.set("c", rc.srv.URL+"/hook", true)
	cfg := testConfig("r1")
	cfg.Schedule = []time.Duration{0, 10 * time.Millisecond}
	d := e.start(cfg)

	e.publish("c", "m6", 1, "sent")
	dels := settled(t, d, "m6", 1)
	if rc.count() != 2 {
		t.Fatalf("requests %d, want 2 (no request to the redirect target)", rc.count())
	}
	for _, r := range rc.requests() {
		if r.status != http.StatusFound {
			t.Errorf("a request got %d: redirect was followed", r.status)
		}
	}
	if dels[0].Status != StatusFailed || dels[0].Attempts[0].StatusCode != http.StatusFound {
		t.Errorf("delivery = %+v", dels[0])
	}
}

func TestAttemptTimeout(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, func(_ int, _ http.ResponseWriter, r *http.Request) int {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
		return http.StatusOK
	})
	e.subs.set("c", rc.srv.URL, true)
	cfg := testConfig("r1")
	cfg.Schedule = []time.Duration{0}
	cfg.Timeout = 100 * time.Millisecond
	d := e.start(cfg)

	e.publish("c", "m7", 1, "sent")
	dels := settled(t, d, "m7", 1)
	a := dels[0].Attempts
	if dels[0].Status != StatusFailed || len(a) != 1 || a[0].StatusCode != 0 || !strings.Contains(a[0].Error, "timeout") {
		t.Fatalf("delivery = %+v", dels[0])
	}
}

func TestRefusedTargetsFailWithReason(t *testing.T) {
	tests := []struct {
		name, url, wantErr string
	}{
		{"loopback", "https://127.0.0.1:1/hook", "not public"},
		{"metadata", "https://169.254.169.254/latest", "not public"},
		{"private v6", "https://[::1]:1/hook", "not public"},
		{"plain http", "http://93.184.216.34/hook", "https required"},
		{"hostname to loopback", "https://rebind.example/hook", "not public"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.subs.set("c", tc.url, false)
			cfg := testConfig("r1")
			cfg.Resolver = mapResolver{"rebind.example": {"127.0.0.1"}}
			d := e.start(cfg)
			e.publish("c", "m8", 1, "sent")
			dels := settled(t, d, "m8", 1)
			a := dels[0].Attempts
			if dels[0].Status != StatusFailed || len(a) != 1 || !strings.Contains(a[0].Error, tc.wantErr) {
				t.Fatalf("delivery = %+v, want failed after 1 attempt with %q", dels[0], tc.wantErr)
			}
		})
	}
}

func TestOnlyClientEventsDelivered(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, nil)
	e.subs.set("c", rc.srv.URL, true)
	d := e.start(testConfig("r1"))

	for i, typ := range []string{"send_attempt", "send_retry", "resent", "made_up"} {
		e.publish("c", "m9", i+1, typ)
	}
	e.publish("nobody", "m10", 1, "sent") // client without a subscription
	e.publish("c", "m9", 9, "sent")
	dels := settled(t, d, "m9", 1)
	if dels[0].Type != "message.sent" || rc.count() != 1 {
		t.Fatalf("deliveries %+v, requests %d", dels, rc.count())
	}
	if got := deliveriesOf(t, d, "m10"); len(got) != 0 {
		t.Errorf("delivery recorded for a client without subscription: %+v", got)
	}
	waitFor(t, "all entries acknowledged", func() bool {
		p, err := e.rdb.XPending(context.Background(), StreamKey, GroupName).Result()
		return err == nil && p.Count == 0
	})
}

func TestReplayKeepsWebhookID(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, nil)
	e.subs.set("owner", rc.srv.URL, true)
	e.subs.set("other", rc.srv.URL, true)
	d := e.start(testConfig("r1"))

	e.publish("owner", "m11", 1, "busack")
	settled(t, d, "m11", 1)

	n, err := d.Replay(context.Background(), "other", "m11")
	if err != nil || n != 0 {
		t.Fatalf("Replay by another client = %d, %v; want 0", n, err)
	}
	n, err = d.Replay(context.Background(), "owner", "m11")
	if err != nil || n != 1 {
		t.Fatalf("Replay = %d, %v; want 1", n, err)
	}
	waitFor(t, "replayed request", func() bool { return rc.count() == 2 })
	dels := settled(t, d, "m11", 1)
	reqs := rc.requests()
	if reqs[0].id != reqs[1].id || string(reqs[0].body) != string(reqs[1].body) || reqs[1].verifyErr != nil {
		t.Fatalf("replay: id %q vs %q, verify %v", reqs[0].id, reqs[1].id, reqs[1].verifyErr)
	}
	if len(dels[0].Attempts) != 2 || dels[0].Status != StatusDelivered {
		t.Errorf("delivery = %+v", dels[0])
	}
	if n, _ := d.Replay(context.Background(), "owner", "no-such-message"); n != 0 {
		t.Errorf("Replay of unknown message = %d", n)
	}
}

// Two replicas on one Redis share the stream and the retry queue: every
// event is attempted exactly twice (the receiver refuses each first try)
// and delivered once.
func TestTwoDispatchersDeliverEachEventOnce(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	tried := map[string]bool{}
	rc := newReceiver(t, true, func(_ int, _ http.ResponseWriter, r *http.Request) int {
		mu.Lock()
		defer mu.Unlock()
		id := r.Header.Get("webhook-id")
		if !tried[id] {
			tried[id] = true
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	e.subs.set("c", rc.srv.URL, true)
	var replicas [2]*countingObserver
	for i := range replicas {
		replicas[i] = &countingObserver{n: map[string]int{}}
		cfg := testConfig("replica-" + strconv.Itoa(i+1))
		cfg.Metrics = replicas[i]
		e.start(cfg)
	}

	const events = 200
	for i := range events {
		e.publish("c", "m"+strconv.Itoa(i%20), i, "sent")
	}
	var split [2][2]int // replica x {retry, delivered}
	waitFor(t, "both replicas to record every delivery", func() bool {
		total := 0
		for i, r := range replicas {
			r.mu.Lock()
			split[i] = [2]int{r.n[OutcomeRetry], r.n[OutcomeDelivered]}
			r.mu.Unlock()
			total += split[i][1]
		}
		return total >= events
	})
	time.Sleep(100 * time.Millisecond) // let any duplicate surface
	perID := map[string][]int{}
	for _, r := range rc.requests() {
		if r.verifyErr != nil {
			t.Fatalf("Verify: %v", r.verifyErr)
		}
		perID[r.id] = append(perID[r.id], r.status)
	}
	if len(perID) != events || rc.count() != 2*events {
		t.Fatalf("%d requests for %d distinct ids, want %d ids tried twice", rc.count(), len(perID), events)
	}
	for id, statuses := range perID {
		if fmt.Sprint(statuses) != "[503 200]" {
			t.Errorf("%s: statuses %v, want [503 200]", id, statuses)
		}
	}
	t.Logf("per replica {retries, delivered}: %v", split)
}

// A replica that read entries and died before recording them: another
// replica takes the entries over once they have been idle ClaimIdle.
func TestReclaimsEntriesOfDeadReplica(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, nil)
	e.subs.set("c", rc.srv.URL, true)
	ctx := context.Background()
	if err := e.rdb.XGroupCreateMkStream(ctx, StreamKey, GroupName, "0").Err(); err != nil {
		t.Fatal(err)
	}
	e.publish("c", "m12", 1, "sent")
	e.publish("c", "m12", 2, "delivered")
	if err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: GroupName, Consumer: "dead",
		Streams: []string{StreamKey, ">"}, Count: 10}).Err(); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("alive")
	cfg.ClaimIdle = 50 * time.Millisecond // the entries age past it while pending
	d := e.start(cfg)
	dels := settled(t, d, "m12", 2)
	if rc.count() != 2 || dels[0].Status != StatusDelivered || dels[1].Status != StatusDelivered {
		t.Fatalf("requests %d, deliveries %+v", rc.count(), dels)
	}
}

// A replica that recorded a delivery and died before attempting it: the
// lease runs out and another replica delivers it.
func TestLeaseExpiryHandsDeliveryToAnotherReplica(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, false, nil)
	e.subs.set("c", rc.srv.URL, true)
	clock := &fakeClock{now: time.Now()}
	ctx := context.Background()
	if err := e.rdb.XGroupCreateMkStream(ctx, StreamKey, GroupName, "0").Err(); err != nil {
		t.Fatal(err)
	}
	e.publish("c", "m13", 1, "sent")

	cfg := testConfig("dying")
	cfg.Now = clock.Now
	dying := NewDispatcher(e.rdb, e.subs, cfg)
	msgs, err := e.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: GroupName, Consumer: "dying",
		Streams: []string{StreamKey, ">"}, Count: 10}).Result()
	if err != nil {
		t.Fatal(err)
	}
	jobs, err := dying.ingest(ctx, msgs[0].Messages)
	if err != nil || len(jobs) != 1 {
		t.Fatalf("ingest = %v, %v", jobs, err)
	}
	// ...and it dies here, never attempting the job.

	cfg.Consumer = "survivor"
	d := e.start(cfg)
	time.Sleep(50 * time.Millisecond)
	if rc.count() != 0 {
		t.Fatal("delivery attempted while another replica held the lease")
	}
	clock.Advance(dying.lease + time.Second)
	dels := settled(t, d, "m13", 1)
	if rc.count() != 1 || dels[0].Status != StatusDelivered {
		t.Fatalf("requests %d, delivery %+v", rc.count(), dels[0])
	}
}

// The same event appended twice (at-least-once upstream) is delivered once.
func TestDuplicateEventDeliveredOnce(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, nil)
	e.subs.set("c", rc.srv.URL, true)
	d := e.start(testConfig("r1"))
	e.publish("c", "m14", 1, "sent")
	settled(t, d, "m14", 1)
	e.publish("c", "m14", 1, "sent")
	e.publish("c", "m14", 2, "delivered")
	settled(t, d, "m14", 2)
	if rc.count() != 2 {
		t.Fatalf("requests %d, want 2", rc.count())
	}
}

type countingObserver struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *countingObserver) Delivered(outcome string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[outcome]++
}

func TestObserverOutcomes(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, func(n int, _ http.ResponseWriter, _ *http.Request) int {
		if n == 0 {
			return http.StatusBadGateway
		}
		return http.StatusAccepted
	})
	e.subs.set("c", rc.srv.URL, true)
	obs := &countingObserver{n: map[string]int{}}
	cfg := testConfig("r1")
	cfg.Metrics = obs
	d := e.start(cfg)
	e.publish("c", "m15", 1, "ack_overdue")
	settled(t, d, "m15", 1)
	// The observer hears of an outcome once it is written: just after the
	// record shows it.
	waitFor(t, "the delivered outcome reported", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.n[OutcomeDelivered] > 0
	})
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if obs.n[OutcomeRetry] != 1 || obs.n[OutcomeDelivered] != 1 || len(obs.n) != 2 {
		t.Errorf("outcomes %v", obs.n)
	}
}

// With a non-zero first delay the delivery waits on the due queue.
func TestDelayedFirstAttempt(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, false, nil)
	e.subs.set("c", rc.srv.URL, true)
	clock := &fakeClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	cfg := testConfig("r1")
	cfg.Schedule = []time.Duration{time.Minute, time.Minute}
	cfg.Now = clock.Now
	d := e.start(cfg)

	e.publish("c", "m16", 1, "rejected")
	waitFor(t, "delivery recorded", func() bool { return len(deliveriesOf(t, d, "m16")) == 1 })
	time.Sleep(100 * time.Millisecond) // several polls on the wall clock, none on ours
	if rc.count() != 0 {
		t.Fatal("attempted before the first delay")
	}
	clock.Advance(2 * time.Minute) // 1 min ±20% jitter
	dels := settled(t, d, "m16", 1)
	if rc.count() != 1 || dels[0].Status != StatusDelivered {
		t.Fatalf("requests %d, delivery %+v", rc.count(), dels[0])
	}
}

func TestQueueMember(t *testing.T) {
	id := WebhookID("c", "m:1")
	for _, msg := range []string{"m", "a:b:c", "2f1c6b1e-8a0e-4a53-9d6e-0c1f7d3b9a11"} {
		gotID, gotMsg, ok := splitMember(queueMember(id, msg))
		if !ok || gotID != id || gotMsg != msg {
			t.Errorf("split(queueMember(%q, %q)) = %q, %q, %v", id, msg, gotID, gotMsg, ok)
		}
	}
	if _, _, ok := splitMember(id); ok {
		t.Error("a member without message id split")
	}
}

// On shutdown the attempt in flight completes and is recorded, and queued
// deliveries are handed back at once (not after their lease) for another
// replica.
func TestShutdownFinishesInFlightAndReleasesQueued(t *testing.T) {
	e := newEnv(t)
	unblock := make(chan struct{})
	arrived := make(chan struct{}, 10)
	rc := newReceiver(t, true, func(int, http.ResponseWriter, *http.Request) int {
		arrived <- struct{}{}
		<-unblock
		return http.StatusOK
	})
	e.subs.set("c", rc.srv.URL, true)
	cfg := testConfig("leaving")
	cfg.Workers = 1
	cfg.Timeout = 10 * time.Second // lease 30 s: far longer than this test
	d := NewDispatcher(e.rdb, e.subs, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	for i := 1; i <= 3; i++ {
		e.publish("c", "m17", i, "sent")
	}
	<-arrived
	waitFor(t, "all three recorded", func() bool { return len(deliveriesOf(t, d, "m17")) == 3 })
	cancel()
	close(unblock)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if rc.count() != 1 {
		t.Fatalf("requests %d, want only the one in flight", rc.count())
	}
	statuses := map[string]int{}
	for _, del := range deliveriesOf(t, d, "m17") {
		statuses[del.Status]++
	}
	if statuses[StatusDelivered] != 1 || statuses[StatusPending] != 2 {
		t.Fatalf("statuses %v, want 1 delivered (in flight at shutdown) and 2 pending", statuses)
	}

	e.start(testConfig("next")) // picks the released two up without waiting out the lease
	settled(t, d, "m17", 3)
	if rc.count() != 3 {
		t.Fatalf("requests %d, want 3", rc.count())
	}
}

// Disabling is per endpoint URL: a client that registers a new URL gets
// deliveries again without EnableEndpoint.
func TestNewURLAfterGoneIsNotDisabled(t *testing.T) {
	e := newEnv(t)
	gone := newReceiver(t, true, func(int, http.ResponseWriter, *http.Request) int { return http.StatusGone })
	fresh := newReceiver(t, true, nil)
	e.subs.set("c", gone.srv.URL+"/old?token=s3cret", true)
	d := e.start(testConfig("r1"))

	e.publish("c", "m18", 1, "sent")
	settled(t, d, "m18", 1)
	raw, err := e.rdb.HGet(context.Background(), disabledKey, "c").Result()
	if err != nil || strings.Contains(raw, "s3cret") {
		t.Fatalf("disabled entry %q, %v: want one without the URL's token", raw, err)
	}

	e.subs.set("c", fresh.srv.URL+"/new", true)
	e.publish("c", "m18", 2, "delivered")
	dels := settled(t, d, "m18", 2)
	if fresh.count() != 1 || dels[1].Status != StatusDelivered || gone.count() != 1 {
		t.Fatalf("fresh %d, gone %d, second delivery %+v", fresh.count(), gone.count(), dels[1])
	}
}

// A 503 (429/502/504 alike) throttles the whole endpoint: the client's
// other deliveries wait, unattempted and with nothing counted against their
// schedule, until Retry-After has passed.
func TestThrottledEndpointDefersOtherDeliveries(t *testing.T) {
	e := newEnv(t)
	clock := &fakeClock{now: time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)}
	rc := newReceiver(t, false, func(n int, w http.ResponseWriter, _ *http.Request) int {
		if n == 0 {
			w.Header().Set("Retry-After", "120")
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	e.subs.set("c", rc.srv.URL, true)
	e.subs.set("other", rc.srv.URL+"/other", true)
	obs := &countingObserver{n: map[string]int{}}
	cfg := testConfig("r1")
	cfg.Now = clock.Now
	cfg.MaxRetryAfter = time.Hour
	cfg.Metrics = obs
	d := e.start(cfg)

	e.publish("c", "t0", 1, "sent")
	waitFor(t, "the 503", func() bool {
		dels := deliveriesOf(t, d, "t0")
		return len(dels) == 1 && len(dels[0].Attempts) == 1
	})
	for i := 1; i <= 4; i++ {
		e.publish("c", "t"+strconv.Itoa(i), 1, "sent")
	}
	e.publish("other", "o1", 1, "sent") // another client's endpoint is not throttled
	settled(t, d, "o1", 1)
	waitFor(t, "the throttled deliveries deferred", func() bool {
		obs.mu.Lock()
		defer obs.mu.Unlock()
		return obs.n[OutcomeDeferred] >= 4
	})
	time.Sleep(100 * time.Millisecond) // poll intervals pass on the wall clock, none on ours
	if got := rc.count(); got != 2 {
		t.Fatalf("%d requests while throttled, want 2 (the 503 and the other client's)", got)
	}
	for i := 1; i <= 4; i++ {
		dels := deliveriesOf(t, d, "t"+strconv.Itoa(i))
		if len(dels) != 1 || len(dels[0].Attempts) != 0 || dels[0].NextAttemptAt == nil || dels[0].NextAttemptAt.Before(clock.Now().Add(119*time.Second)) {
			t.Fatalf("t%d while throttled: %+v", i, dels)
		}
	}
	clock.Advance(122 * time.Second)
	for i := 0; i <= 4; i++ {
		if dels := settled(t, d, "t"+strconv.Itoa(i), 1); dels[0].Status != StatusDelivered {
			t.Fatalf("t%d: %s", i, dels[0].Status)
		}
	}
	if got := rc.count(); got != 7 {
		t.Fatalf("%d requests in all, want 7", got)
	}
}

// During a secret rotation every delivery carries a signature per secret
// (space-separated): receivers still on the old secret and those already on
// the new one both verify it with the reference library.
func TestSecretRotationSignsWithBoth(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, true, nil) // verifies with testSecret: the previous secret
	newSecret := randomSecret(32)
	if newSecret == testSecret {
		t.Fatal("the two secrets must differ")
	}
	e.subs.mu.Lock()
	e.subs.subs["c"] = fakeSub{url: rc.srv.URL, secrets: []string{newSecret, testSecret}, allowPrivate: true}
	e.subs.mu.Unlock()
	d := e.start(testConfig("r1"))
	e.publish("c", "rot1", 1, "sent")
	settled(t, d, "rot1", 1)
	reqs := rc.requests()
	if len(reqs) != 1 || reqs[0].verifyErr != nil {
		t.Fatalf("old-secret receiver: %d requests, verify %v", len(reqs), reqs[0].verifyErr)
	}
	sigs := strings.Fields(reqs[0].signature)
	if len(sigs) != 2 || !strings.HasPrefix(sigs[0], "v1,") || !strings.HasPrefix(sigs[1], "v1,") {
		t.Fatalf("webhook-signature %q, want two v1 signatures", reqs[0].signature)
	}
	wh, err := standardwebhooks.NewWebhook(newSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set("webhook-id", reqs[0].id)
	h.Set("webhook-timestamp", reqs[0].timestamp)
	h.Set("webhook-signature", reqs[0].signature)
	if err := wh.Verify(reqs[0].body, h); err != nil {
		t.Fatalf("new-secret receiver: %v", err)
	}
	if _, err := SignAll(nil, "id", time.Now(), nil); err == nil {
		t.Fatal("SignAll without a secret signed")
	}
}

// An endpoint that fails a delivery's whole schedule, with no 2xx to any
// delivery meanwhile, is disabled (and listed) until an operator enables
// it; one that succeeded for another delivery meanwhile is not.
func TestSustainedFailureDisablesEndpoint(t *testing.T) {
	ctx := context.Background()
	t.Run("no success: disabled, then enabled", func(t *testing.T) {
		e := newEnv(t)
		failing := true
		var mu sync.Mutex
		rc := newReceiver(t, true, func(int, http.ResponseWriter, *http.Request) int {
			mu.Lock()
			defer mu.Unlock()
			if failing {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		e.subs.set("c", rc.srv.URL+"/hook?token=secret", true)
		d := e.start(testConfig("r1"))
		e.publish("c", "s1", 1, "sent")
		if dels := settled(t, d, "s1", 1); dels[0].Status != StatusFailed {
			t.Fatalf("s1: %s", dels[0].Status)
		}
		var list []DisabledEndpoint
		waitFor(t, "the endpoint disabled", func() bool {
			var err error
			list, err = d.DisabledEndpoints(ctx)
			return err == nil && len(list) == 1
		})
		if list[0].ClientID != "c" || !strings.Contains(list[0].Reason, "no successful delivery since") || strings.Contains(list[0].URL, "?") {
			t.Fatalf("disabled endpoints %+v", list)
		}
		before := rc.count()
		e.publish("c", "s2", 1, "sent")
		if dels := settled(t, d, "s2", 1); dels[0].Status != StatusDisabled || rc.count() != before {
			t.Fatalf("s2 to a disabled endpoint: %s after %d new requests", dels[0].Status, rc.count()-before)
		}
		mu.Lock()
		failing = false
		mu.Unlock()
		if err := d.EnableEndpoint(ctx, "c"); err != nil {
			t.Fatal(err)
		}
		if list, err := d.DisabledEndpoints(ctx); err != nil || len(list) != 0 {
			t.Fatalf("after EnableEndpoint: %+v, %v", list, err)
		}
		e.publish("c", "s3", 1, "sent")
		if dels := settled(t, d, "s3", 1); dels[0].Status != StatusDelivered {
			t.Fatalf("s3 after enabling: %s", dels[0].Status)
		}
	})
	t.Run("another delivery succeeded meanwhile: not disabled", func(t *testing.T) {
		e := newEnv(t)
		rc := newReceiver(t, true, func(_ int, _ http.ResponseWriter, r *http.Request) int {
			if r.Header.Get("webhook-id") == WebhookID("c", "f1:1") {
				return http.StatusInternalServerError
			}
			return http.StatusOK
		})
		e.subs.set("c", rc.srv.URL, true)
		cfg := testConfig("r1")
		cfg.Schedule = []time.Duration{0, 200 * time.Millisecond, 200 * time.Millisecond, 200 * time.Millisecond} // room for ok1 to succeed
		d := e.start(cfg)
		e.publish("c", "f1", 1, "sent")
		waitFor(t, "f1's first attempt", func() bool {
			dels := deliveriesOf(t, d, "f1")
			return len(dels) == 1 && len(dels[0].Attempts) >= 1
		})
		e.publish("c", "ok1", 1, "sent")
		if dels := settled(t, d, "f1", 1); dels[0].Status != StatusFailed {
			t.Fatalf("f1: %s", dels[0].Status)
		}
		settled(t, d, "ok1", 1)
		time.Sleep(50 * time.Millisecond) // a disablement would be written by now
		if list, err := d.DisabledEndpoints(ctx); err != nil || len(list) != 0 {
			t.Fatalf("disabled although another delivery succeeded: %+v, %v", list, err)
		}
	})
}

// A throttle only ever gets longer: a 503 without Retry-After answered after
// a 429 asking for an hour must not cut the hour short.
func TestThrottleOnlyRises(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, ms := range []int64{5000, 1000, 7000, 3000} {
		if err := raiseThrottleScript.Eval(ctx, e.rdb, []string{throttleKey}, "c", ms).Err(); err != nil && !errors.Is(err, redis.Nil) {
			t.Fatal(err)
		}
	}
	if got, err := e.rdb.HGet(ctx, throttleKey, "c").Int64(); err != nil || got != 7000 {
		t.Fatalf("throttle end %d, %v; want the latest end, 7000", got, err)
	}
}

// A disablement of a client's earlier URL neither shows as disabled nor
// stops the new URL from being disabled when it fails all along.
func TestDisablementOfOldURLIsStale(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	rc := newReceiver(t, true, func(int, http.ResponseWriter, *http.Request) int { return http.StatusInternalServerError })
	old, _ := json.Marshal(disabledEndpoint{URL: "https://old.example/hook", URLHash: urlHash("https://old.example/hook"), At: time.Now(), Reason: "410 Gone"})
	if err := e.rdb.HSet(ctx, disabledKey, "c", old).Err(); err != nil {
		t.Fatal(err)
	}
	e.subs.set("c", rc.srv.URL, true)
	d := e.start(testConfig("r1"))
	if list, err := d.DisabledEndpoints(ctx); err != nil || len(list) != 0 {
		t.Fatalf("a disablement of the old URL listed: %+v, %v", list, err)
	}
	e.publish("c", "n1", 1, "sent")
	if dels := settled(t, d, "n1", 1); dels[0].Status != StatusFailed {
		t.Fatalf("n1: %s", dels[0].Status)
	}
	waitFor(t, "the new URL disabled", func() bool {
		list, err := d.DisabledEndpoints(ctx)
		return err == nil && len(list) == 1 && strings.Contains(list[0].Reason, "no successful delivery")
	})
}
