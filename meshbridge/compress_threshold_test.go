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
