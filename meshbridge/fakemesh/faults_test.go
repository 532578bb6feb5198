package fakemesh

import (
	"bytes"
	"errors"
	"io"
	"math"
	"net/http"
	"strconv"
	"testing"
	"time"
)

// faultRun sends n POST handshakes (POST is never retried by net/http) and
// returns the outcome of each: the status, or 0 for a dropped connection.
func faultRun(t *testing.T, f Faults, n int) ([]int, *env) {
	t.Helper()
	e := newEnv(t, func(c *Config) { c.Faults = f })
	out := make([]int, 0, n)
	for i := 0; i < n; i++ {
		r, err := http.NewRequest(http.MethodPost, e.ts.URL+"/messageexchange/X26ABC1", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", e.token("X26ABC1"))
		r.Header.Set("mex-ClientVersion", "t")
		r.Header.Set("mex-OSName", "t")
		r.Header.Set("mex-OSVersion", "t")
		res, err := e.client.Do(r)
		if err != nil {
			out = append(out, 0)
			continue
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		out = append(out, res.StatusCode)
	}
	return out, e
}

func TestFaultRatesAndDeterminism(t *testing.T) {
	const n = 1000
	f := Faults{ErrorRate: 0.2, DropRate: 0.1, Seed: 42}
	a, e := faultRun(t, f, n)
	counts := map[int]int{}
	for _, s := range a {
		counts[s]++
	}
	errs := counts[500] + counts[502] + counts[503] + counts[429]
	if math.Abs(float64(errs)/n-0.2) > 0.04 {
		t.Errorf("error share %.3f, want ~0.20 (%v)", float64(errs)/n, counts)
	}
	if math.Abs(float64(counts[0])/n-0.1) > 0.03 {
		t.Errorf("drop share %.3f, want ~0.10 (%v)", float64(counts[0])/n, counts)
	}
	if counts[200]+errs+counts[0] != n {
		t.Errorf("unexpected statuses %v", counts)
	}
	for _, s := range []int{500, 502, 503, 429} {
		if counts[s] == 0 {
			t.Errorf("status %d never injected (%v)", s, counts)
		}
	}
	st := e.srv.Stats()
	if st.FaultErrors != int64(errs) || st.FaultDrops != int64(counts[0]) {
		t.Errorf("stats faults %d/%d, observed %d/%d", st.FaultErrors, st.FaultDrops, errs, counts[0])
	}

	// Same seed, same sequence.
	b, _ := faultRun(t, f, n)
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("request %d: %d vs %d with the same seed", i, a[i], b[i])
		}
	}
}

func TestFaultDropAfterProcessingCreatesMessage(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Faults = Faults{DropRate: 1, Seed: 7} })
	lost, created := 0, 0
	for i := 0; i < 20; i++ {
		r, _ := http.NewRequest(http.MethodPost, e.ts.URL+"/messageexchange/X26ABC1/outbox", bytes.NewReader([]byte("doc "+strconv.Itoa(i))))
		r.Header.Set("Authorization", e.token("X26ABC1"))
		r.Header.Set("mex-To", "X26ABC2")
		r.Header.Set("mex-WorkflowID", "TEST_WORKFLOW")
		res, err := e.client.Do(r)
		if err == nil {
			res.Body.Close()
			t.Fatalf("request %d got a response with DropRate 1: %d", i, res.StatusCode)
		}
		lost++
	}
	created = len(e.srv.Inbox("X26ABC2"))
	// Half the drops happen after processing: those messages exist although
	// the client never saw a message id.
	if created == 0 || created == lost {
		t.Fatalf("created %d of %d dropped sends; want some but not all", created, lost)
	}
	// Admin routes are never faulted.
	e.srv.SetFaults(Faults{ErrorRate: 1})
	wantStatus(t, e.req(http.MethodGet, "/admin/mailbox/X26ABC2", "", nil, nil), 200)
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/_ping", "", nil, nil), 200)
	if r := e.req(http.MethodGet, "/messageexchange/X26ABC2/count", "X26ABC2", nil, nil); r.status < 429 {
		t.Fatalf("MESH route not faulted: %d", r.status)
	}
}

func TestFaultLatencyAndAdminPut(t *testing.T) {
	e := newEnv(t, nil)
	r := e.req(http.MethodPut, "/admin/faults", "", nil, []byte(`{"errorRate":1,"statuses":[503],"latency":"20ms","seed":1}`))
	wantStatus(t, r, 200)
	if m := r.json(t); m["latency"] != "20ms" || m["errorRate"] != 1.0 {
		t.Fatalf("faults view %s", r.body)
	}
	start := time.Now()
	r = e.req(http.MethodGet, "/messageexchange/X26ABC2/count", "X26ABC2", nil, nil)
	wantStatus(t, r, 503)
	if time.Since(start) < 20*time.Millisecond {
		t.Errorf("latency not applied")
	}
	wantStatus(t, e.req(http.MethodPut, "/admin/faults", "", nil, []byte(`{"errorRate":0.8,"dropRate":0.5}`)), 400)
	wantStatus(t, e.req(http.MethodPut, "/admin/faults", "", nil, []byte(`{"errorRate":0}`)), 200)
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC2/count", "X26ABC2", nil, nil), 200)
}

func TestDropWithoutHijackAborts(t *testing.T) {
	srv, err := New(func() Config { c := DefaultConfig(); c.Faults = Faults{DropRate: 1}; c.AuthMode = AuthNone; return c }())
	if err != nil {
		t.Fatal(err)
	}
	// A writer that cannot be hijacked makes the drop abort the handler the
	// documented net/http way.
	defer func() {
		if r := recover(); r == nil || !errors.Is(r.(error), http.ErrAbortHandler) {
			t.Fatalf("recover() = %v, want http.ErrAbortHandler", r)
		}
	}()
	req, _ := http.NewRequest(http.MethodGet, "/messageexchange/X26ABC1/count", nil)
	srv.Handler().ServeHTTP(&discardWriter{h: http.Header{}}, req)
}
