// Package redisconn opens a go-redis UniversalClient from a REDIS_URL that
// may name a single server, a Sentinel-managed primary or a Cluster.
package redisconn

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/redis/go-redis/v9"
)

// DefaultPoolSize allows for the concurrent intake requests, outbox sends,
// inbox collection and webhooks of one replica: transactions (WATCH/MULTI)
// hold a connection each. A pool_size URL parameter overrides it.
const DefaultPoolSize = 128

// Open parses the URL and connects:
//   - redis://[:pw@]host:6379/0                         single server
//   - redis://[:pw@]sentinel1:26379/0?master_name=mymaster&addr=sentinel2:26379   Sentinel
//   - redis://[:pw@]node1:6379?addr=node2:6379&addr=node3:6379 (or ?cluster=true)    Cluster
//
// rediss:// enables TLS in every form.
func Open(raw string) (redis.UniversalClient, string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, "", fmt.Errorf("url.Parse REDIS_URL: %w", err)
	}
	q := u.Query()
	switch {
	case q.Get("master_name") != "":
		opts, err := redis.ParseFailoverURL(raw)
		if err != nil {
			return nil, "", fmt.Errorf("redis.ParseFailoverURL: %w", err)
		}
		if !q.Has("pool_size") {
			opts.PoolSize = DefaultPoolSize
		}
		return redis.NewFailoverClient(opts), "sentinel", nil
	case q.Has("addr") || strings.EqualFold(q.Get("cluster"), "true"):
		q.Del("cluster")
		u.RawQuery = q.Encode()
		opts, err := redis.ParseClusterURL(u.String())
		if err != nil {
			return nil, "", fmt.Errorf("redis.ParseClusterURL: %w", err)
		}
		if !q.Has("pool_size") {
			opts.PoolSize = DefaultPoolSize
		}
		return redis.NewClusterClient(opts), "cluster", nil
	default:
		opts, err := redis.ParseURL(raw)
		if err != nil {
			return nil, "", fmt.Errorf("redis.ParseURL: %w", err)
		}
		if !q.Has("pool_size") {
			opts.PoolSize = DefaultPoolSize
		}
		return redis.NewClient(opts), "standalone", nil
	}
}

// Ping checks the connection (readiness).
func Ping(ctx context.Context, rdb redis.UniversalClient) error {
	return rdb.Ping(ctx).Err()
}

// EnsureGroup creates consumer group on stream (and the stream) reading from
// its start, so entries written before the group existed are delivered too.
// A group that already exists (another replica made it) is not an error.
func EnsureGroup(ctx context.Context, rdb redis.UniversalClient, stream, group string) error {
	err := rdb.XGroupCreateMkStream(ctx, stream, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("redis XGROUP CREATE %s %s: %w", stream, group, err)
	}
	return nil
}
