package collector

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/itk"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/tracking"
)

// orderInbox is an in-memory MESH inbox whose downloads can be slowed down
// per message, to make the download order differ from the inbox order.
type orderInbox struct {
	ids    []string
	bodies map[string][]byte
	delay  map[string]time.Duration

	mu    sync.Mutex
	acked []string
}

func (o *orderInbox) MailboxID() string               { return "X26ABC1" }
func (o *orderInbox) Handshake(context.Context) error { return nil }
func (o *orderInbox) Inbox(context.Context, meshbridge.InboxOptions) (*meshbridge.InboxPage, error) {
	return &meshbridge.InboxPage{Messages: o.ids}, nil
}

func (o *orderInbox) meta(id string) *meshbridge.MessageMetadata {
	return &meshbridge.MessageMetadata{MessageID: id, From: "X26GP001", To: "X26ABC1", MessageType: "DATA",
		WorkflowID: itk.WorkflowSendDocumentAck, Raw: http.Header{}}
}

func (o *orderInbox) Download(ctx context.Context, id string, w io.Writer) (*meshbridge.MessageMetadata, error) {
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(o.delay[id]):
	}
	if _, err := w.Write(o.bodies[id]); err != nil {
		return nil, err
	}
	return o.meta(id), nil
}

func (o *orderInbox) Head(_ context.Context, id string) (*meshbridge.MessageMetadata, error) {
	return o.meta(id), nil
}

func (o *orderInbox) Acknowledge(_ context.Context, id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.acked = append(o.acked, id)
	return nil
}

// The practice's infrastructure ack is listed before its business ack. Even
// when the business ack downloads first, the message must pass through
// inf_acked, and both acks are acknowledged in MESH.
func TestPageRecordedInInboxOrder(t *testing.T) {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: miniredis.RunT(t).Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	store := tracking.NewStore(rdb, tracking.StoreOptions{})
	m, _, err := store.Accept(ctx, &tracking.Message{ClientID: "app-a", Mailbox: "X26ABC1",
		MessageHeaderID: "hdr-1", SenderReference: "ref-1"}, strings.NewReader("payload"))
	if err != nil {
		t.Fatal(err)
	}
	sentAt := time.Now().UTC()
	if _, err := store.Transition(ctx, m.ID, []tracking.State{tracking.StateAccepted}, tracking.StateSent,
		tracking.Event{Type: tracking.EventSent, State: tracking.StateSent, At: sentAt, MeshMessageID: "MESH-OUT-1"},
		func(m *tracking.Message) { m.MeshMessageID, m.SentAt = "MESH-OUT-1", &sentAt }); err != nil {
		t.Fatal(err)
	}

	ack := func(code string) []byte {
		var buf bytes.Buffer
		if _, err := itk.BuildAck(itk.AckRequest{Code: code, RespondsTo: "hdr-1", SenderReference: "ref-1",
			SourceEndpoint: "X26GP001", ResponderODSCode: "A81001"}, itk.FormatXML, &buf); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	in := &orderInbox{
		ids:    []string{"ACK-INF", "ACK-BUS"},
		bodies: map[string][]byte{"ACK-INF": ack("20013"), "ACK-BUS": ack("30001")},
		delay:  map[string]time.Duration{"ACK-INF": 200 * time.Millisecond}, // the business ack downloads first
	}
	c := New(rdb, store, []Inbox{in}, Config{Concurrency: 4})
	if _, err := c.PollOnce(ctx, in); err != nil {
		t.Fatalf("PollOnce: %v", err)
	}

	got, err := store.Get(ctx, m.ID)
	if err != nil {
		t.Fatal(err)
	}
	var states []tracking.State
	var types []tracking.EventType
	for _, ev := range got.Events {
		states = append(states, ev.State)
		types = append(types, ev.Type)
	}
	wantStates := []tracking.State{tracking.StateAccepted, tracking.StateSent, tracking.StateDelivered, tracking.StateInfAcked, tracking.StateBusAcked}
	if !slices.Equal(states, wantStates) {
		t.Fatalf("history %v / %v, want states %v", types, states, wantStates)
	}
	if got.InfAck == nil || got.InfAck.MeshMessageID != "ACK-INF" || got.BusAck == nil || got.BusAck.MeshMessageID != "ACK-BUS" {
		t.Fatalf("acks %+v %+v", got.InfAck, got.BusAck)
	}
	slices.Sort(in.acked)
	if !slices.Equal(in.acked, []string{"ACK-BUS", "ACK-INF"}) {
		t.Fatalf("acknowledged in MESH: %v", in.acked)
	}
}
