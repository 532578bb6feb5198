package fakemesh

import (
	"encoding/hex"
	"sync"
	"time"

	"github.com/meshgateway/gateway/meshbridge"
)

// Authentication failure messages, verbatim from the sandbox / real MESH.
const (
	msgAuthHeader      = "Error reading from Authorization header"
	msgInvalidToken    = "Invalid Authentication Token"
	msgMailboxMismatch = "Mailbox id does not match token"
	msgDuplicatedToken = "Error Duplicated Authentication Token"
)

const (
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

// token is a parsed NHSMESH token; the parsing and the HMAC are the MESH
// client's (meshbridge), so the fake and the client cannot drift apart.
type token struct{ meshbridge.Token }

// parseToken splits "NHSMESH mailbox:nonce:count:timestamp:hash". The scheme
// is case-insensitive as in the sandbox.
func parseToken(header string) (token, bool) {
	t, err := meshbridge.ParseAuthorization(header)
	if err != nil || t.MailboxID == "" || t.Hash == "" {
		return token{}, false
	}
	return token{t}, true
}

// verify checks the HMAC and returns the decoded digest, the replay cache's key.
func (t token) verify(sharedKey, password string) ([32]byte, bool) {
	var digest [32]byte
	if len(t.Hash) != 64 {
		return digest, false
	}
	if _, err := hex.Decode(digest[:], []byte(t.Hash)); err != nil {
		return digest, false
	}
	return digest, t.Verify(sharedKey, password)
}

// withinWindow reports whether the token timestamp is within 2 hours of now.
func (t token) withinWindow(now time.Time) bool {
	d := now.Sub(t.Time())
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
