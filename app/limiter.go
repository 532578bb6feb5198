package app

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// clientLimiter is a token bucket per client id (per replica). It protects
// the gateway and MESH from one runaway caller; 0 disables it.
type clientLimiter struct {
	rps   rate.Limit
	burst int
	mu    sync.Mutex
	by    map[string]*rate.Limiter
}

func newClientLimiter(rps float64, burst int) *clientLimiter {
	if burst < 1 {
		burst = max(1, int(rps*2))
	}
	return &clientLimiter{rps: rate.Limit(rps), burst: burst, by: map[string]*rate.Limiter{}}
}

// Allow implements api.Limiter.
func (l *clientLimiter) Allow(clientID string) (bool, time.Duration) {
	l.mu.Lock()
	lim, ok := l.by[clientID]
	if !ok {
		lim = rate.NewLimiter(l.rps, l.burst)
		l.by[clientID] = lim
	}
	l.mu.Unlock()
	r := lim.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return false, d
	}
	return true, 0
}
