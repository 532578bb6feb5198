package webhook

import (
	"encoding/json"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/tracking"
)

// Redis layout. Every key carries the {gw} hash tag so that the transactions
// and the script below, which touch several keys, work on Redis Cluster.
//
// A delivery costs few commands on purpose: the embedded default is
// miniredis, which answers each command with its own write.
const (
	// StreamKey is the tracking store's event stream this package consumes.
	StreamKey = tracking.EventsStream
	// GroupName is the consumer group shared by every dispatcher replica.
	GroupName = "webhooks"

	// dueKey is the delayed queue: member = queueMember(delivery), score =
	// unix ms at which it may next be claimed (a retry's due time, or the end
	// of the lease of the replica attempting it).
	dueKey = "{gw}:wh:due"
	// disabledKey maps client id -> JSON {url (redacted), urlHash, at} of an endpoint that
	// answered 410 Gone. Deliveries to that URL stop until EnableEndpoint (a
	// new URL is a new endpoint and is not disabled).
	disabledKey = "{gw}:wh:disabled"
	// throttleKey maps client id -> unix ms until which its endpoint gets no
	// attempts: set when it answers 429/502/503/504, so one overloaded
	// receiver is not sent the rest of its queue meanwhile.
	throttleKey = "{gw}:wh:throttle"
	// lastOKKey maps client id -> unix ms of its endpoint's last 2xx (or,
	// before any, of its first delivery): a delivery given up with no
	// success since its schedule began means the endpoint has been failing
	// all along, and is disabled.
	lastOKKey = "{gw}:wh:ok"
	// messagePrefix + message id is a hash: delivery id -> JSON record, so a
	// message's deliveries are one read and a new one is one HSETNX.
	messagePrefix = "{gw}:wh:m:"

	maxAttemptsKept = 50 // replays must not grow a record without bound
)

func messageKey(messageID string) string { return messagePrefix + messageID }

// idLen is the length of a WebhookID ("msg_" + 32 hex digits).
const idLen = 4 + 32

// queueMember names a delivery on the due queue: its id, then its message id
// (needed to find the record; the id has a fixed length, so no separator).
func queueMember(id, messageID string) string { return id + messageID }

func splitMember(m string) (id, messageID string, ok bool) {
	if len(m) <= idLen {
		return "", "", false
	}
	return m[:idLen], m[idLen:], true
}

func unixMilli(t time.Time) string { return strconv.FormatInt(t.UnixMilli(), 10) }

// Delivery statuses.
const (
	StatusPending   = "pending"   // queued or being attempted
	StatusDelivered = "delivered" // a 2xx was received
	StatusFailed    = "failed"    // schedule exhausted, or the target was refused
	StatusDisabled  = "disabled"  // the endpoint answered 410 Gone (or was already disabled)
)

// record is a delivery as stored (JSON) in its message's hash.
type record struct {
	ID           string     `json:"id"` // webhook-id
	EventID      string     `json:"eventId"`
	MessageID    string     `json:"messageId"`
	ClientID     string     `json:"clientId"`
	Type         string     `json:"type"`
	Body         string     `json:"body"` // the exact bytes signed and sent, every time
	Status       string     `json:"status"`
	Tries        int        `json:"tries"`        // attempts in the current round: position in the schedule
	AttemptCount int        `json:"attemptCount"` // all attempts, replays included
	Attempts     []Attempt  `json:"attempts"`     // the latest maxAttemptsKept
	Next         *time.Time `json:"next,omitempty"`
	CreatedAt    time.Time  `json:"createdAt"`
	UpdatedAt    time.Time  `json:"updatedAt"`
	LastError    string     `json:"lastError,omitempty"`
	URL          string     `json:"url,omitempty"` // last target, without query or credentials
}

func (r *record) encode() string {
	raw, _ := json.Marshal(r) // plain strings, numbers and times: cannot fail
	return string(raw)
}

func decodeRecord(raw string) *record {
	var r record
	if raw == "" || json.Unmarshal([]byte(raw), &r) != nil || r.ID == "" {
		return nil
	}
	return &r
}

// Attempt is one HTTP attempt of a delivery.
type Attempt struct {
	At         time.Time `json:"at"`
	StatusCode int       `json:"statusCode,omitempty"` // HTTP status, 0 if no response
	Error      string    `json:"error,omitempty"`      // why it failed without a usable response
	DurationMS int64     `json:"durationMs"`
}

// claimScript takes up to ARGV[3] deliveries due at ARGV[1] and pushes their
// score to the lease end ARGV[2], so no other replica claims them while this
// one attempts them; if this replica dies they become due again.
var claimScript = redis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do redis.call('ZADD', KEYS[1], ARGV[2], id) end
return ids
`)

// raiseThrottleScript sets a client's throttle end only if it is later than
// the one stored: a short pause (503, no Retry-After) answered after a long
// one (429, Retry-After: 3600) must not cut the long one short.
// KEYS[1] throttleKey; ARGV[1] client id, ARGV[2] unix ms.
var raiseThrottleScript = redis.NewScript(`
local cur = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
if tonumber(ARGV[2]) > cur then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) return 1 end
return 0
`)

// disableScript disables a client's endpoint after sustained failure, in
// one step so a success or an operator's enable cannot slip in between:
// not if the endpoint answered 2xx since ARGV[2] (unix ms), not if this URL
// is already disabled; a disablement of the client's earlier URL is
// replaced. With no success on record yet (first run after an upgrade) it
// records "now" instead, so a healthy endpoint is not disabled on history it
// has no record of. KEYS[1] lastOKKey, KEYS[2] disabledKey; ARGV[1] client
// id, ARGV[2] since, ARGV[3] URL hash, ARGV[4] entry JSON, ARGV[5] now.
// Returns 1 when it disabled the endpoint.
var disableScript = redis.NewScript(`
local ok = redis.call('HGET', KEYS[1], ARGV[1])
if not ok then redis.call('HSET', KEYS[1], ARGV[1], ARGV[5]) return 0 end
if tonumber(ok) >= tonumber(ARGV[2]) then return 0 end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur and string.find(cur, ARGV[3], 1, true) then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[4])
return 1
`)

// releaseScript makes a leased delivery due now, if the lease ARGV[2] is
// still the one recorded (another replica may have claimed it since).
// KEYS[1] due zset; ARGV[1] member, ARGV[2] lease score, ARGV[3] now.
var releaseScript = redis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if s and tonumber(s) == tonumber(ARGV[2]) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
  return 1
end
return 0
`)
