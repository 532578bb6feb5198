package meshbridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// AuthScheme is the Authorization scheme MESH expects ("NHSMESH <token>").
const AuthScheme = "NHSMESH"

// TokenTimeFormat is the MESH token timestamp layout (UTC yyyyMMddHHmm).
const TokenTimeFormat = "200601021504"

// Token is the parsed form of a MESH Authorization header.
type Token struct {
	MailboxID  string
	Nonce      string
	NonceCount int
	// NonceCountRaw is nonce_count exactly as the header carried it ("01"
	// stays "01"): the HMAC is over the string as sent (mesh-api.md §2.1),
	// so Verify hashes this, not a re-formatted NonceCount. Empty for a Token
	// built by hand, in which case Verify uses strconv.Itoa(NonceCount).
	NonceCountRaw string
	Timestamp     string // yyyyMMddHHmm, UTC
	Hash          string // lowercase hex HMAC-SHA256
}

// TokenHash computes the MESH HMAC: key = shared key, message =
// mailbox:nonce:nonce_count:password:timestamp (password 4th, timestamp 5th).
func TokenHash(sharedKey, mailboxID, nonce string, nonceCount int, password, timestamp string) string {
	return tokenHash(sharedKey, mailboxID, nonce, strconv.Itoa(nonceCount), password, timestamp)
}

// tokenHash is TokenHash over nonce_count as a string, so a verifier can hash
// the exact characters the client sent.
func tokenHash(sharedKey, mailboxID, nonce, nonceCount, password, timestamp string) string {
	mac := hmac.New(sha256.New, []byte(sharedKey))
	mac.Write([]byte(mailboxID + ":" + nonce + ":" + nonceCount + ":" + password + ":" + timestamp))
	return hex.EncodeToString(mac.Sum(nil))
}

// AuthorizationHeader builds the full header value for one request.
func AuthorizationHeader(sharedKey, mailboxID, password, nonce string, nonceCount int, now time.Time) string {
	mailboxID = strings.ToUpper(mailboxID)
	ts := now.UTC().Format(TokenTimeFormat)
	hash := TokenHash(sharedKey, mailboxID, nonce, nonceCount, password, ts)
	return AuthScheme + " " + mailboxID + ":" + nonce + ":" + strconv.Itoa(nonceCount) + ":" + ts + ":" + hash
}

// ErrMalformedToken is returned by ParseAuthorization for any header that does
// not follow the NHSMESH token schema.
var ErrMalformedToken = errors.New("malformed NHSMESH authorization header")

// ParseAuthorization splits an Authorization header value into its token fields.
// The scheme is matched case-insensitively, as the official sandbox does.
func ParseAuthorization(header string) (Token, error) {
	scheme, rest, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, AuthScheme) {
		return Token{}, ErrMalformedToken
	}
	parts := strings.Split(strings.TrimSpace(rest), ":")
	if len(parts) != 5 {
		return Token{}, ErrMalformedToken
	}
	count, err := strconv.Atoi(parts[2])
	if err != nil || count < 0 {
		return Token{}, fmt.Errorf("%w: nonce_count %q", ErrMalformedToken, parts[2])
	}
	if len(parts[3]) != len(TokenTimeFormat) {
		return Token{}, fmt.Errorf("%w: timestamp %q", ErrMalformedToken, parts[3])
	}
	if _, err := time.Parse(TokenTimeFormat, parts[3]); err != nil {
		return Token{}, fmt.Errorf("%w: timestamp %q", ErrMalformedToken, parts[3])
	}
	return Token{MailboxID: parts[0], Nonce: parts[1], NonceCount: count, NonceCountRaw: parts[2], Timestamp: parts[3], Hash: parts[4]}, nil
}

// Verify reports whether the token's hash matches the mailbox password and
// shared key. The HMAC is computed over nonce_count exactly as sent
// (NonceCountRaw), so a client that signs "01" is accepted and one that signs
// "1" but sends "01" is not. The comparison is constant-time and
// case-insensitive on the hex.
func (t Token) Verify(sharedKey, password string) bool {
	count := t.NonceCountRaw
	if count == "" {
		count = strconv.Itoa(t.NonceCount)
	}
	want := tokenHash(sharedKey, t.MailboxID, t.Nonce, count, password, t.Timestamp)
	return hmac.Equal([]byte(want), []byte(strings.ToLower(t.Hash)))
}

// Time returns the token timestamp as a UTC time.
func (t Token) Time() time.Time {
	ts, _ := time.Parse(TokenTimeFormat, t.Timestamp)
	return ts
}
