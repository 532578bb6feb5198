package webhook

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"
)

// Delivery is the record of one event's webhook to one client's endpoint.
type Delivery struct {
	ID            string     `json:"id"` // webhook-id, stable across attempts and replays
	EventID       string     `json:"eventId"`
	MessageID     string     `json:"messageId"`
	ClientID      string     `json:"clientId"`
	Type          string     `json:"type"`   // e.g. message.delivered
	Status        string     `json:"status"` // pending | delivered | failed | disabled
	URL           string     `json:"url,omitempty"`
	Attempts      []Attempt  `json:"attempts"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
}

// Deliveries lists the webhook deliveries of a tracking message, oldest
// event first. The caller checks that the requester owns the message.
func (d *Dispatcher) Deliveries(ctx context.Context, messageID string) ([]Delivery, error) {
	ids, err := d.rdb.SMembers(ctx, messageKey(messageID)).Result()
	if err != nil {
		return nil, fmt.Errorf("webhook.Deliveries: %w", err)
	}
	pipe := d.rdb.Pipeline()
	hashes := make([]*redis.MapStringStringCmd, len(ids))
	lists := make([]*redis.StringSliceCmd, len(ids))
	for i, id := range ids {
		hashes[i] = pipe.HGetAll(ctx, recordKey(id))
		lists[i] = pipe.LRange(ctx, attemptsKey(id), 0, -1)
	}
	if len(ids) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("webhook.Deliveries: %w", err)
		}
	}
	out := make([]Delivery, 0, len(ids))
	for i := range ids {
		rec := recordFromHash(hashes[i].Val())
		if rec == nil {
			continue // expired
		}
		del := Delivery{
			ID: rec.ID, EventID: rec.EventID, MessageID: rec.MessageID, ClientID: rec.ClientID,
			Type: rec.Type, Status: rec.Status, URL: rec.URL,
			Attempts:  decodeAttempts(lists[i].Val()),
			LastError: rec.LastError, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
		}
		if !rec.Next.IsZero() {
			next := rec.Next
			del.NextAttemptAt = &next
		}
		out = append(out, del)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].CreatedAt.Equal(out[j].CreatedAt) {
			return out[i].CreatedAt.Before(out[j].CreatedAt)
		}
		return out[i].EventID < out[j].EventID
	})
	return out, nil
}

// Replay re-queues every finished delivery (delivered, failed or disabled)
// of the message that belongs to clientID, for an immediate attempt with a
// fresh retry schedule and the same webhook-id and body. Deliveries still
// pending are already queued and are left alone. It returns how many were
// re-queued. A disabled endpoint stays disabled until EnableEndpoint.
func (d *Dispatcher) Replay(ctx context.Context, clientID, messageID string) (int, error) {
	ids, err := d.rdb.SMembers(ctx, messageKey(messageID)).Result()
	if err != nil {
		return 0, fmt.Errorf("webhook.Replay: %w", err)
	}
	now := d.cfg.Now()
	n := 0
	for _, id := range ids {
		done, err := replayScript.Run(ctx, d.rdb, []string{recordKey(id), dueKey},
			clientID, unixMilli(now), formatTime(now)).Int()
		if err != nil {
			return n, fmt.Errorf("webhook.Replay: %w", err)
		}
		n += done
	}
	return n, nil
}

// EnableEndpoint lifts a 410 Gone disablement of a client's endpoint.
// Deliveries already marked disabled can then be sent with Replay.
func (d *Dispatcher) EnableEndpoint(ctx context.Context, clientID string) error {
	if err := d.rdb.HDel(ctx, disabledKey, clientID).Err(); err != nil {
		return fmt.Errorf("webhook.EnableEndpoint: %w", err)
	}
	return nil
}
