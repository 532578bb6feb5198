package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkIntake posts 100 KB PDFs (JSON) from 64 concurrent callers to the
// real router on a real redis-server and reports docs/s. Tokens are signed
// before the timer starts. The full-stack figure comes from cmd/meshgw-bench.
func BenchmarkIntake(b *testing.B) {
	e := newEnv(b, envOptions{noPractice: true, rateLimit: "0"})
	doc := make([]byte, 100<<10)
	copy(doc, "%PDF-1.4\n")
	req := request(smith, "X26ABC1")
	req["documents"].([]any)[0].(map[string]any)["data"] = base64.StdEncoding.EncodeToString(doc)
	body, _ := json.Marshal(req)
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = e.token(clientA)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 128}}
	var next atomic.Int64
	var failed atomic.Int64
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				r, _ := http.NewRequest("POST", e.url+"/v1/documents", bytes.NewReader(body))
				r.Header.Set("Content-Type", "application/json")
				r.Header.Set("Authorization", "Bearer "+tokens[i])
				resp, err := client.Do(r)
				if err != nil || resp.StatusCode != http.StatusAccepted {
					failed.Add(1)
				}
				if resp != nil {
					resp.Body.Close()
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
	if failed.Load() > 0 {
		b.Fatalf("%d requests failed", failed.Load())
	}
}

// BenchmarkSend measures the outbox alone: b.N documents are accepted with
// the gateway's workers running, and the clock runs until all are sent.
func BenchmarkSend(b *testing.B) {
	e := newEnv(b, envOptions{noPractice: true, rateLimit: "0"})
	doc := make([]byte, 100<<10)
	copy(doc, "%PDF-1.4\n")
	req := request(smith, "X26ABC1")
	req["documents"].([]any)[0].(map[string]any)["data"] = base64.StdEncoding.EncodeToString(doc)
	body, _ := json.Marshal(req)
	tokens := make([]string, b.N)
	for i := range tokens {
		tokens[i] = e.token(clientA)
	}
	b.ResetTimer()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 32; w++ {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				r := e.do("POST", "/v1/documents", "application/json", tokens[i], body, nil)
				if r.Status != http.StatusAccepted {
					b.Errorf("status %d", r.Status)
					return
				}
			}
		})
	}
	wg.Wait()
	store := e.apps[0].Store()
	for {
		counts, err := store.CountByState(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if counts["sent"]+counts["delivered"] >= int64(b.N) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "docs/s")
}
