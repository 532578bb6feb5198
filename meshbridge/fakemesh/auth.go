package fakemesh

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Token verification is implemented here rather than by importing
// meshbridge: meshbridge's own (internal) tests use this server, and Go
// refuses the import cycle meshbridge_test -> fakemesh -> meshbridge.
// The tests cross-check it against the reference's known-answer vector.

// Authentication failure messages, verbatim from the sandbox / real MESH.
const (
	msgAuthHeader      = "Error reading from Authorization header"
	msgInvalidToken    = "Invalid Authentication Token"
	msgMailboxMismatch = "Mailbox id does not match token"
	msgDuplicatedToken = "Error Duplicated Authentication Token"
)

const (
	tokenTimeLayout = "200601021504"
	// tokenWindow: "the API rejects the request if the timestamp supplied is
	// not within 2 hours of the server time".
	tokenWindow = 2 * time.Hour
	// replayKeep keeps used tokens a little longer than the window so that a
	// token can never be both inside the window and forgotten.
	replayKeep = tokenWindow + 10*time.Minute
	// replayMaxPerGeneration bounds memory: two generations of at most this
	// many 32-byte keys (~20 MB each). Under sustained load above
	// replayMaxPerGeneration/replayKeep (~66 req/s) a token replayed much
	// later than it was first used may go unnoticed; immediate replays
	// (the realistic bug) are always caught.
	replayMaxPerGeneration = 1 << 19
)

type token struct {
	mailbox    string
	nonce      string
	nonceCount string
	timestamp  string
	hash       string
}

// parseToken splits "NHSMESH mailbox:nonce:count:timestamp:hash". The scheme
// is case-insensitive as in the sandbox.
func parseToken(header string) (token, bool) {
	header = strings.TrimSpace(header)
	if len(header) < 8 || !strings.EqualFold(header[:7], "NHSMESH") || header[7] != ' ' {
		return token{}, false
	}
	rest := strings.TrimSpace(header[8:])
	var parts [5]string
	for i := 0; i < 4; i++ {
		j := strings.IndexByte(rest, ':')
		if j < 0 {
			return token{}, false
		}
		parts[i], rest = rest[:j], rest[j+1:]
	}
	if strings.IndexByte(rest, ':') >= 0 {
		return token{}, false
	}
	parts[4] = rest
	if parts[0] == "" || parts[4] == "" {
		return token{}, false
	}
	if n, err := strconv.Atoi(parts[2]); err != nil || n < 0 {
		return token{}, false
	}
	if len(parts[3]) != len(tokenTimeLayout) {
		return token{}, false
	}
	return token{mailbox: parts[0], nonce: parts[1], nonceCount: parts[2], timestamp: parts[3], hash: parts[4]}, true
}

// verify checks the HMAC-SHA256 of mailbox:nonce:nonce_count:password:timestamp
// keyed by the shared key and returns the decoded digest for the replay cache.
// The hex is compared case-insensitively, like the sandbox.
func (t token) verify(sharedKey, password string) ([32]byte, bool) {
	var got [32]byte
	if len(t.hash) != 64 {
		return got, false
	}
	if _, err := hex.Decode(got[:], []byte(t.hash)); err != nil {
		return got, false
	}
	mac := hmac.New(sha256.New, []byte(sharedKey))
	mac.Write([]byte(t.mailbox))
	mac.Write([]byte{':'})
	mac.Write([]byte(t.nonce))
	mac.Write([]byte{':'})
	mac.Write([]byte(t.nonceCount))
	mac.Write([]byte{':'})
	mac.Write([]byte(password))
	mac.Write([]byte{':'})
	mac.Write([]byte(t.timestamp))
	var want [32]byte
	mac.Sum(want[:0])
	return got, hmac.Equal(got[:], want[:])
}

// withinWindow reports whether the token timestamp is within 2 hours of now.
func (t token) withinWindow(now time.Time) bool {
	ts, err := time.Parse(tokenTimeLayout, t.timestamp)
	if err != nil {
		return false
	}
	d := now.Sub(ts)
	if d < 0 {
		d = -d
	}
	return d <= tokenWindow
}

// replayCache remembers tokens already used. Real MESH answers a reused token
// with 403; the sandbox does not, this server does (AuthMode full). Two
// generations rotate by age or size, so memory stays bounded and every token
// is remembered for at least replayKeep unless more than
// replayMaxPerGeneration tokens arrive within that time.
type replayCache struct {
	mu       sync.Mutex
	cur      map[[32]byte]struct{}
	prev     map[[32]byte]struct{}
	curStart time.Time
}

func newReplayCache(now time.Time) *replayCache {
	return &replayCache{cur: make(map[[32]byte]struct{}), prev: map[[32]byte]struct{}{}, curStart: now}
}

// seen records key and reports whether it had been used before.
func (c *replayCache) seen(key [32]byte, now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.cur[key]; ok {
		return true
	}
	if _, ok := c.prev[key]; ok {
		return true
	}
	if now.Sub(c.curStart) >= replayKeep || len(c.cur) >= replayMaxPerGeneration {
		c.prev, c.cur, c.curStart = c.cur, make(map[[32]byte]struct{}, len(c.cur)/2), now
	}
	c.cur[key] = struct{}{}
	return false
}

func (c *replayCache) reset(now time.Time) {
	c.mu.Lock()
	c.cur, c.prev, c.curStart = make(map[[32]byte]struct{}), map[[32]byte]struct{}{}, now
	c.mu.Unlock()
}
