package webhook

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Redis layout. Every key carries the {gw} hash tag so that the scripts and
// transactions below, which touch several keys, work on Redis Cluster.
const (
	// StreamKey is the tracking store's event stream this package consumes.
	StreamKey = "{gw}:events"
	// GroupName is the consumer group shared by every dispatcher replica.
	GroupName = "webhooks"

	// dueKey is the delayed queue: member = delivery id, score = unix ms at
	// which it may next be claimed (a retry's due time, or the end of the
	// lease of the replica currently attempting it).
	dueKey = "{gw}:wh:due"
	// disabledKey maps client id -> JSON {url, at} of an endpoint that answered
	// 410 Gone. Deliveries to that URL stop until EnableEndpoint (a new URL
	// is a new endpoint and is not disabled).
	disabledKey = "{gw}:wh:disabled"

	recordPrefix   = "{gw}:wh:d:" // hash: one delivery (event x endpoint)
	attemptsPrefix = "{gw}:wh:a:" // list: JSON attempts of one delivery
	messagePrefix  = "{gw}:wh:m:" // set: delivery ids of one tracking message

	maxAttemptsKept = 50 // replays must not grow a record without bound
)

func recordKey(id string) string         { return recordPrefix + id }
func attemptsKey(id string) string       { return attemptsPrefix + id }
func messageKey(messageID string) string { return messagePrefix + messageID }

func unixMilli(t time.Time) string  { return strconv.FormatInt(t.UnixMilli(), 10) }
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

func parseMilli(s string) time.Time {
	n, _ := strconv.ParseInt(s, 10, 64)
	return time.UnixMilli(n)
}

// Delivery statuses.
const (
	StatusPending   = "pending"   // queued or being attempted
	StatusDelivered = "delivered" // a 2xx was received
	StatusFailed    = "failed"    // schedule exhausted, or the target was refused
	StatusDisabled  = "disabled"  // the endpoint answered 410 Gone (or was already disabled)
)

// record is a delivery as stored in its hash.
type record struct {
	ID        string // webhook-id
	EventID   string
	MessageID string
	ClientID  string
	Type      string // "message.<event type>"
	Body      []byte
	Status    string
	Attempts  int // all attempts, including earlier replays
	Tries     int // attempts in the current round: position in the schedule
	Next      time.Time
	CreatedAt time.Time
	UpdatedAt time.Time
	LastError string
	URL       string // last target, without query or credentials
}

func (r *record) fields() []any {
	return []any{
		"id", r.ID, "eventId", r.EventID, "messageId", r.MessageID, "clientId", r.ClientID,
		"type", r.Type, "body", r.Body, "status", r.Status,
		"attempts", r.Attempts, "tries", r.Tries, "next", unixMilli(r.Next),
		"created", formatTime(r.CreatedAt), "updated", formatTime(r.UpdatedAt),
		"lastError", r.LastError, "url", r.URL,
	}
}

func recordFromHash(h map[string]string) *record {
	if h["id"] == "" {
		return nil
	}
	r := &record{
		ID: h["id"], EventID: h["eventId"], MessageID: h["messageId"], ClientID: h["clientId"],
		Type: h["type"], Body: []byte(h["body"]), Status: h["status"],
		CreatedAt: parseTime(h["created"]), UpdatedAt: parseTime(h["updated"]),
		LastError: h["lastError"], URL: h["url"],
	}
	r.Attempts, _ = strconv.Atoi(h["attempts"])
	r.Tries, _ = strconv.Atoi(h["tries"])
	if r.Status == StatusPending && h["next"] != "" && h["next"] != "0" {
		r.Next = parseMilli(h["next"])
	}
	return r
}

// Attempt is one HTTP attempt of a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode,omitempty"` // HTTP status, 0 if no response
	Error      string    `json:"error,omitempty"`      // why it failed without a usable response
	DurationMS int64     `json:"durationMs"`
}

func decodeAttempts(raw []string) []Attempt {
	out := make([]Attempt, 0, len(raw))
	for _, s := range raw {
		var a Attempt
		if json.Unmarshal([]byte(s), &a) == nil {
			out = append(out, a)
		}
	}
	return out
}

// ingestScript creates delivery records for a batch of stream entries and
// acknowledges the entries, atomically: a record that already exists (the
// same event seen again, or an entry re-claimed after a crash) is left alone,
// so each event is queued once per endpoint. It also reads whether each new
// delivery's client endpoint is disabled, saving the worker a round trip.
//
// KEYS[1] stream, KEYS[2] due zset, KEYS[3] disabled hash, then per entry:
// record hash, message set.
// ARGV[1] group, ARGV[2] ttl seconds, ARGV[3] entry count, then per entry:
// stream id, delivery id, client id, due score, field count n, n
// field/value pairs.
// Returns {delivery id, disabled-endpoint JSON or ""} for each created record.
var ingestScript = redis.NewScript(`
local created = {}
local a = 4
for i = 1, tonumber(ARGV[3]) do
  local rec, idx = KEYS[2 + 2*i], KEYS[3 + 2*i]
  local sid, did, client, score, nf = ARGV[a], ARGV[a+1], ARGV[a+2], ARGV[a+3], tonumber(ARGV[a+4])
  a = a + 5
  if redis.call('EXISTS', rec) == 0 then
    redis.call('HSET', rec, unpack(ARGV, a, a + 2*nf - 1))
    redis.call('EXPIRE', rec, ARGV[2])
    redis.call('SADD', idx, did)
    redis.call('EXPIRE', idx, ARGV[2])
    redis.call('ZADD', KEYS[2], score, did)
    created[#created + 1] = did
    created[#created + 1] = redis.call('HGET', KEYS[3], client) or ''
  end
  a = a + 2*nf
  redis.call('XACK', KEYS[1], ARGV[1], sid)
end
return created
`)

// claimScript takes up to ARGV[3] deliveries due at ARGV[1] and pushes their
// score to the lease end ARGV[2], so no other replica claims them while this
// one attempts them; if this replica dies they become due again.
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
`)

// replayScript re-queues one finished delivery of the given client.
// KEYS[1] record, KEYS[2] due zset; ARGV[1] client id, ARGV[2] due score,
// ARGV[3] updated time. Returns 1 if re-queued.
var replayScript = redis.NewScript(`
local v = redis.call('HMGET', KEYS[1], 'clientId', 'status', 'id')
if v[1] ~= ARGV[1] or not v[2] or v[2] == 'pending' then return 0 end
redis.call('HSET', KEYS[1], 'status', 'pending', 'tries', 0, 'next', ARGV[2], 'updated', ARGV[3], 'lastError', '')
redis.call('ZADD', KEYS[2], ARGV[2], v[3])
return 1
`)

// releaseScript makes a leased delivery due now, if the lease ARGV[2] is
// still the one recorded (another replica may have claimed it since).
// KEYS[1] due zset; ARGV[1] delivery id, ARGV[2] lease score, ARGV[3] now.
var releaseScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
`)

// dropScript removes a delivery from the queue unless it is pending (a
// Replay may have re-queued it since the caller read it).
// KEYS[1] record, KEYS[2] due zset; ARGV[1] delivery id.
var dropScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'status') == 'pending' then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
`)
