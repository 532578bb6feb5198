package collector_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/collector"
	"github.com/meshgateway/gateway/internal/redistest"
	"github.com/meshgateway/gateway/itk"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/meshbridge/fakemesh"
	"github.com/meshgateway/gateway/tracking"
)

type rig struct {
	store    *tracking.Store
	rdb      redis.UniversalClient
	mesh     *fakemesh.Server
	sender   *meshbridge.Client // X26ABC1: the gateway's mailbox
	practice *meshbridge.Client // X26GP001
	col      *collector.Collector
}

func newRig(t testing.TB) *rig {
	t.Helper()
	addr := redistest.Start(t)
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 128})
	t.Cleanup(func() { rdb.Close() })
	srv, err := fakemesh.New(fakemesh.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	client := func(mb string) *meshbridge.Client {
		c, err := meshbridge.New(meshbridge.Config{BaseURL: hs.URL, MailboxID: mb, Password: "password", SharedKey: "TestKey"})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	r := &rig{store: tracking.NewStore(rdb, tracking.StoreOptions{}), rdb: rdb, mesh: srv, sender: client("X26ABC1"), practice: client("X26GP001")}
	r.col = collector.New(rdb, r.store, []collector.Inbox{r.sender}, collector.Config{Consumer: "test", Concurrency: 64})
	return r
}

// sentMessage records a message as sent through MESH and returns it.
func (r *rig) sentMessage(t testing.TB, meshID string) *tracking.Message {
	t.Helper()
	ctx := context.Background()
	m, _, err := r.store.Accept(ctx, &tracking.Message{ClientID: "c", Mailbox: "X26ABC1", To: "X26GP001",
		WorkflowID: itk.WorkflowSendDocument, MessageHeaderID: uuid.NewString(), BundleID: uuid.NewString(),
		SenderReference: "urn:uuid:" + uuid.NewString()}, strings.NewReader("<Bundle/>"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	m, err = r.store.Transition(ctx, m.ID, nil, tracking.StateSent, tracking.Event{Type: tracking.EventSent, MeshMessageID: meshID},
		func(m *tracking.Message) { m.MeshMessageID = meshID; m.SentAt = &now })
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// ack sends an ITK3 response from the practice to the gateway's mailbox.
func (r *rig) ack(t testing.TB, m *tracking.Message, code string) {
	t.Helper()
	var buf bytes.Buffer
	a, err := itk.BuildAck(itk.AckRequest{Code: code, RespondsTo: m.MessageHeaderID, SenderReference: m.SenderReference,
		SourceEndpoint: "X26GP001", ResponderODSCode: "A81001"}, itk.FormatXML, &buf)
	if err != nil {
		t.Fatal(err)
	}
	md := itk.AckMetadata(a, itk.WorkflowSendDocument, "X26ABC1")
	if _, err := r.practice.Send(context.Background(), meshbridge.SendOptions{To: md.To, WorkflowID: md.WorkflowID,
		FileName: md.FileName, ContentType: md.ContentType}, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		t.Fatal(err)
	}
}

func TestCollectsAcksAndReports(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	positive := r.sentMessage(t, "MESH-1")
	negative := r.sentMessage(t, "MESH-2")
	reported := r.sentMessage(t, "MESH-3")
	r.ack(t, positive, "20013")
	r.ack(t, positive, "30001")
	r.ack(t, negative, "20009")
	if _, err := r.mesh.InjectReport(fakemesh.Report{Mailbox: "X26ABC1", Code: "EPL-151", Description: "No mailbox matched",
		Event: "SEND", WorkflowID: itk.WorkflowSendDocument, LinkedMessageID: "MESH-3", Status: "error"}); err != nil {
		t.Fatal(err)
	}
	// An unrelated message nobody can correlate, and garbage on the ack workflow.
	if _, err := r.practice.Send(ctx, meshbridge.SendOptions{To: "X26ABC1", WorkflowID: itk.WorkflowSendDocumentAck},
		strings.NewReader("not FHIR"), 8); err != nil {
		t.Fatal(err)
	}
	if _, err := r.col.PollOnce(ctx, r.sender); err != nil {
		t.Fatalf("PollOnce: %v", err)
	}

	want := map[string]tracking.State{positive.ID: tracking.StateBusAcked, negative.ID: tracking.StateInfNacked, reported.ID: tracking.StateUndeliverable}
	for id, state := range want {
		m, err := r.store.Get(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.State != state {
			t.Errorf("%s: state %s, want %s (%+v)", id, m.State, state, m.Events)
		}
	}
	m, _ := r.store.Get(ctx, negative.ID)
	if m.InfAck == nil || m.InfAck.Code != "20009" || m.InfAck.Positive {
		t.Errorf("negative ack not recorded: %+v", m.InfAck)
	}
	m, _ = r.store.Get(ctx, reported.ID)
	if m.LastError == nil || m.LastError.Code != "EPL-151" {
		t.Errorf("report not recorded: %+v", m.LastError)
	}
	// Everything was acknowledged in MESH, including the unparseable message,
	// which is kept as a dead letter for operators.
	if left := r.mesh.Inbox("X26ABC1"); len(left) != 0 {
		t.Errorf("%d messages left in the inbox", len(left))
	}
	dead, err := r.col.DeadLetters().List(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || !strings.Contains(dead[0].Reason, "unparseable") || string(dead[0].Body) != "not FHIR" {
		t.Fatalf("dead letters = %+v", dead)
	}
}

// A repeat of an already-recorded ack (crash between record and MESH
// acknowledge) does not duplicate history.
func TestRepeatedAckIsRecordedOnce(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	m := r.sentMessage(t, "MESH-9")
	r.ack(t, m, "20013")
	ids := r.mesh.Inbox("X26ABC1")
	if len(ids) != 1 {
		t.Fatalf("inbox %d", len(ids))
	}
	// Process without acknowledging by calling Process twice on the same id
	// through an inbox that forgets acknowledgements.
	forgetful := &noAck{c: r.sender}
	for i := 0; i < 2; i++ {
		if err := r.col.Process(ctx, forgetful, ids[0].ID); err != nil {
			t.Fatal(err)
		}
	}
	got, _ := r.store.Get(ctx, m.ID)
	n := 0
	for _, ev := range got.Events {
		if ev.Type == tracking.EventInfAck {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d infack events: %+v", n, got.Events)
	}
}

// noAck is the gateway's mailbox with MESH acknowledgements lost.
type noAck struct{ c *meshbridge.Client }

func (n *noAck) MailboxID() string                   { return n.c.MailboxID() }
func (n *noAck) Handshake(ctx context.Context) error { return n.c.Handshake(ctx) }
func (n *noAck) Inbox(ctx context.Context, o meshbridge.InboxOptions) (*meshbridge.InboxPage, error) {
	return n.c.Inbox(ctx, o)
}
func (n *noAck) Download(ctx context.Context, id string, w io.Writer) (*meshbridge.MessageMetadata, error) {
	return n.c.Download(ctx, id, w)
}
func (n *noAck) Head(ctx context.Context, id string) (*meshbridge.MessageMetadata, error) {
	return n.c.Head(ctx, id)
}
func (n *noAck) Acknowledge(context.Context, string) error { return nil }

// BenchmarkCollect measures inbox messages collected, correlated, recorded
// and acknowledged per second against the local MESH server and a real Redis.
func BenchmarkCollect(b *testing.B) {
	r := newRig(b)
	const n = 1000
	for round := 0; round < b.N; round++ {
		b.StopTimer()
		for i := 0; i < n; i++ {
			m := r.sentMessage(b, fmt.Sprintf("MESH-%d-%d", round, i))
			r.ack(b, m, "20013")
		}
		b.StartTimer()
		for {
			full, err := r.col.PollOnce(context.Background(), r.sender)
			if err != nil {
				b.Fatal(err)
			}
			if !full {
				break
			}
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "msgs/s")
}
