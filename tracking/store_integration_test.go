package tracking

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/internal/redistest"
)

func realStore(t testing.TB, opts StoreOptions, extra ...string) (*Store, redis.UniversalClient) {
	t.Helper()
	addr := redistest.Start(t, extra...)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{addr}})
	t.Cleanup(func() { _ = rdb.Close() })
	return NewStore(rdb, opts), rdb
}

func TestRealRedisDurability(t *testing.T) {
	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"aof everysec", nil, ""},
		{"aof always", []string{"--appendfsync", "always"}, ""},
		{"aof off", []string{"--appendonly", "no"}, WarnAOFOff},
		{"fsync no", []string{"--appendfsync", "no"}, WarnFsyncNo},
		{"evicting", []string{"--maxmemory", "64mb", "--maxmemory-policy", "volatile-lru"}, WarnEviction},
		{"memory limit, no eviction", []string{"--maxmemory", "64mb", "--maxmemory-policy", "noeviction"}, ""},
		{"aof off and evicting", []string{"--appendonly", "no", "--maxmemory", "64mb", "--maxmemory-policy", "allkeys-lru"}, WarnAOFOff + "; " + WarnEviction},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := realStore(t, StoreOptions{}, tt.extra...)
			warn, err := s.CheckDurability(context.Background())
			if err != nil || warn != tt.want {
				t.Fatalf("CheckDurability = %q, %v; want %q", warn, err, tt.want)
			}
		})
	}
}

// On a real Redis (out of process) the gateway's own allocations during a
// 20 MB Accept stay far below the payload size: it is streamed, not buffered.
func TestRealRedisAcceptHeapBounded(t *testing.T) {
	const size = 20 << 20
	s, _ := realStore(t, StoreOptions{})
	ctx := context.Background()
	if _, _, err := s.Accept(ctx, newMsg("c1", "warm"), strings.NewReader("warm-up")); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rec, _, err := s.Accept(ctx, newMsg("c1", "big"), &patternReader{size: size})
	if err != nil {
		t.Fatal(err)
	}
	runtime.ReadMemStats(&after)
	allocated := after.TotalAlloc - before.TotalAlloc
	t.Logf("Accept of %d MiB allocated %.1f MiB in total", size>>20, float64(allocated)/(1<<20))
	if allocated > size/4 {
		t.Fatalf("Accept allocated %d bytes for a %d-byte payload: it is buffering", allocated, size)
	}
	if rec.PayloadSize != size {
		t.Fatalf("size %d", rec.PayloadSize)
	}
	r, err := s.OpenPayload(ctx, "big", 0)
	if err != nil {
		t.Fatal(err)
	}
	got, want := sha256.New(), sha256.New()
	_, _ = io.Copy(got, r)
	_, _ = io.Copy(want, &patternReader{size: size})
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("payload differs after a round trip through redis-server")
	}
}

func TestRealRedisIdempotencyAndTransition(t *testing.T) {
	s, rdb := realStore(t, StoreOptions{})
	ctx := context.Background()
	msg := newMsg("c1", "m1")
	msg.IdempotencyKey, msg.RequestHash = "k", "h"
	if _, created, err := s.Accept(ctx, msg, strings.NewReader("doc")); err != nil || !created {
		t.Fatalf("Accept = %v, %v", created, err)
	}
	dup := newMsg("c1", "m2")
	dup.IdempotencyKey, dup.RequestHash = "k", "h"
	if rec, created, err := s.Accept(ctx, dup, strings.NewReader("doc")); err != nil || created || rec.ID != "m1" {
		t.Fatalf("replay = %v, %v, %v", rec, created, err)
	}
	if _, err := s.Transition(ctx, "m1", []State{StateAccepted}, StateSending, Event{Type: EventSendAttempt}, nil); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.XLen(ctx, EventsStream).Result(); n != 2 {
		t.Fatalf("events = %d", n)
	}
}

func BenchmarkAccept100KB(b *testing.B) {
	s, _ := realStore(b, StoreOptions{})
	doc := bytes.Repeat([]byte("<Bundle>0123456789</Bundle>\n"), 100<<10/28)
	ctx := context.Background()
	b.SetBytes(int64(len(doc)))
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := s.Accept(ctx, newMsg("bench", fmt.Sprintf("m%d", i)), bytes.NewReader(doc)); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}

func BenchmarkAccept100KBParallel(b *testing.B) {
	s, _ := realStore(b, StoreOptions{})
	doc := bytes.Repeat([]byte("<Bundle>0123456789</Bundle>\n"), 100<<10/28)
	ctx := context.Background()
	var n atomic.Int64
	b.SetBytes(int64(len(doc)))
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("m%d", n.Add(1))
			if _, _, err := s.Accept(ctx, newMsg("bench", id), bytes.NewReader(doc)); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}

// The compare-and-set script on a real Redis: concurrent writers never lose
// an update, a state change moves the state indexes and drops the payload
// once sent, and the script's writes reach the AOF like any other command.
func TestRealRedisCompareAndSetScript(t *testing.T) {
	s, rdb := realStore(t, StoreOptions{})
	ctx := context.Background()
	if _, _, err := s.Accept(ctx, newMsg("c1", "m1"), strings.NewReader("doc")); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				if _, err := s.Update(ctx, "m1", func(m *Message) error { m.Attempts++; return nil }); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rec, err := s.Get(ctx, "m1")
	if err != nil || rec.Attempts != 200 {
		t.Fatalf("Attempts = %v (%v), want 200", rec, err)
	}
	if _, err := s.Transition(ctx, "m1", []State{StateAccepted}, StateSending, Event{Type: EventSendAttempt}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Transition(ctx, "m1", []State{StateAccepted}, StateSending, Event{Type: EventSendAttempt}, nil); !errors.Is(err, ErrStateConflict) {
		t.Fatalf("second accepted→sending = %v, want ErrStateConflict", err)
	}
	if _, err := s.Transition(ctx, "m1", []State{StateSending}, StateSent, Event{Type: EventSent, MeshMessageID: "MESH1"},
		func(m *Message) { m.MeshMessageID = "MESH1" }); err != nil {
		t.Fatal(err)
	}
	if n, _ := rdb.Exists(ctx, payloadKey("m1")).Result(); n != 0 {
		t.Fatal("payload kept after sent")
	}
	if got, _ := rdb.ZScore(ctx, stateKey(StateSent), "m1").Result(); got == 0 {
		t.Fatal("not indexed as sent")
	}
	if n, _ := rdb.ZCard(ctx, stateKey(StateAccepted)).Result(); n != 0 {
		t.Fatalf("still indexed as accepted (%d)", n)
	}
	if rec, err := s.FindByMeshMessageID(ctx, "MESH1"); err != nil || rec.ID != "m1" {
		t.Fatalf("FindByMeshMessageID = %v, %v", rec, err)
	}
	if ttl, _ := rdb.PTTL(ctx, meshKey("MESH1")).Result(); ttl <= 0 {
		t.Fatalf("mesh index TTL %v", ttl)
	}
	if n, _ := rdb.XLen(ctx, EventsStream).Result(); n != 3 {
		t.Fatalf("events = %d, want accepted, send attempt, sent", n)
	}
	rdb.Del(ctx, msgKey("m1"))
	if _, err := s.Update(ctx, "m1", func(m *Message) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Update(expired) = %v", err)
	}
}
