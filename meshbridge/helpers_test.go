package meshbridge

import (
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

const (
	testMailbox   = "X26ABC1"
	testPassword  = "password"
	testSharedKey = "TestKey"
)

// newTestClient starts handler on loopback and returns a client for it with
// fast retries.
func newTestClient(t testing.TB, handler http.Handler, mutate func(*Config)) (*Client, *httptest.Server) {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	cfg := Config{
		BaseURL:   srv.URL,
		MailboxID: testMailbox,
		Password:  testPassword,
		SharedKey: testSharedKey,
		Retry:     RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 50 * time.Millisecond},
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c, srv
}

// tokenChecker verifies every Authorization header and that no token repeats.
type tokenChecker struct {
	mu   sync.Mutex
	seen map[string]bool
	bad  atomic.Int64
}

func newTokenChecker() *tokenChecker { return &tokenChecker{seen: map[string]bool{}} }

func (tc *tokenChecker) check(r *http.Request) bool {
	tok, err := ParseAuthorization(r.Header.Get("Authorization"))
	if err != nil || !tok.Verify(testSharedKey, testPassword) || tok.MailboxID != testMailbox {
		tc.bad.Add(1)
		return false
	}
	key := tok.Nonce + ":" + strconv.Itoa(tok.NonceCount)
	tc.mu.Lock()
	defer tc.mu.Unlock()
	if tc.seen[key] {
		tc.bad.Add(1)
		return false
	}
	tc.seen[key] = true
	return true
}

// corpus is deterministic, text-like (compressible) data for stream tests.
func corpus(n int) []byte {
	words := strings.Fields("patient record clinical document discharge summary medication allergy " +
		"observation encounter practitioner organisation referral appointment result pathology " +
		"radiology 0 1 2 3 4 5 6 7 8 9 mg ml daily twice NHS GP hospital ward consultant")
	rng := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	for b.Len() < n {
		b.WriteString(words[rng.IntN(len(words))])
		if rng.IntN(12) == 0 {
			b.WriteByte('\n')
		} else {
			b.WriteByte(' ')
		}
	}
	return []byte(b.String()[:n])
}

// genReader yields size bytes cycling through a corpus, never holding more
// than the corpus in memory; it keeps a running CRC of what it produced.
type genReader struct {
	src  []byte
	pos  int64
	size int64
	crc  uint32
}

func newGenReader(src []byte, size int64) *genReader { return &genReader{src: src, size: size} }

func (g *genReader) Read(p []byte) (int, error) {
	if g.pos >= g.size {
		return 0, io.EOF
	}
	if rem := g.size - g.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	n := 0
	for n < len(p) {
		off := int((g.pos + int64(n)) % int64(len(g.src)))
		n += copy(p[n:], g.src[off:])
	}
	g.crc = crc32.Update(g.crc, crc32.IEEETable, p[:n])
	g.pos += int64(n)
	return n, nil
}

// peakHeap samples HeapInuse until stopped and returns the maximum seen.
type peakHeap struct {
	stop chan struct{}
	done chan struct{}
	peak uint64
}

func startPeakHeap() *peakHeap {
	p := &peakHeap{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		var ms runtime.MemStats
		tick := time.NewTicker(25 * time.Millisecond) // ReadMemStats stops the world: sample sparingly
		defer tick.Stop()
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > p.peak {
				p.peak = ms.HeapInuse
			}
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return p
}

func (p *peakHeap) Stop() uint64 {
	close(p.stop)
	<-p.done
	return p.peak
}
