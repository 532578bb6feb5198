package tracking

import (
	"bytes"
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/internal/redistest"
)

// replyDropper loses the server's answer to the first script call after it
// is armed: the script has run, the client sees a dropped connection.
type replyDropper struct {
	armed  atomic.Bool
	marker []byte // the command whose reply is lost; default EVAL
}

type dropConn struct {
	net.Conn
	d       *replyDropper
	pending atomic.Bool
}

func (c *dropConn) Write(b []byte) (int, error) {
	marker := c.d.marker
	if marker == nil {
		marker = []byte("EVAL")
	}
	if c.d.armed.Load() && bytes.Contains(bytes.ToUpper(b), marker) {
		c.pending.Store(true)
	}
	return c.Conn.Write(b)
}

func (c *dropConn) Read(b []byte) (int, error) {
	if !c.pending.Load() {
		return c.Conn.Read(b)
	}
	c.pending.Store(false)
	n, err := c.Conn.Read(b)
	if bytes.HasPrefix(b[:n], []byte("-NOSCRIPT")) { // not run yet: go-redis sends EVAL next
		c.pending.Store(true)
		return n, err
	}
	c.d.armed.Store(false)
	c.Conn.Close()
	return 0, io.EOF
}

func dropperClient(t *testing.T, d *replyDropper) redis.UniversalClient {
	t.Helper()
	addr := redistest.Start(t)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr},
		Dialer: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, a)
			if err != nil {
				return nil, err
			}
			return &dropConn{Conn: c, d: d}, nil
		}})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// When the reply to Accept's EXEC is lost the message is stored all the
// same: Accept must say so, not make the caller send the document again.
func TestRealRedisAcceptReplyLost(t *testing.T) {
	d := &replyDropper{marker: []byte("EXEC")}
	rdb := dropperClient(t, d)
	s := NewStore(rdb, StoreOptions{})
	ctx := context.Background()
	d.armed.Store(true)
	rec, created, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader("doc"))
	if err != nil || !created || rec.ID != "m1" {
		t.Fatalf("Accept with a lost EXEC reply = %v, %v, %v; want the stored message", rec, created, err)
	}
	if d.armed.Load() {
		t.Fatal("no reply was dropped: the test did not exercise the lost reply")
	}
	if n, _ := rdb.XLen(ctx, OutboxStream).Result(); n != 1 {
		t.Fatalf("outbox entries %d, want 1", n)
	}
	// A transaction that never reached Redis is still an error.
	d.armed.Store(false)
	_ = rdb.Close()
	if _, _, err := s.Accept(ctx, newMsg("c1", "m2"), strings.NewReader("doc")); err == nil {
		t.Fatal("Accept on a closed client succeeded")
	}
}

// go-redis retries a command whose connection dropped. When that command
// was the compare-and-set script and it had already run, the retry must be
// recognised as our own write, not applied again or reported as a conflict.
func TestRealRedisCompareAndSetReplyLost(t *testing.T) {
	d := &replyDropper{}
	rdb := dropperClient(t, d)
	s := NewStore(rdb, StoreOptions{})
	ctx := context.Background()
	rec, _, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader("doc"))
	if err != nil {
		t.Fatal(err)
	}

	d.armed.Store(true)
	sending, err := s.TransitionFrom(ctx, rec, []State{StateAccepted}, StateSending,
		Event{Type: EventSendAttempt}, func(m *Message) { m.Attempts++ })
	if err != nil {
		t.Fatalf("accepted→sending with a lost reply: %v", err)
	}
	if d.armed.Load() {
		t.Fatal("no reply was dropped: the test did not exercise the retry")
	}
	d.armed.Store(true)
	if _, err := s.TransitionFrom(ctx, sending, []State{StateSending}, StateSent, Event{Type: EventSent}, nil); err != nil {
		t.Fatalf("sending→sent with a lost reply: %v (our own write taken for a conflict)", err)
	}
	got, err := s.Get(ctx, "m1")
	if err != nil {
		t.Fatal(err)
	}
	n, _ := rdb.XLen(ctx, EventsStream).Result()
	if got.State != StateSent || got.Attempts != 1 || len(got.Events) != 3 || n != 3 {
		t.Fatalf("after lost replies: state %s, attempts %d (want 1), history %d and events %d (want 3)",
			got.State, got.Attempts, len(got.Events), n)
	}
}
