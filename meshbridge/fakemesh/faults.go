package fakemesh

import (
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type faultAction int

const (
	faultNone faultAction = iota
	faultStatus
	faultDropBefore
	faultDropAfter
)

// faultInjector draws one decision per request from a seeded generator, so a
// given Seed and request order always produce the same faults.
type faultInjector struct {
	on  atomic.Bool
	mu  sync.Mutex
	f   Faults
	rng *rand.Rand
}

func newFaultInjector(f Faults) *faultInjector {
	fi := &faultInjector{}
	fi.set(f)
	return fi
}

func (fi *faultInjector) set(f Faults) {
	if len(f.Statuses) == 0 {
		f.Statuses = DefaultStatuses()
	}
	fi.mu.Lock()
	fi.f = f
	fi.rng = rand.New(rand.NewPCG(uint64(f.Seed), 0x6d6573685f666b))
	fi.mu.Unlock()
	fi.on.Store(f.ErrorRate > 0 || f.DropRate > 0 || f.Latency > 0)
}

func (fi *faultInjector) get() Faults {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	f := fi.f
	f.Statuses = append([]int(nil), f.Statuses...)
	return f
}

func (fi *faultInjector) enabled() bool { return fi.on.Load() }

// decide picks this request's fault: an error status with probability
// ErrorRate, else a dropped connection with probability DropRate (half of the
// drops before processing, half after).
func (fi *faultInjector) decide() (time.Duration, faultAction, int) {
	fi.mu.Lock()
	defer fi.mu.Unlock()
	u := fi.rng.Float64()
	switch {
	case u < fi.f.ErrorRate:
		return fi.f.Latency, faultStatus, fi.f.Statuses[fi.rng.IntN(len(fi.f.Statuses))]
	case u < fi.f.ErrorRate+fi.f.DropRate:
		if fi.rng.IntN(2) == 0 {
			return fi.f.Latency, faultDropBefore, 0
		}
		return fi.f.Latency, faultDropAfter, 0
	}
	return fi.f.Latency, faultNone, 0
}

// apply runs the fault for this request. It returns true when the request
// should be handled normally.
func (fi *faultInjector) apply(c *call, s *Server) bool {
	latency, action, status := fi.decide()
	if latency > 0 {
		t := time.NewTimer(latency)
		select {
		case <-t.C:
		case <-c.r.Context().Done():
			t.Stop()
			return false
		}
	}
	switch action {
	case faultStatus:
		s.stats.faultErrors.Add(1)
		s.log.Debug("fakemesh injected fault", "route", routeNames[c.route], "status", status)
		body := []byte("fakemesh: injected fault " + strconv.Itoa(status) + "\n")
		h := c.w.Header()
		h["Content-Type"] = []string{"text/plain; charset=utf-8"}
		h["Content-Length"] = []string{strconv.Itoa(len(body))}
		c.w.WriteHeader(status)
		_, _ = c.w.Write(body)
		return false
	case faultDropBefore:
		s.stats.faultDrops.Add(1)
		s.log.Debug("fakemesh dropped connection before processing", "route", routeNames[c.route])
		c.w.status = -1
		dropConnection(c.w.ResponseWriter)
		return false
	case faultDropAfter:
		// Process fully (the message may be created) but lose the response:
		// the "message created, response lost" case clients must reconcile.
		s.stats.faultDrops.Add(1)
		orig := c.w.ResponseWriter
		c.w.ResponseWriter = &discardWriter{h: http.Header{}}
		s.dispatch(c)
		c.w.ResponseWriter = orig
		s.log.Debug("fakemesh dropped connection after processing", "route", routeNames[c.route])
		c.w.status = -1
		dropConnection(orig)
		return false
	}
	return true
}

// dropConnection closes the client connection without a response (TCP RST
// where possible). When the writer cannot be hijacked (HTTP/2, recorders) it
// aborts the handler the way net/http documents.
func dropConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tc, ok := conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = conn.Close()
}

// discardWriter swallows a response that will never be sent.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
