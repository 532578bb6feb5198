package collector

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/meshbridge"
)

// DeadLetter is an inbox message the gateway could not correlate or parse.
// It is kept (headers and body) for operators instead of being dropped.
type DeadLetter struct {
	MeshMessageID string      `json:"meshMessageId"`
	Mailbox       string      `json:"mailbox"`
	WorkflowID    string      `json:"workflowId"`
	MessageType   string      `json:"messageType"`
	From          string      `json:"from"`
	Reason        string      `json:"reason"`
	ReceivedAt    time.Time   `json:"receivedAt"`
	Headers       http.Header `json:"headers"`
	Body          []byte      `json:"body,omitempty"`
}

// DeadLetters stores dead letters in Redis: one hash per message plus an
// index sorted by time, both under the {gw} hash tag.
type DeadLetters struct {
	rdb redis.UniversalClient
	ttl time.Duration
}

// NewDeadLetters returns the dead-letter store.
func NewDeadLetters(rdb redis.UniversalClient, ttl time.Duration) *DeadLetters {
	return &DeadLetters{rdb: rdb, ttl: ttl}
}

const deadIndex = "{gw}:deadletters"

func deadKey(meshID string) string { return "{gw}:deadletter:" + meshID }

// Put records one dead letter durably (before the MESH acknowledgement).
func (d *DeadLetters) Put(ctx context.Context, mailbox string, meta *meshbridge.MessageMetadata, body []byte, reason string, now time.Time) error {
	dl := DeadLetter{MeshMessageID: meta.MessageID, Mailbox: mailbox, WorkflowID: meta.WorkflowID, MessageType: meta.MessageType,
		From: meta.From, Reason: reason, ReceivedAt: now.UTC(), Headers: meta.Raw, Body: body}
	raw, err := json.Marshal(dl)
	if err != nil {
		return fmt.Errorf("json.Marshal: %w", err)
	}
	key := deadKey(meta.MessageID)
	_, err = d.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, key, raw, d.ttl)
		p.ZAdd(ctx, deadIndex, redis.Z{Score: float64(now.UnixMilli()), Member: meta.MessageID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("redis dead letter: %w", err)
	}
	return nil
}

// List returns the newest dead letters (up to limit), skipping expired ones.
func (d *DeadLetters) List(ctx context.Context, limit int) ([]DeadLetter, error) {
	if limit <= 0 || limit > 500 {
		limit = 100
	}
	ids, err := d.rdb.ZRevRange(ctx, deadIndex, 0, int64(limit-1)).Result()
	if err != nil {
		return nil, fmt.Errorf("redis ZREVRANGE: %w", err)
	}
	if len(ids) == 0 {
		return []DeadLetter{}, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = deadKey(id)
	}
	vals, err := d.rdb.MGet(ctx, keys...).Result() // one round trip; the keys share the {gw} slot
	if err != nil {
		return nil, fmt.Errorf("redis MGET: %w", err)
	}
	out := make([]DeadLetter, 0, len(ids))
	var gone []any
	for i, v := range vals {
		raw, ok := v.(string)
		if !ok {
			gone = append(gone, ids[i])
			continue
		}
		var dl DeadLetter
		if err := json.Unmarshal([]byte(raw), &dl); err != nil {
			return nil, fmt.Errorf("json.Unmarshal: %w", err)
		}
		out = append(out, dl)
	}
	if len(gone) > 0 {
		d.rdb.ZRem(ctx, deadIndex, gone...)
	}
	return out, nil
}

// Count returns how many dead letters are indexed.
func (d *DeadLetters) Count(ctx context.Context) (int64, error) {
	return d.rdb.ZCard(ctx, deadIndex).Result()
}
