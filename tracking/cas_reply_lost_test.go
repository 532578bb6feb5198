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
	armed atomic.Bool
}

type dropConn struct {
	net.Conn
	d       *replyDropper
	pending atomic.Bool
}

func (c *dropConn) Write(b []byte) (int, error) {
	if c.d.armed.Load() && bytes.Contains(bytes.ToUpper(b), []byte("EVAL")) {
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

// go-redis retries a command whose connection dropped. When that command
// was the compare-and-set script and it had already run, the retry must be
// recognised as our own write, not applied again or reported as a conflict.
func TestRealRedisCompareAndSetReplyLost(t *testing.T) {
	addr := redistest.Start(t)
	d := &replyDropper{}
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr},
		Dialer: func(ctx context.Context, network, a string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, a)
			if err != nil {
				return nil, err
			}
			return &dropConn{Conn: c, d: d}, nil
		}})
	t.Cleanup(func() { _ = rdb.Close() })
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
