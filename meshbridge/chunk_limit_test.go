package meshbridge

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"testing"
)

// meshRequestLimit is MESH's limit on one request body (SPEC: 100 MB).
const meshRequestLimit = 100_000_000

// randReader is incompressible data: gzip's worst case.
type randReader struct{ r *rand.ChaCha8 }

func (r randReader) Read(p []byte) (int, error) { return r.r.Read(p) }

// A chunk of MaxChunkSize incompressible bytes, gzipped as the client sends
// it, is still within MESH's 100 MB per request (a 100,000,000-byte chunk
// is not).
func TestMaxChunkGzippedFitsMESHLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("gzips 99 MB")
	}
	c, _ := newTestClient(t, http.NotFoundHandler(), func(cfg *Config) { cfg.Compress = true })
	bufs := c.getBuffers()
	var zb bytes.Buffer
	out, err := bufs.gzipFrom(&zb, randReader{rand.NewChaCha8([32]byte{1})}, MaxChunkSize)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(out)) <= MaxChunkSize {
		t.Fatalf("random data gzipped to %d bytes from %d: not the worst case", len(out), MaxChunkSize)
	}
	if len(out) >= meshRequestLimit {
		t.Fatalf("a %d-byte chunk gzips to %d bytes, over MESH's %d per request", MaxChunkSize, len(out), meshRequestLimit)
	}
	t.Logf("%d bytes gzip to %d (+%d)", MaxChunkSize, len(out), int64(len(out))-MaxChunkSize)
}
