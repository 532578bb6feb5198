package webhook

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

func TestSignMatchesReferenceLibrary(t *testing.T) {
	ts := time.Unix(1732491486, 0)
	tests := []struct {
		name, secret, id string
		body             []byte
	}{
		{"spec example secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", []byte(`{"test": 2432232314}`)},
		{"24-byte key", randomSecret(24), "msg_1", []byte(`{"type":"message.sent"}`)},
		{"64-byte key, empty body", randomSecret(64), WebhookID("client", "m:1"), nil},
		{"unicode body", randomSecret(32), "msg_x", []byte(`{"display":"Ré-envoi — ✓"}`)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sign(tc.secret, tc.id, ts, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := standardwebhooks.NewWebhook(tc.secret)
			if err != nil {
				t.Fatal(err)
			}
			want, err := ref.Sign(tc.id, ts, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("Sign = %q, reference library = %q", got, want)
			}
			h := http.Header{}
			h.Set("webhook-id", tc.id)
			h.Set("webhook-timestamp", strconv.FormatInt(ts.Unix(), 10))
			h.Set("webhook-signature", got)
			if err := ref.VerifyIgnoringTimestamp(tc.body, h); err != nil {
				t.Errorf("reference Verify: %v", err)
			}
			h.Set("webhook-id", tc.id+"x")
			if err := ref.VerifyIgnoringTimestamp(tc.body, h); err == nil {
				t.Error("signature verified for a different webhook-id")
			}
		})
	}
}

func TestSignRejectsBadSecrets(t *testing.T) {
	for _, secret := range []string{"whsec_", "whsec_not*base64!", ""} {
		sig, err := Sign(secret, "msg_1", time.Now(), []byte("{}"))
		if err == nil {
			t.Errorf("Sign(%q) = %q, want error", secret, sig)
			continue
		}
		if secret != "" && strings.Contains(err.Error(), strings.TrimPrefix(secret, "whsec_")) && len(secret) > 6 {
			t.Errorf("error %q leaks the secret", err)
		}
	}
}

func TestWebhookIDStableAndDistinct(t *testing.T) {
	a := WebhookID("client-a", "m1:1")
	if a != WebhookID("client-a", "m1:1") {
		t.Error("WebhookID not deterministic")
	}
	if !strings.HasPrefix(a, "msg_") || len(a) != 4+32 {
		t.Errorf("WebhookID = %q, want msg_ + 32 hex", a)
	}
	for _, other := range []string{WebhookID("client-b", "m1:1"), WebhookID("client-a", "m1:2")} {
		if other == a {
			t.Errorf("WebhookID collision: %q", a)
		}
	}
}

// Retries follow Standard Webhooks' schedule: ten attempts over about
// three days.
func TestDefaultScheduleIsStandardWebhooks(t *testing.T) {
	var total time.Duration
	s := DefaultSchedule()
	for _, d := range s {
		total += d
	}
	if s[0] != 0 || len(s) != 10 || s[9] != 24*time.Hour || total < 72*time.Hour || total > 80*time.Hour {
		t.Fatalf("schedule %v totals %v, want 10 attempts, the first immediate, about 3 days in all", s, total)
	}
}
