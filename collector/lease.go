package collector

import (
	"context"
	"time"

	"github.com/redis/go-redis/v9"
)

// lease is a Redis lock with an owner and a TTL, so exactly one replica polls
// a mailbox; a dead replica's lease simply expires.
type lease struct {
	rdb   redis.UniversalClient
	key   string
	owner string
	ttl   time.Duration
}

func newLease(rdb redis.UniversalClient, key, owner string, ttl time.Duration) *lease {
	return &lease{rdb: rdb, key: key, owner: owner, ttl: ttl}
}

// renewScript extends the lease only if we still own it.
var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
  return redis.call("DEL", KEYS[1])
end
return 0`)

// acquire takes the lease or renews it when already held.
func (l *lease) acquire(ctx context.Context) (bool, error) {
	ok, err := l.rdb.SetNX(ctx, l.key, l.owner, l.ttl).Result()
	if err != nil || ok {
		return ok, err
	}
	n, err := renewScript.Run(ctx, l.rdb, []string{l.key}, l.owner, l.ttl.Milliseconds()).Int()
	return n == 1, err
}

func (l *lease) release(ctx context.Context) {
	_ = releaseScript.Run(ctx, l.rdb, []string{l.key}, l.owner).Err()
}
