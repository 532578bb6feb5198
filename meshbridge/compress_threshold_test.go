package meshbridge

import (
	"bytes"
	"net/http"
	"sync"
	"testing"
)

// Messages below CompressThreshold go uncompressed; at or above it every
// chunk is gzipped.
func TestCompressThreshold(t *testing.T) {
	var mu sync.Mutex
	var encodings []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		encodings = append(encodings, r.Header.Get("Content-Encoding"))
		mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
		_, _ = w.Write([]byte(`{"message_id":"20200529155357895317_3573F8"}`))
	})
	c, _ := newTestClient(t, h, func(cfg *Config) { cfg.Compress = true; cfg.CompressThreshold = 1000 })
	for _, tc := range []struct {
		size int
		want string
	}{{999, ""}, {1000, "gzip"}} {
		encodings = nil
		body := bytes.Repeat([]byte("a"), tc.size)
		if _, err := c.Send(t.Context(), SendOptions{To: "X26ABC2", WorkflowID: "TEST_WORKFLOW"}, bytes.NewReader(body), int64(len(body))); err != nil {
			t.Fatal(err)
		}
		if len(encodings) != 1 || encodings[0] != tc.want {
			t.Errorf("size %d: Content-Encoding %q, want %q", tc.size, encodings, tc.want)
		}
	}
}

// SendOptions.Gzip fixes the encoding whatever the client's settings say:
// a resumed upload repeats chunk 1's Content-Encoding (MESH: 417 "cannot
// change content encoding"), also after the threshold changed. nil keeps
// the client's own choice.
func TestGzipOptionFixesEncoding(t *testing.T) {
	fo := newFakeOutbox(t)
	c, _ := newTestClient(t, fo, func(cfg *Config) { cfg.Compress = true; cfg.CompressThreshold = 1000 })
	payload := bytes.Repeat([]byte("abcdefghij"), 30) // 300 bytes: under the threshold
	yes, no := true, false
	for _, tc := range []struct {
		name string
		gzip *bool
		size int64
		want string
	}{
		{"chunk 1 gzipped, now under the threshold", &yes, 300, "gzip"},
		{"chunk 1 plain, now over the threshold", &no, 3000, ""},
		{"unknown: the client decides (under)", nil, 300, ""},
		{"unknown: the client decides (over)", nil, 3000, "gzip"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fo.mu.Lock()
			fo.chunks, fo.hdrs = map[int][]byte{}, map[int]http.Header{}
			fo.mu.Unlock()
			opts := basicOpts()
			opts.ChunkSize, opts.Gzip = 100, tc.gzip
			n := int((tc.size + 99) / 100)
			body := bytes.Repeat(payload, int(tc.size)/len(payload))
			res, err := c.ContinueSend(t.Context(), msgID, 2, bytes.NewReader(body[100:]), tc.size, opts)
			if err != nil || res.Chunks != n {
				t.Fatalf("ContinueSend: %v %+v", err, res)
			}
			for k := 2; k <= n; k++ {
				if got := fo.hdrs[k].Get("Content-Encoding"); got != tc.want {
					t.Fatalf("chunk %d Content-Encoding %q, want %q", k, got, tc.want)
				}
				if !bytes.Equal(fo.chunks[k], body[(k-1)*100:min(k*100, len(body))]) {
					t.Fatalf("chunk %d body differs", k)
				}
			}
			fo.mu.Lock()
			fo.chunks, fo.hdrs = map[int][]byte{}, map[int]http.Header{}
			fo.mu.Unlock()
			if _, err := c.Send(t.Context(), opts, bytes.NewReader(body), tc.size); err != nil {
				t.Fatal(err)
			}
			for k := 1; k <= n; k++ {
				if got := fo.hdrs[k].Get("Content-Encoding"); got != tc.want {
					t.Fatalf("Send: chunk %d Content-Encoding %q, want %q", k, got, tc.want)
				}
			}
			if tc.gzip == nil && c.Gzips(tc.size) != (tc.want == "gzip") {
				t.Fatalf("Gzips(%d) = %v, disagrees with Send", tc.size, c.Gzips(tc.size))
			}
		})
	}
}
