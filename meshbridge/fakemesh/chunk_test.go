package fakemesh

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"strconv"
	"testing"
)

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestChunkedGzipRoundTrip(t *testing.T) {
	e := newEnv(t, nil)
	parts := [][]byte{bytes.Repeat([]byte("a"), 1000), bytes.Repeat([]byte("b"), 1000), []byte("tail")}
	first := map[string]string{
		"Accept": v2, "mex-To": "X26ABC2", "mex-WorkflowID": "TEST_WORKFLOW", "mex-Chunk-Range": "1:3",
		"Content-Encoding": "gzip", "Content-Type": "application/octet-stream", "mex-Content-Type": "application/fhir+xml",
		"mex-LocalID": "chunky",
	}
	r := e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox", "X26ABC1", first, gz(t, parts[0]))
	wantStatus(t, r, 202)
	id := r.json(t)["message_id"].(string)

	chunk := func(from string, n int, rng, enc, accept string, body []byte) resp {
		h := map[string]string{"Accept": accept, "mex-Chunk-Range": rng, "Content-Type": "application/octet-stream"}
		if enc != "" {
			h["Content-Encoding"] = enc
		}
		return e.req(http.MethodPost, "/messageexchange/"+from+"/outbox/"+id+"/"+strconv.Itoa(n), from, h, body)
	}

	// Uploading: not visible to the recipient; tracking says uploading.
	if ids := e.inboxIDs("X26ABC2"); len(ids) != 0 {
		t.Fatalf("partial message visible in inbox: %v", ids)
	}
	if st := e.tracking("X26ABC1", id, v2).json(t)["status"]; st != "uploading" {
		t.Fatalf("tracking while uploading: %v", st)
	}

	errCases := []struct {
		name   string
		from   string
		n      int
		rng    string
		enc    string
		status int
		body   string
	}{
		{"range does not match URL", "X26ABC1", 2, "3:3", "gzip", 417,
			`{"message_id":"` + id + `","detail":[{"event":"SEND","code":"InvalidHeaderChunks","msg":"Invalid chunk values sent in mex-Chunk-Range header"}]}`},
		{"missing range", "X26ABC1", 2, "", "gzip", 417, ""},
		{"encoding changed", "X26ABC1", 2, "2:3", "", 417,
			`{"message_id":"` + id + `","detail":[{"event":"SEND","code":"","msg":"cannot change content encoding"}]}`},
		{"someone else's message", "X26ABC3", 2, "2:3", "gzip", 403, ""},
		// A range that does not fit the message is 417 InvalidHeaderChunks
		// (the reference lists no 406 for send-chunk, §1.2 row 9).
		{"beyond total", "X26ABC1", 4, "4:4", "gzip", 417,
			`{"message_id":"` + id + `","detail":[{"event":"SEND","code":"InvalidHeaderChunks","msg":"Invalid chunk values sent in mex-Chunk-Range header"}]}`},
		{"total does not match message", "X26ABC1", 3, "3:4", "gzip", 417,
			`{"message_id":"` + id + `","detail":[{"event":"SEND","code":"InvalidHeaderChunks","msg":"Invalid chunk values sent in mex-Chunk-Range header"}]}`},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			r := chunk(tc.from, tc.n, tc.rng, tc.enc, v2, gz(t, []byte("x")))
			wantStatus(t, r, tc.status)
			if tc.body != "" {
				wantBody(t, r, tc.body)
			}
		})
	}
	r = e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox/20200101000000000000_ABCDEF/2", "X26ABC1", map[string]string{"mex-Chunk-Range": "2:3"}, []byte("x"))
	wantStatus(t, r, 404)

	r = chunk("X26ABC1", 2, "2:3", "gzip", v1, gz(t, parts[1]))
	wantStatus(t, r, 202)
	wantBody(t, r, `{"messageID":"`+id+`","blockID":2}`)
	r = chunk("X26ABC1", 3, "3:3", "gzip", v2, gz(t, parts[2]))
	wantStatus(t, r, 202)
	wantBody(t, r, `null`)
	// Finalised: more chunks are refused with 423.
	r = chunk("X26ABC1", 3, "3:3", "gzip", v2, gz(t, parts[2]))
	wantStatus(t, r, 423)

	if ids := e.inboxIDs("X26ABC2"); len(ids) != 1 || ids[0] != id {
		t.Fatalf("inbox after final chunk: %v", ids)
	}
	if tr := e.tracking("X26ABC1", id, v1).json(t); tr["status"] != "Accepted" || tr["chunkCount"] != 3.0 || tr["contentEncoding"] != "gzip" {
		t.Fatalf("tracking after upload: %v", tr)
	}

	// Download with gzip accepted: stored bytes come back compressed, 206 then 200.
	for n := 1; n <= 3; n++ {
		path := "/messageexchange/X26ABC2/inbox/" + id
		if n > 1 {
			path += "/" + strconv.Itoa(n)
		}
		r := e.req(http.MethodGet, path, "X26ABC2", map[string]string{"Accept": v2, "Accept-Encoding": "gzip"}, nil)
		want := http.StatusPartialContent
		if n == 3 {
			want = http.StatusOK
		}
		wantStatus(t, r, want)
		if r.header.Get("Content-Encoding") != "gzip" || r.header.Get("Mex-Chunk-Range") != strconv.Itoa(n)+":3" ||
			r.header.Get("Mex-Total-Chunks") != "3" || r.header.Get("Content-Type") != "application/fhir+xml" ||
			r.header.Get("Mex-Content-Type") != "application/fhir+xml" {
			t.Fatalf("chunk %d headers %v", n, r.header)
		}
		zr, err := gzip.NewReader(bytes.NewReader(r.body))
		if err != nil {
			t.Fatalf("chunk %d not gzip: %v", n, err)
		}
		var plain bytes.Buffer
		if _, err := plain.ReadFrom(zr); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(plain.Bytes(), parts[n-1]) {
			t.Fatalf("chunk %d content differs", n)
		}
		// Without Accept-Encoding: decompressed on the fly.
		r = e.req(http.MethodGet, path, "X26ABC2", map[string]string{"Accept": v2}, nil)
		if r.header.Get("Content-Encoding") != "" || !bytes.Equal(r.body, parts[n-1]) {
			t.Fatalf("chunk %d plain download: encoding %q, %d bytes", n, r.header.Get("Content-Encoding"), len(r.body))
		}
	}
	wantStatus(t, e.req(http.MethodGet, "/messageexchange/X26ABC2/inbox/"+id+"/4", "X26ABC2", nil, nil), 404)

	info, body, ok := e.srv.Message(id)
	if !ok || !bytes.Equal(body, bytes.Join(parts, nil)) || info.ChunkCount != 3 || info.ChunksReceived != 3 {
		t.Fatalf("Message(): ok=%v info=%+v body %d bytes", ok, info, len(body))
	}
}

func TestChunkRetryIsIdempotent(t *testing.T) {
	e := newEnv(t, nil)
	r := e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox", "X26ABC1",
		map[string]string{"Accept": v2, "mex-To": "X26ABC2", "mex-WorkflowID": "TEST_WORKFLOW", "mex-Chunk-Range": "1:3"}, []byte("one-"))
	wantStatus(t, r, 202)
	id := r.json(t)["message_id"].(string)
	post := func(n int, body string) {
		r := e.req(http.MethodPost, "/messageexchange/X26ABC1/outbox/"+id+"/"+strconv.Itoa(n), "X26ABC1",
			map[string]string{"Accept": v2, "mex-Chunk-Range": strconv.Itoa(n) + ":3"}, []byte(body))
		wantStatus(t, r, 202)
	}
	post(2, "two-")
	post(2, "two-") // a retried chunk replaces, it does not count twice
	if st := e.tracking("X26ABC1", id, v2).json(t)["status"]; st != "uploading" {
		t.Fatalf("status after duplicate chunk 2: %v", st)
	}
	post(3, "three")
	_, body, _ := e.srv.Message(id)
	if string(body) != "one-two-three" {
		t.Fatalf("body %q", body)
	}
}
