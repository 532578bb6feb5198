package tracking

import (
	"context"
	"fmt"
	"strings"
)

// Durability warnings. The gateway answers 202 once Redis acknowledged the
// write, so a Redis that can lose acknowledged writes loses accepted messages.
const (
	WarnEmbedded = "embedded store is not durable: accepted messages are lost on restart"
	WarnAOFOff   = "redis AOF is off (appendonly no): writes acknowledged since the last snapshot can be lost"
	WarnFsyncNo  = "redis appendfsync is 'no': the OS decides when to flush, acknowledged writes can be lost"
	WarnEviction = "redis maxmemory-policy is not noeviction: under memory pressure Redis deletes keys, accepted messages included (every record and payload has a TTL, so volatile-* policies pick them first); set maxmemory-policy noeviction"
)

// CheckDurability inspects the server's persistence and eviction settings.
// It returns a human-readable warning ("" when AOF is on with appendfsync
// everysec or always and Redis never evicts). Servers that hide CONFIG
// (managed Redis) are judged on INFO alone.
func (s *Store) CheckDurability(ctx context.Context) (string, error) {
	warn, err := s.checkPersistence(ctx)
	if err != nil || warn == WarnEmbedded {
		return warn, err
	}
	if mem, err := s.rdb.Info(ctx, "memory").Result(); err == nil {
		f := parseInfo(mem)
		if p, ok := f["maxmemory_policy"]; ok && p != "noeviction" && f["maxmemory"] != "0" {
			if warn != "" {
				warn += "; "
			}
			warn += WarnEviction
		}
	}
	return warn, nil
}

func (s *Store) checkPersistence(ctx context.Context) (string, error) {
	info, err := s.rdb.Info(ctx, "persistence").Result()
	if err != nil {
		// miniredis implements INFO only for "clients" and "stats".
		if all, err2 := s.rdb.Info(ctx).Result(); err2 == nil && isEmbedded(all) {
			return WarnEmbedded, nil
		}
		return "", fmt.Errorf("tracking: INFO persistence: %w", err)
	}
	fields := parseInfo(info)
	aof, ok := fields["aof_enabled"]
	if !ok {
		if isEmbedded(info) {
			return WarnEmbedded, nil
		}
		return "", fmt.Errorf("tracking: INFO persistence has no aof_enabled field")
	}
	if aof != "1" {
		return WarnAOFOff, nil
	}
	cfg, err := s.rdb.ConfigGet(ctx, "appendfsync").Result()
	if err != nil {
		return "", nil // CONFIG disabled: AOF is on, the fsync policy is the operator's
	}
	if strings.EqualFold(cfg["appendfsync"], "no") {
		return WarnFsyncNo, nil
	}
	return "", nil
}

func isEmbedded(info string) bool {
	return !strings.Contains(info, "redis_version") && !strings.Contains(info, "aof_enabled")
}

// parseInfo reads "key:value" lines of an INFO answer.
func parseInfo(info string) map[string]string {
	out := make(map[string]string)
	for _, line := range strings.Split(info, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}
