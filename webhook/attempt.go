package webhook

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
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
		at = now.UTC().Format(time.RFC3339Nano)
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
	if err != nil { // cannot fail for plain strings
		return nil
	}
	return &record{
		ID: WebhookID(clientID, eventID), EventID: eventID, MessageID: messageID, ClientID: clientID,
		Type: "message." + string(typ), Body: string(body), Status: StatusPending, Attempts: []Attempt{},
		CreatedAt: now, UpdatedAt: now,
	}
}

// ingest records the deliveries of a batch of stream entries and
// acknowledges the entries, in one transaction. A delivery is created with
// HSETNX, so one that already exists (the same event seen again, or an
// entry re-claimed after a crash) keeps its state and is not handed to a
// worker again: each event is queued once per endpoint.
// It returns the new deliveries to attempt now.
func (d *Dispatcher) ingest(ctx context.Context, msgs []redis.XMessage) ([]job, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	now := d.cfg.Now()
	leaseUntil := now.Add(d.lease)
	immediate := d.cfg.Schedule[0] <= 0
	firstDue := leaseUntil
	if !immediate {
		firstDue = now.Add(jitter(d.cfg.Schedule[0]))
	}
	type created struct {
		rec   *record
		isNew *redis.BoolCmd
	}
	var (
		recs     []created
		queue    []redis.Z
		clients  []string
		messages []string
		seen     = map[string]bool{}
		acks     = make([]string, 0, len(msgs))
		pipe     = d.rdb.TxPipeline()
	)
	for _, m := range msgs {
		acks = append(acks, m.ID)
		rec := d.newRecord(m.Values, now)
		if rec == nil {
			continue
		}
		next := firstDue
		rec.Next = &next
		recs = append(recs, created{rec, pipe.HSetNX(ctx, messageKey(rec.MessageID), rec.ID, rec.encode())})
		// NX: a delivery already queued keeps its due time. A finished one
		// seen again is dropped by the worker that claims it.
		queue = append(queue, redis.Z{Score: float64(firstDue.UnixMilli()), Member: queueMember(rec.ID, rec.MessageID)})
		if !seen["c"+rec.ClientID] {
			seen["c"+rec.ClientID] = true
			clients = append(clients, rec.ClientID)
		}
		if !seen["m"+rec.MessageID] {
			seen["m"+rec.MessageID] = true
			messages = append(messages, rec.MessageID)
		}
	}
	var disabledCmd, throttleCmd *redis.SliceCmd
	if len(recs) > 0 {
		for _, m := range messages {
			pipe.Expire(ctx, messageKey(m), d.cfg.Retention)
		}
		pipe.ZAddNX(ctx, dueKey, queue...)
		disabledCmd = pipe.HMGet(ctx, disabledKey, clients...)
		throttleCmd = pipe.HMGet(ctx, throttleKey, clients...)
		for _, c := range clients {
			// "Watched since": a client's first delivery sets the point from
			// which sustained failure is judged (just before now, so an
			// attempt in the same millisecond is after it).
			pipe.HSetNX(ctx, lastOKKey, c, now.UnixMilli()-1)
		}
	}
	pipe.XAck(ctx, StreamKey, GroupName, acks...)
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("webhook: record deliveries: %w", err)
	}
	if !immediate || len(recs) == 0 {
		return nil, nil
	}
	disabled := map[string]string{}
	for i, v := range disabledCmd.Val() {
		raw, _ := v.(string)
		disabled[clients[i]] = parseDisabled(raw)
	}
	throttled := map[string]time.Time{}
	for i, v := range throttleCmd.Val() {
		raw, _ := v.(string)
		throttled[clients[i]] = parseThrottle(raw)
	}
	var list []job
	for _, c := range recs {
		if !c.isNew.Val() {
			continue
		}
		dis := disabled[c.rec.ClientID]
		list = append(list, job{member: queueMember(c.rec.ID, c.rec.MessageID), rec: c.rec, disabled: &dis,
			throttled: throttled[c.rec.ClientID], leaseUntil: leaseUntil})
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
	target     string // full target URL, never stored (see urlHash)
	disable    bool   // persist the endpoint as disabled (410)
	// throttleUntil, when set, pauses the client's endpoint (429/502/503/504).
	throttleUntil time.Time
}

// process attempts one delivery and hands the outcome to done, to be
// written in a batch with others.
func (d *Dispatcher) process(ctx context.Context, j job, done chan<- completion) {
	rec := j.rec
	if rec == nil {
		id, messageID, ok := splitMember(j.member)
		if !ok {
			d.log.Error("webhook: malformed queue entry dropped", "member", j.member)
			if err := d.rdb.ZRem(ctx, dueKey, j.member).Err(); err != nil {
				d.log.Error("webhook: drop malformed queue entry", "error", err)
			}
			return
		}
		raw, err := d.rdb.HGet(ctx, messageKey(messageID), id).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			d.log.Error("webhook: load delivery", "deliveryId", id, "error", err)
			return // the lease runs out and it is retried
		}
		rec = decodeRecord(raw)
		if rec == nil || rec.Status != StatusPending {
			d.drop(ctx, j.member, messageID, id)
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
		disabled, throttled, err := d.endpointState(ctx, rec.ClientID)
		if err != nil {
			d.log.Error("webhook: read endpoint state", "deliveryId", rec.ID, "error", err)
			return // the lease runs out and it is retried
		}
		j.disabled, j.throttled = &disabled, throttled
	}
	if now := d.cfg.Now(); j.throttled.After(now) {
		done <- d.deferred(rec, j.throttled, now)
		return
	}
	res := d.attempt(ctx, rec, *j.disabled)
	done <- d.decide(rec, res)
}

// deferred puts a delivery back, unattempted and with nothing counted
// against its schedule, until its endpoint's throttle ends, spread over a
// second so the queue does not return at once.
func (d *Dispatcher) deferred(rec *record, until, now time.Time) completion {
	next := until.Add(time.Duration(rand.Int64N(int64(time.Second))))
	rec.Next, rec.UpdatedAt = &next, now
	return completion{rec: rec, res: result{status: StatusPending, reason: rec.LastError}, outcome: OutcomeDeferred}
}

// parseThrottle reads a throttleKey value (unix ms); zero if absent or bad.
func parseThrottle(raw string) time.Time {
	ms, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || ms <= 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms)
}

// drop takes a claimed delivery that is no longer pending (finished, or
// expired) off the queue, unless a Replay re-queued it meanwhile: the
// WATCH on its message's hash makes the removal fail if anything changed.
func (d *Dispatcher) drop(ctx context.Context, member, messageID, id string) {
	key := messageKey(messageID)
	err := d.rdb.Watch(ctx, func(tx *redis.Tx) error {
		raw, err := tx.HGet(ctx, key, id).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if rec := decodeRecord(raw); rec != nil && rec.Status == StatusPending {
			return nil
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.ZRem(ctx, dueKey, member)
			return nil
		})
		return err
	}, key)
	if err != nil && !errors.Is(err, redis.TxFailedErr) {
		d.log.Error("webhook: drop finished delivery", "deliveryId", id, "error", err)
	}
}

// attempt makes one delivery attempt, deciding first whether to make one.
// disabled is the hash of the client's endpoint URL disabled by a 410, if any.
func (d *Dispatcher) attempt(ctx context.Context, rec *record, disabled string) result {
	target, secrets, allowPrivate, ok := d.subs.Webhook(rec.ClientID)
	if !ok {
		return result{status: StatusFailed, reason: "client has no webhook subscription"}
	}
	res := result{url: redactURL(target), target: target, status: StatusPending}
	if disabled != "" && disabled == urlHash(target) {
		res.status, res.reason = StatusDisabled, "endpoint disabled (it answered 410 Gone, or failed for the whole retry schedule)"
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
	body := []byte(rec.Body)
	sig, err := SignAll(secrets, rec.ID, start, body)
	if err != nil {
		return fail(StatusPending, err.Error()) // configuration; may be fixed before the next try
	}
	req, err := http.NewRequestWithContext(actx, http.MethodPost, target, bytes.NewReader(body))
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
			// Standard Webhooks: these mean throttle. The whole endpoint
			// pauses, not just this delivery.
			res.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), start)
			pause := d.cfg.ThrottlePause
			if res.retryAfter > 0 {
				pause = min(res.retryAfter, d.cfg.MaxRetryAfter)
			}
			res.throttleUntil = start.Add(pause)
		}
	}
	return res
}

// parseDisabled returns the URL hash of a disabled-endpoint entry.
func parseDisabled(raw string) string {
	var e disabledEndpoint
	if raw == "" || json.Unmarshal([]byte(raw), &e) != nil {
		return ""
	}
	return e.URLHash
}

// urlHash identifies an endpoint URL without storing it again (it may carry
// a token).
func urlHash(u string) string {
	sum := sha256.Sum256([]byte(u))
	return hex.EncodeToString(sum[:])
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
	rec     *record // updated: status, tries, attempts, next
	res     result
	outcome string
	gaveUp  bool // the schedule ran out: check for sustained failure
}

// decide applies the retry schedule to an attempt's result and updates the
// record accordingly.
func (d *Dispatcher) decide(rec *record, res result) completion {
	now := d.cfg.Now()
	gaveUp := false
	rec.Status, rec.LastError, rec.UpdatedAt, rec.Next = res.status, res.reason, now, nil
	if res.url != "" {
		rec.URL = res.url
	}
	if res.attempted {
		rec.Tries++
		rec.AttemptCount++
		rec.Attempts = append(rec.Attempts, res.attempt)
		if n := len(rec.Attempts); n > maxAttemptsKept {
			rec.Attempts = append([]Attempt(nil), rec.Attempts[n-maxAttemptsKept:]...)
		}
	}
	switch rec.Status {
	case StatusPending:
		if rec.Tries >= len(d.cfg.Schedule) {
			rec.Status = StatusFailed
			rec.LastError = fmt.Sprintf("gave up after %d attempts: %s", rec.Tries, res.reason)
			gaveUp = true
			break
		}
		delay := jitter(d.cfg.Schedule[max(rec.Tries, 1)])
		if ra := min(res.retryAfter, d.cfg.MaxRetryAfter); ra > delay {
			delay = ra
		}
		next := now.Add(delay)
		rec.Next = &next
	case StatusDelivered:
		rec.LastError = ""
	}
	outcome := OutcomeRetry
	switch rec.Status {
	case StatusDelivered:
		outcome = OutcomeDelivered
	case StatusFailed:
		outcome = OutcomeFailed
	case StatusDisabled:
		outcome = OutcomeDisabled
	}
	return completion{rec: rec, res: res, outcome: outcome, gaveUp: gaveUp}
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
	pipe := d.rdb.TxPipeline()
	expired := map[string]bool{}
	for _, c := range batch {
		rec := c.rec
		key := messageKey(rec.MessageID)
		pipe.HSet(ctx, key, rec.ID, rec.encode())
		if !expired[key] {
			expired[key] = true
			pipe.Expire(ctx, key, d.cfg.Retention)
		}
		member := queueMember(rec.ID, rec.MessageID)
		if rec.Status == StatusPending {
			pipe.ZAdd(ctx, dueKey, redis.Z{Score: float64(rec.Next.UnixMilli()), Member: member})
		} else {
			pipe.ZRem(ctx, dueKey, member)
		}
		if c.res.disable {
			raw, _ := json.Marshal(disabledEndpoint{URL: c.res.url, URLHash: urlHash(c.res.target), At: rec.UpdatedAt, Reason: "410 Gone"})
			pipe.HSet(ctx, disabledKey, rec.ClientID, raw)
		}
		if !c.res.throttleUntil.IsZero() {
			raiseThrottleScript.Eval(ctx, pipe, []string{throttleKey}, rec.ClientID, c.res.throttleUntil.UnixMilli())
		}
		if rec.Status == StatusDelivered {
			pipe.HSet(ctx, lastOKKey, rec.ClientID, rec.UpdatedAt.UnixMilli())
		}
	}
	if _, err := pipe.Exec(ctx); err != nil {
		// The leases run out and the deliveries are attempted again: at least once.
		d.log.Error("webhook: record attempts", "count", len(batch), "error", err)
		return
	}
	for _, c := range batch {
		d.report(c)
		if c.gaveUp {
			d.disableIfSustained(ctx, c)
		}
	}
}

// disableIfSustained disables a client's endpoint when a delivery was given
// up and the endpoint has answered no attempt with 2xx since that delivery
// was created: it has been failing for the whole retry schedule (Standard
// Webhooks: "after sustained failure, disable the endpoint and notify").
// New events then stop at once instead of each spending days in retries;
// an operator re-enables it (admin port) and replays what was missed.
func (d *Dispatcher) disableIfSustained(ctx context.Context, c completion) {
	rec := c.rec
	if c.res.target == "" {
		return // not attempted (no subscription): nothing to disable
	}
	// The schedule that just ran out began with its first attempt (a replay
	// starts a new one), else when the delivery was created.
	since := rec.CreatedAt
	if n := len(rec.Attempts); rec.Tries > 0 && rec.Tries <= n {
		since = rec.Attempts[n-rec.Tries].At
	}
	hash := urlHash(c.res.target)
	entry, _ := json.Marshal(disabledEndpoint{URL: c.res.url, URLHash: hash, At: rec.UpdatedAt,
		Reason: "no successful delivery since " + since.UTC().Format(time.RFC3339) + " (" + rec.LastError + ")"})
	set, err := disableScript.Run(ctx, d.rdb, []string{lastOKKey, disabledKey}, rec.ClientID, since.UnixMilli(), hash, entry,
		d.cfg.Now().UnixMilli()).Int()
	if err != nil {
		d.log.Error("webhook: disable endpoint", "clientId", rec.ClientID, "error", err)
		return
	}
	if set == 1 {
		d.log.Error("webhook: endpoint disabled after sustained failure: re-enable it on the admin port (POST /webhooks/{clientId}/enable) and replay",
			"clientId", rec.ClientID, "url", c.res.url, "failingSince", since)
	}
}

// report feeds metrics and the log once a completion is written.
func (d *Dispatcher) report(c completion) {
	if d.cfg.Metrics != nil {
		d.cfg.Metrics.Delivered(c.outcome)
	}
	rec := c.rec
	attrs := []any{"deliveryId", rec.ID, "messageId", rec.MessageID, "clientId", rec.ClientID,
		"type", rec.Type, "attempt", rec.Tries, "status", rec.Status, "httpStatus", c.res.attempt.StatusCode}
	switch rec.Status {
	case StatusDelivered:
		d.log.Debug("webhook: delivered", attrs...)
	case StatusPending:
		if c.outcome == OutcomeDeferred {
			d.log.Debug("webhook: endpoint throttled, delivery deferred", append(attrs, "next", rec.Next)...)
			break
		}
		d.log.Debug("webhook: attempt failed, will retry", append(attrs, "next", rec.Next)...)
	default:
		d.log.Warn("webhook: delivery stopped", append(attrs, "reason", rec.LastError)...)
	}
}

// disabledEndpoint is the value stored under disabledKey.
type disabledEndpoint struct {
	URL     string    `json:"url"`     // redacted, for people
	URLHash string    `json:"urlHash"` // of the full URL, for matching
	At      time.Time `json:"at"`
	Reason  string    `json:"reason,omitempty"` // empty: it answered 410 Gone
}

// endpointState returns the hash of the client's endpoint URL disabled by a
// 410, if any, and until when the endpoint is throttled (zero if not).
func (d *Dispatcher) endpointState(ctx context.Context, clientID string) (disabled string, throttled time.Time, err error) {
	pipe := d.rdb.Pipeline()
	dis := pipe.HGet(ctx, disabledKey, clientID)
	thr := pipe.HGet(ctx, throttleKey, clientID)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return "", time.Time{}, err
	}
	return parseDisabled(dis.Val()), parseThrottle(thr.Val()), nil
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
