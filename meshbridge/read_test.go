package meshbridge

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klauspost/compress/gzip"
)

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := gzip.NewWriter(&buf)
	_, _ = w.Write(b)
	_ = w.Close()
	return buf.Bytes()
}

// readServer answers the receive-side endpoints with canned, sandbox-shaped data.
func readServer(t *testing.T, chunk2Fails *atomic.Int64) http.Handler {
	tokens := newTokenChecker()
	mbx := "/messageexchange/" + testMailbox
	chunks := [][]byte{[]byte("first chunk|"), []byte("second chunk|"), []byte("third chunk")}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+mbx+"/inbox", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/vnd.mesh.v2+json")
		if r.URL.Query().Get("continue_from") == "" {
			if r.URL.Query().Get("max_results") != "10" || r.URL.Query().Get("workflow_filter") != "TEST_WORKFLOW" {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			_, _ = w.Write([]byte(`{"messages":["A1","B2"],"links":{"self":"` + mbx + `/inbox","next":"` + mbx +
				`/inbox?max_results=10&continue_from=B2"},"approx_inbox_count":3}`))
			return
		}
		_, _ = w.Write([]byte(`{"messages":["C3"],"links":{"self":"` + mbx + `/inbox"},"approx_inbox_count":3}`))
	})
	setMeta := func(h http.Header, k int) {
		h.Set("mex-messageid", "MSG1")
		h.Set("mex-from", "X26ABC2")
		h.Set("mex-to", testMailbox)
		h.Set("mex-workflowid", "TEST_WORKFLOW")
		h.Set("mex-subject", "hi")
		h.Set("mex-localid", "chunky")
		h.Set("mex-filename", "a.txt")
		h.Set("mex-messagetype", "DATA")
		h.Set("mex-statuscode", "00")
		h.Set("mex-statusevent", "TRANSFER")
		h.Set("mex-statusdescription", "Transferred to recipient mailbox")
		h.Set("mex-statussuccess", "SUCCESS")
		h.Set("mex-statustimestamp", "20261124192252")
		h.Set("mex-chunk-range", chunkRange(k, 3))
		h.Set("mex-total-chunks", "3")
		h.Set("mex-addresstype", "ALL")
		h.Set("mex-version", "1.0")
		h.Set("mex-content-type", "application/fhir+json")
		h.Set("mex-content-compressed", "N")
		h.Set("mex-content-encrypted", "Y")
		h.Set("mex-content-checksum", "md5:1")
		h.Set("mex-partnerid", "p")
		h.Set("content-type", "application/octet-stream")
	}
	serveChunk := func(w http.ResponseWriter, r *http.Request, k int) {
		setMeta(w.Header(), k)
		body := chunks[k-1]
		if k != 2 && r.Header.Get("Accept-Encoding") == "gzip" { // chunk 2 is served identity: each chunk stands alone
			w.Header().Set("Content-Encoding", "gzip")
			body = gz(t, body)
		}
		if k < 3 {
			w.WriteHeader(http.StatusPartialContent)
		}
		if r.Method != http.MethodHead {
			_, _ = w.Write(body)
		}
	}
	mux.HandleFunc("GET "+mbx+"/inbox/MSG1", func(w http.ResponseWriter, r *http.Request) { serveChunk(w, r, 1) })
	mux.HandleFunc("HEAD "+mbx+"/inbox/MSG1", func(w http.ResponseWriter, r *http.Request) { serveChunk(w, r, 1) })
	mux.HandleFunc("GET "+mbx+"/inbox/MSG1/{k}", func(w http.ResponseWriter, r *http.Request) {
		k := atoiOr(r.PathValue("k"), 0)
		if k == 2 && chunk2Fails != nil && chunk2Fails.Add(-1) >= 0 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		if k < 2 || k > 3 {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		serveChunk(w, r, k)
	})
	mux.HandleFunc("GET "+mbx+"/inbox/REPORT1", func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("mex-messagetype", "REPORT")
		h.Set("mex-linkedmsgid", "ABC123")
		h.Set("mex-statuscode", "14")
		h.Set("mex-statussuccess", "ERROR")
		h.Set("mex-chunk-range", "1:0")
		h.Set("mex-statustimestamp", "2026-11-29T19:22:52.375137")
	})
	mux.HandleFunc("PUT "+mbx+"/inbox/MSG1/status/acknowledged", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET "+mbx+"/outbox/tracking", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("messageID") != "MSG1" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"detail":[{"event":"TRACK","code":"20","msg":"Message does not exist"}]}`))
			return
		}
		_, _ = w.Write([]byte(`{"message_id":"MSG1","local_id":"l","workflow_id":"W","filename":"message.txt.gz",
			"expiry_time":"20200606122153","upload_timestamp":"2020-06-01T12:21:52+01:00","recipient":"X26HC005",
			"recipient_name":"APIM bebop","recipient_ods_code":"X26","recipient_org_code":"TestOrg",
			"recipient_org_name":"TEST Org","status_success":true,"status":"Accepted","status_event":"TRANSFER",
			"status_timestamp":"2020-06-01T12:21:52.375137","status_description":"Success","status_code":"01"}`))
	})
	mux.HandleFunc("GET /messageexchange/endpointlookup/X26/TEST_WORKFLOW", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"results":[{"mailbox_id":"X26ABC2","mailbox_name":"TESTMB2"}]}`))
	})
	mux.HandleFunc("GET /messageexchange/workflowsearch/TEST_WORKFLOW", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"query_id":"q","results":[{"address":"X26ABC2","description":"TESTMB2","endpoint_type":"MESH"}]}`))
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokens.check(r) || r.Header.Get("Accept") != acceptV2 {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func TestReceiveSide(t *testing.T) {
	var fails atomic.Int64
	fails.Store(1)
	c, srv := newTestClient(t, readServer(t, &fails), nil)
	ctx := context.Background()

	page, err := c.Inbox(ctx, InboxOptions{MaxResults: 10, WorkflowFilter: "TEST_WORKFLOW"})
	if err != nil || len(page.Messages) != 2 || page.ApproxInboxCount != 3 || page.Next == "" {
		t.Fatalf("Inbox: %v %+v", err, page)
	}
	next, err := c.InboxNext(ctx, page.Next)
	if err != nil || len(next.Messages) != 1 || next.Messages[0] != "C3" || next.Next != "" {
		t.Fatalf("InboxNext: %v %+v", err, next)
	}
	var all []string
	if err := c.InboxAll(ctx, InboxOptions{MaxResults: 10, WorkflowFilter: "TEST_WORKFLOW"}, func(ids []string) error {
		all = append(all, ids...)
		return nil
	}); err != nil || strings.Join(all, ",") != "A1,B2,C3" {
		t.Fatalf("InboxAll: %v %v", err, all)
	}
	if _, err := c.InboxNext(ctx, "https://evil.example/messageexchange/x/inbox"); !errors.As(err, new(*ValidationError)) {
		t.Fatalf("InboxNext to another host: %v", err)
	}
	if _, err := c.InboxNext(ctx, srv.URL+page.Next); err != nil {
		t.Fatalf("InboxNext absolute same-host URL: %v", err)
	}
	if _, err := c.Inbox(ctx, InboxOptions{MaxResults: 5}); !errors.As(err, new(*ValidationError)) {
		t.Fatalf("max_results 5 accepted: %v", err)
	}

	var out bytes.Buffer
	meta, err := c.Download(ctx, "MSG1", &out)
	if err != nil {
		t.Fatalf("Download: %v", err)
	}
	if out.String() != "first chunk|second chunk|third chunk" {
		t.Fatalf("payload %q", out.String())
	}
	if fails.Load() != -1 {
		t.Fatalf("chunk 2's 502 was not retried")
	}
	want := MessageMetadata{MessageID: "MSG1", From: "X26ABC2", To: testMailbox, WorkflowID: "TEST_WORKFLOW", Subject: "hi",
		LocalID: "chunky", FileName: "a.txt", ContentType: "application/fhir+json", MessageType: "DATA", StatusCode: "00",
		StatusEvent: "TRANSFER", StatusDescription: "Transferred to recipient mailbox", StatusSuccess: "SUCCESS",
		StatusTimestamp: time.Date(2026, 11, 24, 19, 22, 52, 0, time.UTC), ChunkRange: "1:3", TotalChunks: 3,
		Checksum: "md5:1", Compressed: false, Encrypted: true, AddressType: "ALL", Version: "1.0", PartnerID: "p",
		ContentEncoding: "gzip"}
	got := *meta
	got.Raw = nil
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("metadata\n got %+v\nwant %+v", got, want)
	}
	if meta.Raw.Get("Mex-Total-Chunks") != "3" {
		t.Fatal("Raw headers missing")
	}

	head, err := c.Head(ctx, "MSG1")
	if err != nil || head.MessageID != "MSG1" || head.TotalChunks != 3 {
		t.Fatalf("Head: %v %+v", err, head)
	}
	if err := c.Acknowledge(ctx, "MSG1"); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}

	out.Reset()
	rep, err := c.Download(ctx, "REPORT1", &out)
	if err != nil || !rep.IsReport() || rep.LinkedMessageID != "ABC123" || out.Len() != 0 ||
		rep.StatusTimestamp.IsZero() {
		t.Fatalf("report download: %v %+v", err, rep)
	}

	tr, err := c.Track(ctx, "MSG1")
	if err != nil {
		t.Fatalf("Track: %v", err)
	}
	if tr.Status != TrackingAccepted || tr.StatusSuccess == nil || !*tr.StatusSuccess || tr.RecipientODSCode != "X26" ||
		!tr.ExpiryTime.Equal(time.Date(2020, 6, 6, 12, 21, 53, 0, time.UTC)) ||
		!tr.UploadTimestamp.Equal(time.Date(2020, 6, 1, 11, 21, 52, 0, time.UTC)) ||
		tr.StatusTimestamp.Nanosecond() != 375137000 {
		t.Fatalf("tracking %+v", tr)
	}
	if _, err := c.Track(ctx, "NOPE"); err == nil {
		t.Fatal("Track of unknown id succeeded")
	} else if merr, ok := AsError(err); !ok || merr.HTTPStatus != 404 || merr.Code != "20" {
		t.Fatalf("Track unknown: %v", err)
	}

	eps, err := c.EndpointLookup(ctx, "X26", "TEST_WORKFLOW")
	if err != nil || len(eps) != 1 || eps[0] != (Endpoint{MailboxID: "X26ABC2", MailboxName: "TESTMB2"}) {
		t.Fatalf("EndpointLookup: %v %+v", err, eps)
	}
	eps, err = c.WorkflowSearch(ctx, "TEST_WORKFLOW")
	if err != nil || len(eps) != 1 || eps[0].MailboxID != "X26ABC2" {
		t.Fatalf("WorkflowSearch (v1 shape): %v %+v", err, eps)
	}
	if _, err := c.Download(ctx, "../admin", &out); !errors.As(err, new(*ValidationError)) {
		t.Fatalf("path traversal id accepted: %v", err)
	}
}

func TestParseTimestamp(t *testing.T) {
	want := time.Date(2026, 11, 29, 19, 22, 52, 0, time.UTC)
	for _, s := range []string{"2026-11-29T19:22:52", "2026-11-29T19:22:52Z", "2026-11-29T20:22:52+01:00",
		"20261129192252", "2026-11-29 19:22:52"} {
		got, err := ParseTimestamp(s)
		if err != nil || !got.Equal(want) {
			t.Errorf("%q → %v %v", s, got, err)
		}
	}
	if _, err := ParseTimestamp("yesterday"); err == nil {
		t.Error("garbage parsed")
	}
}

// When a reused keep-alive connection dies after MESH has seen a GET,
// net/http would replay the request with the same token, which MESH refuses
// as a duplicate. Every retry must carry a fresh token.
func TestRetriedGetNeverReplaysToken(t *testing.T) {
	tokens := newTokenChecker()
	var hits atomic.Int64
	c, _ := newTestClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !tokens.check(r) {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		if hits.Add(1) == 2 { // seen and authenticated, then the reply is lost
			conn, _, _ := http.NewResponseController(w).Hijack()
			_ = conn.Close()
			return
		}
		_, _ = w.Write([]byte(`{"message_id":"MSG1","status":"accepted"}`))
	}), nil)
	for i := range 2 {
		if _, err := c.Track(context.Background(), "MSG1"); err != nil {
			t.Fatalf("Track %d: %v", i, err)
		}
	}
	if hits.Load() != 3 || tokens.bad.Load() != 0 {
		t.Fatalf("hits=%d bad tokens=%d: a token was replayed", hits.Load(), tokens.bad.Load())
	}
}
