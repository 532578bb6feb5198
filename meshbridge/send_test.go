package meshbridge

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/klauspost/compress/gzip"
)

// fakeOutbox records chunk uploads and lets a test script failures per call.
type fakeOutbox struct {
	t      testing.TB
	tokens *tokenChecker
	mu     sync.Mutex
	posts  map[string]int // path → number of POSTs received
	chunks map[int][]byte // chunk number → decoded body of the accepted upload
	hdrs   map[int]http.Header
	script func(path string, n int) string // "" ok, "503", "reset", "417", "504"
	order  []string
}

func newFakeOutbox(t testing.TB) *fakeOutbox {
	return &fakeOutbox{t: t, tokens: newTokenChecker(), posts: map[string]int{}, chunks: map[int][]byte{}, hdrs: map[int]http.Header{}}
}

func (f *fakeOutbox) count(path string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.posts[path]
}

func (f *fakeOutbox) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !f.tokens.check(r) {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.posts[r.URL.Path]++
	n := f.posts[r.URL.Path]
	f.order = append(f.order, r.URL.Path)
	f.mu.Unlock()
	action := ""
	if f.script != nil {
		action = f.script(r.URL.Path, n)
	}
	switch action {
	case "reset":
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0) // RST rather than FIN
		}
		_ = conn.Close()
		return
	case "503":
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("<soap:Fault/>"))
		return
	case "504":
		w.WriteHeader(http.StatusGatewayTimeout)
		return
	case "423":
		w.WriteHeader(http.StatusLocked)
		_, _ = w.Write([]byte(`{"message":"Messages has been finalised; no more chunks can be uploaded"}`))
		return
	case "417":
		w.WriteHeader(http.StatusExpectationFailed)
		_, _ = w.Write([]byte(`{"detail":[{"event":"SEND","code":"12","msg":"Unregistered to address"}]}`))
		return
	}
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(bytes.NewReader(body))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if body, err = io.ReadAll(zr); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	k := 1
	if r.URL.Path != "/messageexchange/"+testMailbox+"/outbox" {
		parts := strings.Split(r.URL.Path, "/")
		k = atoiOr(parts[len(parts)-1], -1)
	}
	f.mu.Lock()
	f.chunks[k] = body
	f.hdrs[k] = r.Header.Clone()
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/vnd.mesh.v2+json")
	w.WriteHeader(http.StatusAccepted)
	if k == 1 {
		_, _ = w.Write([]byte(`{"message_id":"20200529155357895317_3573F8"}`))
	}
}

func atoiOr(s string, def int) int {
	n := 0
	if s == "" {
		return def
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return def
		}
		n = n*10 + int(c-'0')
	}
	return n
}

const outboxPath = "/messageexchange/" + testMailbox + "/outbox"
const msgID = "20200529155357895317_3573F8"

func basicOpts() SendOptions {
	return SendOptions{To: "X26ABC2", WorkflowID: "TEST_WORKFLOW", Subject: "SECRET-SUBJECT 9434765919", LocalID: "ref-1"}
}

func TestFirstChunkNeverRetried(t *testing.T) {
	tests := []struct {
		name          string
		action        string
		wantUncertain bool
	}{
		{"503 answered by MESH", "503", false},
		{"417 permanent", "417", false},
		{"504 from a gateway", "504", true},
		{"connection dropped after body", "reset", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fo := newFakeOutbox(t)
			fo.script = func(string, int) string { return tc.action }
			c, _ := newTestClient(t, fo, nil)
			_, err := c.Send(context.Background(), basicOpts(), strings.NewReader("hello"), 5)
			var fce *FirstChunkError
			if !errors.As(err, &fce) {
				t.Fatalf("err = %v, want *FirstChunkError", err)
			}
			if fce.Uncertain != tc.wantUncertain {
				t.Fatalf("Uncertain = %v, want %v (err %v)", fce.Uncertain, tc.wantUncertain, err)
			}
			if got := fo.count(outboxPath); got != 1 {
				t.Fatalf("POST /outbox count = %d, want exactly 1", got)
			}
			if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "X26ABC2") {
				t.Fatalf("error leaks request data: %v", err)
			}
		})
	}
}

func TestFirstChunkConnectionRefusedIsCertain(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c, err := New(Config{BaseURL: "http://" + addr, MailboxID: testMailbox, Password: testPassword, SharedKey: testSharedKey})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Send(context.Background(), basicOpts(), strings.NewReader("hello"), 5)
	var fce *FirstChunkError
	if !errors.As(err, &fce) || fce.Uncertain {
		t.Fatalf("err = %v, want certain *FirstChunkError", err)
	}
}

// A connection reset while the body is still going out leaves an incomplete
// request: MESH cannot have created the message.
func TestFirstChunkResetMidBodyIsCertain(t *testing.T) {
	var posts atomic.Int64
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		posts.Add(1)
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		_ = conn.Close() // 32 MiB unread: far more than the socket buffers hold
	}), nil)
	payload := make([]byte, 32<<20)
	opts := basicOpts()
	opts.ChunkSize = int64(len(payload))
	_, err := c.Send(context.Background(), opts, bytes.NewReader(payload), int64(len(payload)))
	var fce *FirstChunkError
	if !errors.As(err, &fce) || fce.Uncertain {
		t.Fatalf("err = %v, want a certain *FirstChunkError", err)
	}
	if posts.Load() != 1 {
		t.Fatalf("POSTs = %d, want 1", posts.Load())
	}
}

func TestLaterChunksRetried(t *testing.T) {
	fo := newFakeOutbox(t)
	chunk2 := outboxPath + "/" + msgID + "/2"
	fo.script = func(path string, n int) string {
		if path == chunk2 {
			switch n {
			case 1:
				return "503"
			case 2:
				return "reset"
			}
		}
		return ""
	}
	c, _ := newTestClient(t, fo, func(cfg *Config) { cfg.Compress = true })
	payload := corpus(25)
	opts := basicOpts()
	opts.ChunkSize = 10
	var persisted string
	opts.OnMessageID = func(_ context.Context, id string) error {
		if fo.count(chunk2) != 0 {
			t.Errorf("OnMessageID called after chunk 2 was sent")
		}
		persisted = id
		return nil
	}
	res, err := c.Send(context.Background(), opts, bytes.NewReader(payload), int64(len(payload)))
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if res.MessageID != msgID || res.Chunks != 3 || persisted != msgID {
		t.Fatalf("result %+v persisted %q", res, persisted)
	}
	if got := fo.count(outboxPath); got != 1 {
		t.Fatalf("POST /outbox = %d, want 1", got)
	}
	if got := fo.count(chunk2); got != 3 {
		t.Fatalf("chunk 2 POSTs = %d, want 3 (503, reset, ok)", got)
	}
	got := append(append(append([]byte{}, fo.chunks[1]...), fo.chunks[2]...), fo.chunks[3]...)
	if !bytes.Equal(got, payload) {
		t.Fatalf("reassembled payload differs")
	}
	for k, want := range map[int]string{1: "1:3", 2: "2:3", 3: "3:3"} {
		h := fo.hdrs[k]
		if h.Get("Mex-Chunk-Range") != want || h.Get("Content-Encoding") != "gzip" {
			t.Fatalf("chunk %d headers: range %q encoding %q", k, h.Get("Mex-Chunk-Range"), h.Get("Content-Encoding"))
		}
		if k > 1 && h.Get("Content-Type") != "application/octet-stream" {
			t.Fatalf("chunk %d Content-Type %q", k, h.Get("Content-Type"))
		}
	}
	if fo.tokens.bad.Load() != 0 {
		t.Fatalf("%d bad or reused tokens", fo.tokens.bad.Load())
	}
}

func TestLaterChunkPermanentErrors(t *testing.T) {
	fo := newFakeOutbox(t)
	chunk2 := outboxPath + "/" + msgID + "/2"
	fo.script = func(path string, n int) string {
		if path == chunk2 {
			return "417"
		}
		return ""
	}
	c, _ := newTestClient(t, fo, nil)
	opts := basicOpts()
	opts.ChunkSize = 4
	res, err := c.Send(context.Background(), opts, strings.NewReader("abcdefghij"), 10)
	var ce *ChunkError
	if !errors.As(err, &ce) || ce.Chunk != 2 || ce.Total != 3 || ce.MessageID != msgID {
		t.Fatalf("err = %v, want ChunkError for 2/3", err)
	}
	if merr, ok := AsError(err); !ok || merr.HTTPStatus != 417 {
		t.Fatalf("err = %v, want wrapped 417", err)
	}
	if fo.count(chunk2) != 1 || res.Chunks != 1 || res.MessageID != msgID {
		t.Fatalf("chunk 2 POSTs = %d, result %+v", fo.count(chunk2), res)
	}
}

// A final chunk whose 202 was lost is answered 423 "finalised" on retry:
// that retry proves the earlier attempt completed the message. A 423 on a
// first attempt stays an error.
func TestFinalChunkLostReply(t *testing.T) {
	for _, tc := range []struct {
		name    string
		script  []string // actions for successive POSTs of chunk 2/2
		wantErr bool
	}{
		{"reply lost then 423", []string{"reset", "423"}, false},
		{"gateway timeout then 423", []string{"504", "423"}, false},
		{"423 first", []string{"423"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fo := newFakeOutbox(t)
			chunk2 := outboxPath + "/" + msgID + "/2"
			fo.script = func(path string, n int) string {
				if path == chunk2 && n <= len(tc.script) {
					return tc.script[n-1]
				}
				return ""
			}
			c, _ := newTestClient(t, fo, nil)
			opts := basicOpts()
			opts.ChunkSize = 5
			_, err := c.Send(context.Background(), opts, strings.NewReader("abcdefghij"), 10)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if got := fo.count(chunk2); got != len(tc.script) {
				t.Fatalf("chunk 2 POSTs = %d, want %d", got, len(tc.script))
			}
		})
	}
}

func TestOnMessageIDErrorAborts(t *testing.T) {
	fo := newFakeOutbox(t)
	c, _ := newTestClient(t, fo, nil)
	opts := basicOpts()
	opts.ChunkSize = 4
	boom := errors.New("redis down")
	opts.OnMessageID = func(context.Context, string) error { return boom }
	res, err := c.Send(context.Background(), opts, strings.NewReader("abcdefghij"), 10)
	if !errors.Is(err, boom) || res.MessageID != msgID {
		t.Fatalf("err = %v res = %+v", err, res)
	}
	if n := len(fo.order); n != 1 {
		t.Fatalf("%d requests, want only chunk 1", n)
	}
}

func TestContinueSend(t *testing.T) {
	fo := newFakeOutbox(t)
	c, _ := newTestClient(t, fo, nil)
	opts := basicOpts()
	opts.ChunkSize = 4
	payload := "abcdefghij"
	res, err := c.ContinueSend(context.Background(), msgID, 3, strings.NewReader(payload[8:]), 10, opts)
	if err != nil || res.Chunks != 3 {
		t.Fatalf("ContinueSend: %v %+v", err, res)
	}
	if len(fo.order) != 1 || fo.order[0] != outboxPath+"/"+msgID+"/3" || string(fo.chunks[3]) != "ij" {
		t.Fatalf("requests %v chunk3 %q", fo.order, fo.chunks[3])
	}
	if _, err := c.ContinueSend(context.Background(), msgID, 1, strings.NewReader(payload), 10, opts); err == nil {
		t.Fatal("fromChunk 1 accepted")
	}
	if _, err := c.ContinueSend(context.Background(), msgID, 4, strings.NewReader(payload), 10, opts); err == nil {
		t.Fatal("fromChunk beyond n accepted")
	}
}

func TestSendChunkPublic(t *testing.T) {
	fo := newFakeOutbox(t)
	c, _ := newTestClient(t, fo, nil)
	if err := c.SendChunk(context.Background(), msgID, 2, 2, []byte("tail"), true); err != nil {
		t.Fatalf("SendChunk: %v", err)
	}
	if string(fo.chunks[2]) != "tail" || fo.hdrs[2].Get("Mex-Chunk-Range") != "2:2" || fo.hdrs[2].Get("Content-Encoding") != "gzip" {
		t.Fatalf("chunk %q headers %v", fo.chunks[2], fo.hdrs[2])
	}
	if err := c.SendChunk(context.Background(), msgID, 1, 2, []byte("x"), false); err == nil {
		t.Fatal("chunk 1 accepted by SendChunk")
	}
}

func TestSingleChunkHeaders(t *testing.T) {
	fo := newFakeOutbox(t)
	c, _ := newTestClient(t, fo, func(cfg *Config) { cfg.ClientName = "gateway"; cfg.ClientVersion = "1.2.3" })
	opts := basicOpts()
	opts.ContentType = "application/fhir+json"
	opts.FileName = "doc.json"
	opts.Checksum = "md5:abc"
	opts.PartnerID = "p1"
	opts.Encrypted = true
	opts.Compressed = true
	res, err := c.Send(context.Background(), opts, strings.NewReader("{}"), 2)
	if err != nil || res.Chunks != 1 {
		t.Fatalf("Send: %v %+v", err, res)
	}
	h := fo.hdrs[1]
	want := map[string]string{
		"Accept": "application/vnd.mesh.v2+json", "Mex-Clientversion": "gateway;mesh_gateway==1.2.3",
		"Mex-Osname": "Linux", "Mex-Javaversion": "N/A", "Mex-Osarchitecture": "x86_64",
		"Mex-To": "X26ABC2", "Mex-Workflowid": "TEST_WORKFLOW", "Mex-Subject": opts.Subject, "Mex-Localid": "ref-1",
		"Mex-Filename": "doc.json", "Mex-Content-Checksum": "md5:abc", "Mex-Partnerid": "p1",
		"Mex-Content-Type": "application/fhir+json", "Content-Type": "application/fhir+json",
		"Mex-Chunk-Range": "1:1", "Mex-Content-Encrypted": "Y", "Mex-Content-Compressed": "Y",
	}
	for k, v := range want {
		if k == "Mex-Osarchitecture" || k == "Mex-Osname" {
			if h.Get(k) == "" {
				t.Errorf("%s missing", k)
			}
			continue
		}
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	for _, k := range []string{"Mex-Osversion", "User-Agent", "Authorization"} {
		if h.Get(k) == "" {
			t.Errorf("%s missing", k)
		}
	}
	if h.Get("Content-Encoding") != "" {
		t.Errorf("Content-Encoding set without Compress")
	}

	// Chunked: chunk 1 is octet-stream, mex-Content-Type preserved.
	opts.ChunkSize = 1
	if _, err := c.Send(context.Background(), opts, strings.NewReader("{}"), 2); err != nil {
		t.Fatal(err)
	}
	if h := fo.hdrs[1]; h.Get("Content-Type") != "application/octet-stream" || h.Get("Mex-Content-Type") != "application/fhir+json" || h.Get("Mex-Chunk-Range") != "1:2" {
		t.Fatalf("chunked first headers: %v", h)
	}
}

func TestHeaderValidation(t *testing.T) {
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name  string
		mut   func(*SendOptions)
		field string
	}{
		{"missing To", func(o *SendOptions) { o.To = "" }, "Mex-To"},
		{"missing WorkflowID", func(o *SendOptions) { o.WorkflowID = "" }, "Mex-Workflowid"},
		{"control char in subject", func(o *SendOptions) { o.Subject = "a\r\nX-Evil: 1" }, "Mex-Subject"},
		{"NUL in local id", func(o *SendOptions) { o.LocalID = "a\x00b" }, "Mex-Localid"},
		{"DEL in file name", func(o *SendOptions) { o.FileName = "a\x7fb" }, "Mex-Filename"},
		{"tab in To", func(o *SendOptions) { o.To = "X26\tABC" }, "Mex-To"},
		{"To too long", func(o *SendOptions) { o.To = long(101) }, "Mex-To"},
		{"WorkflowID too long", func(o *SendOptions) { o.WorkflowID = long(301) }, "Mex-Workflowid"},
		{"Subject too long", func(o *SendOptions) { o.Subject = long(501) }, "Mex-Subject"},
		{"LocalID too long", func(o *SendOptions) { o.LocalID = long(301) }, "Mex-Localid"},
		{"FileName too long", func(o *SendOptions) { o.FileName = long(301) }, "Mex-Filename"},
		{"Checksum too long", func(o *SendOptions) { o.Checksum = long(101) }, "Mex-Content-Checksum"},
		{"PartnerID too long", func(o *SendOptions) { o.PartnerID = long(501) }, "Mex-Partnerid"},
		{"ContentType too long", func(o *SendOptions) { o.ContentType = long(101) }, "Mex-Content-Type"},
		{"To is a URL", func(o *SendOptions) { o.To = "http://evil" }, "Mex-To"},
		{"WorkflowID is a URL", func(o *SendOptions) { o.WorkflowID = "HTTPS://evil" }, "Mex-Workflowid"},
		{"Checksum is a URL", func(o *SendOptions) { o.Checksum = "https://x" }, "Mex-Content-Checksum"},
		{"Checksum bad chars", func(o *SendOptions) { o.Checksum = "md5=abc+" }, "Mex-Content-Checksum"},
	}
	var hits atomic.Int64
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }), nil)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := basicOpts()
			opts.Subject = "Patient Jane Smith 9434765919"
			tc.mut(&opts)
			_, err := c.Send(context.Background(), opts, strings.NewReader("x"), 1)
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Field != tc.field {
				t.Fatalf("err = %v, want ValidationError on %s", err, tc.field)
			}
			if strings.Contains(err.Error(), "Jane") || strings.Contains(err.Error(), "evil") || strings.Contains(err.Error(), "aaaa") {
				t.Fatalf("error echoes the value: %v", err)
			}
		})
	}
	// Boundary values are accepted.
	ok := basicOpts()
	ok.To, ok.WorkflowID, ok.Subject = long(100), long(300), long(500)
	// The stub answers 200 with no body, so the send reaches the server and
	// fails decoding: a FirstChunkError, not a ValidationError.
	if _, err := c.Send(context.Background(), ok, strings.NewReader("x"), 1); !errors.As(err, new(*FirstChunkError)) {
		t.Fatalf("boundary values: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("server hit %d times; invalid requests must not be sent", hits.Load())
	}
	if _, err := c.Send(context.Background(), basicOpts(), strings.NewReader(""), 0); !errors.As(err, new(*ValidationError)) {
		t.Fatalf("empty message: %v", err)
	}
}

func TestSendShortBodyFails(t *testing.T) {
	fo := newFakeOutbox(t)
	c, _ := newTestClient(t, fo, nil)
	opts := basicOpts()
	opts.ChunkSize = 4
	_, err := c.Send(context.Background(), opts, strings.NewReader("abcdef"), 10)
	var ce *ChunkError
	if !errors.As(err, &ce) || ce.Chunk != 2 {
		t.Fatalf("err = %v, want ChunkError on 2 (body shorter than size)", err)
	}
}
