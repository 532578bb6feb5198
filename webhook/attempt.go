package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/tracking"
)

// deliverable reports whether an event type is sent to clients; internal
// bookkeeping events (send_attempt, send_retry, resent) and unknown types
// are not.
func deliverable(t tracking.EventType) bool {
	switch t {
	case tracking.EventAccepted, tracking.EventSent, tracking.EventDelivered,
		tracking.EventInfAck, tracking.EventBusAck, tracking.EventRejected,
		tracking.EventUndeliverable, tracking.EventFailed, tracking.EventAckOverdue:
		return true
	}
	return false
}

// payload is the thin webhook body: ids and status only, never patient data.
type payload struct {
	Type      string      `json:"type"`
	Timestamp string      `json:"timestamp"`
	Data      payloadData `json:"data"`
}

type payloadData struct {
	ID            string `json:"id"`
	State         string `json:"state"`
	MeshMessageID string `json:"meshMessageId,omitempty"`
	Code          string `json:"code,omitempty"`
	Display       string `json:"display,omitempty"`
	EventID       string `json:"eventId"`
}

const maxDisplay = 1024 // keeps every body far below the 20 KB the spec advises

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// newRecord builds the delivery of one stream entry, or returns nil if the
// entry is not for delivery (internal type, malformed, client without a
// webhook subscription).
func (d *Dispatcher) newRecord(values map[string]any, now time.Time) *record {
	get := func(k string) string { s, _ := values[k].(string); return s }
	eventID, messageID, clientID := get("eventId"), get("messageId"), get("clientId")
	typ := tracking.EventType(get("type"))
	if eventID == "" || messageID == "" || clientID == "" || !deliverable(typ) {
		return nil
	}
	if _, _, _, ok := d.subs.Webhook(clientID); !ok {
		return nil
	}
	at := get("at")
	if t, err := time.Parse(time.RFC3339Nano, at); err == nil {
		at = t.UTC().Format(time.RFC3339Nano)
	} else {
		at = formatTime(now)
	}
	body, err := json.Marshal(payload{
		Type:      "message." + string(typ),
		Timestamp: at,
		Data: payloadData{
			ID:            messageID,
			State:         get("state"),
			MeshMessageID: get("meshMessageId"),
			Code:          truncate(get("code"), 64),
			Display:       truncate(get("display"), maxDisplay),
			EventID:       eventID,
		},
	})
	if err != nil { // cannot happen for strings; keep the entry rather than panic
		return nil
	}
	return &record{
		ID: WebhookID(clientID, eventID), EventID: eventID, MessageID: messageID, ClientID: clientID,
		Type: "message." + string(typ), Body: body, Status: StatusPending,
		CreatedAt: now, UpdatedAt: now,
	}
}

// ingest records the deliveries of a batch of stream entries and
// acknowledges the entries. It returns the deliveries to attempt now.
func (d *Dispatcher) ingest(ctx context.Context, msgs []redis.XMessage) ([]job, error) {
	now := d.cfg.Now()
	leaseUntil := now.Add(d.lease)
	immediate := d.cfg.Schedule[0] <= 0
	firstDue := leaseUntil
	if !immediate {
		firstDue = now.Add(jitter(d.cfg.Schedule[0]))
	}
	keys := []string{StreamKey, dueKey}
	args := []any{GroupName, int64(d.cfg.Retention.Seconds()), 0}
	var skipped []string
	created := map[string]*record{}
	for _, m := range msgs {
		rec := d.newRecord(m.Values, now)
		if rec == nil {
			skipped = append(skipped, m.ID)
			continue
		}
		rec.Next = firstDue
		fields := rec.fields()
		keys = append(keys, recordKey(rec.ID), messageKey(rec.MessageID))
		args = append(args, m.ID, rec.ID, unixMilli(firstDue), len(fields)/2)
		args = append(args, fields...)
		args[2] = args[2].(int) + 1
		created[rec.ID] = rec
	}
	var list []job
	if len(created) > 0 {
		ids, err := ingestScript.Run(ctx, d.rdb, keys, args...).StringSlice()
		if err != nil {
			return nil, fmt.Errorf("webhook: ingest script: %w", err)
		}
		if immediate {
			for _, id := range ids {
				list = append(list, job{id: id, rec: created[id], leaseUntil: leaseUntil})
			}
		}
	}
	if len(skipped) > 0 {
		if err := d.rdb.XAck(ctx, StreamKey, GroupName, skipped...).Err(); err != nil {
			return list, fmt.Errorf("webhook: ack skipped entries: %w", err)
		}
	}
	return list, nil
}

// jitter spreads a delay by ±20% so retries of many deliveries do not
// arrive together.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}

// result is what one attempt (or a decision not to attempt) came to.
type result struct {
	attempted  bool // an Attempt is recorded
	attempt    Attempt
	status     string // StatusPending = retry per schedule
	retryAfter time.Duration
	reason     string // lastError
	url        string // target without query or credentials
	target     string // full target URL, kept only in the disabled-endpoint entry
	disable    bool   // persist the endpoint as disabled (410)
}

// process attempts one delivery and records the outcome.
func (d *Dispatcher) process(ctx context.Context, j job) {
	rec := j.rec
	if rec == nil {
		h, err := d.rdb.HGetAll(ctx, recordKey(j.id)).Result()
		if err != nil {
			d.log.Error("webhook: load delivery", "deliveryId", j.id, "error", err)
			return // the lease runs out and it is retried
		}
		rec = recordFromHash(h)
		if rec == nil || rec.Status != StatusPending {
			// Expired or already finished (e.g. a duplicate claim).
			if err := dropScript.Run(ctx, d.rdb, []string{recordKey(j.id), dueKey}, j.id).Err(); err != nil {
				d.log.Error("webhook: drop delivery", "deliveryId", j.id, "error", err)
			}
			return
		}
	}
	if d.cfg.Now().Add(d.cfg.Timeout + leaseMargin).After(j.leaseUntil) {
		// Waited too long for a worker: the attempt could outlive the lease
		// and race another replica. Leave it to be claimed again.
		d.log.Warn("webhook: lease too short to attempt, left for re-claim", "deliveryId", rec.ID)
		return
	}
	res := d.attempt(ctx, rec)
	d.complete(ctx, rec, res)
}

// attempt makes one delivery attempt, deciding first whether to make one.
func (d *Dispatcher) attempt(ctx context.Context, rec *record) result {
	target, secret, allowPrivate, ok := d.subs.Webhook(rec.ClientID)
	if !ok {
		return result{status: StatusFailed, reason: "client has no webhook subscription"}
	}
	res := result{url: redactURL(target), target: target, status: StatusPending}
	disabled, err := d.disabledURL(ctx, rec.ClientID)
	if err != nil {
		res.reason = "redis: " + err.Error()
		return res // not attempted; retried per schedule without using a try
	}
	if disabled == target {
		res.status, res.reason = StatusDisabled, "endpoint disabled: it answered 410 Gone"
		return res
	}

	start := d.cfg.Now()
	res.attempted = true
	res.attempt.At = start

	fail := func(status, reason string) result {
		res.status, res.reason, res.attempt.Error = status, reason, reason
		res.attempt.DurationMS = d.cfg.Now().Sub(start).Milliseconds()
		return res
	}
	actx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	if err := CheckTarget(actx, target, allowPrivate, d.cfg.Resolver); err != nil {
		if errors.Is(err, ErrTargetRefused) {
			return fail(StatusFailed, err.Error())
		}
		return fail(StatusPending, err.Error())
	}
	sig, err := Sign(secret, rec.ID, start, rec.Body)
	if err != nil {
		return fail(StatusPending, err.Error()) // configuration; may be fixed before the next try
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target, bytes.NewReader(rec.Body))
	if err != nil {
		return fail(StatusFailed, "cannot build request for the webhook URL")
	}
	req.Header.Set("webhook-id", rec.ID)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(start.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	req.Header.Set("content-type", "application/json")
	req.Header.Set("user-agent", "MESH-Gateway-Webhooks/1")

	client := d.strict
	if allowPrivate {
		client = d.permissive
	}
	resp, err := client.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // the URL may hold a token in its query: keep it out
		}
		switch {
		case errors.Is(err, ErrTargetRefused):
			return fail(StatusFailed, err.Error())
		case errors.Is(err, context.DeadlineExceeded) || actx.Err() != nil:
			return fail(StatusPending, fmt.Sprintf("timeout after %s", d.cfg.Timeout))
		default:
			return fail(StatusPending, err.Error())
		}
	}
	// Drain a little so the connection can be reused; ignore the content.
	_, _ = io.CopyN(io.Discard, resp.Body, 16<<10)
	resp.Body.Close()
	res.attempt.StatusCode = resp.StatusCode
	res.attempt.DurationMS = d.cfg.Now().Sub(start).Milliseconds()
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
		res.status = StatusDelivered
	case code == http.StatusGone:
		res.status, res.disable = StatusDisabled, true
		res.reason = "endpoint answered 410 Gone: disabled"
	default:
		res.reason = fmt.Sprintf("HTTP %d", code)
		if code >= 300 && code < 400 {
			res.reason += " (redirects are not followed)"
		}
		switch code {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), start)
		}
	}
	return res
}

// parseRetryAfter reads delay-seconds or an HTTP-date; 0 if absent or bad.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		return time.Duration(min(n, int64(365*24*time.Hour/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// complete records an attempt's outcome and schedules what follows.
func (d *Dispatcher) complete(ctx context.Context, rec *record, res result) {
	now := d.cfg.Now()
	status, reason := res.status, res.reason
	tries := rec.Tries
	if res.attempted {
		tries++
		rec.Attempts++
	}
	var next time.Time
	if status == StatusPending {
		if tries >= len(d.cfg.Schedule) {
			status = StatusFailed
			reason = fmt.Sprintf("gave up after %d attempts: %s", tries, reason)
		} else {
			delay := jitter(d.cfg.Schedule[max(tries, 1)])
			if ra := min(res.retryAfter, d.cfg.MaxRetryAfter); ra > delay {
				delay = ra
			}
			next = now.Add(delay)
		}
	}
	if status == StatusDelivered {
		reason = ""
	}
	pipe := d.rdb.TxPipeline()
	ttl := d.cfg.Retention
	if res.attempted {
		raw, _ := json.Marshal(res.attempt)
		pipe.RPush(ctx, attemptsKey(rec.ID), raw)
		pipe.LTrim(ctx, attemptsKey(rec.ID), -maxAttemptsKept, -1)
		pipe.Expire(ctx, attemptsKey(rec.ID), ttl)
	}
	fields := []any{"status", status, "attempts", rec.Attempts, "tries", tries,
		"next", unixMilli(next), "updated", formatTime(now), "lastError", reason}
	if res.url != "" {
		fields = append(fields, "url", res.url)
	}
	pipe.HSet(ctx, recordKey(rec.ID), fields...)
	pipe.Expire(ctx, recordKey(rec.ID), ttl)
	if status == StatusPending {
		pipe.ZAdd(ctx, dueKey, redis.Z{Score: float64(next.UnixMilli()), Member: rec.ID})
	} else {
		pipe.ZRem(ctx, dueKey, rec.ID)
	}
	if res.disable {
		raw, _ := json.Marshal(disabledEndpoint{URL: res.target, At: now})
		pipe.HSet(ctx, disabledKey, rec.ClientID, raw)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// The lease runs out and the delivery is attempted again: at least once.
		d.log.Error("webhook: record attempt", "deliveryId", rec.ID, "error", err)
		return
	}

	outcome := OutcomeRetry
	switch status {
	case StatusDelivered:
		outcome = OutcomeDelivered
	case StatusFailed:
		outcome = OutcomeFailed
	case StatusDisabled:
		outcome = OutcomeDisabled
	}
	if d.cfg.Metrics != nil {
		d.cfg.Metrics.Delivered(outcome)
	}
	attrs := []any{"deliveryId", rec.ID, "messageId", rec.MessageID, "clientId", rec.ClientID,
		"type", rec.Type, "attempt", tries, "status", status, "httpStatus", res.attempt.StatusCode}
	switch status {
	case StatusDelivered:
		d.log.Debug("webhook: delivered", attrs...)
	case StatusPending:
		d.log.Debug("webhook: attempt failed, will retry", append(attrs, "next", next)...)
	default:
		d.log.Warn("webhook: delivery stopped", attrs...)
	}
}

// disabledEndpoint is the value stored under disabledKey.
type disabledEndpoint struct {
	URL string    `json:"url"`
	At  time.Time `json:"at"`
}

// disabledURL returns the client's endpoint URL disabled by a 410, if any.
func (d *Dispatcher) disabledURL(ctx context.Context, clientID string) (string, error) {
	raw, err := d.rdb.HGet(ctx, disabledKey, clientID).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var e disabledEndpoint
	if err := json.Unmarshal([]byte(raw), &e); err != nil {
		return "", nil
	}
	return e.URL, nil
}

// redactURL keeps scheme, host and path: a query or user info may hold a
// credential.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}
