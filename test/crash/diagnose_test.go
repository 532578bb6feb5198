package crash

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/outbox"
	"github.com/meshgateway/gateway/tracking"
)

// outboxState describes where each stuck message sits in the gateway's
// Redis outbox: stream entries (and their pending owner, idle time and
// delivery count), the per-message send lock, and the delayed-retry set.
func outboxState(ctx context.Context, redisAddr string, ids []string) string {
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr})
	defer rdb.Close()
	var b strings.Builder
	entries, err := rdb.XRangeN(ctx, tracking.OutboxStream, "-", "+", 20000).Result()
	if err != nil {
		return "XRANGE: " + err.Error()
	}
	pend, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: tracking.OutboxStream, Group: outbox.Group,
		Start: "-", End: "+", Count: 20000}).Result()
	if err != nil {
		fmt.Fprintf(&b, "XPENDING: %v\n", err)
	}
	pendByEntry := map[string]redis.XPendingExt{}
	for _, p := range pend {
		pendByEntry[p.ID] = p
	}
	groups, _ := rdb.XInfoGroups(ctx, tracking.OutboxStream).Result()
	for _, g := range groups {
		fmt.Fprintf(&b, "group %s: pending %d, lag %d, last-delivered %s\n", g.Name, g.Pending, g.Lag, g.LastDeliveredID)
	}
	consumers, _ := rdb.XInfoConsumers(ctx, tracking.OutboxStream, outbox.Group).Result()
	for _, c := range consumers {
		fmt.Fprintf(&b, "consumer %s: pending %d, idle %v\n", c.Name, c.Pending, c.Idle)
	}
	for _, id := range ids {
		fmt.Fprintf(&b, "message %s:", id)
		for _, e := range entries {
			if e.Values["messageId"] != id {
				continue
			}
			if p, ok := pendByEntry[e.ID]; ok {
				fmt.Fprintf(&b, " stream entry %s pending at %s (idle %v, delivered %d times);", e.ID, p.Consumer, p.Idle.Round(time.Millisecond), p.RetryCount)
			} else {
				fmt.Fprintf(&b, " stream entry %s not yet delivered;", e.ID)
			}
		}
		// Lock key format of outbox.lockKey (unexported).
		if ttl, err := rdb.PTTL(ctx, "{gw}:lock:"+id).Result(); err == nil && ttl > 0 {
			fmt.Fprintf(&b, " send lock held (expires in %v);", ttl.Round(time.Millisecond))
		}
		if score, err := rdb.ZScore(ctx, tracking.OutboxDelayed, id).Result(); err == nil {
			fmt.Fprintf(&b, " delayed retry due %s;", time.UnixMilli(int64(score)).UTC().Format(time.RFC3339Nano))
		}
		b.WriteString("\n")
	}
	return b.String()
}

// keepLogs copies the process logs out of the test's temp dir (removed at
// the end) so a failure can be investigated; it returns the new directory.
func keepLogs(dir string) (string, error) {
	out, err := os.MkdirTemp("", "crash-logs-")
	if err != nil {
		return "", err
	}
	for _, name := range []string{"gateway.log", "fakemesh.log"} {
		src, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		dst, err := os.Create(filepath.Join(out, name))
		if err == nil {
			_, _ = io.Copy(dst, src)
			_ = dst.Close()
		}
		_ = src.Close()
	}
	return out, nil
}

// afterTransportFailure counts the ids whose gateway log shows a MESH send
// that failed at the transport level (GW_TRANSPORT: connection dropped, so
// MESH may have created the message), i.e. duplicates not caused by a kill.
func afterTransportFailure(gatewayLog string, ids []string) int {
	b, err := os.ReadFile(gatewayLog)
	if err != nil {
		return -1
	}
	lines := strings.Split(string(b), "\n")
	n := 0
	for _, id := range ids {
		for _, l := range lines {
			if strings.Contains(l, id) && strings.Contains(l, "GW_TRANSPORT") {
				n++
				break
			}
		}
	}
	return n
}
