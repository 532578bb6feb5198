package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

func TestProbe(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) }))
	defer srv.Close()
	c := newHTTPClient(false, 32)
	var n atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range 32 {
		wg.Go(func() {
			for time.Since(start) < 2*time.Second {
				resp, err := c.Post(srv.URL, "application/json", nil)
				if err == nil {
					resp.Body.Close()
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("http: %.0f req/s", float64(n.Load())/time.Since(start).Seconds())

	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr(), PoolSize: 64})
	n.Store(0)
	start = time.Now()
	ctx := context.Background()
	for range 32 {
		wg.Go(func() {
			for time.Since(start) < 2*time.Second {
				p := rdb.TxPipeline()
				p.HSet(ctx, "a", "b", "c", "d", "e")
				p.Expire(ctx, "a", time.Hour)
				p.ZAdd(ctx, "z", redis.Z{Score: 1, Member: "x"})
				if _, err := p.Exec(ctx); err == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("redis multi: %.0f /s", float64(n.Load())/time.Since(start).Seconds())
	n.Store(0)
	start = time.Now()
	for range 32 {
		wg.Go(func() {
			for time.Since(start) < 2*time.Second {
				if err := rdb.HGet(ctx, "a", "b").Err(); err == nil {
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	t.Logf("redis hget: %.0f /s", float64(n.Load())/time.Since(start).Seconds())
}
