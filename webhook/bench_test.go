package webhook

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// BenchmarkDeliveries measures end-to-end throughput: events already on the
// stream, one dispatcher with the default 32 workers on miniredis, a loopback
// receiver answering 204. Reports deliveries/s.
func BenchmarkDeliveries(b *testing.B) {
	mr := miniredis.RunT(b)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 64})
	defer rdb.Close()
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	subs := newFakeSubs()
	subs.set("c", srv.URL, true)

	ctx := context.Background()
	at := time.Now().UTC().Format(time.RFC3339Nano)
	for start := 0; start < b.N; start += 1000 {
		pipe := rdb.Pipeline()
		for i := start; i < min(start+1000, b.N); i++ {
			msg := "m" + strconv.Itoa(i/5)
			pipe.XAdd(ctx, &redis.XAddArgs{Stream: StreamKey, Values: []any{
				"eventId", msg + ":" + strconv.Itoa(i), "messageId", msg, "clientId", "c", "type", "delivered",
				"state", "delivered", "meshMessageId", "MESH-" + msg, "at", at}})
		}
		if _, err := pipe.Exec(ctx); err != nil {
			b.Fatal(err)
		}
	}

	d := NewDispatcher(rdb, subs, Config{Consumer: "bench", PollInterval: 50 * time.Millisecond, Workers: benchWorkers()})
	runCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	b.ResetTimer()
	start := time.Now()
	go func() { done <- d.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got.Load() < int64(b.N) {
		b.Fatalf("delivered %d of %d", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
}

func benchWorkers() int {
	n, _ := strconv.Atoi(os.Getenv("WH_BENCH_WORKERS"))
	return n
}
