package meshbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/klauspost/compress/gzip"
)

// SendOptions are the headers of a message to send. To and WorkflowID are
// required; every value is validated before anything goes on the wire.
type SendOptions struct {
	To          string // mex-To: mailbox id or demographic routing string
	WorkflowID  string // mex-WorkflowID
	Subject     string // mex-Subject (may hold patient data: never logged)
	LocalID     string // mex-LocalID: the sender's reference, no PID
	FileName    string // mex-FileName
	ContentType string // mex-Content-Type (passed through to the recipient)
	Checksum    string // mex-Content-Checksum
	PartnerID   string // mex-PartnerID
	Encrypted   bool   // mex-Content-Encrypted: Y (passthrough flag)
	Compressed  bool   // mex-Content-Compressed: Y (passthrough flag, not transport gzip)
	// ChunkSize overrides the client's chunk size (uncompressed bytes); 0 = client default.
	ChunkSize int64
	// Gzip fixes the transport encoding of the chunks: true gzips each one
	// (Content-Encoding: gzip), false sends them as they are; nil leaves it
	// to Gzips(size). MESH refuses a chunk whose Content-Encoding differs
	// from chunk 1's (417 "cannot change content encoding"), so a caller
	// that may resume with ContinueSend records chunk 1's encoding (Gzips,
	// before Send) and passes it to both: a resume then keeps it even if the
	// client's compression settings changed in between.
	Gzip *bool
	// OnMessageID is called once chunk 1 is accepted (202) and before chunk 2
	// is sent, so the caller can persist the id; an error aborts the send.
	OnMessageID func(ctx context.Context, messageID string) error
}

// SendResult is the outcome of a send.
type SendResult struct {
	MessageID string
	Chunks    int // chunks in the message (on error: chunks accepted so far)
}

func (c *Client) chunkSizeFor(o *SendOptions) (int64, error) {
	if o.ChunkSize < 0 || o.ChunkSize > MaxChunkSize {
		return 0, &ValidationError{Field: "ChunkSize", Reason: "must be between 0 (default) and " + strconv.FormatInt(MaxChunkSize, 10) + " bytes"}
	}
	if o.ChunkSize > 0 {
		return o.ChunkSize, nil
	}
	return c.chunkSize, nil
}

func chunkCount(size, chunkSize int64) int {
	return int((size + chunkSize - 1) / chunkSize)
}

// chunkLen is the uncompressed length of chunk k (1-based).
func chunkLen(k int, size, chunkSize int64) int64 {
	return min(chunkSize, size-int64(k-1)*chunkSize)
}

// chunkBuffers are reused across the chunks of a send (and across sends via
// the client's pool). Compressed sends stream the body through gzip into two
// compressed-chunk buffers, so that chunk k+1 is gzipped while chunk k is on
// the wire and memory stays at about two chunks whatever the message size;
// uncompressed sends read each chunk into raw (kept for retries).
type chunkBuffers struct {
	raw   []byte
	z     [2]bytes.Buffer
	gz    *gzip.Writer
	level int
	// stage carries the body into gzip in small pieces: no uncompressed
	// copy of the chunk is ever held.
	stage []byte
}

// stageSize is the piece size streamed from the body into gzip.
const stageSize = 256 << 10

func (c *Client) getBuffers() *chunkBuffers {
	if b, ok := c.sendBufs.Get().(*chunkBuffers); ok {
		return b
	}
	return &chunkBuffers{level: c.level}
}

func (c *Client) putBuffers(b *chunkBuffers) { c.sendBufs.Put(b) }

func (b *chunkBuffers) rawBuf(n int64) []byte {
	if int64(cap(b.raw)) < n {
		b.raw = make([]byte, n)
	}
	return b.raw[:n]
}

// startMember resets zb and the gzip writer for one independent gzip member
// of up to n uncompressed bytes.
func (b *chunkBuffers) startMember(zb *bytes.Buffer, n int64) error {
	zb.Reset()
	// Room for the worst case (incompressible data: deflate adds a few bytes
	// per block) up front: growing a bytes.Buffer past a guess doubles it and
	// the pooled buffer keeps that size.
	zb.Grow(int(n + n/1000 + 1024))
	if b.gz == nil {
		gz, err := gzip.NewWriterLevel(zb, b.level)
		if err != nil {
			return fmt.Errorf("meshbridge: gzip: %w", err)
		}
		b.gz = gz
	} else {
		b.gz.Reset(zb)
	}
	return nil
}

// gzipInto compresses data as one independent gzip member into zb.
func (b *chunkBuffers) gzipInto(zb *bytes.Buffer, data []byte) ([]byte, error) {
	if err := b.startMember(zb, int64(len(data))); err != nil {
		return nil, err
	}
	if _, err := b.gz.Write(data); err != nil {
		return nil, fmt.Errorf("meshbridge: gzip: %w", err)
	}
	if err := b.gz.Close(); err != nil {
		return nil, fmt.Errorf("meshbridge: gzip: %w", err)
	}
	return zb.Bytes(), nil
}

// gzipFrom compresses exactly the next n bytes of body as one independent
// gzip member into zb, streaming them through a small staging buffer. A body
// that ends early is a read error (io.ErrUnexpectedEOF, or io.EOF when it
// had nothing left), as with io.ReadFull.
func (b *chunkBuffers) gzipFrom(zb *bytes.Buffer, body io.Reader, n int64) ([]byte, error) {
	if err := b.startMember(zb, n); err != nil {
		return nil, err
	}
	if b.stage == nil {
		b.stage = make([]byte, stageSize)
	}
	for left := n; left > 0; {
		m, err := io.ReadFull(body, b.stage[:min(left, int64(len(b.stage)))])
		if err != nil {
			if err == io.EOF && left < n {
				err = io.ErrUnexpectedEOF
			}
			return nil, fmt.Errorf("read message body: %w", err)
		}
		if _, err := b.gz.Write(b.stage[:m]); err != nil {
			return nil, fmt.Errorf("meshbridge: gzip: %w", err)
		}
		left -= int64(m)
	}
	if err := b.gz.Close(); err != nil {
		return nil, fmt.Errorf("meshbridge: gzip: %w", err)
	}
	return zb.Bytes(), nil
}

// preparedChunk is one gzipped chunk ready to go on the wire.
type preparedChunk struct {
	data []byte
	zb   *bytes.Buffer
	err  error
}

// gzipPipeline reads and gzips chunks in a goroutine, one chunk ahead of the
// sender, so compression (CPU) overlaps the upload (network).
type gzipPipeline struct {
	out    chan preparedChunk
	free   chan *bytes.Buffer
	cancel context.CancelFunc
	done   chan struct{}
}

func (b *chunkBuffers) startGzipPipeline(ctx context.Context, body io.Reader, from, n int, cs, size int64) *gzipPipeline {
	ctx, cancel := context.WithCancel(ctx)
	p := &gzipPipeline{out: make(chan preparedChunk), free: make(chan *bytes.Buffer, len(b.z)),
		cancel: cancel, done: make(chan struct{})}
	for i := range b.z {
		p.free <- &b.z[i]
	}
	go func() {
		defer close(p.done)
		for k := from; k <= n; k++ {
			var zb *bytes.Buffer
			select {
			case zb = <-p.free:
			case <-ctx.Done():
				return
			}
			pc := preparedChunk{zb: zb}
			pc.data, pc.err = b.gzipFrom(zb, body, chunkLen(k, size, cs))
			select {
			case p.out <- pc:
			case <-ctx.Done():
				return
			}
			if pc.err != nil {
				return
			}
		}
	}()
	return p
}

// next waits for the next chunk in order.
func (p *gzipPipeline) next(ctx context.Context) (preparedChunk, error) {
	select {
	case pc := <-p.out:
		return pc, pc.err
	case <-ctx.Done():
		return preparedChunk{}, ctx.Err()
	}
}

// release hands a sent chunk's buffer back to the producer.
func (p *gzipPipeline) release(pc preparedChunk) { p.free <- pc.zb }

// stop ends the producer and waits for it, so the buffers can be reused.
func (p *gzipPipeline) stop() {
	p.cancel()
	<-p.done
}

// writeProgress follows the first-chunk request through the transport to
// tell "MESH cannot have it" (nothing written, or the write failed part way:
// an incomplete request creates nothing) from "MESH may have it".
type writeProgress struct {
	state atomic.Int32 // 0 nothing written, 1 headers written, 2 request written, 3 write failed
}

func (p *writeProgress) trace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		WroteHeaders: func() { p.state.CompareAndSwap(0, 1) },
		WroteRequest: func(info httptrace.WroteRequestInfo) {
			if info.Err != nil {
				p.state.Store(3)
			} else {
				p.state.Store(2)
			}
		},
	}
}

// mayHaveArrived is true while the write was complete or still in flight.
func (p *writeProgress) mayHaveArrived() bool {
	s := p.state.Load()
	return s == 1 || s == 2
}

// inMemoryLen returns the unread length of the in-memory readers the
// transport recognises, or -1.
func inMemoryLen(r io.Reader) int64 {
	switch v := r.(type) {
	case *bytes.Reader:
		return int64(v.Len())
	case *bytes.Buffer:
		return int64(v.Len())
	case *strings.Reader:
		return int64(v.Len())
	}
	return -1
}

// Send sends a message of exactly size bytes read from body, split into
// chunks of the configured size (each gzipped independently when the client
// compresses). Chunk 1 is never retried: on failure a *FirstChunkError says
// whether MESH may have created the message. Later chunks are retried per
// the RetryPolicy; their failure is a *ChunkError (resume with ContinueSend
// from a freshly positioned body: when compressing, body is read up to one
// chunk ahead of the upload).
func (c *Client) Send(ctx context.Context, opts SendOptions, body io.Reader, size int64) (SendResult, error) {
	if size <= 0 {
		return SendResult{}, &ValidationError{Field: "size", Reason: "must be positive (MESH rejects an empty message)"}
	}
	cs, err := c.chunkSizeFor(&opts)
	if err != nil {
		return SendResult{}, err
	}
	n := chunkCount(size, cs)
	hdr, err := opts.firstChunkHeaders(n)
	if err != nil {
		return SendResult{}, err
	}
	hdr[hdrChunkRange] = []string{chunkRange(1, n)}
	bufs := c.getBuffers()
	defer c.putBuffers(bufs)

	var id string
	var pipe *gzipPipeline
	if c.gzipFor(&opts, size) {
		hdr[hdrContentEncoding] = []string{encodingGzip}
		pipe = bufs.startGzipPipeline(ctx, body, 1, n, cs, size)
		defer pipe.stop()
		pc, err := pipe.next(ctx)
		if err != nil {
			return SendResult{}, &FirstChunkError{Err: fmt.Errorf("meshbridge: %w", err)}
		}
		id, err = c.sendFirst(ctx, hdr, bytes.NewReader(pc.data), int64(len(pc.data)))
		pipe.release(pc)
		if err != nil {
			return SendResult{}, err
		}
	} else {
		first := chunkLen(1, size, cs)
		var payload io.Reader = io.LimitReader(body, first)
		if n == 1 && inMemoryLen(body) == first {
			// The transport writes known in-memory bodies together with
			// the headers in one buffered write.
			payload = body
		}
		if id, err = c.sendFirst(ctx, hdr, payload, first); err != nil {
			return SendResult{}, err
		}
	}
	if opts.OnMessageID != nil {
		if err := opts.OnMessageID(ctx, id); err != nil {
			return SendResult{MessageID: id, Chunks: 1}, fmt.Errorf("meshbridge: OnMessageID: %w", err)
		}
	}
	done, err := c.sendRemaining(ctx, id, 2, n, cs, size, body, bufs, pipe)
	return SendResult{MessageID: id, Chunks: done}, err
}

// ContinueSend resumes a chunked send after a crash: body must be positioned
// at the start of chunk fromChunk (2..n) and size is the TOTAL message size.
// The chunk size must match the original send, and so must the encoding:
// pass chunk 1's in opts.Gzip (nil falls back to Gzips(size), right only
// while the client's compression settings are unchanged).
func (c *Client) ContinueSend(ctx context.Context, messageID string, fromChunk int, body io.Reader, size int64, opts SendOptions) (SendResult, error) {
	if err := validatePathSegment("messageID", messageID); err != nil {
		return SendResult{}, err
	}
	if size <= 0 {
		return SendResult{}, &ValidationError{Field: "size", Reason: "must be positive"}
	}
	cs, err := c.chunkSizeFor(&opts)
	if err != nil {
		return SendResult{}, err
	}
	n := chunkCount(size, cs)
	if fromChunk < 2 || fromChunk > n {
		return SendResult{MessageID: messageID}, &ValidationError{Field: "fromChunk",
			Reason: "must be between 2 and the chunk count " + strconv.Itoa(n)}
	}
	bufs := c.getBuffers()
	defer c.putBuffers(bufs)
	var pipe *gzipPipeline
	if c.gzipFor(&opts, size) {
		pipe = bufs.startGzipPipeline(ctx, body, fromChunk, n, cs, size)
		defer pipe.stop()
	}
	done, err := c.sendRemaining(ctx, messageID, fromChunk, n, cs, size, body, bufs, pipe)
	return SendResult{MessageID: messageID, Chunks: done}, err
}

// SendChunk sends chunk number chunk (2..total) of an existing message, with
// retries. data is the uncompressed chunk; compress must match chunk 1.
func (c *Client) SendChunk(ctx context.Context, messageID string, chunk, total int, data []byte, compress bool) error {
	if err := validatePathSegment("messageID", messageID); err != nil {
		return err
	}
	if chunk < 2 || chunk > total {
		return &ValidationError{Field: hdrChunkRange, Reason: "chunk must be between 2 and total (chunk 1 is sent by Send)"}
	}
	if len(data) == 0 {
		return &ValidationError{Field: "data", Reason: "must not be empty"}
	}
	payload := data
	if compress {
		bufs := c.getBuffers()
		defer c.putBuffers(bufs)
		var err error
		if payload, err = bufs.gzipInto(&bufs.z[0], data); err != nil {
			return &ChunkError{MessageID: messageID, Chunk: chunk, Total: total, Err: err}
		}
	}
	return c.sendChunk(ctx, messageID, chunk, total, payload, compress)
}

// sendRemaining sends chunks from..n in order: from the gzip pipeline when
// compressing, else read straight into the reused chunk buffer.
func (c *Client) sendRemaining(ctx context.Context, id string, from, n int, cs, size int64, body io.Reader, bufs *chunkBuffers, pipe *gzipPipeline) (int, error) {
	for k := from; k <= n; k++ {
		if pipe != nil {
			pc, err := pipe.next(ctx)
			if err != nil {
				return k - 1, &ChunkError{MessageID: id, Chunk: k, Total: n, Err: err}
			}
			err = c.sendChunk(ctx, id, k, n, pc.data, true)
			pipe.release(pc)
			if err != nil {
				return k - 1, err
			}
			continue
		}
		data := bufs.rawBuf(chunkLen(k, size, cs))
		if _, err := io.ReadFull(body, data); err != nil {
			return k - 1, &ChunkError{MessageID: id, Chunk: k, Total: n, Err: fmt.Errorf("read message body: %w", err)}
		}
		if err := c.sendChunk(ctx, id, k, n, data, false); err != nil {
			return k - 1, err
		}
	}
	return n, nil
}

// sendChunk POSTs chunk k of n (payload already encoded), retrying per policy.
func (c *Client) sendChunk(ctx context.Context, id string, k, n int, payload []byte, gzipped bool) error {
	hdr := http.Header{
		hdrContentType: {octetStream},
		hdrChunkRange:  {chunkRange(k, n)},
	}
	if gzipped {
		hdr[hdrContentEncoding] = []string{encodingGzip}
	}
	r := request{
		op:     "send chunk",
		method: http.MethodPost,
		url:    c.mbxPath + "/outbox/" + url.PathEscape(id) + "/" + strconv.Itoa(k),
		header: hdr,
		body:   payload,
	}
	if k == n {
		r.lostReplyStatus = http.StatusLocked
	}
	resp, err := c.do(ctx, r)
	if err != nil {
		return &ChunkError{MessageID: id, Chunk: k, Total: n, Err: err}
	}
	drainClose(resp.Body)
	if resp.StatusCode/100 != 2 && resp.StatusCode != r.lostReplyStatus {
		return &ChunkError{MessageID: id, Chunk: k, Total: n, Err: newError(resp.StatusCode, resp.Header, nil)}
	}
	return nil
}

type sendWire struct {
	MessageID   string `json:"message_id"`
	MessageIDv1 string `json:"messageID"`
}

// sendFirst POSTs chunk 1 (payload already encoded, length bytes) exactly once.
func (c *Client) sendFirst(ctx context.Context, hdr http.Header, payload io.Reader, length int64) (string, error) {
	var progress writeProgress
	actx, cancel := context.WithTimeout(httptrace.WithClientTrace(ctx, progress.trace()), c.timeout)
	defer cancel()
	req, err := c.newOwnedRequest(actx, http.MethodPost, c.mbxPath+"/outbox", hdr, payload, length)
	if err != nil {
		return "", &FirstChunkError{Err: err}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		// Unless the whole request may have gone out, MESH cannot have
		// created a message (refused connection, TLS failure, body cut short).
		return "", &FirstChunkError{Err: fmt.Errorf("meshbridge: send: %w", err), Uncertain: progress.mayHaveArrived()}
	}
	defer drainClose(resp.Body)
	if resp.StatusCode/100 != 2 {
		merr := newError(resp.StatusCode, resp.Header, readErrorBody(resp))
		// A gateway timeout or bad gateway comes from a proxy in front of MESH,
		// which may have created the message after all.
		uncertain := resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout
		return "", &FirstChunkError{Err: merr, Uncertain: uncertain}
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", &FirstChunkError{Err: fmt.Errorf("meshbridge: send: read response: %w", err), Uncertain: true}
	}
	var w sendWire
	if err := json.Unmarshal(b, &w); err != nil {
		return "", &FirstChunkError{Err: fmt.Errorf("meshbridge: send: decode response: %w", err), Uncertain: true}
	}
	id := w.MessageID
	if id == "" {
		id = w.MessageIDv1
	}
	if id == "" {
		return "", &FirstChunkError{Err: errors.New("meshbridge: send: accepted without a message_id"), Uncertain: true}
	}
	if err := validatePathSegment("message_id", id); err != nil {
		return "", &FirstChunkError{Err: fmt.Errorf("meshbridge: send: unusable message_id: %w", err), Uncertain: true}
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.LogAttrs(ctx, slog.LevelDebug, "mesh message created", slog.String("message_id", id))
	}
	return id, nil
}

// newOwnedRequest is newHTTPRequest for a header map used by one request
// only: static headers and the token are added into it instead of copying.
func (c *Client) newOwnedRequest(ctx context.Context, method, target string, h http.Header, body io.Reader, length int64) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, target, requestBody(method, body, length))
	if err != nil {
		return nil, fmt.Errorf("meshbridge: build request: %w", err)
	}
	req.ContentLength = length
	req.GetBody = nil // the transport must never replay a request on its own
	maps.Copy(h, c.static)
	h[hdrAuthorization] = []string{c.authorization()}
	req.Header = h
	return req, nil
}

// compressFor says whether a message of size bytes is sent gzipped: only
// when compression is on and the message reaches CompressThreshold (small
// messages cost more CPU to compress than they save on the wire). The same
// size gives the same answer only while the settings are unchanged: a send
// resumed after a restart takes chunk 1's encoding from SendOptions.Gzip.
func (c *Client) compressFor(size int64) bool {
	return c.compress && size >= c.compressThreshold
}

// Gzips reports whether Send gzips the chunks of a message of size bytes
// when SendOptions.Gzip is unset (Compress on and size at least
// CompressThreshold). Record it before Send to resume with the same
// encoding (see SendOptions.Gzip).
func (c *Client) Gzips(size int64) bool { return c.compressFor(size) }

// gzipFor is the encoding of a send: opts.Gzip when set, else the client's.
func (c *Client) gzipFor(opts *SendOptions, size int64) bool {
	if opts.Gzip != nil {
		return *opts.Gzip
	}
	return c.compressFor(size)
}
