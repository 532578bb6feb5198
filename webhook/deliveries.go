package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
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
	Attempts      []Attempt  `json:"attempts"` // the latest 50
	AttemptCount  int        `json:"attemptCount"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	UpdatedAt     time.Time  `json:"updatedAt"`
}

// Deliveries lists the webhook deliveries of a tracking message, oldest
// event first. The caller checks that the requester owns the message.
func (d *Dispatcher) Deliveries(ctx context.Context, messageID string) ([]Delivery, error) {
	all, err := d.rdb.HGetAll(ctx, messageKey(messageID)).Result()
	if err != nil {
		return nil, fmt.Errorf("webhook.Deliveries: %w", err)
	}
	out := make([]Delivery, 0, len(all))
	for _, raw := range all {
		rec := decodeRecord(raw)
		if rec == nil {
			continue
		}
		out = append(out, Delivery{
			ID: rec.ID, EventID: rec.EventID, MessageID: rec.MessageID, ClientID: rec.ClientID,
			Type: rec.Type, Status: rec.Status, URL: rec.URL,
			Attempts: rec.Attempts, AttemptCount: rec.AttemptCount, NextAttemptAt: rec.Next,
			LastError: rec.LastError, CreatedAt: rec.CreatedAt, UpdatedAt: rec.UpdatedAt,
		})
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
// re-queued (0 for another client's message). A disabled endpoint stays
// disabled until EnableEndpoint.
func (d *Dispatcher) Replay(ctx context.Context, clientID, messageID string) (int, error) {
	key := messageKey(messageID)
	n := 0
	replay := func(tx *redis.Tx) error {
		n = 0
		all, err := tx.HGetAll(ctx, key).Result()
		if err != nil {
			return err
		}
		now := d.cfg.Now()
		var recs []*record
		for _, raw := range all {
			if rec := decodeRecord(raw); rec != nil && rec.ClientID == clientID && rec.Status != StatusPending {
				rec.Status, rec.Tries, rec.LastError, rec.UpdatedAt, rec.Next = StatusPending, 0, "", now, &now
				recs = append(recs, rec)
			}
		}
		if len(recs) == 0 {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			for _, rec := range recs {
				p.HSet(ctx, key, rec.ID, rec.encode())
				p.ZAdd(ctx, dueKey, redis.Z{Score: float64(now.UnixMilli()), Member: queueMember(rec.ID, rec.MessageID)})
			}
			return nil
		})
		n = len(recs)
		return err
	}
	// Optimistic: a worker recording an attempt of the same message makes
	// the transaction fail; read again and retry.
	for range 20 {
		err := d.rdb.Watch(ctx, replay, key)
		if errors.Is(err, redis.TxFailedErr) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("webhook.Replay: %w", err)
		}
		return n, nil
	}
	return 0, fmt.Errorf("webhook.Replay: message %s kept changing, try again", messageID)
}

// DisabledEndpoint is a client endpoint that gets no deliveries.
type DisabledEndpoint struct {
	ClientID string    `json:"clientId"`
	URL      string    `json:"url"` // without query or credentials
	At       time.Time `json:"at"`
	Reason   string    `json:"reason"`
}

// DisabledEndpoints lists the disabled client endpoints.
func (d *Dispatcher) DisabledEndpoints(ctx context.Context) ([]DisabledEndpoint, error) {
	all, err := d.rdb.HGetAll(ctx, disabledKey).Result()
	if err != nil {
		return nil, fmt.Errorf("webhook.DisabledEndpoints: %w", err)
	}
	out := make([]DisabledEndpoint, 0, len(all))
	for client, raw := range all {
		var e disabledEndpoint
		if json.Unmarshal([]byte(raw), &e) != nil {
			continue
		}
		// A disablement of a URL the client no longer uses (or of a client
		// no longer registered) stops nothing: leave it out.
		if url, _, _, ok := d.subs.Webhook(client); !ok || urlHash(url) != e.URLHash {
			continue
		}
		out = append(out, DisabledEndpoint{ClientID: client, URL: e.URL, At: e.At, Reason: cmp.Or(e.Reason, "410 Gone")})
	}
	slices.SortFunc(out, func(a, b DisabledEndpoint) int { return strings.Compare(a.ClientID, b.ClientID) })
	return out, nil
}

// EnableEndpoint lifts the disablement of a client's endpoint (after a 410
// Gone or sustained failure). Deliveries already marked disabled or failed
// can then be sent with Replay.
func (d *Dispatcher) EnableEndpoint(ctx context.Context, clientID string) error {
	if err := d.rdb.HDel(ctx, disabledKey, clientID).Err(); err != nil {
		return fmt.Errorf("webhook.EnableEndpoint: %w", err)
	}
	return nil
}
