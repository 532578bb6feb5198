package redisconn

import (
	"context"
	"testing"

	"github.com/alicebob/miniredis/v2"

	"github.com/redis/go-redis/v9"
)

func TestOpenKinds(t *testing.T) {
	tests := []struct {
		url, kind string
	}{
		{"redis://127.0.0.1:6379/0", "standalone"},
		{"rediss://:pw@cache.example:6380/1", "standalone"},
		{"redis://:pw@s1:26379/0?master_name=mymaster&addr=s2:26379", "sentinel"},
		{"redis://n1:6379?addr=n2:6379&addr=n3:6379", "cluster"},
		{"redis://n1:6379?cluster=true", "cluster"},
	}
	for _, tc := range tests {
		rdb, kind, err := Open(tc.url)
		if err != nil {
			t.Fatalf("Open(%q): %v", tc.url, err)
		}
		if kind != tc.kind {
			t.Errorf("Open(%q) kind = %s, want %s", tc.url, kind, tc.kind)
		}
		switch tc.kind {
		case "cluster":
			if _, ok := rdb.(*redis.ClusterClient); !ok {
				t.Errorf("%q: got %T", tc.url, rdb)
			}
		default:
			if _, ok := rdb.(*redis.Client); !ok {
				t.Errorf("%q: got %T", tc.url, rdb)
			}
		}
		_ = rdb.Close()
	}
}

func TestOpenRejects(t *testing.T) {
	for _, u := range []string{"http://x", "redis://h?unknown_param=1", "::"} {
		if _, _, err := Open(u); err == nil {
			t.Errorf("Open(%q) = nil error", u)
		}
	}
}

// EnsureGroup is safe to call from every replica: the second call finds the
// group and is not an error; other failures are.
func TestEnsureGroup(t *testing.T) {
	m := miniredis.RunT(t)
	rdb := redis.NewUniversalClient(&redis.UniversalOptions{Addrs: []string{m.Addr()}})
	defer rdb.Close()
	ctx := context.Background()
	for range 2 {
		if err := EnsureGroup(ctx, rdb, "s", "g"); err != nil {
			t.Fatal(err)
		}
	}
	if groups, err := rdb.XInfoGroups(ctx, "s").Result(); err != nil || len(groups) != 1 {
		t.Fatalf("groups %v, %v", groups, err)
	}
	m.Set("notastream", "x")
	if err := EnsureGroup(ctx, rdb, "notastream", "g"); err == nil {
		t.Fatal("EnsureGroup on a string key succeeded")
	}
}
