package meshbridge

import (
	"context"
	"hash/crc32"
	"io"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"
)

const streamSize = 200 << 20

// streamShape is the message size and chunk size of the stream tests: 200 MB
// in 20 MiB chunks, scaled down under -short or the race detector.
func streamShape() (size, chunk int64) {
	switch {
	case raceEnabled:
		return 6 << 20, 1 << 20
	case testing.Short():
		return 24 << 20, 4 << 20
	}
	return streamSize, DefaultChunkSize
}

func TestChunkedSend200MBBoundedMemory(t *testing.T) {
	size, chunk := streamShape()
	v := &sequentialVerifier{}
	c, _ := newTestClient(t, v, func(cfg *Config) { cfg.Compress = true; cfg.ChunkSize = chunk })
	gen := newGenReader(corpus(1<<20), size)

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := startPeakHeap()
	res, err := c.Send(context.Background(), basicOpts(), gen, size)
	peakInuse := peak.Stop()
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if errs := v.problems(); len(errs) > 0 {
		t.Fatalf("server saw: %v", errs)
	}
	wantChunks := chunkCount(size, chunk)
	if res.Chunks != wantChunks || v.total != wantChunks || v.next != wantChunks {
		t.Fatalf("chunks: result %d, server saw %d of %d; want %d", res.Chunks, v.next, v.total, wantChunks)
	}
	if v.bytes != size || v.crc != gen.crc {
		t.Fatalf("server got %d bytes crc %08x, sent %d crc %08x", v.bytes, v.crc, size, gen.crc)
	}
	growth := int64(peakInuse) - int64(before.HeapInuse)
	// Two compressed-chunk buffers (one on the wire, one being filled) and
	// no uncompressed copy of a chunk; the slack covers the gzip writer, the
	// staging buffer, HTTP and the test server's gunzip.
	bound := 2*chunk + chunk/4 + 6<<20
	t.Logf("heap in use: before %d MiB, peak %d MiB (growth %d MiB, bound %d MiB); TotalAlloc delta %d MiB",
		before.HeapInuse>>20, peakInuse>>20, growth>>20, bound>>20, (after.TotalAlloc-before.TotalAlloc)>>20)
	if growth > bound {
		t.Fatalf("peak heap growth %d MiB exceeds %d MiB", growth>>20, bound>>20)
	}
	if alloc := int64(after.TotalAlloc - before.TotalAlloc); alloc > bound {
		t.Fatalf("allocated %d MiB for a %d MiB message: not streaming", alloc>>20, size>>20)
	}
}

// sequentialVerifier checks chunk ranges and gunzips each chunk into one
// running CRC (chunks arrive in order, one at a time).
type sequentialVerifier struct {
	mu     sync.Mutex
	next   int
	total  int
	bytes  int64
	crc    uint32
	errors []string
}

func (v *sequentialVerifier) problems() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.errors
}

func (v *sequentialVerifier) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	defer v.mu.Unlock()
	k, n, ok := parseChunkRange(r.Header.Get("Mex-Chunk-Range"))
	first := r.URL.Path == outboxPath
	switch {
	case !ok || k != v.next+1 || (v.total != 0 && n != v.total):
		v.errors = append(v.errors, "bad chunk range "+r.Header.Get("Mex-Chunk-Range"))
	case first != (k == 1), !first && r.URL.Path != outboxPath+"/"+msgID+"/"+strconv.Itoa(k):
		v.errors = append(v.errors, "chunk "+strconv.Itoa(k)+" posted to "+r.URL.Path)
	case r.Header.Get("Content-Encoding") != "gzip":
		v.errors = append(v.errors, "chunk "+strconv.Itoa(k)+" not gzip")
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		v.errors = append(v.errors, "gzip header: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	zr.Multistream(false) // each chunk must be one complete, independent gzip member
	cw := &crcWriter{crc: v.crc}
	cnt, err := io.Copy(cw, zr)
	if err != nil {
		v.errors = append(v.errors, "gunzip: "+err.Error())
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if extra, _ := io.Copy(io.Discard, r.Body); extra != 0 {
		v.errors = append(v.errors, "data after the gzip member")
	}
	v.crc, v.bytes, v.next, v.total = cw.crc, v.bytes+cnt, k, n
	w.WriteHeader(http.StatusAccepted)
	if k == 1 {
		_, _ = w.Write([]byte(`{"message_id":"` + msgID + `"}`))
	}
}

type crcWriter struct {
	crc uint32
	n   int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p)
	c.n += int64(len(p))
	return len(p), nil
}

// chunkServer serves a message of size bytes in chunks, each gzipped on the
// fly from the deterministic generator (nothing held in memory).
func chunkServer(src []byte, size, chunkSize int64) http.Handler {
	n := chunkCount(size, chunkSize)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/messageexchange/"+testMailbox+"/inbox/"), "/")
		k := 1
		if len(parts) == 2 {
			k = atoiOr(parts[1], 0)
		}
		if k < 1 || k > n {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		gen := newGenReader(src, size)
		gen.pos = int64(k-1) * chunkSize
		gen.size = gen.pos + chunkLen(k, size, chunkSize)
		w.Header().Set("Mex-Chunk-Range", chunkRange(k, n))
		w.Header().Set("Mex-Messageid", "MSG1")
		w.Header().Set("Content-Encoding", "gzip")
		if k < n {
			w.WriteHeader(http.StatusPartialContent)
		}
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		_, _ = io.Copy(zw, gen)
		_ = zw.Close()
	})
}

func TestChunkedDownload200MBBoundedMemory(t *testing.T) {
	size, chunk := streamShape()
	src := corpus(1 << 20)
	c, _ := newTestClient(t, chunkServer(src, size, chunk), nil)
	want := newGenReader(src, size)
	if _, err := io.Copy(io.Discard, want); err != nil {
		t.Fatal(err)
	}
	runtime.GC()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	peak := startPeakHeap()
	cw := &crcWriter{}
	meta, err := c.Download(context.Background(), "MSG1", cw)
	peakInuse := peak.Stop()
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if cw.n != size || cw.crc != want.crc || meta.TotalChunks != chunkCount(size, chunk) {
		t.Fatalf("downloaded %d bytes crc %08x (%d chunks), want %d crc %08x", cw.n, cw.crc, meta.TotalChunks, size, want.crc)
	}
	growth := int64(peakInuse) - int64(before.HeapInuse)
	t.Logf("download heap growth %d MiB", growth>>20)
	if bound := int64(30 << 20); growth > bound {
		t.Fatalf("peak heap growth %d MiB exceeds %d MiB: download is not streaming", growth>>20, bound>>20)
	}
}
