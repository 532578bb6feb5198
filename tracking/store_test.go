package tracking

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func newTestStore(t *testing.T, opts StoreOptions) (*Store, *miniredis.Miniredis, redis.UniversalClient) {
	t.Helper()
	m := miniredis.RunT(t)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{m.Addr()}})
	t.Cleanup(func() { _ = rdb.Close() })
	return NewStore(rdb, opts), m, rdb
}

func newMsg(client, id string) *Message {
	return &Message{
		ID: id, ClientID: client, Mailbox: "X26HC001", To: "9991112345_SUBJECT", WorkflowID: "GPFED_CONSULT_REPORT",
		Subject: "secret subject", ContentType: "application/fhir+xml", BundleID: "bundle-" + id,
		MessageHeaderID: "header-" + id, SenderReference: "sref-" + id,
	}
}

func TestAcceptStoresEverything(t *testing.T) {
	s, m, rdb := newTestStore(t, StoreOptions{TTL: time.Hour})
	ctx := context.Background()
	doc := []byte("<Bundle>document</Bundle>")
	rec, created, err := s.Accept(ctx, newMsg("c1", "m1"), bytes.NewReader(doc))
	if err != nil || !created {
		t.Fatalf("Accept = %v, %v", created, err)
	}
	if rec.State != StateAccepted || rec.PayloadSize != int64(len(doc)) || len(rec.Events) != 1 {
		t.Fatalf("record = %+v", rec)
	}
	got, err := s.Get(ctx, "m1")
	if err != nil || got.Subject != "secret subject" || got.State != StateAccepted {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	for _, k := range []string{"{gw}:msg:m1", "{gw}:payload:m1", "{gw}:itk:bundle-m1", "{gw}:client:c1:msgs"} {
		if ttl := m.TTL(k); ttl != time.Hour {
			t.Errorf("TTL(%s) = %v, want 1h", k, ttl)
		}
	}
	entries, err := rdb.XRange(ctx, OutboxStream, "-", "+").Result()
	if err != nil || len(entries) != 1 || entries[0].Values["messageId"] != "m1" {
		t.Fatalf("outbox = %+v, %v", entries, err)
	}
	if keys := m.Keys(); strings.Contains(strings.Join(keys, " "), "upload") {
		t.Errorf("temporary upload key left behind: %v", keys)
	}
	r, err := s.OpenPayload(ctx, "m1", 0)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(r)
	if !bytes.Equal(b, doc) {
		t.Fatalf("payload = %q", b)
	}
	for _, find := range []func(context.Context, string) (*Message, error){s.FindByITK} {
		for _, ref := range []string{"bundle-m1", "header-m1", "sref-m1"} {
			if got, err := find(ctx, ref); err != nil || got.ID != "m1" {
				t.Errorf("FindByITK(%s) = %v, %v", ref, got, err)
			}
		}
	}
	if _, err := s.FindByITK(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("FindByITK(unknown) err = %v", err)
	}
	if _, err := s.Get(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(unknown) err = %v", err)
	}
	if _, _, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader("x")); !errors.Is(err, ErrDuplicateID) {
		t.Errorf("Accept(same id) err = %v", err)
	}
}

func TestAcceptIdempotency(t *testing.T) {
	s, m, rdb := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	first := newMsg("c1", "m1")
	first.IdempotencyKey, first.RequestHash = "key-1", "hash-a"
	rec1, created, err := s.Accept(ctx, first, strings.NewReader("one"))
	if err != nil || !created {
		t.Fatalf("first Accept = %v, %v", created, err)
	}
	tests := []struct {
		name, client, id, hash string
		wantCreated            bool
		wantErr                error
		wantID                 string
	}{
		{"same key same hash", "c1", "m2", "hash-a", false, nil, "m1"},
		{"same key other hash", "c1", "m3", "hash-b", false, ErrIdempotencyConflict, ""},
		{"same key other client", "c2", "m4", "hash-b", true, nil, "m4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msg := newMsg(tt.client, tt.id)
			msg.IdempotencyKey, msg.RequestHash = "key-1", tt.hash
			rec, created, err := s.Accept(ctx, msg, strings.NewReader("second payload"))
			if !errors.Is(err, tt.wantErr) || created != tt.wantCreated {
				t.Fatalf("Accept = %v, %v; want %v, %v", created, err, tt.wantCreated, tt.wantErr)
			}
			if err == nil && rec.ID != tt.wantID {
				t.Fatalf("id = %s, want %s", rec.ID, tt.wantID)
			}
			if !tt.wantCreated && m.Exists(payloadKey(tt.id)) {
				t.Errorf("payload of the refused duplicate was kept")
			}
		})
	}
	if rec1.IdempotencyKey != "key-1" {
		t.Errorf("idempotency key not on record")
	}
	again, _ := s.Get(ctx, "m1")
	if again.RequestHash != "hash-a" {
		t.Errorf("RequestHash not persisted: %q", again.RequestHash)
	}
	if n, _ := rdb.XLen(ctx, OutboxStream).Result(); n != 2 {
		t.Errorf("outbox length = %d, want 2 (m1, m4)", n)
	}
	for _, k := range m.Keys() {
		if strings.Contains(k, "upload") {
			t.Errorf("upload key left: %s", k)
		}
	}
}

func TestAcceptConcurrentSameKey(t *testing.T) {
	s, _, rdb := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	var wg sync.WaitGroup
	created := make(chan string, 8)
	for i := range 8 {
		wg.Go(func() {
			msg := newMsg("c1", fmt.Sprintf("m%d", i))
			msg.IdempotencyKey, msg.RequestHash = "k", "h"
			rec, c, err := s.Accept(ctx, msg, strings.NewReader("doc"))
			if err != nil {
				t.Error(err)
				return
			}
			if c {
				created <- rec.ID
			}
		})
	}
	wg.Wait()
	close(created)
	if len(created) != 1 {
		t.Fatalf("%d records created for one idempotency key", len(created))
	}
	if n, _ := rdb.XLen(ctx, OutboxStream).Result(); n != 1 {
		t.Fatalf("outbox length = %d", n)
	}
}

// patternReader produces size deterministic bytes and calls check before
// each read with the number of bytes produced so far.
type patternReader struct {
	size, off int64
	check     func(produced int64)
}

func (p *patternReader) Read(b []byte) (int, error) {
	if p.off >= p.size {
		return 0, io.EOF
	}
	if p.check != nil {
		p.check(p.off)
	}
	n := int(min(int64(len(b)), p.size-p.off))
	for i := range n {
		b[i] = byte((p.off + int64(i)) * 7 % 251)
	}
	p.off += int64(n)
	return n, nil
}

func TestAcceptStreamsLargePayload(t *testing.T) {
	const size, piece = 20 << 20, 1 << 20
	s, m, _ := newTestStore(t, StoreOptions{PayloadChunk: piece})
	ctx := context.Background()
	// Streaming means Redis already holds everything but the piece being
	// read: the gateway never buffers the document.
	var checks int
	src := &patternReader{size: size, check: func(produced int64) {
		var stored int64
		for _, k := range m.Keys() {
			if strings.HasPrefix(k, "{gw}:upload:") {
				v, _ := m.Get(k)
				stored = int64(len(v))
			}
		}
		if stored < produced-piece {
			t.Fatalf("only %d bytes in Redis after %d read: payload is being buffered", stored, produced)
		}
		checks++
	}}
	rec, _, err := s.Accept(ctx, newMsg("c1", "big"), src)
	if err != nil {
		t.Fatal(err)
	}
	if rec.PayloadSize != size || checks < size/piece {
		t.Fatalf("size %d, checks %d", rec.PayloadSize, checks)
	}
	want := sha256.New()
	_, _ = io.Copy(want, &patternReader{size: size})
	r, err := s.OpenPayload(ctx, "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	if _, err := io.Copy(got, r); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("payload read back differs")
	}
}

func TestOpenPayloadOffsets(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{PayloadChunk: 4})
	ctx := context.Background()
	doc := "0123456789abcdefghij" // 20 bytes, 5 pieces of 4
	if _, _, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader(doc)); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{0, 1, 3, 4, 5, 19, 20} {
		r, err := s.OpenPayload(ctx, "m1", off)
		if err != nil {
			t.Fatalf("offset %d: %v", off, err)
		}
		// A tiny buffer exercises reads that straddle piece boundaries.
		var out bytes.Buffer
		buf := make([]byte, 3)
		for {
			n, err := r.Read(buf)
			out.Write(buf[:n])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if out.String() != doc[off:] {
			t.Errorf("offset %d: got %q want %q", off, out.String(), doc[off:])
		}
	}
	if _, err := s.OpenPayload(ctx, "m1", 21); err == nil {
		t.Error("offset beyond size accepted")
	}
	if _, err := s.OpenPayload(ctx, "nope", 0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown id: %v", err)
	}
}

func TestTransitionCompareAndSet(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	if _, _, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader("doc")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	results := make(chan error, 2)
	for range 2 {
		wg.Go(func() {
			_, err := s.Transition(ctx, "m1", []State{StateAccepted}, StateSending,
				Event{Type: EventSendAttempt}, func(m *Message) { m.FirstChunkAttempts++ })
			results <- err
		})
	}
	wg.Wait()
	close(results)
	var ok, conflict int
	for err := range results {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrStateConflict):
			conflict++
		default:
			t.Fatalf("unexpected error %v", err)
		}
	}
	if ok != 1 || conflict != 1 {
		t.Fatalf("ok=%d conflict=%d, want 1 and 1", ok, conflict)
	}
	rec, _ := s.Get(ctx, "m1")
	if rec.State != StateSending || rec.FirstChunkAttempts != 1 || len(rec.Events) != 2 {
		t.Fatalf("record after race: state %s attempts %d events %d", rec.State, rec.FirstChunkAttempts, len(rec.Events))
	}

	// Concurrent updates are never lost.
	for range 2 {
		wg.Go(func() {
			for range 25 {
				if _, err := s.Update(ctx, "m1", func(m *Message) error { m.Attempts++; return nil }); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	rec, _ = s.Get(ctx, "m1")
	if rec.Attempts != 50 {
		t.Fatalf("Attempts = %d, want 50", rec.Attempts)
	}
	if _, err := s.Update(ctx, "m1", func(m *Message) error { m.State = StateSent; return nil }); err == nil {
		t.Fatal("Update changed the state")
	}
	if _, err := s.Transition(ctx, "nope", nil, StateSent, Event{Type: EventSent}, nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Transition(unknown) = %v", err)
	}
}

func TestEventsPublishedWithStableIDs(t *testing.T) {
	at := time.Date(2026, 11, 24, 10, 0, 0, 123, time.UTC)
	s, _, rdb := newTestStore(t, StoreOptions{Now: func() time.Time { return at }})
	ctx := context.Background()
	if _, _, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader("doc")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "m1", func(m *Message) error { m.MeshMessageID = "MESH-1"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, "m1", []State{StateAccepted}, StateSent, Event{Type: EventSent}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AddEvent(ctx, "m1", Event{Type: EventAckOverdue, Code: "X1", Display: "late"}); err != nil {
		t.Fatal(err)
	}
	if got, err := s.FindByMeshMessageID(ctx, "MESH-1"); err != nil || got.ID != "m1" {
		t.Fatalf("FindByMeshMessageID = %v, %v", got, err)
	}
	entries, err := rdb.XRange(ctx, EventsStream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	want := []map[string]any{
		{"eventId": "m1:0", "messageId": "m1", "clientId": "c1", "type": "accepted", "state": "accepted",
			"code": "", "display": "", "meshMessageId": "", "at": "2026-11-24T10:00:00.000000123Z"},
		{"eventId": "m1:1", "messageId": "m1", "clientId": "c1", "type": "sent", "state": "sent",
			"code": "", "display": "", "meshMessageId": "MESH-1", "at": "2026-11-24T10:00:00.000000123Z"},
		{"eventId": "m1:2", "messageId": "m1", "clientId": "c1", "type": "ack_overdue", "state": "sent",
			"code": "X1", "display": "late", "meshMessageId": "MESH-1", "at": "2026-11-24T10:00:00.000000123Z"},
	}
	if len(entries) != len(want) {
		t.Fatalf("%d events, want %d", len(entries), len(want))
	}
	for i, e := range entries {
		if fmt.Sprint(e.Values) != fmt.Sprint(want[i]) {
			t.Errorf("event %d = %v\nwant %v", i, e.Values, want[i])
		}
	}
	rec, _ := s.Get(ctx, "m1")
	if len(rec.Events) != 3 || rec.Events[2].State != StateSent {
		t.Fatalf("history = %+v", rec.Events)
	}
	// Sending handed the document to MESH: the copy here is gone.
	if _, err := s.OpenPayload(ctx, "m1", 0); !errors.Is(err, ErrPayloadGone) {
		t.Fatalf("OpenPayload after sent = %v", err)
	}
}

func TestList(t *testing.T) {
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	s, _, _ := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	// c1: m0..m6, one minute apart; m3 and m4 share a creation time to
	// exercise ties at page boundaries.
	states := []State{StateAccepted, StateRejected, StateSent, StateFailed, StateDelivered, StateSent, StateAccepted}
	for i, st := range states {
		msg := newMsg("c1", fmt.Sprintf("m%d", i))
		msg.CreatedAt = base.Add(time.Duration(i) * time.Minute)
		if i == 4 {
			msg.CreatedAt = base.Add(3 * time.Minute)
		}
		if _, _, err := s.Accept(ctx, msg, strings.NewReader("d")); err != nil {
			t.Fatal(err)
		}
		if st != StateAccepted {
			mutate := func(m *Message) {}
			if i == 5 {
				mutate = func(m *Message) { m.AckOverdue = true }
			}
			if _, err := s.Transition(ctx, msg.ID, nil, st, Event{Type: EventFailed}, mutate); err != nil {
				t.Fatal(err)
			}
		}
	}
	other := newMsg("c2", "other")
	if _, _, err := s.Accept(ctx, other, strings.NewReader("d")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		f    ListFilter
		want string
	}{
		{"all newest first", ListFilter{}, "m6 m5 m4 m3 m2 m1 m0"},
		{"state", ListFilter{State: []State{StateSent}}, "m5 m2"},
		{"needs attention", ListFilter{NeedsAttention: true}, "m5 m3 m1"},
		{"since", ListFilter{Since: base.Add(4 * time.Minute)}, "m6 m5"},
		{"paged by 2", ListFilter{Limit: 2}, "m6 m5 m4 m3 m2 m1 m0"},
		{"paged by 3", ListFilter{Limit: 3}, "m6 m5 m4 m3 m2 m1 m0"},
		{"paged filter", ListFilter{Limit: 1, State: []State{StateAccepted, StateFailed}}, "m6 m3 m0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			f := tt.f
			for pages := 0; pages < 20; pages++ {
				page, next, err := s.List(ctx, "c1", f)
				if err != nil {
					t.Fatal(err)
				}
				if f.Limit > 0 && len(page) > f.Limit {
					t.Fatalf("page of %d > limit %d", len(page), f.Limit)
				}
				for _, m := range page {
					ids = append(ids, m.ID)
				}
				if next == "" {
					break
				}
				f.Cursor = next
			}
			if got := strings.Join(ids, " "); got != tt.want {
				t.Fatalf("got %q want %q", got, tt.want)
			}
		})
	}
	if _, _, err := s.List(ctx, "c1", ListFilter{Cursor: "!!"}); !errors.Is(err, ErrInvalidCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
	if page, _, _ := s.List(ctx, "c3", ListFilter{}); len(page) != 0 {
		t.Fatalf("unknown client sees %d messages", len(page))
	}
}

func TestCheckDurabilityEmbedded(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{})
	warn, err := s.CheckDurability(context.Background())
	if err != nil || warn != WarnEmbedded {
		t.Fatalf("CheckDurability = %q, %v", warn, err)
	}
}

func TestCountByStateFollowsTransitions(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{})
	ctx := t.Context()
	for i := 0; i < 3; i++ {
		if _, _, err := s.Accept(ctx, &Message{ClientID: "c", Mailbox: "X26ABC1"}, strings.NewReader("payload")); err != nil {
			t.Fatal(err)
		}
	}
	page, _, err := s.List(ctx, "c", ListFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, page[0].ID, []State{StateAccepted}, StateSending, Event{Type: EventSendAttempt}, nil); err != nil {
		t.Fatal(err)
	}
	got, err := s.CountByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got[StateAccepted] != 2 || got[StateSending] != 1 || got[StateSent] != 0 {
		t.Fatalf("counts = %v", got)
	}
}

// Paging through more messages than one Redis batch returns every message once.
func TestListPagesThroughEverything(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{})
	ctx := t.Context()
	const n = 500
	for i := 0; i < n; i++ {
		if _, _, err := s.Accept(ctx, &Message{ClientID: "c", Mailbox: "X26ABC1"}, strings.NewReader("p")); err != nil {
			t.Fatal(err)
		}
	}
	seen := map[string]bool{}
	cursor := ""
	for pages := 0; pages < 20; pages++ {
		page, next, err := s.List(ctx, "c", ListFilter{Limit: 200, Cursor: cursor})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range page {
			if seen[m.ID] {
				t.Fatalf("message %s listed twice", m.ID)
			}
			seen[m.ID] = true
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if len(seen) != n {
		t.Fatalf("listed %d of %d messages", len(seen), n)
	}
}

// A payload reader that fails (even with an error wrapping io.ErrUnexpectedEOF,
// as a cut-short upload does) must not be stored as a shorter document.
func TestAcceptRefusesFailedPayload(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{})
	broken := fmt.Errorf("upload cut short: %w", io.ErrUnexpectedEOF)
	for _, size := range []int{10, 3 << 20} {
		r := io.MultiReader(strings.NewReader(strings.Repeat("x", size)), iotest.ErrReader(broken))
		if _, _, err := s.Accept(t.Context(), &Message{ClientID: "c", Mailbox: "X26ABC1"}, r); err == nil {
			t.Fatalf("size %d: Accept stored a payload whose reader failed", size)
		}
	}
	page, _, err := s.List(t.Context(), "c", ListFilter{})
	if err != nil || len(page) != 0 {
		t.Fatalf("records after failed accepts: %d, %v", len(page), err)
	}
}

// TransitionFrom uses the record the caller holds as the expected value: a
// fresh one needs no read, a stale one is refreshed and the change applied
// to what is stored now, and the state check still sees the stored state.
func TestTransitionFrom(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	if _, _, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader("doc")); err != nil {
		t.Fatal(err)
	}
	stale, err := s.Get(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(ctx, "m1", func(m *Message) error { m.Attempts = 7; return nil }); err != nil {
		t.Fatal(err)
	}
	sending, err := s.TransitionFrom(ctx, stale, []State{StateAccepted}, StateSending, Event{Type: EventSendAttempt},
		func(m *Message) { m.FirstChunkAttempts++ })
	if err != nil {
		t.Fatal(err)
	}
	if sending.Attempts != 7 || sending.FirstChunkAttempts != 1 || sending.State != StateSending {
		t.Fatalf("after stale TransitionFrom: %+v", sending)
	}
	if _, err := s.TransitionFrom(ctx, stale, []State{StateAccepted}, StateSending, Event{Type: EventSendAttempt}, nil); !errors.Is(err, ErrStateConflict) {
		t.Fatalf("stale record, state moved on: %v, want ErrStateConflict", err)
	}
	sent, err := s.TransitionFrom(ctx, sending, []State{StateSending}, StateSent, Event{Type: EventSent}, nil)
	if err != nil || sent.State != StateSent {
		t.Fatalf("fresh TransitionFrom = %v, %v", sent, err)
	}
	got, _ := s.Get(ctx, "m1")
	if got.State != StateSent || got.Attempts != 7 || len(got.Events) != 3 {
		t.Fatalf("stored: state %s attempts %d events %d", got.State, got.Attempts, len(got.Events))
	}
}

// TransitionFromIf checks its precondition against the stored record, not
// the caller's (stale) copy.
func TestTransitionFromIf(t *testing.T) {
	s, _, _ := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	if _, _, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader("doc")); err != nil {
		t.Fatal(err)
	}
	stale, _ := s.Get(ctx, "m1")
	noMeshID := func(m *Message) bool { return m.MeshMessageID == "" }
	if _, err := s.Update(ctx, "m1", func(m *Message) error { m.MeshMessageID = "MESH1"; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TransitionFromIf(ctx, stale, []State{StateAccepted}, noMeshID, StateSending, Event{Type: EventSendAttempt}, nil); !errors.Is(err, ErrStateConflict) {
		t.Fatalf("precondition broken since the read: %v, want ErrStateConflict", err)
	}
	if got, _ := s.Get(ctx, "m1"); got.State != StateAccepted || len(got.Events) != 1 {
		t.Fatalf("record changed: state %s, %d events", got.State, len(got.Events))
	}
	fresh, _ := s.Get(ctx, "m1")
	if _, err := s.TransitionFromIf(ctx, fresh, []State{StateAccepted}, func(m *Message) bool { return m.MeshMessageID == "MESH1" },
		StateSending, Event{Type: EventSendAttempt}, nil); err != nil {
		t.Fatalf("precondition holding: %v", err)
	}
}

// RecordEvent writes the record's change and the event together, or
// nothing when apply declines.
func TestRecordEvent(t *testing.T) {
	s, _, rdb := newTestStore(t, StoreOptions{})
	ctx := context.Background()
	if _, _, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader("doc")); err != nil {
		t.Fatal(err)
	}
	ev := Event{Type: EventAckOverdue, Code: "infrastructure", Display: "late"}
	ok, err := s.RecordEvent(ctx, "m1", ev, func(m *Message) bool { m.AckOverdue = true; return true })
	if err != nil || !ok {
		t.Fatalf("RecordEvent = %v, %v", ok, err)
	}
	rec, _ := s.Get(ctx, "m1")
	last := rec.Events[len(rec.Events)-1]
	if !rec.AckOverdue || last.Type != EventAckOverdue || last.State != StateAccepted || last.Code != "infrastructure" {
		t.Fatalf("record after RecordEvent: overdue %v, last event %+v", rec.AckOverdue, last)
	}
	before := len(rec.Events)
	ok, err = s.RecordEvent(ctx, "m1", ev, func(m *Message) bool { m.Attempts = 99; return false })
	if err != nil || ok {
		t.Fatalf("declined RecordEvent = %v, %v", ok, err)
	}
	if rec, _ = s.Get(ctx, "m1"); len(rec.Events) != before || rec.Attempts == 99 {
		t.Fatalf("a declined RecordEvent changed the record: %d events, attempts %d", len(rec.Events), rec.Attempts)
	}
	if _, err := s.RecordEvent(ctx, "m1", ev, func(m *Message) bool { m.State = StateSent; return true }); err == nil {
		t.Fatal("RecordEvent changed the state")
	}
	if n, _ := rdb.XLen(ctx, EventsStream).Result(); n != 2 { // accepted, ack_overdue
		t.Fatalf("%d events published, want 2", n)
	}
}
