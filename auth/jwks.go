package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// Key lookup failures, mapped to the platform's errors by Verify.
var (
	errNoMatchingKey   = errors.New("no key in the client's JWKS matches the token's kid")
	errNoPublicKey     = errors.New("client has no public key registered")
	errJWKSUnreachable = errors.New("client's JWKS URL could not be fetched")
)

const maxJWKSBytes = 1 << 20

// keySource finds the verification key a token names by kid.
type keySource interface {
	key(ctx context.Context, token *jwt.Token) (any, error)
}

// staticKeys is a JWKS from the registry (inline or file), parsed once.
type staticKeys struct{ kf keyfunc.Keyfunc }

func newStaticKeys(raw json.RawMessage) (*staticKeys, error) {
	kf, err := keyfunc.NewJWKSetJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("keyfunc.NewJWKSetJSON: %w", err)
	}
	if all, err := kf.Storage().KeyReadAll(context.Background()); err != nil || len(all) == 0 {
		return nil, errors.New("JWKS has no keys")
	}
	return &staticKeys{kf: kf}, nil
}

func (s *staticKeys) key(ctx context.Context, token *jwt.Token) (any, error) {
	k, err := s.kf.KeyfuncCtx(ctx)(token)
	if err != nil {
		// Unknown kid, or the JWK's own "alg" forbids this algorithm.
		return nil, fmt.Errorf("%w: %w", errNoMatchingKey, err)
	}
	return k, nil
}

// remoteKeys is a JWKS fetched from the client's jwksUrl and cached.
//
// keyfunc's HTTP storage is not used for the fetching because it starts a
// refresh goroutine per URL (needing a lifecycle the Verifier does not have),
// blocks the request on its unknown-kid rate limiter for up to RateLimitWaitMax,
// and swallows fetch errors, so "endpoint unreachable" (403) could not be told
// apart from "unknown kid" (401). Here fetching is lazy, on the request path:
// the first request fetches, a stale set (older than refresh) is refreshed by
// one request while others keep using it, an unknown kid triggers a refresh at
// most once per minInterval, and a failed fetch keeps the last good keys.
// Parsing and kid selection still go through keyfunc/jwkset.
type remoteKeys struct {
	clientID    string
	url         string
	httpClient  *http.Client
	refresh     time.Duration
	minInterval time.Duration
	now         func() time.Time
	logger      *slog.Logger

	fetchMu sync.Mutex                  // one fetch at a time
	state   atomic.Pointer[remoteState] // read lock-free on every request
}

type remoteState struct {
	keys      keyfunc.Keyfunc // nil until a fetch has succeeded
	fetched   time.Time       // last successful fetch
	attempted time.Time       // last fetch attempt
	err       error           // error of the last attempt, nil if it succeeded
}

func (r *remoteKeys) key(ctx context.Context, token *jwt.Token) (any, error) {
	now := r.now()
	st := r.state.Load()
	switch {
	case st == nil || st.keys == nil:
		st = r.fetch(ctx, st, true)
	case now.Sub(st.fetched) >= r.refresh:
		st = r.fetch(ctx, st, false)
	}
	if st.keys == nil {
		return nil, fmt.Errorf("%w: %w", errJWKSUnreachable, st.err)
	}
	k, err := st.keys.KeyfuncCtx(ctx)(token)
	if err == nil {
		return k, nil
	}
	// Unknown kid: the client may have rotated keys. Refetch, rate limited.
	if now.Sub(st.attempted) >= r.minInterval {
		st = r.fetch(ctx, st, true)
		if st.err != nil {
			return nil, fmt.Errorf("%w: %w", errJWKSUnreachable, st.err)
		}
		if k, err = st.keys.KeyfuncCtx(ctx)(token); err == nil {
			return k, nil
		}
	}
	return nil, fmt.Errorf("%w: %w", errNoMatchingKey, err)
}

// fetch refreshes the key set unless another request did so after seen was
// read. With wait=false it gives up at once if a fetch is already running.
func (r *remoteKeys) fetch(ctx context.Context, seen *remoteState, wait bool) *remoteState {
	if wait {
		r.fetchMu.Lock()
	} else if !r.fetchMu.TryLock() {
		return seen
	}
	defer r.fetchMu.Unlock()
	cur := r.state.Load()
	if cur != seen && cur != nil {
		return cur // someone else fetched meanwhile
	}
	now := r.now()
	if cur != nil && cur.err != nil && now.Sub(cur.attempted) < r.minInterval {
		return cur // failed recently: do not hammer an unreachable endpoint
	}
	next := &remoteState{attempted: now}
	if cur != nil {
		next.keys, next.fetched = cur.keys, cur.fetched // keep the last good keys on failure
	}
	kf, err := r.download(ctx)
	if err != nil {
		next.err = err
		r.logger.WarnContext(ctx, "JWKS fetch failed", "client_id", r.clientID, "jwks_url", r.url, "error", err)
	} else {
		next.keys, next.fetched = kf, now
	}
	r.state.Store(next)
	return next
}

func (r *remoteKeys) download(ctx context.Context) (keyfunc.Keyfunc, error) {
	// Detached from the request: a caller hanging up must not poison the cache.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("http.NewRequest: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := r.httpClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET JWKS: status %d", resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("JWKS larger than %d bytes", maxJWKSBytes)
	}
	kf, err := keyfunc.NewJWKSetJSON(body)
	if err != nil {
		return nil, fmt.Errorf("keyfunc.NewJWKSetJSON: %w", err)
	}
	return kf, nil
}
