package meshbridge

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

// Compressed sends stream the body through gzip in stageSize pieces: chunks
// that start and end inside a piece, and a body that returns short reads,
// still arrive whole and in order.
func TestCompressedSendStreamsBody(t *testing.T) {
	fo := newFakeOutbox(t)
	c, _ := newTestClient(t, fo, func(cfg *Config) { cfg.Compress = true; cfg.CompressThreshold = 1 })
	data := corpus(3*stageSize + 123)
	opts := basicOpts()
	opts.ChunkSize = 2*stageSize - 7
	res, err := c.Send(t.Context(), opts, iotest.HalfReader(bytes.NewReader(data)), int64(len(data)))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.Chunks != 2 {
		t.Fatalf("chunks %d, want 2", res.Chunks)
	}
	var got []byte
	for k := 1; k <= res.Chunks; k++ {
		if enc := fo.hdrs[k].Get("Content-Encoding"); enc != "gzip" {
			t.Fatalf("chunk %d Content-Encoding %q", k, enc)
		}
		got = append(got, fo.chunks[k]...)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("MESH got %d bytes, sent %d: content differs", len(got), len(data))
	}
}

// A body shorter than the declared size fails the chunk it runs out in,
// before anything of that chunk is posted; on chunk 1 MESH cannot have the
// message.
func TestCompressedShortBodyFails(t *testing.T) {
	const size = 3 * stageSize
	opts := basicOpts()
	opts.ChunkSize = stageSize + 1
	for _, tc := range []struct {
		name  string
		have  int
		chunk int
	}{{"empty", 0, 1}, {"mid first chunk", stageSize / 2, 1}, {"mid second chunk", stageSize + 100, 2}} {
		t.Run(tc.name, func(t *testing.T) {
			fo := newFakeOutbox(t)
			c, _ := newTestClient(t, fo, func(cfg *Config) { cfg.Compress = true; cfg.CompressThreshold = 1 })
			_, err := c.Send(t.Context(), opts, bytes.NewReader(corpus(tc.have)), size)
			if tc.chunk == 1 {
				var fe *FirstChunkError
				if !errors.As(err, &fe) || fe.Uncertain || fo.count(outboxPath) != 0 {
					t.Fatalf("err = %v, posts %d; want a certain FirstChunkError and nothing posted", err, fo.count(outboxPath))
				}
			} else {
				var ce *ChunkError
				if !errors.As(err, &ce) || ce.Chunk != tc.chunk || fo.count(outboxPath+"/"+msgID+"/2") != 0 {
					t.Fatalf("err = %v; want ChunkError on chunk %d, not posted", err, tc.chunk)
				}
			}
			want := io.ErrUnexpectedEOF
			if tc.have == 0 {
				want = io.EOF
			}
			if !errors.Is(err, want) {
				t.Errorf("err = %v, want it to wrap %v", err, want)
			}
		})
	}
}

// A reader's own error is reported as it is.
func TestCompressedBodyReadError(t *testing.T) {
	fo := newFakeOutbox(t)
	c, _ := newTestClient(t, fo, func(cfg *Config) { cfg.Compress = true; cfg.CompressThreshold = 1 })
	boom := errors.New("redis went away")
	body := io.MultiReader(bytes.NewReader(corpus(1000)), iotest.ErrReader(boom))
	_, err := c.Send(t.Context(), basicOpts(), body, 5000)
	var fe *FirstChunkError
	if !errors.As(err, &fe) || fe.Uncertain || !errors.Is(err, boom) {
		t.Fatalf("err = %v, want a certain FirstChunkError wrapping the read error", err)
	}
}
