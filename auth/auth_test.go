package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/registry"
)

const audience = "https://mesh-gateway.test"

// Keys are generated once; RSA generation dominates test time otherwise.
var (
	keysOnce                sync.Once
	mainKey, otherKey, rotK *rsa.PrivateKey
	ecKey                   *ecdsa.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		gen := func() *rsa.PrivateKey {
			k, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				panic(err)
			}
			return k
		}
		mainKey, otherKey, rotK = gen(), gen(), gen()
		var err error
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
	})
}

func jwks(t testing.TB, kid, alg string, pub crypto.PublicKey) json.RawMessage {
	t.Helper()
	raw, err := PublicJWKS(kid, alg, pub)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// memReplay is an in-process ReplayStore for tests that are not about Redis.
type memReplay struct {
	mu   sync.Mutex
	seen map[string]time.Time
}

func (m *memReplay) Remember(_ context.Context, key string, until time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.seen == nil {
		m.seen = map[string]time.Time{}
	}
	if _, ok := m.seen[key]; ok {
		return false, nil
	}
	m.seen[key] = until
	return true, nil
}

type fixture struct {
	reg   *registry.Registry
	v     *Verifier
	now   time.Time
	mr    *miniredis.Miniredis
	clock *fakeClock
}

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newFixture(t *testing.T, extra ...registry.Client) *fixture {
	t.Helper()
	keys(t)
	now := time.Now().Truncate(time.Second)
	reg := &registry.Registry{Audience: audience, Clients: append([]registry.Client{
		{ID: "app", JWKS: jwks(t, "k1", "RS512", &mainKey.PublicKey), Mailboxes: []string{"X26ABC1"}},
		{ID: "ec-app", Algorithms: []string{"ES256"}, JWKS: jwks(t, "e1", "ES256", &ecKey.PublicKey)},
		{ID: "ps-app", Algorithms: []string{"PS512", "RS512"}, JWKS: jwks(t, "p1", "", &mainKey.PublicKey)},
		{ID: "nokey-app"},
		{ID: "emptykeys-app", JWKS: json.RawMessage(`{"keys":[]}`)},
		// Built in code, bypassing registry validation: HS* must still be refused.
		{ID: "hs-app", Algorithms: []string{"HS256", "RS512"}, JWKS: jwks(t, "h1", "", &mainKey.PublicKey)},
	}, extra...)}
	mr := miniredis.RunT(t)
	mr.SetTime(now)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { _ = rdb.Close() })
	clock := &fakeClock{t: now}
	v, err := NewVerifier(reg, audience, NewRedisReplayStore(rdb, ""), Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{reg: reg, v: v, now: now, mr: mr, clock: clock}
}

func b64(v any) string {
	data, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(data)
}

// craft signs arbitrary header and claims; key may be an RSA/EC private key,
// []byte for HS*, or nil for an empty signature.
func craft(t testing.TB, hdr, claims map[string]any, key any) string {
	t.Helper()
	input := b64(hdr) + "." + b64(claims)
	alg, _ := hdr["alg"].(string)
	if key == nil {
		return input + "."
	}
	method := jwt.GetSigningMethod(alg)
	if method == nil {
		t.Fatalf("no signing method %q", alg)
	}
	sig, err := method.Sign(input, key)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func stdHeader(alg, kid string) map[string]any {
	return map[string]any{"alg": alg, "typ": "JWT", "kid": kid}
}

func stdClaims(client string, now time.Time) map[string]any {
	return map[string]any{"iss": client, "sub": client, "aud": audience, "jti": uuid.NewString(), "exp": now.Add(5 * time.Minute).Unix()}
}

func publicPEM(t testing.TB, pub crypto.PublicKey) []byte {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestVerify(t *testing.T) {
	f := newFixture(t)
	now := f.now
	type tc struct {
		name     string
		client   string
		alg, kid string
		edit     func(h, c map[string]any)
		key      any // nil = the client's matching key
		raw      string
		status   int
		code     string
		desc     string
	}
	del := func(field string) func(h, c map[string]any) {
		return func(h, c map[string]any) { delete(h, field); delete(c, field) }
	}
	set := func(field string, v any) func(h, c map[string]any) {
		return func(_, c map[string]any) { c[field] = v }
	}
	setHdr := func(field string, v any) func(h, c map[string]any) {
		return func(h, _ map[string]any) { h[field] = v }
	}
	tests := []tc{
		{name: "valid RS512", status: 0},
		{name: "aud list containing ours", edit: set("aud", []string{"https://other", audience})},
		{name: "exp exactly 5 minutes ahead", edit: set("exp", now.Add(5*time.Minute).Unix())},
		{name: "exp just expired within leeway", edit: set("exp", now.Add(-10*time.Second).Unix())},
		{name: "ES256 allowed when configured", client: "ec-app", alg: "ES256", kid: "e1"},
		{name: "PS512 allowed when configured", client: "ps-app", alg: "PS512", kid: "p1"},

		{name: "expired", edit: set("exp", now.Add(-time.Minute).Unix()), status: 400, desc: DescExpired},
		{name: "exp more than 5 minutes ahead", edit: set("exp", now.Add(6*time.Minute).Unix()), status: 400, desc: DescExpTooFar},
		{name: "exp missing", edit: del("exp"), status: 400, desc: DescMissingExp},
		{name: "exp a string", edit: set("exp", fmt.Sprint(now.Add(time.Minute).Unix())), status: 400, desc: DescExpNotInteger},
		{name: "exp a fraction", edit: set("exp", float64(now.Add(time.Minute).Unix())+0.5), status: 400, desc: DescExpNotInteger},
		{name: "nbf in the future", edit: set("nbf", now.Add(2*time.Minute).Unix()), status: 400, desc: DescNotYetValid},
		{name: "wrong aud", edit: set("aud", "https://api.service.nhs.uk/oauth2/token"), status: 401, desc: DescInvalidAud},
		{name: "missing aud", edit: del("aud"), status: 401, desc: DescInvalidAud},
		{name: "unknown kid", kid: "nope", status: 401, desc: DescUnknownKid},
		{name: "missing kid", edit: del("kid"), status: 400, desc: DescMissingKid},
		{name: "alg none", alg: "none", raw: "none", status: 400, desc: DescInvalidAlgPrefix + "'RS512'"},
		{name: "HS256 signed with the public key as secret", alg: "HS256", key: "pem", status: 400, desc: DescInvalidAlgPrefix + "'RS512'"},
		{name: "HS256 refused even if a client lists it", client: "hs-app", alg: "HS256", kid: "h1", key: "pem", status: 400, desc: DescInvalidAlgPrefix + "'RS512'"},
		{name: "RS256 when only RS512 allowed", alg: "RS256", status: 400, desc: DescInvalidAlgPrefix + "'RS512'"},
		{name: "ES256 when only RS512 allowed", alg: "ES256", key: ecKey, status: 400, desc: DescInvalidAlgPrefix + "'RS512'"},
		{name: "PS512 when only RS512 allowed", alg: "PS512", status: 400, desc: DescInvalidAlgPrefix + "'RS512'"},
		{name: "RS512 for an ES256-only client", client: "ec-app", kid: "e1", status: 400, desc: DescInvalidAlgPrefix + "'ES256'"},
		{name: "ES256 for a PS512/RS512 client lists both", client: "ps-app", alg: "ES256", kid: "p1", key: ecKey, status: 400, desc: DescInvalidAlgPrefix + "one of 'PS512', 'RS512'"},
		{name: "missing alg", edit: func(h, _ map[string]any) { delete(h, "alg") }, raw: "none", status: 400, desc: DescMissingAlg},
		{name: "typ wrong", edit: setHdr("typ", "JOSE"), status: 400, desc: DescInvalidTyp},
		{name: "typ missing", edit: func(h, _ map[string]any) { delete(h, "typ") }, status: 400, desc: DescInvalidTyp},
		{name: "iss differs from sub", edit: set("sub", "other"), status: 400, desc: DescMissingIssSub},
		{name: "iss missing", edit: func(_, c map[string]any) { delete(c, "iss") }, status: 400, desc: DescMissingIssSub},
		{name: "unknown iss", edit: func(_, c map[string]any) { c["iss"], c["sub"] = "stranger", "stranger" }, status: 401, desc: DescInvalidIssSub},
		{name: "missing jti", edit: del("jti"), status: 400, desc: DescMissingJti},
		{name: "jti not a string", edit: set("jti", 1234567890), status: 400, desc: DescInvalidJti},
		{name: "bad signature (other key)", key: "other", status: 401, code: CodePublicKey, desc: DescBadSignature},
		{name: "client without public key", client: "nokey-app", status: 403, code: CodePublicKey, desc: DescNoPublicKey},
		{name: "client with empty key set", client: "emptykeys-app", status: 403, code: CodePublicKey, desc: DescNoPublicKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := cmpOr(tt.client, "app")
			alg := cmpOr(tt.alg, "RS512")
			kid := cmpOr(tt.kid, "k1")
			h, c := stdHeader(alg, kid), stdClaims(client, now)
			if tt.edit != nil {
				tt.edit(h, c)
			}
			var key any = mainKey
			switch {
			case tt.raw == "none":
				key = nil
			case tt.key == "pem":
				key = publicPEM(t, &mainKey.PublicKey)
			case tt.key == "other":
				key = otherKey
			case tt.key != nil:
				key = tt.key
			case alg == "ES256":
				key = ecKey
			}
			token := craft(t, h, c, key)
			caller, err := f.v.Verify(context.Background(), token)
			if tt.status == 0 {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if caller.ClientID != client || caller.Client == nil || caller.Client.ID != client || caller.JTI != c["jti"] || caller.KeyID != kid {
					t.Errorf("caller = %+v", caller)
				}
				return
			}
			assertError(t, err, tt.status, cmpOr(tt.code, CodeInvalidRequest), tt.desc)
		})
	}
}

func cmpOr(v, fallback string) string {
	if v != "" {
		return v
	}
	return fallback
}

func assertError(t *testing.T, err error, status int, code, desc string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("err = %v, want *auth.Error", err)
	}
	if ae.Status != status || ae.Code != code || ae.Description != desc {
		t.Errorf("got %d %q %q\nwant %d %q %q", ae.Status, ae.Code, ae.Description, status, code, desc)
	}
}

func TestVerifyMalformed(t *testing.T) {
	f := newFixture(t)
	valid := craft(t, stdHeader("RS512", "k1"), stdClaims("app", f.now), mainKey)
	critical := craft(t, map[string]any{"alg": "RS512", "typ": "JWT", "kid": "k1", "crit": []string{"exp"}}, stdClaims("app", f.now), mainKey)
	for _, token := range []string{critical, "abc", "a.b", "a.b.c.d", "!!!.e30.x", b64("x") + "." + b64(map[string]any{}) + ".x",
		b64(stdHeader("RS512", "k1")) + ".bm90IGpzb24.x", valid + "x=", string(make([]byte, maxTokenBytes+1))} {
		_, err := f.v.Verify(context.Background(), token)
		if len(token) > 40 {
			token = token[:40]
		}
		t.Run(token, func(t *testing.T) {
			var ae *Error
			if !errors.As(err, &ae) || ae.Status != 400 {
				t.Fatalf("err = %v, want 400", err)
			}
			if ae.Description != DescMalformed && ae.Description != DescBadSignature {
				t.Errorf("description %q", ae.Description)
			}
		})
	}
	_, err := f.v.Verify(context.Background(), "")
	assertError(t, err, 401, CodeInvalidRequest, DescMissingAuthorization)
}

func TestFromBearer(t *testing.T) {
	tests := []struct {
		header, token string
		desc          string
	}{
		{"Bearer abc.def.ghi", "abc.def.ghi", ""},
		{"bearer   abc.def.ghi ", "abc.def.ghi", ""},
		{"", "", DescMissingAuthorization},
		{"   ", "", DescMissingAuthorization},
		{"Bearer", "", DescInvalidAuthorization},
		{"Bearer ", "", DescInvalidAuthorization},
		{"Basic dXNlcjpwdw==", "", DescInvalidAuthorization},
		{"NHSMESH X26:1:1:2026:ab", "", DescInvalidAuthorization},
		{"Bearer a b", "", DescInvalidAuthorization},
	}
	for _, tt := range tests {
		got, err := FromBearer(tt.header)
		if tt.desc == "" {
			if err != nil || got != tt.token {
				t.Errorf("FromBearer(%q) = %q, %v", tt.header, got, err)
			}
			continue
		}
		assertError(t, err, 401, CodeInvalidRequest, tt.desc)
	}
}

func TestReplay(t *testing.T) {
	f := newFixture(t)
	claims := stdClaims("app", f.now)
	token := craft(t, stdHeader("RS512", "k1"), claims, mainKey)

	// A forged token carrying the same jti must not burn it.
	forged := craft(t, stdHeader("RS512", "k1"), claims, otherKey)
	_, err := f.v.Verify(context.Background(), forged)
	assertError(t, err, 401, CodePublicKey, DescBadSignature)

	if _, err := f.v.Verify(context.Background(), token); err != nil {
		t.Fatalf("first use: %v", err)
	}
	key := "{gw}:jti:app:" + claims["jti"].(string)
	if !f.mr.Exists(key) {
		t.Fatalf("replay key %s not stored; keys = %v", key, f.mr.Keys())
	}
	if ttl := f.mr.TTL(key); ttl != 5*time.Minute+30*time.Second {
		t.Errorf("TTL = %v, want exp + leeway = 5m30s", ttl)
	}
	_, err = f.v.Verify(context.Background(), token)
	assertError(t, err, 400, CodeInvalidRequest, DescReplayedJti)

	// The same jti from another client is a different key.
	f2 := claims["jti"].(string)
	other := stdClaims("ps-app", f.now)
	other["jti"] = f2
	if _, err := f.v.Verify(context.Background(), craft(t, stdHeader("RS512", "p1"), other, mainKey)); err != nil {
		t.Errorf("same jti, other client: %v", err)
	}

	// Redis down: fail closed with 503.
	f.mr.Close()
	_, err = f.v.Verify(context.Background(), craft(t, stdHeader("RS512", "k1"), stdClaims("app", f.now), mainKey))
	assertError(t, err, 503, CodeUnavailable, DescReplayUnavailable)
}

// jwksServer serves whatever key set is current and counts fetches.
type jwksServer struct {
	*httptest.Server
	body    atomic.Value // []byte
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T, body json.RawMessage) *jwksServer {
	s := &jwksServer{}
	s.body.Store([]byte(body))
	s.Server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(s.body.Load().([]byte))
	}))
	t.Cleanup(s.Close)
	return s
}

func TestJWKSURL(t *testing.T) {
	keys(t)
	srv := newJWKSServer(t, jwks(t, "a1", "RS512", &mainKey.PublicKey))
	dead := httptest.NewTLSServer(http.NotFoundHandler())
	deadURL := dead.URL + "/jwks.json"
	dead.Close() // connection refused from now on

	now := time.Now().Truncate(time.Second)
	clock := &fakeClock{t: now}
	reg := &registry.Registry{Clients: []registry.Client{
		{ID: "url-app", JWKSURL: srv.URL + "/jwks.json"},
		{ID: "dead-app", JWKSURL: deadURL},
	}}
	v, err := NewVerifier(reg, audience, &memReplay{}, Options{Now: clock.Now, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	verify := func(client, kid string, key *rsa.PrivateKey) error {
		_, err := v.Verify(context.Background(), craft(t, stdHeader("RS512", kid), stdClaims(client, clock.Now()), key))
		return err
	}

	t.Run("unreachable", func(t *testing.T) {
		assertError(t, verify("dead-app", "a1", mainKey), 403, CodePublicKey, DescJWKSUnreachable)
		assertError(t, verify("dead-app", "a1", mainKey), 403, CodePublicKey, DescJWKSUnreachable) // cached failure, no hammering
	})

	t.Run("keys cached, no fetch per request", func(t *testing.T) {
		for range 5 {
			if err := verify("url-app", "a1", mainKey); err != nil {
				t.Fatal(err)
			}
		}
		if n := srv.fetches.Load(); n != 1 {
			t.Errorf("fetches = %d, want 1", n)
		}
	})

	t.Run("rotation: unknown kid refreshes, rate limited", func(t *testing.T) {
		srv.body.Store([]byte(jwks(t, "b1", "RS512", &rotK.PublicKey)))
		// Within JWKSMinInterval of the last fetch: no refetch, unknown kid.
		assertError(t, verify("url-app", "b1", rotK), 401, CodeInvalidRequest, DescUnknownKid)
		if n := srv.fetches.Load(); n != 1 {
			t.Errorf("fetches = %d, want 1 (rate limited)", n)
		}
		clock.Add(61 * time.Second)
		if err := verify("url-app", "b1", rotK); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
		if n := srv.fetches.Load(); n != 2 {
			t.Errorf("fetches = %d, want 2", n)
		}
		// The old key is gone from the set.
		clock.Add(61 * time.Second)
		assertError(t, verify("url-app", "a1", mainKey), 401, CodeInvalidRequest, DescUnknownKid)
	})

	t.Run("stale set refreshed after JWKSRefresh", func(t *testing.T) {
		before := srv.fetches.Load()
		clock.Add(time.Hour + time.Second)
		if err := verify("url-app", "b1", rotK); err != nil {
			t.Fatal(err)
		}
		if n := srv.fetches.Load(); n != before+1 {
			t.Errorf("fetches = %d, want %d", n, before+1)
		}
	})

	t.Run("endpoint down later keeps last good keys", func(t *testing.T) {
		srv.body.Store([]byte("not json"))
		clock.Add(time.Hour + time.Second)
		if err := verify("url-app", "b1", rotK); err != nil {
			t.Fatalf("stale keys should still verify: %v", err)
		}
	})

	t.Run("concurrent first use fetches once", func(t *testing.T) {
		srv2 := newJWKSServer(t, jwks(t, "c1", "RS512", &mainKey.PublicKey))
		reg2 := &registry.Registry{Clients: []registry.Client{{ID: "url-app", JWKSURL: srv2.URL}}}
		v2, err := NewVerifier(reg2, audience, &memReplay{}, Options{HTTPClient: srv2.Client()})
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 16)
		for range 16 {
			token := craft(t, stdHeader("RS512", "c1"), stdClaims("url-app", time.Now()), mainKey)
			wg.Go(func() {
				if _, err := v2.Verify(context.Background(), token); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if n := srv2.fetches.Load(); n != 1 {
			t.Errorf("fetches = %d, want 1", n)
		}
	})
}

func TestSignTokenAndDemoKey(t *testing.T) {
	key, pub, err := GenerateDemoKey()
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.Parse([]byte(`audience: `+audience+`
mesh: {url: https://mesh.test, sharedKey: k}
mailboxes: [{id: X26ABC1, password: p}]
clients:
  - id: demo
    mailboxes: [X26ABC1]
    jwks: '`+string(pub)+`'
`), nil)
	if err != nil {
		t.Fatalf("demo JWKS rejected by the registry: %v", err)
	}
	v, err := NewVerifier(reg, audience, &memReplay{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	token, err := SignToken(key, DemoKeyID, "RS512", "demo", audience, 4*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	caller, err := v.Verify(context.Background(), token)
	if err != nil {
		t.Fatalf("Verify(SignToken): %v", err)
	}
	if !caller.Client.MaySendAs("X26ABC1") || caller.Client.MaySendAs("X26OTHER") {
		t.Error("MaySendAs through Caller.Client wrong")
	}
	if _, err := SignToken(key, DemoKeyID, "HS256", "demo", audience, time.Minute, time.Now()); err == nil {
		t.Error("SignToken accepted HS256")
	}
	if _, err := SignToken(ecKey, "e", "RS512", "demo", audience, time.Minute, time.Now()); err == nil {
		t.Error("SignToken accepted an EC key for RS512")
	}
}

func TestNewVerifierRequires(t *testing.T) {
	reg := &registry.Registry{}
	if _, err := NewVerifier(reg, "", &memReplay{}, Options{}); err == nil {
		t.Error("empty audience accepted")
	}
	if _, err := NewVerifier(reg, audience, nil, Options{}); err == nil {
		t.Error("nil replay store accepted")
	}
	if _, err := NewVerifier(nil, audience, &memReplay{}, Options{}); err == nil {
		t.Error("nil lookup accepted")
	}
}
