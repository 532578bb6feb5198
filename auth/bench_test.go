package auth

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/registry"
)

// acceptAll isolates JWT verification cost from the replay store.
type acceptAll struct{}

func (acceptAll) Remember(context.Context, string, time.Time) (bool, error) { return true, nil }

func benchVerifier(b *testing.B) (*Verifier, string) {
	keys(b)
	reg := &registry.Registry{Clients: []registry.Client{
		{ID: "app", JWKS: jwks(b, "k1", "RS512", &mainKey.PublicKey), Mailboxes: []string{"X26ABC1"}},
	}}
	v, err := NewVerifier(reg, audience, acceptAll{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	token, err := SignToken(mainKey, "k1", "RS512", "app", audience, 5*time.Minute, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), token); err != nil { // warm the key cache
		b.Fatal(err)
	}
	return v, token
}

// BenchmarkVerifyRS512 is one full Verify (parse, all checks, cached key
// lookup, RSA-2048 RS512 signature) on one goroutine; the replay store is a no-op.
func BenchmarkVerifyRS512(b *testing.B) {
	v, token := benchVerifier(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, token); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "verifies/s")
}

// BenchmarkVerifyRS512Parallel uses every GOMAXPROCS core.
func BenchmarkVerifyRS512Parallel(b *testing.B) {
	v, token := benchVerifier(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(ctx, token); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "verifies/s")
}

// BenchmarkRedisReplayRemember is the replay store's SET NX EXAT against
// miniredis (in-process; a real Redis adds a network round trip).
func BenchmarkRedisReplayRemember(b *testing.B) {
	mr := miniredis.RunT(b)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	store := NewRedisReplayStore(rdb, "")
	ctx := context.Background()
	until := time.Now().Add(5 * time.Minute)
	i := 0
	for b.Loop() {
		i++
		if fresh, err := store.Remember(ctx, "app:"+strconv.Itoa(i), until); err != nil || !fresh {
			b.Fatal(fresh, err)
		}
	}
}
