package fakemesh

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

// benchServer has a fixed clock so tokens stay in the window for the whole run.
func benchServer(b *testing.B) (*Server, time.Time) {
	b.Helper()
	now := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return now }
	srv, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	return srv, now
}

var benchDoc = bytes.Repeat([]byte("<Bundle>clinical document</Bundle>"), 60) // ~2 KB

func serveDirect(h http.Handler, method, path, auth string, hdr map[string]string, body []byte) *httptest.ResponseRecorder {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequest(method, path, rd)
	r.Header.Set("Authorization", auth)
	for k, v := range hdr {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// BenchmarkHandlerSend: server-side cost of one authenticated single-chunk send.
func BenchmarkHandlerSend(b *testing.B) {
	srv, now := benchServer(b)
	h := srv.Handler()
	hdr := map[string]string{"Accept": v2, "mex-To": "X26ABC2", "mex-WorkflowID": "TEST_WORKFLOW", "mex-LocalID": "X26", "Content-Type": "application/fhir+json"}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		auth := tokenAt(DemoSharedKey, "X26ABC1", DemoPassword, "bench", i, now)
		if w := serveDirect(h, http.MethodPost, "/messageexchange/X26ABC1/outbox", auth, hdr, benchDoc); w.Code != 202 {
			b.Fatalf("send %d: %s", w.Code, w.Body)
		}
	}
}

// BenchmarkHandlerCollect: server-side cost per collected message
// (inbox page of 500 amortised + download + ack).
func BenchmarkHandlerCollect(b *testing.B) {
	srv, now := benchServer(b)
	h := srv.Handler()
	hdr := map[string]string{"Accept": v2, "mex-To": "X26ABC2", "mex-WorkflowID": "TEST_WORKFLOW"}
	nonce := 0
	auth := func(mb string) string {
		nonce++
		return tokenAt(DemoSharedKey, mb, DemoPassword, "bench", nonce, now)
	}
	var page []string
	b.ReportAllocs()
	for b.Loop() {
		if len(page) == 0 {
			b.StopTimer()
			for k := 0; k < 500; k++ {
				serveDirect(h, http.MethodPost, "/messageexchange/X26ABC1/outbox", auth("X26ABC1"), hdr, benchDoc)
			}
			b.StartTimer()
			w := serveDirect(h, http.MethodGet, "/messageexchange/X26ABC2/inbox", auth("X26ABC2"), map[string]string{"Accept": v2}, nil)
			page = parseIDs(w.Body.Bytes())
			if len(page) == 0 {
				b.Fatalf("empty inbox: %s", w.Body)
			}
		}
		id := page[0]
		page = page[1:]
		if w := serveDirect(h, http.MethodGet, "/messageexchange/X26ABC2/inbox/"+id, auth("X26ABC2"), map[string]string{"Accept": v2}, nil); w.Code != 200 {
			b.Fatalf("download %d", w.Code)
		}
		if w := serveDirect(h, http.MethodPut, "/messageexchange/X26ABC2/inbox/"+id+"/status/acknowledged", auth("X26ABC2"), map[string]string{"Accept": v2}, nil); w.Code != 200 {
			b.Fatalf("ack %d", w.Code)
		}
	}
}

// parseIDs extracts ids from {"messages":["a","b"],...} without reflection.
func parseIDs(body []byte) []string {
	start := bytes.Index(body, []byte(`[`))
	end := bytes.Index(body, []byte(`]`))
	if start < 0 || end <= start+1 {
		return nil
	}
	var ids []string
	for _, f := range bytes.Split(body[start+1:end], []byte(",")) {
		ids = append(ids, string(bytes.Trim(f, `"`)))
	}
	return ids
}

// BenchmarkLoopbackSendParallel: end-to-end sends over loopback HTTP with
// keep-alive clients (what the gateway's MESH client sees).
func BenchmarkLoopbackSendParallel(b *testing.B) {
	srv, now := benchServer(b)
	ts := httptest.NewServer(srv.Handler())
	defer ts.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	var nonce atomic.Int64
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, ts.URL+"/messageexchange/X26ABC1/outbox", bytes.NewReader(benchDoc))
			req.Header.Set("Authorization", tokenAt(DemoSharedKey, "X26ABC1", DemoPassword, "p", int(nonce.Add(1)), now))
			req.Header.Set("Accept", v2)
			req.Header.Set("mex-To", "X26ABC2")
			req.Header.Set("mex-WorkflowID", "TEST_WORKFLOW")
			res, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, res.Body)
			res.Body.Close()
			if res.StatusCode != 202 {
				b.Errorf("status %d", res.StatusCode)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sends/s")
}
