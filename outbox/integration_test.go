package outbox

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/internal/redistest"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/tracking"
)

// The whole path on a real redis-server: durability check, Accept, two
// worker replicas sharing the consumer group, MESH send and tracking.
func TestRealRedisAcceptAndSend(t *testing.T) {
	addr := redistest.Start(t)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}})
	t.Cleanup(func() { _ = rdb.Close() })
	c := &clock{t: time.Now().UTC()}
	store := tracking.NewStore(rdb, tracking.StoreOptions{Now: c.Now})
	ctx := context.Background()
	if warn, err := store.CheckDurability(ctx); err != nil || warn != "" {
		t.Fatalf("CheckDurability on AOF everysec = %q, %v", warn, err)
	}

	h := &harness{t: t, rdb: rdb, store: store, clock: c, logs: &syncBuffer{}}
	const n = 20
	for i := range n {
		h.accept(fmt.Sprintf("m%d", i), "MBX1", strings.Repeat("x", 20)) // 3 chunks of 8
	}
	f := &fakeSender{track: func(int) (*meshbridge.Tracking, error) {
		return &meshbridge.Tracking{Status: meshbridge.TrackingAcknowledged}, nil
	}}
	for _, consumer := range []string{"replica-1", "replica-2"} {
		cfg := h.config(consumer)
		cfg.Logger = slog.New(slog.DiscardHandler)
		h.run(senderMap{"MBX1": f}, cfg)
	}
	for i := range n {
		h.waitState(fmt.Sprintf("m%d", i), tracking.StateSent)
	}
	h.waitUntil("tracking polls scheduled", func() bool {
		k, _ := rdb.ZCard(ctx, tracking.TrackDue).Result()
		return k == n
	})
	c.Add(3 * time.Minute)
	for i := range n {
		h.waitState(fmt.Sprintf("m%d", i), tracking.StateDelivered)
	}
	h.waitUntil("stream drained", h.streamEmpty)
	if sends, conts, _ := f.counts(); sends != n || conts != 0 {
		t.Fatalf("sends=%d continues=%d, want %d and 0 (each message sent once)", sends, conts, n)
	}
	events, err := rdb.XLen(ctx, tracking.EventsStream).Result()
	if err != nil || events != 4*n { // accepted, send_attempt, sent, delivered
		t.Fatalf("events on the bus = %d, %v; want %d", events, err, 4*n)
	}

	// A second server without AOF is flagged.
	addr2 := redistest.Start(t, "--appendonly", "no")
	rdb2 := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr2}})
	t.Cleanup(func() { _ = rdb2.Close() })
	if warn, err := tracking.NewStore(rdb2, tracking.StoreOptions{}).CheckDurability(ctx); err != nil || warn != tracking.WarnAOFOff {
		t.Fatalf("CheckDurability without AOF = %q, %v", warn, err)
	}
}

// Every key shares the {gw} hash tag, so WATCH/MULTI, MGET and the Lua
// scripts work on Redis Cluster (a CROSSSLOT error would fail this test).
func TestRealRedisCluster(t *testing.T) {
	addr := redistest.StartCluster(t)
	rdb := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{addr}})
	t.Cleanup(func() { _ = rdb.Close() })
	c := &clock{t: time.Now().UTC()}
	store := tracking.NewStore(rdb, tracking.StoreOptions{Now: c.Now, PayloadChunk: 4})
	ctx := context.Background()
	h := &harness{t: t, rdb: rdb, store: store, clock: c, logs: &syncBuffer{}}
	for i := range 3 {
		msg := &tracking.Message{ID: fmt.Sprintf("m%d", i), ClientID: "client-{x}", Mailbox: "MBX1", To: patientTo,
			WorkflowID: "WF", IdempotencyKey: fmt.Sprintf("k%d", i), RequestHash: "h", BundleID: fmt.Sprintf("b%d", i)}
		if _, _, err := store.Accept(ctx, msg, strings.NewReader("0123456789")); err != nil {
			t.Fatalf("Accept on cluster: %v", err)
		}
	}
	page, _, err := store.List(ctx, "client-{x}", tracking.ListFilter{})
	if err != nil || len(page) != 3 {
		t.Fatalf("List on cluster = %d, %v", len(page), err)
	}
	// The first send fails transiently, so the retry path (ZSET + Lua move)
	// runs on the cluster too.
	f := &fakeSender{send: func(_ context.Context, n int) (meshbridge.SendResult, error) {
		if n == 0 {
			return meshbridge.SendResult{}, &meshbridge.FirstChunkError{Err: &meshbridge.Error{HTTPStatus: 503}}
		}
		return meshbridge.SendResult{}, nil
	}}
	cfg := h.config("cluster-replica")
	cfg.Logger = slog.New(slog.DiscardHandler)
	h.run(senderMap{"MBX1": f}, cfg)
	h.waitUntil("retry scheduled", func() bool {
		n, _ := rdb.ZCard(ctx, tracking.OutboxDelayed).Result()
		return n == 1
	})
	c.Add(time.Hour)
	for i := range 3 {
		h.waitState(fmt.Sprintf("m%d", i), tracking.StateSent)
	}
	if sends, _, _ := f.counts(); sends != 4 {
		t.Fatalf("sends = %d, want 4 (one retry)", sends)
	}
	if got, err := store.FindByITK(ctx, "b1"); err != nil || got.ID != "m1" {
		t.Fatalf("FindByITK on cluster = %v, %v", got, err)
	}
	for _, s := range f.sends {
		if string(s.body) != "0123456789" {
			t.Fatalf("payload read back on cluster = %q", s.body)
		}
	}
}
