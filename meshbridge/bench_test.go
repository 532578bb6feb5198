package meshbridge

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

// BenchmarkSend100KB: one sequential sender, 100 KB uncompressed messages,
// to a loopback server that only drains the body and answers 202.
func BenchmarkSend100KB(b *testing.B) {
	accepted := []byte(`{"message_id":"20200529155357895317_3573F8"}`)
	bufs := sync.Pool{New: func() any { return new([128 << 10]byte) }}
	c, _ := newTestClient(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		drain(r.Body, bufs.Get().(*[128 << 10]byte), &bufs)
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write(accepted)
	}), nil)
	payload := corpus(100 * 1000)
	opts := SendOptions{To: "X26ABC2", WorkflowID: "GPFED_CONSULT_REPORT", Subject: "subject", LocalID: "local-1",
		ContentType: "application/fhir+json"}
	ctx := context.Background()
	rd := bytes.NewReader(payload)
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	start, cpu0 := time.Now(), processCPU()
	for b.Loop() {
		rd.Reset(payload)
		if _, err := c.Send(ctx, opts, rd, int64(len(payload))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	reportCPU(b, cpu0)
}

// drain reads a body with a large buffer, as a production server would.
func drain(body io.Reader, buf *[128 << 10]byte, pool *sync.Pool) {
	defer pool.Put(buf)
	for {
		if _, err := body.Read(buf[:]); err != nil {
			return
		}
	}
}

// BenchmarkSendChunked200MB: a 200 MB message generated on the fly, gzip on,
// 20 MiB chunks, to a loopback server that drains each chunk.
func BenchmarkSendChunked200MB(b *testing.B) {
	c, _ := newTestClient(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusAccepted)
		if r.URL.Path == outboxPath {
			_, _ = w.Write([]byte(`{"message_id":"` + msgID + `"}`))
		}
	}), func(cfg *Config) { cfg.Compress = true })
	src := corpus(1 << 20)
	ctx := context.Background()
	b.SetBytes(streamSize)
	peak, cpu0 := startPeakHeap(), processCPU()
	for b.Loop() {
		if _, err := c.Send(ctx, basicOpts(), newGenReader(src, streamSize), streamSize); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(peak.Stop())/(1<<20), "peak-heap-MiB")
	reportCPU(b, cpu0)
}

// BenchmarkDownloadChunked200MB: 10 gzip chunks of 20 MiB (precompressed on
// the server), gunzipped by the client and streamed to io.Discard.
func BenchmarkDownloadChunked200MB(b *testing.B) {
	src := corpus(1 << 20)
	var zbuf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zbuf, gzip.BestSpeed)
	_, _ = io.Copy(zw, newGenReader(src, DefaultChunkSize))
	_ = zw.Close()
	compressed := zbuf.Bytes()
	const n = int(streamSize / DefaultChunkSize)
	c, _ := newTestClient(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		k := 1
		if p := r.URL.Path; p != "/messageexchange/"+testMailbox+"/inbox/MSG1" {
			k = atoiOr(p[len(p)-1:], 0)
			if p[len(p)-2] != '/' {
				k = atoiOr(p[len(p)-2:], 0)
			}
		}
		w.Header().Set("Mex-Chunk-Range", chunkRange(k, n))
		w.Header().Set("Content-Encoding", "gzip")
		if k < n {
			w.WriteHeader(http.StatusPartialContent)
		}
		_, _ = w.Write(compressed)
	}), nil)
	ctx := context.Background()
	b.SetBytes(int64(n) * DefaultChunkSize)
	peak, cpu0 := startPeakHeap(), processCPU()
	for b.Loop() {
		cw := &crcWriter{}
		if _, err := c.Download(ctx, "MSG1", io.Writer(cw)); err != nil {
			b.Fatal(err)
		}
		if cw.n != int64(n)*DefaultChunkSize {
			b.Fatalf("downloaded %d bytes", cw.n)
		}
	}
	b.ReportMetric(float64(peak.Stop())/(1<<20), "peak-heap-MiB")
	reportCPU(b, cpu0)
}

// reportCPU adds the process CPU time per operation (client and loopback
// server together): on a shared box it shows the cost independent of how
// much CPU the neighbours left us.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/op")
	}
}
