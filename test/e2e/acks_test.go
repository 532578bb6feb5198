package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/app"
	"github.com/meshgateway/gateway/internal/redistest"
	"github.com/meshgateway/gateway/itk"
	"github.com/meshgateway/gateway/registry"
	"github.com/meshgateway/gateway/tracking"
	"github.com/meshgateway/gateway/webhook"
)

// wantAck checks an acknowledgement as recorded on the status resource: the
// code, the ITK3 display for it, its polarity and when it was received.
func wantAck(t *testing.T, name string, got *tracking.Ack, code string) {
	t.Helper()
	rc, ok := itk.LookupResponseCode(code)
	if !ok {
		t.Fatalf("test bug: unknown ITK3 code %s", code)
	}
	if got == nil {
		t.Fatalf("%s missing, want %s", name, code)
	}
	if got.Code != code || got.Display != rc.Display || got.Positive != rc.Positive || got.ReceivedAt.IsZero() || got.MeshMessageID == "" {
		t.Fatalf("%s = %+v, want code %s display %q positive %v, a receipt time and the ack's MESH id", name, got, code, rc.Display, rc.Positive)
	}
}

// stateHistory is the sequence of states the events moved the message through.
func stateHistory(evs []tracking.Event) []tracking.State {
	var out []tracking.State
	for _, ev := range evs {
		if len(out) == 0 || out[len(out)-1] != ev.State {
			out = append(out, ev.State)
		}
	}
	return out
}

func eventCounts(evs []tracking.Event) map[tracking.EventType]int {
	out := map[tracking.EventType]int{}
	for _, ev := range evs {
		out[ev.Type]++
	}
	return out
}

func lastEvent(evs []tracking.Event, typ tracking.EventType) *tracking.Event {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == typ {
			return &evs[i]
		}
	}
	return nil
}

func inAttention(list []*tracking.Message, id string) *tracking.Message {
	for _, m := range list {
		if m.ID == id {
			return m
		}
	}
	return nil
}

// acksToSender lists the ITK3 acknowledgements MESH carried to the sending mailbox.
func (e *env) acksToSender(mailbox string) []string {
	var ids []string
	e.sent.Range(func(_, v any) bool {
		c := v.(meshCopy)
		if c.info.WorkflowID == itk.WorkflowSendDocumentAck && strings.EqualFold(c.info.To, mailbox) {
			ids = append(ids, c.info.ID)
		}
		return true
	})
	return ids
}

// Positive path: every state in order, both acks on the status resource, and
// one signed thin webhook per event.
func TestPositiveAcksAndWebhooks(t *testing.T) {
	hooks := newHookReceiver(t, nil)
	e := newEnv(t, envOptions{webhookURL: hooks.URL()})
	id := e.accepted(clientA, request(smith, "X26ABC1"))
	m := e.waitState(clientA, id, tracking.StateBusAcked, 20*time.Second)

	wantStates := []tracking.State{tracking.StateAccepted, tracking.StateSending, tracking.StateSent,
		tracking.StateDelivered, tracking.StateInfAcked, tracking.StateBusAcked}
	if got := stateHistory(m.Events); !slices.Equal(got, wantStates) {
		t.Fatalf("state history %v, want %v (events %+v)", got, wantStates, m.Events)
	}
	counts := eventCounts(m.Events)
	for _, typ := range []tracking.EventType{tracking.EventAccepted, tracking.EventSent, tracking.EventDelivered, tracking.EventInfAck, tracking.EventBusAck} {
		if counts[typ] != 1 {
			t.Errorf("%d %s events, want 1 (%+v)", counts[typ], typ, m.Events)
		}
	}
	wantAck(t, "infAck", m.InfAck, "20013")
	wantAck(t, "busAck", m.BusAck, "30001")
	if m.InfAck.MeshMessageID == m.BusAck.MeshMessageID {
		t.Errorf("both acks recorded from the same MESH message %s", m.InfAck.MeshMessageID)
	}
	if m.AckOverdue || m.MeshMessageID == "" || m.DeliveredAt == nil || m.SentAt == nil {
		t.Errorf("record: ackOverdue %v meshMessageId %q deliveredAt %v sentAt %v", m.AckOverdue, m.MeshMessageID, m.DeliveredAt, m.SentAt)
	}
	for _, c := range []struct {
		typ  tracking.EventType
		code string
	}{{tracking.EventInfAck, "20013"}, {tracking.EventBusAck, "30001"}} {
		ev := lastEvent(m.Events, c.typ)
		rc, _ := itk.LookupResponseCode(c.code)
		if ev.Code != c.code || ev.Display != rc.Display {
			t.Errorf("%s event %+v, want code %s display %q", c.typ, ev, c.code, rc.Display)
		}
	}

	wantTypes := map[string]tracking.State{
		"message.accepted": tracking.StateAccepted, "message.sent": tracking.StateSent, "message.delivered": tracking.StateDelivered,
		"message.infack": tracking.StateInfAcked, "message.busack": tracking.StateBusAcked,
	}
	hooks.waitHooks(t, 10*time.Second, "the five events of "+id, func(r []hookRequest) bool {
		got := typesDelivered(forMessage(r, id))
		for typ := range wantTypes {
			if len(got[typ]) == 0 {
				return false
			}
		}
		return true
	})
	ds := e.waitDeliveries(clientA, id, len(wantTypes), 10*time.Second)
	reqs := forMessage(hooks.requests(), id)
	if len(reqs) != len(wantTypes) {
		t.Fatalf("%d webhook requests for the message, want exactly %d:%s", len(reqs), len(wantTypes), describeHooks(reqs))
	}
	assertVerified(t, reqs)
	assertThin(t, reqs)
	byType := map[string]hookRequest{}
	eventIDs := map[string]bool{}
	for _, q := range reqs {
		if _, dup := byType[q.Event.Type]; dup {
			t.Errorf("%s delivered twice", q.Event.Type)
		}
		byType[q.Event.Type] = q
		state, ok := wantTypes[q.Event.Type]
		if !ok {
			t.Errorf("unexpected webhook type %q", q.Event.Type)
			continue
		}
		d := q.Event.Data
		if q.Status != http.StatusOK || d.State != string(state) || d.EventID == "" || eventIDs[d.EventID] || q.Event.Timestamp == "" {
			t.Errorf("webhook %s: status %d state %q eventId %q timestamp %q", q.Event.Type, q.Status, d.State, d.EventID, q.Event.Timestamp)
		}
		eventIDs[d.EventID] = true
		if q.ID != webhook.WebhookID(clientA, d.EventID) {
			t.Errorf("webhook %s: webhook-id %s is not derived from client and event id %s", q.Event.Type, q.ID, d.EventID)
		}
	}
	if d := byType["message.sent"].Event.Data; d.MeshMessageID != m.MeshMessageID {
		t.Errorf("message.sent meshMessageId %q, want %q", d.MeshMessageID, m.MeshMessageID)
	}
	for typ, ack := range map[string]*tracking.Ack{"message.infack": m.InfAck, "message.busack": m.BusAck} {
		if d := byType[typ].Event.Data; d.Code != ack.Code || d.Display != ack.Display {
			t.Errorf("%s code %q display %q, want %q %q", typ, d.Code, d.Display, ack.Code, ack.Display)
		}
	}
	for _, d := range ds {
		q, ok := byType[d.Type]
		if !ok || d.ID != q.ID || d.Status != webhook.StatusDelivered || d.AttemptCount != 1 ||
			len(d.Attempts) != 1 || d.Attempts[0].StatusCode != http.StatusOK {
			t.Errorf("delivery %+v, want one 200 attempt with webhook-id %s", d, q.ID)
		}
	}
}

// A negative infrastructure ack is final: no business ack follows and the
// message needs a person.
func TestNegativeInfrastructureAck(t *testing.T) {
	e := newEnv(t, envOptions{practiceInfCode: map[string]string{smith.NHS: "20009"}})
	id := e.accepted(clientA, request(smith, "X26ABC1"))
	m := e.waitState(clientA, id, tracking.StateInfNacked, 20*time.Second)
	wantAck(t, "infAck", m.InfAck, "20009")
	if m.InfAck.Diagnostics == "" {
		t.Errorf("infAck has no diagnostics: %+v", m.InfAck)
	}
	ev := lastEvent(m.Events, tracking.EventInfAck)
	if ev == nil || ev.Code != "20009" || ev.State != tracking.StateInfNacked || ev.Diagnostics == "" || ev.Display == "" {
		t.Fatalf("infack event %+v", ev)
	}

	// The practice answers a message in one go (its business ack, had it sent
	// one, would follow the infrastructure ack at once). Watch for 20 inbox
	// poll intervals that nothing more arrives or changes.
	until := time.Now().Add(2 * time.Second)
	for time.Now().Before(until) {
		cur := e.message(clientA, id)
		if cur.State != tracking.StateInfNacked || cur.BusAck != nil || eventCounts(cur.Events)[tracking.EventBusAck] != 0 {
			t.Fatalf("after the negative infrastructure ack: state %s busAck %+v events %+v", cur.State, cur.BusAck, cur.Events)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if acks := e.acksToSender("X26ABC1"); len(acks) != 1 || acks[0] != m.InfAck.MeshMessageID {
		t.Fatalf("MESH carried acks %v to the sender, want only the infrastructure ack %s", acks, m.InfAck.MeshMessageID)
	}
	got := inAttention(e.attention(clientA), id)
	if got == nil || got.State != tracking.StateInfNacked {
		t.Fatalf("state=attention does not list %s as inf_nacked: %+v", id, got)
	}
}

// Negative business acks: 30003 (no longer registered) and 30002 (not known).
func TestNegativeBusinessAcks(t *testing.T) {
	e := newEnv(t, envOptions{})
	tests := []struct {
		name    string
		patient patient
		code    string
	}{
		{"jones no longer registered", jones, "30003"},
		{"mowers not known", mowers, "30002"},
	}
	ids := make([]string, len(tests))
	for i, tc := range tests {
		ids[i] = e.accepted(clientA, request(tc.patient, "X26ABC1"))
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := e.waitState(clientA, ids[i], tracking.StateBusNacked, 20*time.Second)
			wantAck(t, "infAck", m.InfAck, "20013")
			wantAck(t, "busAck", m.BusAck, tc.code)
			ev := lastEvent(m.Events, tracking.EventBusAck)
			if ev == nil || ev.Code != tc.code || ev.State != tracking.StateBusNacked {
				t.Fatalf("busack event %+v", ev)
			}
			if got := inAttention(e.attention(clientA), ids[i]); got == nil || got.State != tracking.StateBusNacked {
				t.Fatalf("state=attention does not list %s as bus_nacked: %+v", ids[i], got)
			}
		})
	}
}

// EPL-151: MESH cannot find the practice; the message is undeliverable and
// the client is told by webhook.
func TestEPL151UndeliverableWebhook(t *testing.T) {
	hooks := newHookReceiver(t, nil)
	e := newEnv(t, envOptions{webhookURL: hooks.URL()})
	id := e.accepted(clientA, request(taylor, "X26ABC1"))
	m := e.waitState(clientA, id, tracking.StateUndeliverable, 20*time.Second)
	if m.LastError == nil || m.LastError.Code != "EPL-151" || m.LastError.Description == "" {
		t.Fatalf("lastError %+v", m.LastError)
	}
	if m.InfAck != nil || m.BusAck != nil {
		t.Fatalf("acks on an undeliverable message: %+v %+v", m.InfAck, m.BusAck)
	}
	reqs := hooks.waitHooks(t, 10*time.Second, "message.undeliverable", func(r []hookRequest) bool {
		return len(typesDelivered(forMessage(r, id))["message.undeliverable"]) > 0
	})
	e.waitDeliveries(clientA, id, 3, 10*time.Second) // accepted, sent, undeliverable
	reqs = forMessage(hooks.requests(), id)
	assertVerified(t, reqs)
	assertThin(t, reqs)
	var undeliverable []hookRequest
	for _, q := range reqs {
		if q.Event.Type == "message.undeliverable" {
			undeliverable = append(undeliverable, q)
		}
	}
	if len(undeliverable) != 1 {
		t.Fatalf("%d message.undeliverable requests, want 1:%s", len(undeliverable), describeHooks(reqs))
	}
	if d := undeliverable[0].Event.Data; d.Code != "EPL-151" || d.State != string(tracking.StateUndeliverable) || d.Display == "" {
		t.Fatalf("message.undeliverable data %+v", d)
	}
	if got := inAttention(e.attention(clientA), id); got == nil {
		t.Fatalf("state=attention does not list the undeliverable message")
	}
}

// Nobody answers: the infrastructure-ack deadline raises ack_overdue on the
// record, in the history, by webhook and in the attention list.
func TestAckOverdue(t *testing.T) {
	hooks := newHookReceiver(t, nil)
	e := newEnv(t, envOptions{webhookURL: hooks.URL(), noPractice: true, infAckDeadline: time.Second})
	id := e.accepted(clientA, request(smith, "X26ABC1"))
	m := e.waitMessage(clientA, id, 15*time.Second, "ackOverdue", func(m *tracking.Message) bool { return m.AckOverdue })
	if m.State != tracking.StateSent || m.InfAck != nil || m.BusAck != nil {
		t.Fatalf("overdue message: state %s infAck %+v busAck %+v", m.State, m.InfAck, m.BusAck)
	}
	ev := lastEvent(m.Events, tracking.EventAckOverdue)
	if ev == nil || ev.Code != "infrastructure" || ev.State != tracking.StateSent || ev.Display == "" {
		t.Fatalf("ack_overdue event %+v", ev)
	}
	if sent := lastEvent(m.Events, tracking.EventSent); sent == nil || ev.At.Sub(sent.At) < time.Second {
		t.Fatalf("ack_overdue raised at %s, before the 1s deadline after the sent event %+v", ev.At, sent)
	}
	reqs := hooks.waitHooks(t, 10*time.Second, "message.ack_overdue", func(r []hookRequest) bool {
		return len(typesDelivered(forMessage(r, id))["message.ack_overdue"]) > 0
	})
	reqs = forMessage(reqs, id)
	assertVerified(t, reqs)
	assertThin(t, reqs)
	for _, q := range reqs {
		if q.Event.Type == "message.ack_overdue" && (q.Event.Data.State != string(tracking.StateSent) || q.Event.Data.Code != "infrastructure") {
			t.Fatalf("message.ack_overdue data %+v", q.Event.Data)
		}
	}
	got := inAttention(e.attention(clientA), id)
	if got == nil || !got.AckOverdue {
		t.Fatalf("state=attention does not list the overdue message: %+v", got)
	}
	if n := eventCounts(e.message(clientA, id).Events)[tracking.EventAckOverdue]; n != 1 {
		t.Fatalf("%d ack_overdue events, want 1 (the infrastructure deadline fires once)", n)
	}
}

// A receiver answering 503 twice per event: each event is retried with the
// same webhook-id and body, delivered exactly once, every attempt is listed,
// and a replay re-delivers with the same webhook-id.
func TestWebhookRetriedThenDeliveredOnceAndReplayed(t *testing.T) {
	hooks := newHookReceiver(t, func(_ string, attempt int) int {
		if attempt <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	e := newEnv(t, envOptions{webhookURL: hooks.URL()})
	id := e.accepted(clientA, request(smith, "X26ABC1"))
	e.waitState(clientA, id, tracking.StateBusAcked, 20*time.Second)
	const events = 5 // accepted, sent, delivered, infack, busack
	ds := e.waitDeliveries(clientA, id, events, 15*time.Second)

	reqs := forMessage(hooks.requests(), id)
	assertVerified(t, reqs)
	assertThin(t, reqs)
	byID := map[string][]hookRequest{}
	for _, q := range reqs {
		byID[q.ID] = append(byID[q.ID], q)
	}
	if len(byID) != events {
		t.Fatalf("%d webhook-ids, want %d:%s", len(byID), events, describeHooks(reqs))
	}
	for wid, qs := range byID {
		var statuses []int
		for _, q := range qs {
			statuses = append(statuses, q.Status)
			if !bytes.Equal(q.Body, qs[0].Body) {
				t.Errorf("webhook %s: body changed between attempts: %s vs %s", wid, qs[0].Body, q.Body)
			}
		}
		if !slices.Equal(statuses, []int{503, 503, 200}) {
			t.Errorf("webhook %s (%s): answers %v, want 503, 503, 200", wid, qs[0].Event.Type, statuses)
		}
	}
	for wid, n := range delivered2xx(reqs) {
		if n != 1 {
			t.Errorf("webhook %s answered 2xx %d times, want once", wid, n)
		}
	}
	for _, d := range ds {
		var codes []int
		for _, a := range d.Attempts {
			codes = append(codes, a.StatusCode)
		}
		if byID[d.ID] == nil || d.Status != webhook.StatusDelivered || d.AttemptCount != 3 || !slices.Equal(codes, []int{503, 503, 200}) {
			t.Errorf("delivery %s (%s): status %s, %d attempts %v; want delivered after 503, 503, 200", d.ID, d.Type, d.Status, d.AttemptCount, codes)
		}
	}

	r := e.do("POST", "/v1/messages/"+id+"/deliveries/replay", "", e.token(clientA), nil, nil)
	var replay struct{ Replayed int }
	r.json(t, &replay)
	if r.Status != http.StatusAccepted || replay.Replayed != events {
		t.Fatalf("replay: %d %s, want 202 with %d replayed", r.Status, r.Body, events)
	}
	hooks.waitHooks(t, 10*time.Second, "the replayed deliveries", func(all []hookRequest) bool {
		return len(forMessage(all, id)) >= 4*events
	})
	ds = e.waitDeliveries(clientA, id, events, 10*time.Second)
	reqs = forMessage(hooks.requests(), id)
	if len(reqs) != 4*events {
		t.Fatalf("%d requests after the replay, want %d:%s", len(reqs), 4*events, describeHooks(reqs))
	}
	assertVerified(t, reqs)
	replayed := map[string][]hookRequest{}
	for _, q := range reqs {
		replayed[q.ID] = append(replayed[q.ID], q)
	}
	for wid, qs := range replayed {
		if len(qs) != 4 || byID[wid] == nil || qs[3].Status != http.StatusOK || !bytes.Equal(qs[3].Body, qs[0].Body) {
			t.Errorf("webhook %s after replay: %d requests (known id %v), last answered %d, same body %v",
				wid, len(qs), byID[wid] != nil, qs[len(qs)-1].Status, bytes.Equal(qs[len(qs)-1].Body, qs[0].Body))
		}
	}
	for _, d := range ds {
		if d.Status != webhook.StatusDelivered || d.AttemptCount != 4 {
			t.Errorf("delivery %s after replay: status %s attempts %d, want delivered with 4", d.ID, d.Status, d.AttemptCount)
		}
	}
}

// SSRF: webhook targets on loopback/private addresses are refused without
// allowPrivateWebhook, at registry load for IP literals and localhost, and
// when dispatching for names that resolve to such addresses.
func TestWebhookSSRFTargetsRefused(t *testing.T) {
	t.Run("registry refuses private targets at load", func(t *testing.T) {
		redisAddr := "127.0.0.1:1" // never reached: the registry is checked first
		_, jwks := demoKey(t, kidA)
		tests := []struct{ url, want string }{
			{"https://127.0.0.1:8443/hooks", "private, loopback or link-local"},
			{"https://10.1.2.3/hooks", "private, loopback or link-local"},
			{"https://192.168.0.10/hooks", "private, loopback or link-local"},
			{"https://169.254.169.254/latest/meta-data", "private, loopback or link-local"},
			{"https://[::1]:8443/hooks", "private, loopback or link-local"},
			{"https://[fd00::1]/hooks", "private, loopback or link-local"},
			{"https://localhost:8443/hooks", "localhost"},
			{"https://localhost.:8443/hooks", "localhost"},
			{"https://hooks.localhost/hooks", "localhost"},
			{"http://hooks.example.com/hooks", "https"},
		}
		for _, tc := range tests {
			t.Run(tc.url, func(t *testing.T) {
				lines := fmt.Sprintf("    webhook: {url: '%s', secret: %s}\n", tc.url, webhookSecret)
				cfg, getenv := gatewayConfig(t, redisAddr, registryYAML("http://127.0.0.1:1", jwks, lines))
				if _, err := registry.Load(cfg.GatewayConfig, getenv); err == nil {
					t.Errorf("registry.Load accepted webhook URL %s without allowPrivateWebhook", tc.url)
				} else {
					wantFieldError(t, "registry.Load", err, tc.want)
				}
				ln, admin := listen(t), listen(t)
				t.Cleanup(func() { _ = ln.Close(); _ = admin.Close() }) // New does not close them on error
				a, panicked, err := newApp(app.Options{Config: cfg, Getenv: getenv, Stdout: io.Discard,
					Listener: ln, AdminListener: admin})
				switch {
				case panicked != nil:
					t.Fatalf("app.New panicked instead of returning the registry error: %v", panicked)
				case err == nil:
					ctx, cancel := context.WithCancel(context.Background())
					cancel()
					_ = a.Run(ctx) // closes what New opened
					t.Fatalf("app.New accepted webhook URL %s without allowPrivateWebhook", tc.url)
				}
				wantFieldError(t, "app.New", err, tc.want)
			})
		}
	})

	t.Run("name resolving to a private address refused when dispatching", func(t *testing.T) {
		// The registry cannot resolve names at load; the dispatcher must.
		// The machine's own host name resolves to loopback (127.0.1.1 on
		// Debian) or to a private container address: either must be refused.
		host, err := os.Hostname()
		if err != nil {
			t.Skipf("no host name: %v", err)
		}
		addrs, err := net.DefaultResolver.LookupIPAddr(context.Background(), host)
		if err != nil || len(addrs) == 0 {
			t.Skipf("host name %q does not resolve: %v", host, err)
		}
		for _, a := range addrs {
			if registry.IsPublicIP(a.IP) {
				t.Skipf("host name %q resolves to the public address %s", host, a.IP)
			}
		}
		hooks := startHookReceiver(t, nil, true) // https: the only scheme allowed without allowPrivateWebhook
		u, _ := url.Parse(hooks.URL())
		u.Host = net.JoinHostPort(host, u.Port())
		lines := fmt.Sprintf("    webhook: {url: '%s', secret: %s}\n", u, webhookSecret)
		e := newEnvWithWebhook(t, lines)
		id := e.accepted(clientA, request(smith, "X26ABC1"))
		var accepted *webhook.Delivery
		deadline := time.Now().Add(10 * time.Second)
		for accepted == nil || accepted.Status == webhook.StatusPending {
			if time.Now().After(deadline) {
				t.Fatalf("message.accepted delivery not settled: %+v", accepted)
			}
			time.Sleep(50 * time.Millisecond)
			for _, d := range e.deliveries(clientA, id) {
				if d.Type == "message.accepted" {
					accepted = &d
				}
			}
		}
		if accepted.Status != webhook.StatusFailed || accepted.AttemptCount != 1 || len(accepted.Attempts) != 1 ||
			!strings.Contains(accepted.Attempts[0].Error, webhook.ErrTargetRefused.Error()) || accepted.Attempts[0].StatusCode != 0 {
			t.Fatalf("delivery to %s: %+v, want failed after one refused attempt", host, accepted)
		}
		if n, reqs := hooks.conns.Load(), hooks.requests(); n != 0 || len(reqs) != 0 {
			t.Fatalf("receiver got %d connections and %d requests, want none", n, len(reqs))
		}
		// The message itself is unaffected.
		e.waitState(clientA, id, tracking.StateSent, 10*time.Second)
	})

	t.Run("dial guard refuses loopback after a public DNS answer (webhook package, real Redis)", func(t *testing.T) {
		// DNS rebinding: the pre-attempt check is told the name is public,
		// the dial then resolves it to loopback. The harness cannot express
		// this (the registry refuses "localhost" at load), so it drives the
		// webhook package's exported API on a real redis-server.
		rdb := redis.NewClient(&redis.Options{Addr: redistest.Start(t)})
		t.Cleanup(func() { _ = rdb.Close() })
		hooks := startHookReceiver(t, nil, true)
		u, _ := url.Parse(hooks.URL())
		u.Host = net.JoinHostPort("localhost", u.Port())
		d := webhook.NewDispatcher(rdb, staticSubs{url: u.String()}, webhook.Config{
			Consumer: "ssrf", Schedule: []time.Duration{0, 50 * time.Millisecond}, PollInterval: 50 * time.Millisecond,
			Resolver: rebindingResolver{}, Timeout: 5 * time.Second,
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); _ = d.Run(ctx) }()
		t.Cleanup(func() { cancel(); <-done })

		if err := webhook.CheckTarget(ctx, u.String(), false, rebindingResolver{}); err != nil {
			t.Fatalf("test set-up: the pre-attempt check should pass with the public DNS answer: %v", err)
		}
		const messageID = "ssrf-message-1"
		err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: webhook.StreamKey, Values: []any{
			"eventId", messageID + ":1", "messageId", messageID, "clientId", clientA, "type", string(tracking.EventAccepted),
			"state", string(tracking.StateAccepted), "at", time.Now().UTC().Format(time.RFC3339Nano)}}).Err()
		if err != nil {
			t.Fatal(err)
		}
		var got []webhook.Delivery
		deadline := time.Now().Add(10 * time.Second)
		for len(got) != 1 || got[0].Status == webhook.StatusPending {
			if time.Now().After(deadline) {
				t.Fatalf("delivery not settled: %+v", got)
			}
			time.Sleep(25 * time.Millisecond)
			if got, err = d.Deliveries(ctx, messageID); err != nil {
				t.Fatal(err)
			}
		}
		dl := got[0]
		if dl.Status != webhook.StatusFailed || dl.AttemptCount != 1 || !strings.Contains(dl.Attempts[0].Error, webhook.ErrTargetRefused.Error()) ||
			!strings.Contains(dl.Attempts[0].Error, "not public") {
			t.Fatalf("delivery %+v, want failed after one attempt refused at dial", dl)
		}
		if n, reqs := hooks.conns.Load(), hooks.requests(); n != 0 || len(reqs) != 0 {
			t.Fatalf("receiver got %d connections and %d requests, want none", n, len(reqs))
		}
	})
}

// wantFieldError checks a registry refusal names the field and the reason
// and does not echo the secret.
func wantFieldError(t *testing.T, what string, err error, want string) {
	t.Helper()
	msg := err.Error()
	if !strings.Contains(msg, "clients[0] (app-a): webhook.url") || !strings.Contains(msg, want) {
		t.Errorf("%s error %q does not name clients[0] (app-a): webhook.url with %q", what, msg, want)
	}
	if strings.Contains(msg, strings.TrimPrefix(webhookSecret, "whsec_")) {
		t.Errorf("%s error leaks the webhook secret: %q", what, msg)
	}
}

// newApp calls app.New, turning a panic into a value so one broken error
// path fails its test instead of the whole binary.
func newApp(o app.Options) (a *app.App, panicked any, err error) {
	defer func() { panicked = recover() }()
	a, err = app.New(context.Background(), o)
	return a, nil, err
}

// staticSubs subscribes client app-a to one URL, private targets not allowed.
type staticSubs struct{ url string }

func (s staticSubs) Webhook(clientID string) (string, []string, bool, bool) {
	return s.url, []string{webhookSecret}, false, clientID == clientA
}

// rebindingResolver answers a public address for every name, as a hostile
// DNS server would for the check before it rebinds the name to loopback.
type rebindingResolver struct{}

func (rebindingResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return []net.IPAddr{{IP: net.ParseIP("93.184.216.34")}}, nil
}

// Two replicas on one Redis: every ack in the inbox is recorded once and
// every webhook event is delivered once, whichever replica took the request.
func TestTwoReplicasProcessEachAckAndWebhookOnce(t *testing.T) {
	hooks := newHookReceiver(t, nil)
	e := newEnv(t, envOptions{replicas: 2, webhookURL: hooks.URL()})
	const n = 20
	patients := []patient{smith, mowers} // one practice mailbox each
	ids := make([]string, n)
	for i := range n {
		ids[i] = e.acceptedVia(e.apps[i%2].URL(), clientA, request(patients[(i/2)%2], "X26ABC1"))
	}

	deadline := time.Now().Add(40 * time.Second)
	msgs := make([]*tracking.Message, n)
	for i, id := range ids {
		for {
			m := e.message(clientA, id)
			if m.State.Terminal() {
				msgs[i] = m
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("message %d (%s) still %s; events %+v", i, id, m.State, m.Events)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	recordedAcks := map[string]int{} // ack MESH id → times recorded in an event
	for i, m := range msgs {
		want := tracking.StateBusAcked
		if patients[(i/2)%2] == mowers {
			want = tracking.StateBusNacked
		}
		if m.State != want {
			t.Errorf("message %d: state %s, want %s", i, m.State, want)
		}
		counts := eventCounts(m.Events)
		for _, typ := range []tracking.EventType{tracking.EventAccepted, tracking.EventSendAttempt, tracking.EventSent,
			tracking.EventDelivered, tracking.EventInfAck, tracking.EventBusAck} {
			if counts[typ] != 1 {
				t.Errorf("message %d: %d %s events, want exactly 1 (%+v)", i, counts[typ], typ, m.Events)
			}
		}
		for _, ev := range m.Events {
			if ev.Type == tracking.EventInfAck || ev.Type == tracking.EventBusAck {
				recordedAcks[ev.MeshMessageID]++
			}
		}
	}
	inMesh := e.acksToSender("X26ABC1")
	if len(inMesh) != 2*n {
		t.Errorf("MESH carried %d acks to the sender, want %d", len(inMesh), 2*n)
	}
	for _, ackID := range inMesh {
		if recordedAcks[ackID] != 1 {
			t.Errorf("ack %s recorded %d times, want once", ackID, recordedAcks[ackID])
		}
	}
	if len(recordedAcks) != len(inMesh) {
		t.Errorf("%d distinct acks recorded, MESH carried %d", len(recordedAcks), len(inMesh))
	}
	dataSent := 0
	e.sent.Range(func(_, v any) bool {
		if c := v.(meshCopy); c.info.From == "X26ABC1" && c.info.WorkflowID == itk.WorkflowSendDocument {
			dataSent++
		}
		return true
	})
	if dataSent != n {
		t.Errorf("MESH received %d documents, want %d (one per request)", dataSent, n)
	}

	const perMessage = 5 // accepted, sent, delivered, infack, busack
	isOurs := map[string]bool{}
	for _, id := range ids {
		isOurs[id] = true
	}
	hooks.waitHooks(t, 20*time.Second, fmt.Sprintf("%d delivered events", n*perMessage), func(r []hookRequest) bool {
		ok := map[string]bool{}
		for _, q := range r {
			if isOurs[q.Event.Data.ID] && q.Status == http.StatusOK {
				ok[q.ID] = true
			}
		}
		return len(ok) == n*perMessage
	})
	for _, id := range ids {
		for _, d := range e.waitDeliveries(clientA, id, perMessage, 10*time.Second) {
			if d.Status != webhook.StatusDelivered || d.AttemptCount != 1 {
				t.Errorf("delivery %s (%s) of %s: status %s, %d attempts; want delivered once", d.ID, d.Type, id, d.Status, d.AttemptCount)
			}
		}
	}
	reqs := hooks.requests()
	assertVerified(t, reqs)
	assertThin(t, reqs)
	for wid, c := range delivered2xx(reqs) {
		if c != 1 {
			t.Errorf("webhook %s delivered %d times, want once", wid, c)
		}
	}
	if len(reqs) != n*perMessage {
		t.Errorf("receiver got %d requests, want %d (one per event; it always answers 200)", len(reqs), n*perMessage)
	}
	for _, id := range ids {
		for typ, wids := range typesDelivered(forMessage(reqs, id)) {
			if len(wids) != 1 {
				t.Errorf("message %s: %d distinct webhook-ids for %s, want 1", id, len(wids), typ)
			}
		}
	}
}
