package meshbridge

import (
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"slices"
	"syscall"
	"time"
)

// RetryPolicy governs retries of idempotent calls and of chunks >= 2. The
// first chunk of a message is never retried whatever the policy says. The
// zero value means the defaults (PYC's MeshRetry: 3 attempts, 0.5 s backoff,
// statuses 425/429/502/503/504).
type RetryPolicy struct {
	// Attempts is the total number of tries including the first; 0 = 3, 1 = no retry.
	Attempts int
	// BaseDelay is the first backoff; it doubles per attempt. 0 = 500ms.
	BaseDelay time.Duration
	// MaxDelay caps one backoff. A Retry-After longer than this ends the
	// retries (the caller should reschedule). 0 = 30s.
	MaxDelay time.Duration
	// Statuses lists retryable HTTP statuses; nil = 425, 429, 502, 503, 504.
	Statuses []int
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = 3
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = 500 * time.Millisecond
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 30 * time.Second
	}
	return p
}

func (p RetryPolicy) retryableStatus(status int) bool {
	if p.Statuses == nil {
		return IsRetryableStatus(status)
	}
	return slices.Contains(p.Statuses, status)
}

// backoff returns the wait before attempt number next (2, 3, ...): exponential
// with "equal jitter" so concurrent senders spread out but never retry at once.
func (p RetryPolicy) backoff(next int) time.Duration {
	d := p.BaseDelay << (next - 2)
	if d <= 0 || d > p.MaxDelay {
		d = p.MaxDelay
	}
	half := d / 2
	return half + rand.N(half+1)
}

// retryableError reports whether a transport error is worth repeating an
// idempotent request for: timeouts, resets, refused connections, and a
// connection closed before the response (EOF).
func retryableError(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true // per-attempt timeout; the caller's own ctx is checked separately
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNABORTED) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// sleepCtx waits d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
