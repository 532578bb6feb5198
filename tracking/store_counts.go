package tracking

import (
	"context"
	"fmt"
	"strconv"

	"github.com/redis/go-redis/v9"
)

// stateKey indexes message ids by current state, scored by the time they
// entered it, so the metrics can count messages by state within retention.
func stateKey(s State) string { return "{gw}:state:" + string(s) }

// CountByState returns how many retained messages are in each state. Entries
// older than the retention period (their records have expired) are pruned.
func (s *Store) CountByState(ctx context.Context) (map[State]int64, error) {
	cutoff := "(" + strconv.FormatInt(s.now().Add(-s.ttl).UnixMilli(), 10)
	cmds := make(map[State]*redis.IntCmd, len(AllStates))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, st := range AllStates {
			p.ZRemRangeByScore(ctx, stateKey(st), "-inf", cutoff)
			cmds[st] = p.ZCard(ctx, stateKey(st))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("tracking: count by state: %w", err)
	}
	out := make(map[State]int64, len(cmds))
	for st, c := range cmds {
		out[st] = c.Val()
	}
	return out, nil
}
