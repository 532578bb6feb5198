package meshbridge_test

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/meshbridge/fakemesh"
)

const (
	sender    = "X26ABC1"
	recipient = "X26ABC2"
	workflow  = "TEST_WORKFLOW"
)

func startMesh(t *testing.T) (*fakemesh.Server, string) {
	t.Helper()
	srv, err := fakemesh.New(fakemesh.DefaultConfig())
	if err != nil {
		t.Fatalf("fakemesh.New: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return srv, hs.URL
}

func meshClient(t *testing.T, baseURL, mailbox string, mutate func(*meshbridge.Config)) *meshbridge.Client {
	t.Helper()
	cfg := meshbridge.Config{
		BaseURL: baseURL, MailboxID: mailbox, Password: fakemesh.DemoPassword, SharedKey: fakemesh.DemoSharedKey,
		Retry:      meshbridge.RetryPolicy{BaseDelay: time.Millisecond, MaxDelay: 20 * time.Millisecond},
		ClientName: "meshbridge-test", ClientVersion: "0.0.1",
	}
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := meshbridge.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return c
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('a' + (i*7+i/13)%26)
	}
	return b
}

func TestFakeMeshHandshake(t *testing.T) {
	_, url := startMesh(t)
	ctx := context.Background()
	if err := meshClient(t, url, sender, nil).Handshake(ctx); err != nil {
		t.Fatalf("Handshake: %v", err)
	}
	bad := meshClient(t, url, sender, func(c *meshbridge.Config) { c.Password = "wrong" })
	err := bad.Handshake(ctx)
	if merr, ok := meshbridge.AsError(err); !ok || merr.HTTPStatus != 403 {
		t.Fatalf("bad password: %v", err)
	}
}

func TestFakeMeshSingleRoundTrip(t *testing.T) {
	_, url := startMesh(t)
	ctx := context.Background()
	alice := meshClient(t, url, sender, nil)
	bob := meshClient(t, url, recipient, nil)
	body := []byte(`{"resourceType":"Bundle"}`)
	res, err := alice.Send(ctx, meshbridge.SendOptions{
		To: recipient, WorkflowID: workflow, Subject: "subject", LocalID: "local-1", FileName: "doc.json",
		ContentType: "application/fhir+json", PartnerID: "partner", Encrypted: true, Checksum: "md5:abc",
	}, bytes.NewReader(body), int64(len(body)))
	if err != nil || res.Chunks != 1 || res.MessageID == "" {
		t.Fatalf("Send: %v %+v", err, res)
	}
	tr, err := alice.Track(ctx, res.MessageID)
	if err != nil || tr.Status != meshbridge.TrackingAccepted || tr.MessageID != res.MessageID ||
		tr.Recipient != recipient || tr.LocalID != "local-1" || tr.UploadTimestamp.IsZero() {
		t.Fatalf("Track after send: %v %+v", err, tr)
	}
	page, err := bob.Inbox(ctx, meshbridge.InboxOptions{})
	if err != nil || len(page.Messages) != 1 || page.Messages[0] != res.MessageID {
		t.Fatalf("Inbox: %v %+v", err, page)
	}
	head, err := bob.Head(ctx, res.MessageID)
	if err != nil || head.MessageID != res.MessageID || head.From != sender || head.WorkflowID != workflow {
		t.Fatalf("Head: %v %+v", err, head)
	}
	var out bytes.Buffer
	meta, err := bob.Download(ctx, res.MessageID, &out)
	if err != nil || !bytes.Equal(out.Bytes(), body) {
		t.Fatalf("Download: %v %q", err, out.String())
	}
	if meta.From != sender || meta.To != recipient || meta.WorkflowID != workflow || meta.Subject != "subject" ||
		meta.LocalID != "local-1" || meta.FileName != "doc.json" || meta.ContentType != "application/fhir+json" ||
		meta.MessageType != "DATA" || meta.PartnerID != "partner" || !meta.Encrypted || meta.Checksum != "md5:abc" ||
		meta.TotalChunks != 1 {
		t.Fatalf("metadata %+v", meta)
	}
	if err := bob.Acknowledge(ctx, res.MessageID); err != nil {
		t.Fatalf("Acknowledge: %v", err)
	}
	if tr, err := alice.Track(ctx, res.MessageID); err != nil || tr.Status != meshbridge.TrackingAcknowledged {
		t.Fatalf("Track after ack: %v %+v", err, tr)
	}
	if page, err := bob.Inbox(ctx, meshbridge.InboxOptions{}); err != nil || len(page.Messages) != 0 {
		t.Fatalf("Inbox after ack: %v %+v", err, page)
	}
}

func TestFakeMeshChunkedGzip(t *testing.T) {
	for _, compress := range []bool{true, false} {
		t.Run("compress="+strconv.FormatBool(compress), func(t *testing.T) {
			_, url := startMesh(t)
			ctx := context.Background()
			alice := meshClient(t, url, sender, func(c *meshbridge.Config) { c.Compress = compress })
			bob := meshClient(t, url, recipient, nil)
			payload := pattern(50_000)
			var midStatus string
			opts := meshbridge.SendOptions{To: recipient, WorkflowID: workflow, ChunkSize: 12_000, ContentType: "text/plain",
				OnMessageID: func(ctx context.Context, id string) error {
					tr, err := alice.Track(ctx, id)
					if err != nil {
						return err
					}
					midStatus = tr.Status
					return nil
				}}
			res, err := alice.Send(ctx, opts, bytes.NewReader(payload), int64(len(payload)))
			if err != nil || res.Chunks != 5 {
				t.Fatalf("Send: %v %+v", err, res)
			}
			if midStatus != meshbridge.TrackingUploading {
				t.Fatalf("tracking between chunks = %q, want uploading", midStatus)
			}
			if tr, err := alice.Track(ctx, res.MessageID); err != nil || tr.Status != meshbridge.TrackingAccepted {
				t.Fatalf("Track: %v %+v", err, tr)
			}
			var out bytes.Buffer
			meta, err := bob.Download(ctx, res.MessageID, &out)
			if err != nil || !bytes.Equal(out.Bytes(), payload) {
				t.Fatalf("Download: %v (%d bytes)", err, out.Len())
			}
			if meta.TotalChunks != 5 || meta.ChunkRange != "1:5" || meta.ContentType != "text/plain" {
				t.Fatalf("metadata %+v", meta)
			}
			// The message is finalised: another chunk is refused with 423.
			err = alice.SendChunk(ctx, res.MessageID, 5, 5, []byte("more"), compress)
			if merr, ok := meshbridge.AsError(err); !ok || merr.HTTPStatus != 423 {
				t.Fatalf("chunk after final: %v", err)
			}
		})
	}
}

func TestFakeMeshContinueSend(t *testing.T) {
	_, url := startMesh(t)
	ctx := context.Background()
	alice := meshClient(t, url, sender, func(c *meshbridge.Config) { c.Compress = true })
	bob := meshClient(t, url, recipient, nil)
	payload := pattern(30_000)
	opts := meshbridge.SendOptions{To: recipient, WorkflowID: workflow, ChunkSize: 10_000}
	crash := errors.New("crash after persisting id")
	var saved string
	opts.OnMessageID = func(_ context.Context, id string) error { saved = id; return crash }
	if _, err := alice.Send(ctx, opts, bytes.NewReader(payload), int64(len(payload))); !errors.Is(err, crash) {
		t.Fatalf("Send: %v", err)
	}
	if tr, err := alice.Track(ctx, saved); err != nil || tr.Status != meshbridge.TrackingUploading {
		t.Fatalf("Track after crash: %v %+v", err, tr)
	}
	opts.OnMessageID = nil
	res, err := alice.ContinueSend(ctx, saved, 2, bytes.NewReader(payload[10_000:]), int64(len(payload)), opts)
	if err != nil || res.Chunks != 3 {
		t.Fatalf("ContinueSend: %v %+v", err, res)
	}
	var out bytes.Buffer
	if _, err := bob.Download(ctx, saved, &out); err != nil || !bytes.Equal(out.Bytes(), payload) {
		t.Fatalf("Download: %v", err)
	}
}

// A resume after a restart that changed the compression threshold keeps
// chunk 1's encoding when told it (SendOptions.Gzip); left to the new
// settings, MESH refuses the changed encoding (417).
func TestFakeMeshResumeKeepsEncoding(t *testing.T) {
	_, url := startMesh(t)
	ctx := context.Background()
	before := meshClient(t, url, sender, func(c *meshbridge.Config) { c.Compress = true })
	after := meshClient(t, url, sender, func(c *meshbridge.Config) { c.Compress, c.CompressThreshold = true, 20<<20 })
	bob := meshClient(t, url, recipient, nil)
	payload := pattern(30_000)
	size := int64(len(payload))
	crash := errors.New("crash after persisting id")
	start := func() (string, bool) {
		gz := before.Gzips(size)
		opts := meshbridge.SendOptions{To: recipient, WorkflowID: workflow, ChunkSize: 10_000, Gzip: &gz}
		var saved string
		opts.OnMessageID = func(_ context.Context, id string) error { saved = id; return crash }
		if _, err := before.Send(ctx, opts, bytes.NewReader(payload), size); !errors.Is(err, crash) {
			t.Fatalf("Send: %v", err)
		}
		return saved, gz
	}
	id, gz := start()
	if !gz || after.Gzips(size) {
		t.Fatalf("setup: Gzips before %v after %v, want true then false", gz, after.Gzips(size))
	}
	opts := meshbridge.SendOptions{To: recipient, WorkflowID: workflow, ChunkSize: 10_000, Gzip: &gz}
	res, err := after.ContinueSend(ctx, id, 2, bytes.NewReader(payload[10_000:]), size, opts)
	if err != nil || res.Chunks != 3 {
		t.Fatalf("ContinueSend with chunk 1's encoding: %v %+v", err, res)
	}
	var out bytes.Buffer
	if _, err := bob.Download(ctx, id, &out); err != nil || !bytes.Equal(out.Bytes(), payload) {
		t.Fatalf("Download: %v", err)
	}

	id, _ = start()
	opts.Gzip = nil
	_, err = after.ContinueSend(ctx, id, 2, bytes.NewReader(payload[10_000:]), size, opts)
	if me, ok := meshbridge.AsError(err); !ok || me.HTTPStatus != 417 {
		t.Fatalf("ContinueSend under the new settings: %v, want MESH's 417 for a changed encoding", err)
	}
}

func TestFakeMeshInboxPagination(t *testing.T) {
	_, url := startMesh(t)
	ctx := context.Background()
	alice := meshClient(t, url, sender, nil)
	bob := meshClient(t, url, recipient, nil)
	sent := map[string]bool{}
	for i := range 23 {
		wf := workflow
		if i%5 == 0 {
			wf = "GPFED_CONSULT_REPORT"
		}
		body := []byte("message " + strconv.Itoa(i))
		res, err := alice.Send(ctx, meshbridge.SendOptions{To: recipient, WorkflowID: wf}, bytes.NewReader(body), int64(len(body)))
		if err != nil {
			t.Fatalf("Send %d: %v", i, err)
		}
		if wf == workflow {
			sent[res.MessageID] = true
		}
	}
	first, err := bob.Inbox(ctx, meshbridge.InboxOptions{MaxResults: 10, WorkflowFilter: workflow})
	if err != nil || len(first.Messages) != 10 || first.Next == "" {
		t.Fatalf("first page: %v %+v", err, first)
	}
	var got []string
	pages := 0
	err = bob.InboxAll(ctx, meshbridge.InboxOptions{MaxResults: 10, WorkflowFilter: workflow}, func(ids []string) error {
		pages++
		got = append(got, ids...)
		return nil
	})
	if err != nil || pages != 2 || len(got) != len(sent) {
		t.Fatalf("InboxAll: %v pages=%d ids=%d want %d", err, pages, len(got), len(sent))
	}
	for _, id := range got {
		if !sent[id] {
			t.Fatalf("unexpected id %s in filtered inbox", id)
		}
	}
	var all []string
	if err := bob.InboxAll(ctx, meshbridge.InboxOptions{MaxResults: 10}, func(ids []string) error {
		all = append(all, ids...)
		return nil
	}); err != nil || len(all) != 23 {
		t.Fatalf("InboxAll unfiltered: %v %d", err, len(all))
	}
	sort.Strings(all)
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("duplicate id across pages: %s", all[i])
		}
	}
}

func TestFakeMeshLookupAndSearch(t *testing.T) {
	_, url := startMesh(t)
	ctx := context.Background()
	c := meshClient(t, url, sender, nil)
	eps, err := c.EndpointLookup(ctx, "X26", workflow)
	if err != nil || len(eps) != 1 || eps[0].MailboxID != recipient || eps[0].MailboxName == "" {
		t.Fatalf("EndpointLookup: %v %+v", err, eps)
	}
	if eps, err := c.EndpointLookup(ctx, "NOPE", workflow); err != nil || len(eps) != 0 {
		t.Fatalf("EndpointLookup unknown ODS: %v %+v", err, eps)
	}
	eps, err = c.WorkflowSearch(ctx, "TEST_WORKFLOW_ACK")
	if err != nil || len(eps) != 2 {
		t.Fatalf("WorkflowSearch: %v %+v", err, eps)
	}
}

func TestFakeMeshErrors(t *testing.T) {
	srv, url := startMesh(t)
	ctx := context.Background()
	alice := meshClient(t, url, sender, nil)
	bob := meshClient(t, url, recipient, nil)

	_, err := alice.Send(ctx, meshbridge.SendOptions{To: "X99NOPE", WorkflowID: workflow}, bytes.NewReader([]byte("x")), 1)
	var fce *meshbridge.FirstChunkError
	if !errors.As(err, &fce) || fce.Uncertain {
		t.Fatalf("unknown recipient: %v", err)
	}
	if merr, ok := meshbridge.AsError(err); !ok || merr.HTTPStatus != 417 || merr.Code != meshbridge.CodeUnregisteredRecipient {
		t.Fatalf("unknown recipient: %v", err)
	}

	_, err = bob.Download(ctx, "20200529155357895317_3573F8", &bytes.Buffer{})
	if merr, ok := meshbridge.AsError(err); !ok || merr.HTTPStatus != 404 || merr.Code != meshbridge.CodeMessageDoesNotExist {
		t.Fatalf("unknown message: %v", err)
	}
	if _, err := alice.Track(ctx, "20200529155357895317_3573F8"); err == nil {
		t.Fatal("Track of unknown message succeeded")
	}

	// Only the recipient may download.
	res, err := alice.Send(ctx, meshbridge.SendOptions{To: recipient, WorkflowID: workflow}, bytes.NewReader([]byte("x")), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := alice.Download(ctx, res.MessageID, &bytes.Buffer{}); err == nil {
		t.Fatal("sender downloaded the recipient's message")
	}

	// An error REPORT arrives in the sender's inbox and downloads with an empty body.
	reportID, err := srv.InjectReport(fakemesh.Report{Mailbox: sender, Code: "14", Description: "Message not collected",
		WorkflowID: workflow, LinkedMessageID: res.MessageID, Status: "undeliverable"})
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	meta, err := alice.Download(ctx, reportID, &out)
	if err != nil || !meta.IsReport() || meta.LinkedMessageID != res.MessageID || meta.StatusCode != "14" || out.Len() != 0 {
		t.Fatalf("report: %v %+v", err, meta)
	}
	if err := alice.Acknowledge(ctx, reportID); err != nil {
		t.Fatalf("ack report: %v", err)
	}
	if tr, err := alice.Track(ctx, res.MessageID); err != nil || tr.Status != meshbridge.TrackingUndeliverable ||
		tr.StatusSuccess == nil || *tr.StatusSuccess {
		t.Fatalf("tracking after report: %v %+v", err, tr)
	}
}

// Under injected 502/503/429 answers and dropped connections (before and
// after processing), idempotent calls and later chunks recover by retrying,
// and a first chunk is never repeated: every Send creates at most one message.
func TestFakeMeshFaultsNoDuplicates(t *testing.T) {
	srv, url := startMesh(t)
	ctx := context.Background()
	retry := func(c *meshbridge.Config) {
		c.Retry = meshbridge.RetryPolicy{Attempts: 8, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond}
		c.Compress = true
	}
	alice := meshClient(t, url, sender, retry)
	bob := meshClient(t, url, recipient, retry)
	srv.SetFaults(fakemesh.Faults{ErrorRate: 0.15, DropRate: 0.15, Statuses: []int{429, 502, 503}, Seed: 7})

	const sends = 40
	var ok []string
	uncertain, certain := 0, 0
	for i := range sends {
		body := pattern(100 + i*300)
		opts := meshbridge.SendOptions{To: recipient, WorkflowID: workflow, LocalID: "fault-" + strconv.Itoa(i), ChunkSize: 3000}
		res, err := alice.Send(ctx, opts, bytes.NewReader(body), int64(len(body)))
		var fce *meshbridge.FirstChunkError
		switch {
		case err == nil:
			ok = append(ok, res.MessageID)
		case errors.As(err, &fce) && fce.Uncertain:
			uncertain++
		case errors.As(err, &fce):
			certain++
		default:
			t.Fatalf("send %d: later chunk failed despite retries: %v", i, err)
		}
	}
	if uncertain == 0 || certain == 0 {
		t.Fatalf("fault mix did not exercise both first-chunk outcomes: uncertain=%d certain=%d", uncertain, certain)
	}

	// Receive everything under faults too: inbox paging, download, ack.
	var ids []string
	if err := bob.InboxAll(ctx, meshbridge.InboxOptions{MaxResults: 10}, func(page []string) error {
		ids = append(ids, page...)
		return nil
	}); err != nil {
		t.Fatalf("InboxAll under faults: %v", err)
	}
	for _, id := range ids {
		if _, err := bob.Download(ctx, id, &bytes.Buffer{}); err != nil {
			t.Fatalf("Download under faults: %v", err)
		}
		if err := bob.Acknowledge(ctx, id); err != nil {
			t.Fatalf("Acknowledge under faults: %v", err)
		}
	}
	srv.SetFaults(fakemesh.Faults{})

	delivered := map[string]bool{}
	for _, id := range ids {
		delivered[id] = true
	}
	for _, id := range ok {
		if !delivered[id] {
			t.Fatalf("successful send %s not delivered", id)
		}
	}
	// Uploading (incomplete) messages are not in the inbox; count every
	// message the server holds from the sender instead.
	created := 0
	for _, id := range ids {
		if info, _, found := srv.Message(id); found && info.From == sender {
			created++
		}
	}
	if created < len(ok) || created > len(ok)+uncertain {
		t.Fatalf("server holds %d delivered messages for %d sends (%d ok, %d uncertain, %d certain): duplicate or lost",
			created, sends, len(ok), uncertain, certain)
	}
	t.Logf("sends: %d ok, %d uncertain, %d certain failures; %d delivered", len(ok), uncertain, certain, created)
}
