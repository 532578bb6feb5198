package tracking

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// writes collects the commands of one record change so that the same list
// can run inside a MULTI (Accept) or inside the compare-and-set script
// (modify). Every command names its key at args[1].
type writes struct {
	cmds [][]any
}

func (w *writes) do(args ...any) { w.cmds = append(w.cmds, args) }

func (w *writes) set(key string, val any, ttl time.Duration) {
	w.do("SET", key, val, "PX", ttl.Milliseconds())
}

func (w *writes) expire(key string, ttl time.Duration) { w.do("PEXPIRE", key, ttl.Milliseconds()) }

func (w *writes) zadd(key string, score int64, member string) { w.do("ZADD", key, score, member) }

// queue adds the commands to a pipeline (normally a TxPipeline).
func (w *writes) queue(ctx context.Context, p redis.Pipeliner) {
	for _, c := range w.cmds {
		p.Do(ctx, c...)
	}
}

// casScript applies a list of writes only if KEYS[1] still holds ARGV[1]
// (the record as it was read). It returns {1} when applied, or {0, current}
// so the caller can retry without another read. One round trip replaces
// WATCH, GET and MULTI/EXEC; every key used is declared in KEYS
// (they share the {gw} hash tag, so this is one Cluster slot).
//
// ARGV: expected, command count, then per command its argument count and
// arguments.
var casScript = redis.NewScript(`local cur = redis.call('GET', KEYS[1])
if cur ~= ARGV[1] then
  if cur then return {0, cur} end
  return {0}
end
local i = 3
for _ = 1, tonumber(ARGV[2]) do
  local n = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + n))
  i = i + n + 1
end
return {1}`)

// casResult is what the compare-and-set script did.
type casResult struct {
	applied bool
	current []byte // the record now stored, when not applied; nil if gone
}

// casApply runs w atomically if key still holds expected.
func casApply(ctx context.Context, rdb redis.Scripter, key string, expected []byte, w *writes) (casResult, error) {
	keys := make([]string, 0, len(w.cmds)+1)
	keys = append(keys, key)
	seen := map[string]bool{key: true}
	n := 2
	for _, c := range w.cmds {
		n += 1 + len(c)
		if k, ok := c[1].(string); ok && !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	argv := make([]any, 0, n)
	argv = append(argv, expected, len(w.cmds))
	for _, c := range w.cmds {
		argv = append(argv, len(c))
		argv = append(argv, c...)
	}
	res, err := casScript.Run(ctx, rdb, keys, argv...).Slice()
	if err != nil {
		return casResult{}, fmt.Errorf("compare-and-set script: %w", err)
	}
	if len(res) == 0 {
		return casResult{}, fmt.Errorf("compare-and-set script: empty reply")
	}
	if ok, _ := res[0].(int64); ok == 1 {
		return casResult{applied: true}, nil
	}
	if len(res) > 1 {
		if s, ok := res[1].(string); ok {
			return casResult{current: []byte(s)}, nil
		}
	}
	return casResult{}, nil
}
