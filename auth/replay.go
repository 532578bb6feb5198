package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// ReplayStore remembers token ids until they expire. Remember reports
// fresh=false when key was already remembered (a replay).
type ReplayStore interface {
	Remember(ctx context.Context, key string, until time.Time) (fresh bool, err error)
}

// DefaultKeyPrefix is the Redis hash tag every gateway key starts with, so all
// of them hash to one slot and multi-key operations work on Redis Cluster.
const DefaultKeyPrefix = "{gw}"

type redisReplayStore struct {
	rdb    redis.UniversalClient
	prefix string
}

// NewRedisReplayStore stores "<prefix>:jti:<key>" (key is "<iss>:<jti>") with
// SET NX EXAT, so the entry disappears when the token could no longer be used.
// An empty prefix means DefaultKeyPrefix.
func NewRedisReplayStore(rdb redis.UniversalClient, prefix string) ReplayStore {
	if prefix == "" {
		prefix = DefaultKeyPrefix
	}
	return &redisReplayStore{rdb: rdb, prefix: prefix}
}

func (s *redisReplayStore) Remember(ctx context.Context, key string, until time.Time) (bool, error) {
	err := s.rdb.SetArgs(ctx, s.prefix+":jti:"+key, "1", redis.SetArgs{Mode: "NX", ExpireAt: until}).Err()
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, redis.Nil): // NX refused: already present
		return false, nil
	default:
		return false, fmt.Errorf("auth.Remember: redis SET NX EXAT: %w", err)
	}
}
