package webhook

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// BenchmarkDeliveries measures end-to-end throughput: events already on the
// stream, one dispatcher with the default 32 workers on miniredis (or
// WEBHOOK_TEST_REDIS_ADDR), a loopback
// receiver answering 204. Reports deliveries/s.
func BenchmarkDeliveries(b *testing.B) {
	addr := os.Getenv("WEBHOOK_TEST_REDIS_ADDR") // a real Redis instead (flushed)
	if addr == "" {
		addr = miniredis.RunT(b).Addr()
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: 64})
	defer rdb.Close()
	if err := rdb.FlushDB(context.Background()).Err(); err != nil {
		b.Fatal(err)
	}
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
	cpu0 := processCPU()
	start := time.Now()
	go func() { done <- d.Run(runCtx) }()
	deadline := time.Now().Add(10 * time.Minute)
	for got.Load() < int64(b.N) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.StopTimer()
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	if got.Load() < int64(b.N) {
		b.Fatalf("delivered %d of %d", got.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	// CPU per delivery (dispatcher + miniredis + receiver, all in this
	// process) does not depend on how busy the machine is: 2 cores divided
	// by it is the ceiling on an idle 2-core host.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/delivery")
}

// BenchmarkLoopbackBaseline is the same receiver hit directly by 32
// goroutines with signed POSTs and no Redis: the ceiling the machine allows
// at the moment, to read BenchmarkDeliveries against.
func BenchmarkLoopbackBaseline(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	client := newHTTPClient(false, 32)
	body := []byte(`{"type":"message.delivered","timestamp":"2026-11-24T23:00:00Z","data":{"id":"m1","state":"delivered","eventId":"m1:1"}}`)
	var next atomic.Int64
	b.ResetTimer()
	cpu0 := processCPU()
	start := time.Now()
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				sig, _ := Sign(testSecret, "msg_1", time.Now(), body)
				req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
				req.Header.Set("webhook-signature", sig)
				resp, err := client.Do(req)
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	cpu := processCPU() - cpu0
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/request")
}

// processCPU is this process's user+system CPU time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchWorkers() int {
	n, _ := strconv.Atoi(os.Getenv("WH_BENCH_WORKERS"))
	return n
}
