package fakemesh

import (
	"net/http"
	"testing"
	"time"
)

// Known-answer vector from mesh-api.md §2.1 (cross-checked there against the sandbox).
func TestTokenKnownAnswer(t *testing.T) {
	hdr := "NHSMESH X26ABC1:2c001608-5f09-4840-9611-bea43e666a30:1:201511201038:9712e9dd1aa836431fa50134c333fceda28dc7e380675d9b0d359477f56d034a"
	tok, ok := parseToken(hdr)
	if !ok {
		t.Fatal("parseToken rejected the reference token")
	}
	if _, ok := tok.verify("TestKey", "password"); !ok {
		t.Fatal("verify rejected the reference token")
	}
	if _, ok := tok.verify("TestKey", "wrong"); ok {
		t.Fatal("verify accepted a wrong password")
	}
	if got := tokenAt("BackBone", "MAILBOX01", "secret", "00000000-0000-0000-0000-000000000000", 0, time.Date(2020, 5, 4, 13, 5, 0, 0, time.UTC)); got != "NHSMESH MAILBOX01:00000000-0000-0000-0000-000000000000:0:202005041305:2c741f66d038d7b16756f77ae51ec9c9316fcddbb8c86eb8faaf10d269e2f666" {
		t.Fatalf("test token generator disagrees with vector 2: %s", got)
	}
}

func TestAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	now := e.clock.Now()
	hs := map[string]string{"mex-ClientVersion": "test==1", "mex-OSName": "Linux", "mex-OSVersion": "6", "Accept": v2}
	with := func(auth string) map[string]string {
		h := map[string]string{"Authorization": auth}
		for k, v := range hs {
			h[k] = v
		}
		return h
	}
	reused := tokenAt(DemoSharedKey, "X26ABC1", DemoPassword, "replay", 1, now)
	tests := []struct {
		name    string
		path    string
		hdr     map[string]string
		status  int
		wantMsg string
	}{
		{"good token", "/messageexchange/X26ABC1", with(tokenAt(DemoSharedKey, "X26ABC1", DemoPassword, "n", 1, now)), 200, ""},
		{"lower-case scheme and path", "/messageexchange/x26abc1", with("nhsmesh" + tokenAt(DemoSharedKey, "X26ABC1", DemoPassword, "n", 2, now)[7:]), 200, ""},
		{"no header", "/messageexchange/X26ABC1", hs, 403, msgAuthHeader},
		{"garbage header", "/messageexchange/X26ABC1", with("Bearer abc"), 403, msgAuthHeader},
		{"bad password", "/messageexchange/X26ABC1", with(tokenAt(DemoSharedKey, "X26ABC1", "nope", "n", 3, now)), 403, msgInvalidToken},
		{"bad shared key", "/messageexchange/X26ABC1", with(tokenAt("Banana", "X26ABC1", DemoPassword, "n", 4, now)), 403, msgInvalidToken},
		{"mailbox mismatch", "/messageexchange/X26ABC2", with(tokenAt(DemoSharedKey, "X26ABC1", DemoPassword, "n", 5, now)), 403, msgMailboxMismatch},
		{"unknown mailbox", "/messageexchange/NOPE01", with(tokenAt(DemoSharedKey, "NOPE01", DemoPassword, "n", 6, now)), 403, msgInvalidToken},
		{"stale timestamp", "/messageexchange/X26ABC1", with(tokenAt(DemoSharedKey, "X26ABC1", DemoPassword, "n", 7, now.Add(-2*time.Hour-2*time.Minute))), 403, msgInvalidToken},
		{"future timestamp", "/messageexchange/X26ABC1", with(tokenAt(DemoSharedKey, "X26ABC1", DemoPassword, "n", 8, now.Add(2*time.Hour+2*time.Minute))), 403, msgInvalidToken},
		{"just inside window", "/messageexchange/X26ABC1", with(tokenAt(DemoSharedKey, "X26ABC1", DemoPassword, "n", 9, now.Add(-119*time.Minute))), 200, ""},
		{"first use", "/messageexchange/X26ABC1", with(reused), 200, ""},
		{"replayed token", "/messageexchange/X26ABC1", with(reused), 403, msgDuplicatedToken},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := e.req(http.MethodPost, tc.path, "", tc.hdr, nil)
			wantStatus(t, r, tc.status)
			if tc.wantMsg != "" {
				wantBody(t, r, `{"detail":[{"event":"","code":"","msg":"`+tc.wantMsg+`"}]}`)
			}
		})
	}

	t.Run("v1 error body", func(t *testing.T) {
		r := e.req(http.MethodGet, "/messageexchange/X26ABC1", "", map[string]string{"Accept": "application/json"}, nil)
		wantStatus(t, r, 403)
		wantBody(t, r, `{"errorEvent":"","errorCode":"","errorDescription":"Error reading from Authorization header"}`)
	})
}

func TestAuthModeNone(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.AuthMode = AuthNone; c.SharedKey = "" })
	r := e.req(http.MethodGet, "/messageexchange/X26ABC2/count", "", map[string]string{"Accept": v2}, nil)
	wantStatus(t, r, 200)
	wantBody(t, r, `{"count":0}`)
	r = e.req(http.MethodGet, "/messageexchange/NOPE/count", "", nil, nil)
	wantStatus(t, r, 403)
}

func TestReplayCacheBounded(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newReplayCache(start)
	k1 := [32]byte{1}
	if c.seen(k1, start) {
		t.Fatal("fresh key reported as seen")
	}
	if !c.seen(k1, start.Add(time.Hour)) {
		t.Fatal("replay within the window not detected")
	}
	// A new key after replayKeep rotates generations; k1 is still remembered.
	later := start.Add(replayKeep + time.Minute)
	if c.seen([32]byte{2}, later) {
		t.Fatal("fresh key 2 reported as seen")
	}
	if !c.seen(k1, later) {
		t.Fatal("replay forgotten after one rotation")
	}
	// After a second rotation k1 is dropped, so memory does not grow forever
	// (its timestamp is outside the 2 h window by then anyway).
	evenLater := later.Add(replayKeep + time.Minute)
	c.seen([32]byte{3}, evenLater)
	if c.seen(k1, evenLater) {
		t.Fatal("key survived two rotations")
	}
}
