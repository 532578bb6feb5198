package app

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/meshgateway/gateway/api"
)

// fakeLookup answers from a table and counts the MESH calls.
type fakeLookup struct {
	calls   atomic.Int64
	answers map[string]string // ods → mailbox; missing = no endpoint
	fail    atomic.Bool
	delay   time.Duration
}

func (f *fakeLookup) ResolveODS(_ context.Context, _, ods, _ string) (string, error) {
	f.calls.Add(1)
	time.Sleep(f.delay)
	if f.fail.Load() {
		return "", errors.New("MESH unavailable")
	}
	mb, ok := f.answers[ods]
	if !ok {
		return "", api.ErrNoEndpoint
	}
	return mb, nil
}

func TestCachedResolver(t *testing.T) {
	ctx := context.Background()
	t.Run("answers are reused per sender, code and workflow", func(t *testing.T) {
		f := &fakeLookup{answers: map[string]string{"Y12345": "Y12345MB"}}
		r := newCachedResolver(f, time.Hour)
		for i := range 3 {
			if mb, err := r.ResolveODS(ctx, "X26ABC1", []string{"Y12345", "y12345", "Y12345"}[i], "WF"); err != nil || mb != "Y12345MB" {
				t.Fatalf("ResolveODS = %q, %v", mb, err)
			}
		}
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("MESH asked %d times, want 1", n)
		}
		r.ResolveODS(ctx, "X26ABC1", "Y12345", "OTHER_WF")
		r.ResolveODS(ctx, "X26ABC2", "Y12345", "WF")
		if n := f.calls.Load(); n != 3 {
			t.Fatalf("MESH asked %d times, want 3 (new workflow, new sender)", n)
		}
	})
	t.Run("not found is cached, failures are not", func(t *testing.T) {
		f := &fakeLookup{answers: map[string]string{}}
		r := newCachedResolver(f, time.Hour)
		for range 2 {
			if _, err := r.ResolveODS(ctx, "X26ABC1", "NOPE", "WF"); !errors.Is(err, api.ErrNoEndpoint) {
				t.Fatalf("err = %v, want ErrNoEndpoint", err)
			}
		}
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("MESH asked %d times for an unknown code, want 1", n)
		}
		f.fail.Store(true)
		for range 2 {
			if _, err := r.ResolveODS(ctx, "X26ABC1", "OTHER", "WF"); err == nil || errors.Is(err, api.ErrNoEndpoint) {
				t.Fatalf("err = %v, want the lookup failure", err)
			}
		}
		if n := f.calls.Load(); n != 3 {
			t.Fatalf("MESH asked %d times, want failures retried (3)", n)
		}
	})
	t.Run("concurrent lookups share one MESH call", func(t *testing.T) {
		f := &fakeLookup{answers: map[string]string{"Y1": "MB1"}, delay: 50 * time.Millisecond}
		r := newCachedResolver(f, time.Hour)
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				if mb, err := r.ResolveODS(ctx, "X26ABC1", "Y1", "WF"); err != nil || mb != "MB1" {
					t.Errorf("ResolveODS = %q, %v", mb, err)
				}
			})
		}
		wg.Wait()
		if n := f.calls.Load(); n != 1 {
			t.Fatalf("MESH asked %d times, want 1", n)
		}
	})
	t.Run("a caller that gives up is answered at once", func(t *testing.T) {
		f := &fakeLookup{answers: map[string]string{"Y1": "MB1"}, delay: time.Second}
		r := newCachedResolver(f, time.Hour)
		cctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
		defer cancel()
		if _, err := r.ResolveODS(cctx, "X26ABC1", "Y1", "WF"); !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want DeadlineExceeded", err)
		}
	})
	t.Run("ttl 0 turns the cache off", func(t *testing.T) {
		f := &fakeLookup{answers: map[string]string{"Y1": "MB1"}}
		r := newCachedResolver(f, 0)
		r.ResolveODS(ctx, "X26ABC1", "Y1", "WF")
		r.ResolveODS(ctx, "X26ABC1", "Y1", "WF")
		if n := f.calls.Load(); n != 2 {
			t.Fatalf("MESH asked %d times, want 2", n)
		}
	})
}
