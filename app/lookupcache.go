package app

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/hashicorp/golang-lru/v2/expirable"
	"golang.org/x/sync/singleflight"

	"github.com/meshgateway/gateway/api"
)

// odsResolver is what the API needs to turn an ODS code into a mailbox.
type odsResolver interface {
	ResolveODS(ctx context.Context, sender, ods, workflow string) (string, error)
}

// cachedResolver keeps MESH endpoint lookup answers for a while: an ODS
// code's mailbox changes rarely, and without a cache every request naming
// an odsCode waits for a MESH round trip (and adds to MESH's load).
// "No endpoint" answers are kept for a shorter time so a newly registered
// mailbox is found soon; failures are never kept. Concurrent lookups of the
// same code share one MESH call.
type cachedResolver struct {
	next     odsResolver
	found    *expirable.LRU[string, string]
	notFound *expirable.LRU[string, struct{}]
	group    singleflight.Group
}

const lookupCacheSize = 10_000

// newCachedResolver wraps next; ttl <= 0 turns caching off.
func newCachedResolver(next odsResolver, ttl time.Duration) odsResolver {
	if ttl <= 0 {
		return next
	}
	return &cachedResolver{
		next:     next,
		found:    expirable.NewLRU[string, string](lookupCacheSize, nil, ttl),
		notFound: expirable.NewLRU[string, struct{}](lookupCacheSize, nil, min(ttl, time.Minute)),
	}
}

func (c *cachedResolver) ResolveODS(ctx context.Context, sender, ods, workflow string) (string, error) {
	// Keyed by the asking mailbox too: mailboxes may sit on different MESH
	// environments, whose directories differ.
	key := strings.ToUpper(sender) + "\x00" + strings.ToUpper(ods) + "\x00" + workflow
	if mb, ok := c.found.Get(key); ok {
		return mb, nil
	}
	if _, ok := c.notFound.Get(key); ok {
		return "", api.ErrNoEndpoint
	}
	ch := c.group.DoChan(key, func() (any, error) {
		// Not the caller's context: a shared lookup must not fail because
		// the first caller went away.
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		mb, err := c.next.ResolveODS(lctx, sender, ods, workflow)
		switch {
		case err == nil:
			c.found.Add(key, mb)
		case errors.Is(err, api.ErrNoEndpoint):
			c.notFound.Add(key, struct{}{})
		}
		return mb, err
	})
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case r := <-ch:
		if r.Err != nil {
			return "", r.Err
		}
		return r.Val.(string), nil
	}
}
