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
	keys := []string{StreamKey, dueKey, disabledKey}
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
		args = append(args, m.ID, rec.ID, rec.ClientID, unixMilli(firstDue), len(fields)/2)
		args = append(args, fields...)
		args[2] = args[2].(int) + 1
		created[rec.ID] = rec
	}
	var list []job
	if len(created) > 0 {
		out, err := ingestScript.Run(ctx, d.rdb, keys, args...).StringSlice()
		if err != nil {
			return nil, fmt.Errorf("webhook: ingest script: %w", err)
		}
		if immediate {
			for i := 0; i+1 < len(out); i += 2 {
				disabled := parseDisabled(out[i+1])
				list = append(list, job{id: out[i], rec: created[out[i]], disabled: &disabled, leaseUntil: leaseUntil})
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
// The outcome goes to done, to be written in a batch with others.
func (d *Dispatcher) process(ctx context.Context, j job, done chan<- completion) {
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
	if j.disabled == nil {
		disabled, err := d.disabledURL(ctx, rec.ClientID)
		if err != nil {
			d.log.Error("webhook: read endpoint state", "deliveryId", rec.ID, "error", err)
			return // the lease runs out and it is retried
		}
		j.disabled = &disabled
	}
	res := d.attempt(ctx, rec, *j.disabled)
	done <- d.decide(rec, res)
}

// attempt makes one delivery attempt, deciding first whether to make one.
// disabled is the client's endpoint URL disabled by a 410, if any.
func (d *Dispatcher) attempt(ctx context.Context, rec *record, disabled string) result {
	target, secret, allowPrivate, ok := d.subs.Webhook(rec.ClientID)
	if !ok {
		return result{status: StatusFailed, reason: "client has no webhook subscription"}
	}
	res := result{url: redactURL(target), target: target, status: StatusPending}
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

func parseDisabled(raw string) string {
	var e disabledEndpoint
	if raw == "" || json.Unmarshal([]byte(raw), &e) != nil {
		return ""
	}
	return e.URL
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

// completion is the decided outcome of an attempt, waiting to be written.
type completion struct {
	rec    *record
	res    result
	status string
	reason string
	tries  int
	next   time.Time // zero unless status is pending
	at     time.Time
}

// decide applies the retry schedule to an attempt's result.
func (d *Dispatcher) decide(rec *record, res result) completion {
	c := completion{rec: rec, res: res, status: res.status, reason: res.reason, tries: rec.Tries, at: d.cfg.Now()}
	if res.attempted {
		c.tries++
		rec.Attempts++
	}
	switch c.status {
	case StatusPending:
		if c.tries >= len(d.cfg.Schedule) {
			c.status = StatusFailed
			c.reason = fmt.Sprintf("gave up after %d attempts: %s", c.tries, c.reason)
			break
		}
		delay := jitter(d.cfg.Schedule[max(c.tries, 1)])
		if ra := min(res.retryAfter, d.cfg.MaxRetryAfter); ra > delay {
			delay = ra
		}
		c.next = c.at.Add(delay)
	case StatusDelivered:
		c.reason = ""
	}
	return c
}

// completer writes completions in batches: one transaction for whatever
// has queued up, instead of one per attempt. Until a completion is written
// its delivery is still leased, so a crash only means a repeated attempt.
func (d *Dispatcher) completer(in <-chan completion) {
	const maxBatch = 256
	ctx := context.Background()
	batch := make([]completion, 0, maxBatch)
	for c := range in {
		batch = append(batch[:0], c)
	more:
		for len(batch) < maxBatch {
			select {
			case c, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, c)
			default:
				break more
			}
		}
		d.write(ctx, batch)
	}
}

// write records a batch of completions in one transaction.
func (d *Dispatcher) write(ctx context.Context, batch []completion) {
	ttl := d.cfg.Retention
	pipe := d.rdb.TxPipeline()
	for _, c := range batch {
		id := c.rec.ID
		if c.res.attempted {
			raw, _ := json.Marshal(c.res.attempt)
			pipe.RPush(ctx, attemptsKey(id), raw)
			pipe.LTrim(ctx, attemptsKey(id), -maxAttemptsKept, -1)
			pipe.Expire(ctx, attemptsKey(id), ttl)
		}
		fields := []any{"status", c.status, "attempts", c.rec.Attempts, "tries", c.tries,
			"next", unixMilli(c.next), "updated", formatTime(c.at), "lastError", c.reason}
		if c.res.url != "" {
			fields = append(fields, "url", c.res.url)
		}
		pipe.HSet(ctx, recordKey(id), fields...)
		pipe.Expire(ctx, recordKey(id), ttl)
		if c.status == StatusPending {
			pipe.ZAdd(ctx, dueKey, redis.Z{Score: float64(c.next.UnixMilli()), Member: id})
		} else {
			pipe.ZRem(ctx, dueKey, id)
		}
		if c.res.disable {
			raw, _ := json.Marshal(disabledEndpoint{URL: c.res.target, At: c.at})
			pipe.HSet(ctx, disabledKey, c.rec.ClientID, raw)
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// The leases run out and the deliveries are attempted again: at least once.
		d.log.Error("webhook: record attempts", "count", len(batch), "error", err)
		return
	}
	for _, c := range batch {
		d.report(c)
	}
}

// report feeds metrics and the log once a completion is written.
func (d *Dispatcher) report(c completion) {
	outcome := OutcomeRetry
	switch c.status {
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
	attrs := []any{"deliveryId", c.rec.ID, "messageId", c.rec.MessageID, "clientId", c.rec.ClientID,
		"type", c.rec.Type, "attempt", c.tries, "status", c.status, "httpStatus", c.res.attempt.StatusCode}
	switch c.status {
	case StatusDelivered:
		d.log.Debug("webhook: delivered", attrs...)
	case StatusPending:
		d.log.Debug("webhook: attempt failed, will retry", append(attrs, "next", c.next)...)
	default:
		d.log.Warn("webhook: delivery stopped", append(attrs, "reason", c.reason)...)
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
	return parseDisabled(raw), nil
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
