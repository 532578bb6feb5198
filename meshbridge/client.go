// Package meshbridge is a client for the NHS MESH REST API v2: mailbox
// handshake, chunked (optionally gzip) sends with safe retries, tracking, inbox
// paging, streaming chunked downloads, acknowledgement and endpoint lookup.
package meshbridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// DefaultChunkSize is the NHS serverless MESH client default (uncompressed).
const DefaultChunkSize int64 = 20 << 20

// MaxChunkSize is the largest chunk (uncompressed bytes) the client sends.
// MESH takes at most 100 MB in one request (SPEC: "maximum amount of data
// allowed by MESH in a single request message is 100MB"), and that is the
// body on the wire: gzip makes incompressible data slightly larger (stored
// deflate blocks cost 5 bytes per 64 KiB, plus an 18-byte gzip frame), so a
// 100,000,000-byte chunk could go out over the limit. 99,000,000 bytes stays
// under 100,000,000 gzipped or not, with room to spare.
const MaxChunkSize int64 = 99_000_000

// DefaultTimeout is PYC's per-request timeout.
const DefaultTimeout = 10 * time.Minute

// maxJSONResponse bounds a JSON answer (an inbox page of 5000 ids is ~200 KB).
const maxJSONResponse = 16 << 20

// Config configures a Client. BaseURL, MailboxID, Password and SharedKey are required.
type Config struct {
	BaseURL   string // e.g. https://msg.intspineservices.nhs.uk
	MailboxID string
	Password  string
	SharedKey string
	// TLS is the mutual-TLS config (see LoadTLSConfig); nil = system roots, no client cert.
	TLS *tls.Config
	// ProxyURL is an optional HTTP(S) proxy; empty = HTTP(S)_PROXY from the environment.
	ProxyURL string
	// ChunkSize is the uncompressed bytes per chunk; 0 = DefaultChunkSize.
	ChunkSize int64
	// Compress gzips each chunk independently (Content-Encoding: gzip on every chunk).
	Compress bool
	// CompressThreshold: messages smaller than this are sent uncompressed
	// even when Compress is set (the NHS serverless client's compress_threshold).
	CompressThreshold int64
	// CompressionLevel is the gzip level when compressing; 0 = 1 (fastest).
	CompressionLevel int
	// Timeout bounds one HTTP request including its body; 0 = DefaultTimeout.
	Timeout time.Duration
	Retry   RetryPolicy
	// ClientName and ClientVersion feed mex-ClientVersion "{name};mesh_gateway=={version}".
	ClientName    string
	ClientVersion string
	// HTTPClient replaces the built-in transport (tests, benchmarks); TLS and ProxyURL are then ignored.
	HTTPClient *http.Client
	// WrapTransport decorates the built-in transport (metrics, tracing)
	// without giving up its TLS and proxy settings.
	WrapTransport func(http.RoundTripper) http.RoundTripper
	Logger        *slog.Logger
	Now           func() time.Time
}

// Client talks to one MESH mailbox. It is safe for concurrent use.
type Client struct {
	base              string // BaseURL without trailing slash
	baseURL           *url.URL
	mailbox           string // upper case
	mbxPath           string // base + "/messageexchange/" + mailbox
	password          string
	sharedKey         string
	nonce             string
	nonceCount        atomic.Int64
	chunkSize         int64
	compress          bool
	compressThreshold int64
	level             int
	timeout           time.Duration
	retry             RetryPolicy
	http              *http.Client
	static            http.Header
	log               *slog.Logger
	now               func() time.Time
	// sendBufs and downloaders recycle per-message buffers (one chunk each)
	// so back-to-back transfers do not re-allocate and re-zero them.
	sendBufs    sync.Pool // *chunkBuffers
	downloaders sync.Pool // *downloader
}

// New validates cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	base := strings.TrimRight(strings.TrimSpace(cfg.BaseURL), "/")
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, errors.New("meshbridge: BaseURL must be an absolute http(s) URL")
	}
	mailbox := strings.ToUpper(strings.TrimSpace(cfg.MailboxID))
	if err := validatePathSegment("MailboxID", mailbox); err != nil {
		return nil, err
	}
	if strings.ContainsRune(mailbox, ':') {
		return nil, &ValidationError{Field: "MailboxID", Reason: "must not contain ':'"}
	}
	if cfg.Password == "" || cfg.SharedKey == "" {
		return nil, errors.New("meshbridge: Password and SharedKey are required")
	}
	if cfg.ChunkSize < 0 || cfg.ChunkSize > MaxChunkSize {
		return nil, fmt.Errorf("meshbridge: ChunkSize must be between 0 (default) and %d bytes", MaxChunkSize)
	}
	static, err := staticHeaders(cfg.ClientName, cfg.ClientVersion)
	if err != nil {
		return nil, err
	}
	c := &Client{
		base:              base,
		baseURL:           u,
		mailbox:           mailbox,
		mbxPath:           base + "/messageexchange/" + url.PathEscape(mailbox),
		password:          cfg.Password,
		sharedKey:         cfg.SharedKey,
		nonce:             uuid.NewString(),
		chunkSize:         cfg.ChunkSize,
		compress:          cfg.Compress,
		compressThreshold: cfg.CompressThreshold,
		level:             cfg.CompressionLevel,
		timeout:           cfg.Timeout,
		retry:             cfg.Retry.withDefaults(),
		http:              cfg.HTTPClient,
		static:            static,
		log:               cfg.Logger,
		now:               cfg.Now,
	}
	if c.chunkSize == 0 {
		c.chunkSize = DefaultChunkSize
	}
	if c.level == 0 {
		c.level = 1
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	if c.now == nil {
		c.now = time.Now
	}
	if c.http == nil {
		tr, err := newTransport(cfg.TLS, cfg.ProxyURL)
		if err != nil {
			return nil, err
		}
		// No client-wide Timeout: each attempt gets its own deadline so that
		// a download's body can stream for the whole per-request budget.
		var rt http.RoundTripper = tr
		if cfg.WrapTransport != nil {
			rt = cfg.WrapTransport(rt)
		}
		c.http = &http.Client{Transport: rt}
	}
	return c, nil
}

// MailboxID returns the (upper-case) mailbox this client authenticates as.
func (c *Client) MailboxID() string { return c.mailbox }

// authorization returns a fresh token: one nonce per client, nonce_count
// incremented per request, so no token is ever reused (MESH answers 403 to reuse).
func (c *Client) authorization() string {
	n := c.nonceCount.Add(1) - 1
	return AuthorizationHeader(c.sharedKey, c.mailbox, c.password, c.nonce, int(n), c.now())
}

// request is one HTTP exchange description.
type request struct {
	op     string // short name for logs and errors
	method string
	url    string
	header http.Header // extra headers; shared read-only across attempts
	body   []byte      // re-sendable body; nil = none
	// lostReplyStatus, when non-zero, is an error status that means success
	// if an earlier attempt failed after it may have reached MESH: a final
	// chunk whose 202 was lost is answered 423 "finalised" on retry.
	lostReplyStatus int
}

// newHTTPRequest builds one attempt with a fresh token. body may be nil.
func (c *Client) newHTTPRequest(ctx context.Context, method, target string, extra http.Header, body io.Reader, length int64) (*http.Request, error) {
	h := make(http.Header, len(c.static)+len(extra)+1)
	maps.Copy(h, extra)
	return c.newOwnedRequest(ctx, method, target, h, body, length)
}

// requestBody picks the body to hand to net/http. The transport silently
// re-sends an idempotent request (GET, HEAD) with no body when a reused
// connection fails — with the same Authorization header, which MESH refuses
// as a replayed token (403 "Error Duplicated Authentication Token"). A
// non-nil body without GetBody opts out of that (documented on
// http.Transport); for GET/HEAD net/http probes it, finds it empty and sends
// no body. Retries are then ours alone, each with a fresh token.
func requestBody(method string, body io.Reader, length int64) io.Reader {
	if body != nil && length != 0 {
		return body
	}
	if method == http.MethodGet || method == http.MethodHead {
		return emptyBody{}
	}
	return http.NoBody
}

type emptyBody struct{}

func (emptyBody) Read([]byte) (int, error) { return 0, io.EOF }
func (emptyBody) Close() error             { return nil }

// cancelOnClose ends an attempt's deadline context once the body is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelOnClose) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// drainClose reads a little of an unwanted body so the connection can be reused.
func drainClose(rc io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, rc, 64<<10)
	_ = rc.Close()
}

// readErrorBody reads at most maxErrorBody bytes of an error response and closes it.
func readErrorBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	drainClose(resp.Body)
	return b
}

// do runs an idempotent (or chunk >= 2) request with retries. On success
// (status < 400) the response is returned with its body open; the caller
// must close it. Any other status becomes an *Error.
func (c *Client) do(ctx context.Context, r request) (*http.Response, error) {
	p := c.retry
	lost := false // an earlier attempt may have been applied by MESH
	for attempt := 1; ; attempt++ {
		resp, err := c.once(ctx, r)
		if err == nil && resp.StatusCode < 400 {
			return resp, nil
		}
		if err == nil && lost && r.lostReplyStatus != 0 && resp.StatusCode == r.lostReplyStatus {
			if c.log.Enabled(ctx, slog.LevelInfo) {
				c.log.LogAttrs(ctx, slog.LevelInfo, "mesh request already applied by an earlier attempt",
					slog.String("op", r.op), slog.Int("status", resp.StatusCode), slog.Int("attempt", attempt))
			}
			return resp, nil
		}
		var retryErr error
		wait := time.Duration(0)
		if err != nil {
			if ctx.Err() != nil {
				return nil, fmt.Errorf("meshbridge: %s: %w", r.op, ctx.Err())
			}
			retryErr = fmt.Errorf("meshbridge: %s: %w", r.op, err)
			if !retryableError(err) || attempt >= p.Attempts {
				return nil, retryErr
			}
			lost = true
		} else {
			merr := newError(resp.StatusCode, resp.Header, readErrorBody(resp))
			if !p.retryableStatus(resp.StatusCode) || attempt >= p.Attempts {
				return nil, merr
			}
			if merr.RetryAfter > p.MaxDelay {
				return nil, merr // the server wants a longer pause than we may take: let the caller reschedule
			}
			wait = merr.RetryAfter
			retryErr = merr
			// a gateway error may hide a request MESH went on to apply
			lost = lost || resp.StatusCode == http.StatusBadGateway || resp.StatusCode == http.StatusGatewayTimeout
		}
		if wait == 0 {
			wait = p.backoff(attempt + 1)
		}
		if c.log.Enabled(ctx, slog.LevelWarn) {
			c.log.LogAttrs(ctx, slog.LevelWarn, "mesh request retry",
				slog.String("op", r.op), slog.Int("attempt", attempt),
				slog.Duration("wait", wait), slog.String("error", retryErr.Error()))
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, fmt.Errorf("meshbridge: %s: %w (after %v)", r.op, err, retryErr)
		}
	}
}

// once performs a single attempt with its own deadline. The response body,
// when returned, cancels the deadline on Close.
func (c *Client) once(ctx context.Context, r request) (*http.Response, error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := c.newHTTPRequest(actx, r.method, r.url, r.header, body, int64(len(r.body)))
	if err != nil {
		cancel()
		return nil, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

// getJSON runs an idempotent request and decodes a JSON answer into v
// (an empty body leaves v untouched).
func (c *Client) getJSON(ctx context.Context, r request, v any) error {
	resp, err := c.do(ctx, r)
	if err != nil {
		return err
	}
	defer drainClose(resp.Body)
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse))
	if err != nil {
		return fmt.Errorf("meshbridge: %s: read response: %w", r.op, err)
	}
	if v == nil || len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("meshbridge: %s: decode response: %w", r.op, err)
	}
	return nil
}

// Handshake validates the mailbox (POST /messageexchange/{mailbox}); MESH
// asks for one a day.
func (c *Client) Handshake(ctx context.Context) error {
	return c.getJSON(ctx, request{op: "handshake", method: http.MethodPost, url: c.mbxPath}, nil)
}

// Timestamp is a MESH time that decodes leniently: ISO 8601 with or without a
// zone or fraction, or yyyyMMddHHmmss. Zone-less values are taken as UTC.
type Timestamp struct{ time.Time }

func (t *Timestamp) UnmarshalJSON(b []byte) error {
	s := strings.TrimSpace(string(b))
	if s == "null" || s == `""` || s == "" {
		t.Time = time.Time{}
		return nil
	}
	var str string
	if err := json.Unmarshal(b, &str); err != nil {
		// some gateways send yyyyMMddHHmmss as a bare number
		str = s
	}
	ts, err := ParseTimestamp(str)
	if err != nil {
		return fmt.Errorf("meshbridge: unrecognised timestamp format: %w", err)
	}
	t.Time = ts
	return nil
}

func (t Timestamp) MarshalJSON() ([]byte, error) {
	if t.IsZero() {
		return []byte("null"), nil
	}
	return json.Marshal(t.Time.UTC().Format(time.RFC3339Nano))
}

// Tracking is the v2 tracking record of a sent message.
type Tracking struct {
	MessageID         string    `json:"message_id"`
	LocalID           string    `json:"local_id,omitempty"`
	WorkflowID        string    `json:"workflow_id,omitempty"`
	FileName          string    `json:"filename,omitempty"`
	ExpiryTime        Timestamp `json:"expiry_time"`
	UploadTimestamp   Timestamp `json:"upload_timestamp"`
	Recipient         string    `json:"recipient,omitempty"`
	RecipientName     string    `json:"recipient_name,omitempty"`
	RecipientODSCode  string    `json:"recipient_ods_code,omitempty"`
	RecipientOrgCode  string    `json:"recipient_org_code,omitempty"`
	RecipientOrgName  string    `json:"recipient_org_name,omitempty"`
	StatusSuccess     *bool     `json:"status_success"`
	Status            string    `json:"status"` // uploading | accepted | acknowledged | error | undeliverable (lower-cased)
	StatusEvent       string    `json:"status_event,omitempty"`
	StatusTimestamp   Timestamp `json:"status_timestamp"`
	StatusDescription string    `json:"status_description,omitempty"`
	StatusCode        string    `json:"status_code,omitempty"`
}

// Tracking statuses (v2, lower case).
const (
	TrackingUploading     = "uploading"
	TrackingAccepted      = "accepted"
	TrackingAcknowledged  = "acknowledged"
	TrackingError         = "error"
	TrackingUndeliverable = "undeliverable"
)

// trackingWire accepts the v2 snake_case record and, as a fallback, the v1
// camelCase one (servers that ignore the Accept version).
type trackingWire struct {
	MessageID         string     `json:"message_id"`
	LocalID           string     `json:"local_id"`
	WorkflowID        string     `json:"workflow_id"`
	FileName          string     `json:"filename"`
	ExpiryTime        Timestamp  `json:"expiry_time"`
	UploadTimestamp   Timestamp  `json:"upload_timestamp"`
	Recipient         string     `json:"recipient"`
	RecipientName     string     `json:"recipient_name"`
	RecipientODSCode  string     `json:"recipient_ods_code"`
	RecipientOrgCode  string     `json:"recipient_org_code"`
	RecipientOrgName  string     `json:"recipient_org_name"`
	StatusSuccess     any        `json:"status_success"`
	Status            string     `json:"status"`
	StatusEvent       string     `json:"status_event"`
	StatusTimestamp   Timestamp  `json:"status_timestamp"`
	StatusDescription string     `json:"status_description"`
	StatusCode        flexString `json:"status_code"`

	V1MessageID         string     `json:"messageId"`
	V1LocalID           string     `json:"localId"`
	V1WorkflowID        string     `json:"workflowId"`
	V1FileName          string     `json:"fileName"`
	V1ExpiryTime        Timestamp  `json:"expiryTime"`
	V1UploadTimestamp   Timestamp  `json:"uploadTimestamp"`
	V1RecipientName     string     `json:"recipientName"`
	V1RecipientOrgCode  string     `json:"recipientOrgCode"`
	V1RecipientOrgName  string     `json:"recipientOrgName"`
	V1RecipientODSCode  string     `json:"meshRecipientOdsCode"`
	V1StatusSuccess     any        `json:"statusSuccess"`
	V1StatusEvent       string     `json:"statusEvent"`
	V1StatusTimestamp   Timestamp  `json:"statusTimestamp"`
	V1StatusDescription string     `json:"statusDescription"`
	V1StatusCode        flexString `json:"statusCode"`
}

func successFlag(v any) *bool {
	var b bool
	switch x := v.(type) {
	case bool:
		b = x
	case string:
		if x == "" {
			return nil
		}
		b = strings.EqualFold(x, "SUCCESS") || strings.EqualFold(x, "true") || strings.EqualFold(x, "Y")
	default:
		return nil
	}
	return &b
}

func (w *trackingWire) tracking() *Tracking {
	t := &Tracking{
		MessageID: w.MessageID, LocalID: w.LocalID, WorkflowID: w.WorkflowID, FileName: w.FileName,
		ExpiryTime: w.ExpiryTime, UploadTimestamp: w.UploadTimestamp, Recipient: w.Recipient,
		RecipientName: w.RecipientName, RecipientODSCode: w.RecipientODSCode, RecipientOrgCode: w.RecipientOrgCode,
		RecipientOrgName: w.RecipientOrgName, StatusSuccess: successFlag(w.StatusSuccess),
		Status: strings.ToLower(w.Status), StatusEvent: w.StatusEvent, StatusTimestamp: w.StatusTimestamp,
		StatusDescription: w.StatusDescription, StatusCode: string(w.StatusCode),
	}
	if t.MessageID == "" && w.V1MessageID != "" {
		t.MessageID, t.LocalID, t.WorkflowID, t.FileName = w.V1MessageID, w.V1LocalID, w.V1WorkflowID, w.V1FileName
		t.ExpiryTime, t.UploadTimestamp, t.StatusTimestamp = w.V1ExpiryTime, w.V1UploadTimestamp, w.V1StatusTimestamp
		t.RecipientName, t.RecipientOrgCode, t.RecipientOrgName = w.V1RecipientName, w.V1RecipientOrgCode, w.V1RecipientOrgName
		t.RecipientODSCode = w.V1RecipientODSCode
		t.StatusSuccess = successFlag(w.V1StatusSuccess)
		t.StatusEvent, t.StatusDescription, t.StatusCode = w.V1StatusEvent, w.V1StatusDescription, string(w.V1StatusCode)
	}
	return t
}

// Track returns the tracking record of a message this mailbox sent
// (GET …/outbox/tracking?messageID=). MESH asks clients not to poll it often.
func (c *Client) Track(ctx context.Context, messageID string) (*Tracking, error) {
	if err := validatePathSegment("messageID", messageID); err != nil {
		return nil, err
	}
	var w trackingWire
	err := c.getJSON(ctx, request{op: "track", method: http.MethodGet,
		url: c.mbxPath + "/outbox/tracking?messageID=" + url.QueryEscape(messageID)}, &w)
	if err != nil {
		return nil, err
	}
	return w.tracking(), nil
}

// InboxOptions filters an inbox listing. MaxResults 0 = server default (500);
// otherwise 10..5000.
type InboxOptions struct {
	MaxResults     int
	WorkflowFilter string
	ContinueFrom   string
}

// InboxPage is one page of message ids. Next is the server's links.next
// path (empty on the last page).
type InboxPage struct {
	Messages         []string
	Next             string
	ApproxInboxCount int
}

type inboxWire struct {
	Messages []string `json:"messages"`
	Links    struct {
		Next string `json:"next"`
	} `json:"links"`
	ApproxInboxCount int `json:"approx_inbox_count"`
}

// Inbox lists the first page of message ids waiting in the inbox.
func (c *Client) Inbox(ctx context.Context, opts InboxOptions) (*InboxPage, error) {
	q := url.Values{}
	if opts.MaxResults != 0 {
		if opts.MaxResults < 10 || opts.MaxResults > 5000 {
			return nil, &ValidationError{Field: "max_results", Reason: "must be between 10 and 5000"}
		}
		q.Set("max_results", strconv.Itoa(opts.MaxResults))
	}
	if opts.WorkflowFilter != "" {
		if len(opts.WorkflowFilter) < 2 || len(opts.WorkflowFilter) > 255 {
			return nil, &ValidationError{Field: "workflow_filter", Reason: "must be 2 to 255 characters"}
		}
		q.Set("workflow_filter", opts.WorkflowFilter)
	}
	if opts.ContinueFrom != "" {
		q.Set("continue_from", opts.ContinueFrom)
	}
	target := c.mbxPath + "/inbox"
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	return c.inboxPage(ctx, target)
}

// InboxNext fetches the page named by a previous page's Next. MESH sends
// links.next as a path, so it is prefixed with the base URL; an absolute URL
// is accepted only if it points at the configured host (the token must not
// be sent elsewhere).
func (c *Client) InboxNext(ctx context.Context, nextPath string) (*InboxPage, error) {
	target, err := c.resolveLink(nextPath)
	if err != nil {
		return nil, err
	}
	return c.inboxPage(ctx, target)
}

func (c *Client) resolveLink(link string) (string, error) {
	if link == "" {
		return "", &ValidationError{Field: "links.next", Reason: "is empty"}
	}
	u, err := url.Parse(link)
	if err != nil {
		return "", &ValidationError{Field: "links.next", Reason: "is not a valid URL or path"}
	}
	if u.IsAbs() || u.Host != "" {
		if !strings.EqualFold(u.Host, c.baseURL.Host) || (u.Scheme != "" && u.Scheme != c.baseURL.Scheme) {
			return "", &ValidationError{Field: "links.next", Reason: "points at another host"}
		}
		return c.base + u.RequestURI(), nil
	}
	if !strings.HasPrefix(u.Path, "/") {
		return "", &ValidationError{Field: "links.next", Reason: "is not an absolute path"}
	}
	return c.base + u.RequestURI(), nil
}

func (c *Client) inboxPage(ctx context.Context, target string) (*InboxPage, error) {
	var w inboxWire
	if err := c.getJSON(ctx, request{op: "inbox", method: http.MethodGet, url: target}, &w); err != nil {
		return nil, err
	}
	if w.Messages == nil {
		w.Messages = []string{}
	}
	return &InboxPage{Messages: w.Messages, Next: w.Links.Next, ApproxInboxCount: w.ApproxInboxCount}, nil
}

// maxInboxPages bounds InboxAll (5000 ids a page → 50 million ids).
const maxInboxPages = 10000

// InboxAll walks every inbox page, calling fn with each page's ids. An error
// from fn stops the walk and is returned.
func (c *Client) InboxAll(ctx context.Context, opts InboxOptions, fn func(ids []string) error) error {
	page, err := c.Inbox(ctx, opts)
	for n := 0; ; n++ {
		if err != nil {
			return err
		}
		if len(page.Messages) > 0 {
			if err := fn(page.Messages); err != nil {
				return err
			}
		}
		if page.Next == "" || len(page.Messages) == 0 {
			return nil
		}
		if n >= maxInboxPages {
			return errors.New("meshbridge: inbox: too many pages")
		}
		page, err = c.InboxNext(ctx, page.Next)
	}
}

// Acknowledge removes a downloaded message from the inbox
// (PUT …/inbox/{id}/status/acknowledged).
func (c *Client) Acknowledge(ctx context.Context, messageID string) error {
	if err := validatePathSegment("messageID", messageID); err != nil {
		return err
	}
	return c.getJSON(ctx, request{op: "acknowledge", method: http.MethodPut,
		url: c.mbxPath + "/inbox/" + url.PathEscape(messageID) + "/status/acknowledged"}, nil)
}

// Endpoint is a mailbox returned by endpoint lookup or workflow search.
type Endpoint struct {
	MailboxID   string `json:"mailbox_id"`
	MailboxName string `json:"mailbox_name"`
}

type endpointsWire struct {
	Results []struct {
		MailboxID   string `json:"mailbox_id"`
		MailboxName string `json:"mailbox_name"`
		Address     string `json:"address"`     // v1
		Description string `json:"description"` // v1
	} `json:"results"`
}

func (w *endpointsWire) endpoints() []Endpoint {
	out := make([]Endpoint, 0, len(w.Results))
	for _, r := range w.Results {
		e := Endpoint{MailboxID: r.MailboxID, MailboxName: r.MailboxName}
		if e.MailboxID == "" {
			e.MailboxID, e.MailboxName = r.Address, r.Description
		}
		out = append(out, e)
	}
	return out
}

// EndpointLookup finds the mailboxes of an ODS code registered for a workflow.
func (c *Client) EndpointLookup(ctx context.Context, odsCode, workflowID string) ([]Endpoint, error) {
	if err := validatePathSegment("odsCode", odsCode); err != nil {
		return nil, err
	}
	if err := validatePathSegment("workflowID", workflowID); err != nil {
		return nil, err
	}
	var w endpointsWire
	err := c.getJSON(ctx, request{op: "endpointlookup", method: http.MethodGet,
		url: c.base + "/messageexchange/endpointlookup/" + url.PathEscape(odsCode) + "/" + url.PathEscape(workflowID)}, &w)
	if err != nil {
		return nil, err
	}
	return w.endpoints(), nil
}

// WorkflowSearch lists the mailboxes registered for a workflow.
func (c *Client) WorkflowSearch(ctx context.Context, workflowID string) ([]Endpoint, error) {
	if err := validatePathSegment("workflowID", workflowID); err != nil {
		return nil, err
	}
	var w endpointsWire
	err := c.getJSON(ctx, request{op: "workflowsearch", method: http.MethodGet,
		url: c.base + "/messageexchange/workflowsearch/" + url.PathEscape(workflowID)}, &w)
	if err != nil {
		return nil, err
	}
	return w.endpoints(), nil
}
