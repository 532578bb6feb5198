package meshbridge

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"
)

// The two known-answer vectors from the MESH reference (mesh-api.md §2.1).
func TestTokenHashKnownAnswers(t *testing.T) {
	tests := []struct {
		key, mailbox, nonce string
		count               int
		password, ts, want  string
	}{
		{"TestKey", "X26ABC1", "2c001608-5f09-4840-9611-bea43e666a30", 1, "password", "201511201038",
			"9712e9dd1aa836431fa50134c333fceda28dc7e380675d9b0d359477f56d034a"},
		{"BackBone", "MAILBOX01", "00000000-0000-0000-0000-000000000000", 0, "secret", "202005041305",
			"2c741f66d038d7b16756f77ae51ec9c9316fcddbb8c86eb8faaf10d269e2f666"},
	}
	for _, tc := range tests {
		t.Run(tc.mailbox, func(t *testing.T) {
			if got := TokenHash(tc.key, tc.mailbox, tc.nonce, tc.count, tc.password, tc.ts); got != tc.want {
				t.Fatalf("TokenHash = %s, want %s", got, tc.want)
			}
			ts, _ := time.Parse(TokenTimeFormat, tc.ts)
			hdr := AuthorizationHeader(tc.key, tc.mailbox, tc.password, tc.nonce, tc.count, ts)
			want := "NHSMESH " + tc.mailbox + ":" + tc.nonce + ":" + itoa(tc.count) + ":" + tc.ts + ":" + tc.want
			if hdr != want {
				t.Fatalf("header = %q, want %q", hdr, want)
			}
			tok, err := ParseAuthorization(hdr)
			if err != nil {
				t.Fatalf("ParseAuthorization: %v", err)
			}
			if !tok.Verify(tc.key, tc.password) {
				t.Fatal("Verify = false for a correct token")
			}
			if tok.Verify(tc.key, "wrong") {
				t.Fatal("Verify = true for a wrong password")
			}
		})
	}
}

func TestParseAuthorizationRejectsMalformed(t *testing.T) {
	for _, h := range []string{
		"", "Bearer x", "NHSMESH", "NHSMESH a:b:c:d", "NHSMESH a:b:x:201511201038:h",
		"NHSMESH a:b:1:2015:h", "NHSMESH a:b:1:20151120103x:h", "NHSMESH a:b:-1:201511201038:h",
	} {
		if _, err := ParseAuthorization(h); err == nil {
			t.Errorf("ParseAuthorization(%q) = nil error", h)
		}
	}
	if _, err := ParseAuthorization("nhsmesh X:n:0:201511201038:ab"); err != nil {
		t.Errorf("lowercase scheme refused: %v", err)
	}
}

func itoa(i int) string { return string(rune('0' + i)) }

// The HMAC is over nonce_count exactly as the header carries it
// (mesh-api.md §2.1): a token signed with "01" verifies, and a token signed
// with "1" but sent as "01" does not.
func TestVerifyUsesNonceCountAsSent(t *testing.T) {
	const key, mailbox, nonce, password, ts = "TestKey", "X26ABC1", "2c001608-5f09-4840-9611-bea43e666a30", "password", "201511201038"
	sign := func(count string) string {
		mac := hmac.New(sha256.New, []byte(key))
		mac.Write([]byte(mailbox + ":" + nonce + ":" + count + ":" + password + ":" + ts))
		return hex.EncodeToString(mac.Sum(nil))
	}
	tests := []struct {
		signed, sent string
		want         bool
	}{
		{"1", "1", true},
		{"01", "01", true},
		{"0001", "0001", true},
		{"1", "01", false},
		{"01", "1", false},
	}
	for _, tc := range tests {
		tok, err := ParseAuthorization("NHSMESH " + mailbox + ":" + nonce + ":" + tc.sent + ":" + ts + ":" + sign(tc.signed))
		if err != nil {
			t.Fatalf("signed %q sent %q: %v", tc.signed, tc.sent, err)
		}
		if got := tok.Verify(key, password); got != tc.want {
			t.Errorf("signed %q sent %q: Verify = %v, want %v", tc.signed, tc.sent, got, tc.want)
		}
		if tok.NonceCount != 1 {
			t.Errorf("sent %q: NonceCount = %d, want 1", tc.sent, tok.NonceCount)
		}
	}
}
