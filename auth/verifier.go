package auth

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/meshgateway/gateway/registry"
)

// Limits on what a caller may send.
const (
	maxTokenBytes = 16 << 10
	maxJTIBytes   = 256
)

// ClientLookup finds a registered client by id (the JWT iss/sub).
// *registry.Registry satisfies it.
type ClientLookup interface {
	Client(id string) (*registry.Client, bool)
}

// Options tune a Verifier; zero values take the defaults shown.
type Options struct {
	Leeway          time.Duration    // clock skew allowed on exp (and nbf); default 30s
	MaxLifetime     time.Duration    // furthest exp may be ahead of now; default 5m (NHS platform rule)
	Now             func() time.Time // default time.Now
	HTTPClient      *http.Client     // for jwksUrl fetches; default 10s timeout
	JWKSRefresh     time.Duration    // age after which a fetched JWKS is refreshed; default 1h
	JWKSMinInterval time.Duration    // least time between fetches of one jwksUrl (unknown kid, failures); default 1m
	Logger          *slog.Logger     // default discards
}

// Caller is an authenticated request's identity.
type Caller struct {
	ClientID  string
	Client    *registry.Client
	JTI       string
	KeyID     string
	ExpiresAt time.Time
}

// Verifier checks bearer JWTs against the client registry. It is safe for
// concurrent use; parsed keys are cached per client so no request fetches a
// JWKS unless the cache is cold, stale or the kid is unknown.
type Verifier struct {
	clients  ClientLookup
	audience string
	replay   ReplayStore
	opts     Options

	mu      sync.Mutex
	sources map[string]*clientKeys // by client id
}

type clientKeys struct {
	client *registry.Client // the registry entry the source was built from
	src    keySource        // nil when the client has no usable public key
	err    error
}

// NewVerifier builds a Verifier. audience is the aud every token must contain.
func NewVerifier(reg ClientLookup, audience string, replay ReplayStore, opts Options) (*Verifier, error) {
	switch {
	case reg == nil:
		return nil, errors.New("auth.NewVerifier: nil ClientLookup")
	case strings.TrimSpace(audience) == "":
		return nil, errors.New("auth.NewVerifier: audience is required")
	case replay == nil:
		return nil, errors.New("auth.NewVerifier: nil ReplayStore (jti replay protection is mandatory)")
	}
	if opts.Leeway <= 0 {
		opts.Leeway = 30 * time.Second
	}
	if opts.MaxLifetime <= 0 {
		opts.MaxLifetime = 5 * time.Minute
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.JWKSRefresh <= 0 {
		opts.JWKSRefresh = time.Hour
	}
	if opts.JWKSMinInterval <= 0 {
		opts.JWKSMinInterval = time.Minute
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Verifier{clients: reg, audience: audience, replay: replay, opts: opts, sources: map[string]*clientKeys{}}, nil
}

// FromBearer extracts the token from an Authorization header value.
func FromBearer(authorizationHeader string) (string, error) {
	h := strings.TrimSpace(authorizationHeader)
	if h == "" {
		return "", unauthorized(DescMissingAuthorization)
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", unauthorized(DescInvalidAuthorization)
	}
	return token, nil
}

type header struct {
	Alg  *string         `json:"alg"`
	Typ  *string         `json:"typ"`
	Kid  *string         `json:"kid"`
	Crit json.RawMessage `json:"crit"` // RFC 7515 4.1.11: we understand no extensions, so any is fatal
}

// Verify checks one bearer token and returns the caller, or an *Error.
// Header and claim checks run before any key lookup, so unsigned and HMAC
// tokens are refused without touching a key; the jti is remembered only after
// the signature verified, so forged tokens cannot burn a client's jtis.
func (v *Verifier) Verify(ctx context.Context, bearerToken string) (*Caller, error) {
	now := v.opts.Now()
	if bearerToken == "" {
		return nil, unauthorized(DescMissingAuthorization)
	}
	if len(bearerToken) > maxTokenBytes {
		return nil, badRequest(DescMalformed)
	}
	parts := strings.Split(bearerToken, ".")
	if len(parts) != 3 {
		return nil, badRequest(DescMalformed)
	}
	var hdr header
	if err := decodeSegment(parts[0], &hdr); err != nil || hdr.Crit != nil {
		return nil, badRequest(DescMalformed)
	}
	var claims map[string]any
	if err := decodeSegment(parts[1], &claims); err != nil || claims == nil {
		return nil, badRequest(DescMalformed)
	}

	// Header.
	if hdr.Typ == nil || !strings.EqualFold(*hdr.Typ, "JWT") {
		return nil, badRequest(DescInvalidTyp)
	}
	if hdr.Alg == nil || *hdr.Alg == "" {
		return nil, badRequest(DescMissingAlg)
	}
	alg := *hdr.Alg
	if !slices.Contains(registry.SupportedAlgorithms(), alg) { // none, HS*, RS256… never reach a key
		return nil, badRequest(invalidAlg([]string{registry.AlgRS512}))
	}
	if hdr.Kid == nil || *hdr.Kid == "" {
		return nil, badRequest(DescMissingKid)
	}

	// Claims.
	iss, issOK := claims["iss"].(string)
	sub, subOK := claims["sub"].(string)
	if !issOK || !subOK || iss == "" || iss != sub {
		return nil, badRequest(DescMissingIssSub)
	}
	client, ok := v.clients.Client(iss)
	if !ok {
		return nil, unauthorized(DescInvalidIssSub)
	}
	if allowed := client.AllowedAlgorithms(); !slices.Contains(allowed, alg) {
		return nil, badRequest(invalidAlg(allowed))
	}
	rawJTI, ok := claims["jti"]
	if !ok {
		return nil, badRequest(DescMissingJti)
	}
	jti, ok := rawJTI.(string)
	if !ok || strings.TrimSpace(jti) == "" || len(jti) > maxJTIBytes {
		return nil, badRequest(DescInvalidJti)
	}
	if !audienceContains(claims["aud"], v.audience) {
		return nil, unauthorized(DescInvalidAud)
	}
	exp, errExp := v.checkExp(claims, now)
	if errExp != nil {
		return nil, errExp
	}

	// Signature, with the key the kid names in this client's key set.
	src, errKeys := v.keysFor(client)
	if errKeys != nil {
		return nil, errKeys
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{alg}),
		jwt.WithAudience(v.audience),
		jwt.WithIssuer(client.ID),
		jwt.WithSubject(client.ID),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(v.opts.Leeway),
		jwt.WithTimeFunc(func() time.Time { return now }),
	)
	_, err := parser.ParseWithClaims(bearerToken, jwt.MapClaims{}, func(t *jwt.Token) (any, error) { return src.key(ctx, t) })
	if err != nil {
		return nil, v.signatureError(ctx, client.ID, err)
	}

	// Replay: remembered until the token could no longer be accepted anyway.
	fresh, err := v.replay.Remember(ctx, client.ID+":"+jti, exp.Add(v.opts.Leeway))
	if err != nil {
		return nil, &Error{Status: http.StatusServiceUnavailable, Code: CodeUnavailable, Description: DescReplayUnavailable, cause: err}
	}
	if !fresh {
		return nil, badRequest(DescReplayedJti)
	}
	return &Caller{ClientID: client.ID, Client: client, JTI: jti, KeyID: *hdr.Kid, ExpiresAt: exp}, nil
}

func invalidAlg(allowed []string) string {
	if len(allowed) == 1 {
		return DescInvalidAlgPrefix + "'" + allowed[0] + "'"
	}
	return DescInvalidAlgPrefix + "one of '" + strings.Join(allowed, "', '") + "'"
}

// checkExp applies the platform's exp rules: present, an integer, not expired
// (with leeway) and at most MaxLifetime (plus leeway for clock skew) ahead.
func (v *Verifier) checkExp(claims map[string]any, now time.Time) (time.Time, *Error) {
	raw, ok := claims["exp"]
	if !ok || raw == nil {
		return time.Time{}, badRequest(DescMissingExp)
	}
	num, ok := raw.(json.Number)
	if !ok {
		return time.Time{}, badRequest(DescExpNotInteger)
	}
	secs, err := num.Int64()
	if err != nil {
		return time.Time{}, badRequest(DescExpNotInteger)
	}
	exp := time.Unix(secs, 0)
	if !now.Before(exp.Add(v.opts.Leeway)) {
		return time.Time{}, badRequest(DescExpired)
	}
	if exp.After(now.Add(v.opts.MaxLifetime + v.opts.Leeway)) {
		return time.Time{}, badRequest(DescExpTooFar)
	}
	return exp, nil
}

func audienceContains(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		for _, item := range a {
			if s, ok := item.(string); ok && s == want {
				return true
			}
		}
	}
	return false
}

// signatureError maps a jwt parse failure to the platform's error.
func (v *Verifier) signatureError(ctx context.Context, clientID string, err error) *Error {
	switch {
	case errors.Is(err, errJWKSUnreachable):
		return publicKeyError(http.StatusForbidden, DescJWKSUnreachable, err)
	case errors.Is(err, errNoMatchingKey):
		return &Error{Status: http.StatusUnauthorized, Code: CodeInvalidRequest, Description: DescUnknownKid, cause: err}
	case errors.Is(err, jwt.ErrTokenExpired):
		return badRequest(DescExpired)
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return badRequest(DescNotYetValid)
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return unauthorized(DescInvalidAud)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), errors.Is(err, jwt.ErrTokenInvalidSubject):
		return badRequest(DescMissingIssSub)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return badRequest(DescMalformed)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return badRequest(DescMissingExp)
	case errors.Is(err, jwt.ErrTokenInvalidClaims):
		return badRequest(DescMalformed)
	default: // signature invalid, key of the wrong type, unverifiable
		v.opts.Logger.DebugContext(ctx, "JWT signature rejected", "client_id", clientID, "error", err)
		return publicKeyError(http.StatusUnauthorized, DescBadSignature, err)
	}
}

// keysFor returns the client's cached key source, building it on first use
// (or when the registry entry changed).
func (v *Verifier) keysFor(c *registry.Client) (keySource, *Error) {
	v.mu.Lock()
	ck, ok := v.sources[c.ID]
	if !ok || ck.client != c {
		ck = v.buildKeys(c)
		v.sources[c.ID] = ck
	}
	v.mu.Unlock()
	if ck.src == nil {
		return nil, publicKeyError(http.StatusForbidden, DescNoPublicKey, ck.err)
	}
	return ck.src, nil
}

func (v *Verifier) buildKeys(c *registry.Client) *clientKeys {
	ck := &clientKeys{client: c}
	switch {
	case len(bytes.TrimSpace(c.JWKS)) > 0:
		keys, err := newStaticKeys(c.JWKS)
		if err != nil {
			ck.err = fmt.Errorf("%w: %w", errNoPublicKey, err)
			v.opts.Logger.Error("client JWKS unusable", "client_id", c.ID, "error", err)
			return ck
		}
		ck.src = keys
	case c.JWKSURL != "":
		ck.src = &remoteKeys{
			clientID: c.ID, url: c.JWKSURL, httpClient: v.opts.HTTPClient, refresh: v.opts.JWKSRefresh,
			minInterval: v.opts.JWKSMinInterval, now: v.opts.Now, logger: v.opts.Logger,
		}
	default:
		ck.err = errNoPublicKey
	}
	return ck
}

// decodeSegment decodes one base64url JWT segment as a JSON object, keeping
// numbers as json.Number so "exp must be an integer" can be checked exactly.
func decodeSegment(seg string, dst any) error {
	data, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return fmt.Errorf("base64: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return fmt.Errorf("json: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("json: trailing data")
	}
	return nil
}
