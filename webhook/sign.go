package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// secretPrefix marks a Standard Webhooks signing secret; the rest is base64.
const secretPrefix = "whsec_"

// Sign returns the Standard Webhooks v1 signature header value
// ("v1,<base64 HMAC-SHA256>") over "{id}.{unix seconds}.{body}".
// The secret is "whsec_" followed by the base64 key. It is written here rather
// than imported because it is a few lines and the reference library (used in
// the tests as an independent verifier) is an unversioned v0.0.1.
func Sign(secret, id string, ts time.Time, body []byte) (string, error) {
	key, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id))
	mac.Write([]byte{'.'})
	mac.Write(strconv.AppendInt(nil, ts.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}

// SignAll signs with every secret (a rotation: the current one and the
// previous one) and returns the signatures space-separated, as Standard
// Webhooks' webhook-signature header allows.
func SignAll(secrets []string, id string, ts time.Time, body []byte) (string, error) {
	if len(secrets) == 0 {
		return "", errors.New("webhook.Sign: no secret")
	}
	sigs := make([]string, 0, len(secrets))
	for _, s := range secrets {
		sig, err := Sign(s, id, ts, body)
		if err != nil {
			return "", err
		}
		sigs = append(sigs, sig)
	}
	return strings.Join(sigs, " "), nil
}

func decodeSecret(secret string) ([]byte, error) {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, secretPrefix))
	if err != nil {
		// The secret itself must never reach an error string.
		return nil, errors.New("webhook.Sign: secret is not whsec_ + base64")
	}
	if len(key) == 0 {
		return nil, errors.New("webhook.Sign: empty secret")
	}
	return key, nil
}

// WebhookID is the stable webhook-id of one event for one client's endpoint:
// the same on every attempt and replay, so receivers can de-duplicate on it.
// It is a hash so that it has a fixed length and a safe alphabet whatever the
// event id looks like.
func WebhookID(clientID, eventID string) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("%s\x00%s", clientID, eventID)))
	return "msg_" + hex.EncodeToString(sum[:16])
}
