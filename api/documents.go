package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"reflect"
	"strings"

	"github.com/bytedance/sonic"
	"github.com/gin-gonic/gin"

	"github.com/meshgateway/gateway/itk"
	"github.com/meshgateway/gateway/tracking"
)

// AcceptedResponse is the 202 body of POST /v1/documents.
type AcceptedResponse struct {
	ID       string            `json:"id" example:"0b0a5f4e-7a43-4c59-a4a5-1f0e6f6f9a10"`
	Status   tracking.State    `json:"status" example:"accepted"`
	Links    map[string]string `json:"links"`
	Warnings []string          `json:"warnings,omitempty"`
}

// postDocument godoc
// @Summary      Send a document to a patient's GP practice
// @Description  Builds a GP Connect Send Document (ITK3) message from a simple request and queues it for MESH.
// @Description  Send JSON (`documents[].data` base64) or multipart/form-data with a `metadata` JSON part followed by a `file` part.
// @Description  The recipient is the patient's registered practice (MESH GP lookup) unless `recipient.mailbox` or `recipient.odsCode` is given.
// @Tags         documents
// @Accept       json
// @Produce      json
// @Security     BearerAuth
// @Param        Idempotency-Key  header  string           false  "Retry-safe key: the same key and body return the original message"
// @Param        request          body    itk.SendRequest  true   "Send Document request"
// @Success      202  {object}  AcceptedResponse
// @Failure      400  {object}  Problem
// @Failure      401  {object}  Problem
// @Failure      403  {object}  Problem
// @Failure      409  {object}  Problem
// @Failure      413  {object}  Problem
// @Failure      415  {object}  Problem
// @Failure      422  {object}  Problem
// @Failure      429  {object}  Problem
// @Failure      503  {object}  Problem
// @Router       /v1/documents [post]
func (s *server) postDocument(c *gin.Context) {
	caller := callerOf(c)
	mediaType, params, err := mime.ParseMediaType(c.GetHeader("Content-Type"))
	if err != nil {
		mediaType = ""
	}
	c.Request.Body = http.MaxBytesReader(c.Writer, c.Request.Body, s.MaxBodyBytes)
	idemKey, ok := s.idempotencyKey(c)
	if !ok {
		return
	}

	var (
		req      itk.SendRequest
		hasher   = requestHasher(idemKey)
		mr       *multipart.Reader
		uploaded *countingReader // the multipart file part, counted as it streams
	)
	switch mediaType {
	case "application/json":
		body, err := readBody(c.Request.Body, c.Request.ContentLength, s.MaxBodyBytes)
		if err != nil {
			_ = c.Error(bodyReadError(err, s.MaxBodyBytes))
			return
		}
		hasher.Write(body)
		if err := decodeStrictJSON(body, &req); err != nil {
			_ = c.Error(&Error{Status: http.StatusBadRequest, Code: "malformed_json", Title: "Malformed JSON",
				Detail: "The request body is not a valid Send Document request: " + err.Error(), Err: err})
			return
		}
	case "multipart/form-data":
		mr = multipart.NewReader(c.Request.Body, params["boundary"])
		if params["boundary"] == "" {
			_ = c.Error(newError(http.StatusBadRequest, "malformed_multipart", "Malformed multipart body", "The Content-Type has no boundary."))
			return
		}
		if err := readMetadataPart(mr, &req, hasher); err != nil {
			_ = c.Error(err)
			return
		}
	default:
		_ = c.Error(newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
			"Send application/json, or multipart/form-data with a 'metadata' part and a 'file' part."))
		return
	}

	if apiErr := s.authoriseSender(caller, req.Sender.Mailbox, req.Sender.ODSCode); apiErr != nil {
		_ = c.Error(apiErr)
		return
	}
	if mr != nil {
		if uploaded, err = s.attachFilePart(mr, &req, hasher); err != nil {
			_ = c.Error(err)
			return
		}
	}
	if err := s.resolveRecipient(c, &req); err != nil {
		_ = c.Error(err)
		return
	}

	msg, err := itk.Build(&req, itk.BuildOptions{Now: s.Now})
	if err != nil {
		_ = c.Error(buildError(err))
		return
	}
	rec := s.newRecord(caller, req.Sender.Mailbox, msg.Metadata, idemKey)
	rec.BundleID = msg.BundleIdentifier
	rec.MessageHeaderID = msg.MessageHeaderID
	rec.SenderReference = msg.SenderReference

	// The message is encoded straight into Redis: a 100 MB upload never sits
	// whole in memory. The request hash covers the file part too, so it is
	// only final once the encoder has drained the upload (the store reads it
	// after the payload ends).
	pr, pw := io.Pipe()
	go func() {
		err := msg.Encode(pw)
		if err == nil && mr != nil {
			err = drainParts(mr)
		}
		if err != nil && mr != nil {
			err = fmt.Errorf("%w: %w", errUploadBroken, err)
		}
		if idemKey != "" {
			rec.RequestHash = hex.EncodeToString(hasher.Sum(nil))
		}
		pw.CloseWithError(err)
	}()
	stored, created, err := s.Store.Accept(c.Request.Context(), rec, pr)
	_ = pr.CloseWithError(errors.New("accept finished"))
	if err != nil {
		_ = c.Error(storeError(err))
		return
	}
	s.log.InfoContext(c.Request.Context(), "document accepted", "request_id", requestID(c), "message_id", stored.ID,
		"client_id", caller.ClientID, "mailbox", stored.Mailbox, "created", created, "payload_bytes", stored.PayloadSize)
	s.writeAccepted(c, stored, created, s.requestWarnings(&req, uploaded))
}

func (s *server) writeAccepted(c *gin.Context, m *tracking.Message, created bool, warnings []string) {
	loc := "/v1/messages/" + m.ID
	c.Header("Location", loc)
	if !created {
		c.Header("Idempotent-Replayed", "true")
	}
	c.JSON(http.StatusAccepted, AcceptedResponse{ID: m.ID, Status: m.State, Links: map[string]string{"self": loc}, Warnings: warnings})
}

// newRecord is the tracking record of a request; the store sets its state,
// times and payload size.
func (s *server) newRecord(caller *Caller, mailbox string, md itk.MeshMetadata, idemKey string) *tracking.Message {
	return &tracking.Message{
		ID: s.NewID(), ClientID: caller.ClientID,
		// MESH mailbox ids are upper case; clients may write them either way.
		Mailbox: strings.ToUpper(strings.TrimSpace(mailbox)), To: md.To, WorkflowID: md.WorkflowID, Subject: md.Subject, LocalID: md.LocalID,
		FileName: md.FileName, ContentType: md.ContentType, IdempotencyKey: idemKey,
	}
}

// idempotencyKey validates the optional Idempotency-Key header.
func (s *server) idempotencyKey(c *gin.Context) (string, bool) {
	key := c.GetHeader("Idempotency-Key")
	if key == "" {
		return "", true
	}
	if len(key) > 255 || strings.ContainsFunc(key, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
		_ = c.Error(newError(http.StatusBadRequest, "bad_idempotency_key", "Invalid Idempotency-Key",
			"Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is ideal)."))
		return "", false
	}
	return key, true
}

// authoriseSender checks the client may send as this mailbox and ODS code.
func (s *server) authoriseSender(caller *Caller, mailbox, ods string) *Error {
	if mailbox == "" {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request", Title: "Invalid request",
			Problems: []FieldProblem{{Field: "sender.mailbox", Message: "is required: the MESH mailbox you send from"}}}
	}
	if !caller.MaySendAs(mailbox) {
		return newError(http.StatusForbidden, "mailbox_forbidden", "Mailbox not allowed",
			"This client is not registered to send from MESH mailbox "+mailbox+".")
	}
	if ods != "" && !caller.MayUseODS(ods) {
		return newError(http.StatusForbidden, "ods_forbidden", "ODS code not allowed",
			"This client is not registered to send as organisation "+ods+".")
	}
	return nil
}

// resolveRecipient turns recipient.odsCode into a mailbox via MESH endpoint lookup.
func (s *server) resolveRecipient(c *gin.Context, req *itk.SendRequest) error {
	if req.Recipient == nil || req.Recipient.ODSCode == "" || req.Recipient.Mailbox != "" {
		return nil
	}
	if s.Resolver == nil {
		return newError(http.StatusUnprocessableEntity, "lookup_unavailable", "Endpoint lookup unavailable",
			"This gateway cannot resolve ODS codes; give recipient.mailbox instead.")
	}
	mailbox, err := s.Resolver.ResolveODS(c.Request.Context(), req.Sender.Mailbox, req.Recipient.ODSCode, itk.WorkflowSendDocument)
	if errors.Is(err, ErrNoEndpoint) {
		return &Error{Status: http.StatusUnprocessableEntity, Code: "recipient_not_found", Title: "Recipient not found",
			Detail: "MESH endpoint lookup found no mailbox for that ODS code and workflow " + itk.WorkflowSendDocument + ".", Err: err}
	}
	if err != nil {
		return &Error{Status: http.StatusServiceUnavailable, Code: "lookup_failed", Title: "Endpoint lookup failed",
			Detail: "MESH endpoint lookup is unavailable; nothing was accepted, retry later.", Err: err,
			Header: http.Header{"Retry-After": {"30"}}}
	}
	req.Recipient.Mailbox = mailbox
	return nil
}

// ErrNoEndpoint is returned by a RecipientResolver when MESH has no mailbox.
var ErrNoEndpoint = errors.New("no MESH endpoint for ODS code")

// requestWarnings names what was accepted but may trouble the practice:
// every document over the size GP systems recommend (uploaded, a multipart
// file part, stands in for documents[0]'s data) and a missing care setting
// type.
func (s *server) requestWarnings(req *itk.SendRequest, uploaded *countingReader) []string {
	var out []string
	if req.CareSetting == nil || req.CareSetting.Type == nil {
		out = append(out, "careSetting.type is missing: Send Document v2's release notes call the care setting type required, "+
			"and GP systems use it with documents[0].type to file the document")
	}
	for i, d := range req.Documents {
		size := int64(len(d.Data))
		if i == 0 && uploaded != nil {
			size = uploaded.n
		}
		if size > s.RecommendedBytes {
			out = append(out, fmt.Sprintf("documents[%d] is %.1f MB; GP systems recommend at most %.0f MB and may reject larger messages (ITK3 20015 Message too large)",
				i, float64(size)/1e6, float64(s.RecommendedBytes)/(1<<20)))
		}
	}
	return out
}

// maxMetadataBytes bounds the multipart 'metadata' part: the request without
// document data is a few kilobytes.
const maxMetadataBytes = 1 << 20

// readMetadataPart reads the first multipart part, which must be "metadata".
func readMetadataPart(mr *multipart.Reader, req *itk.SendRequest, h hash.Hash) error {
	part, err := mr.NextPart()
	if err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "malformed_multipart", Title: "Malformed multipart body",
			Detail: "Could not read the first part; send a 'metadata' JSON part then a 'file' part.", Err: safeMultipartError(err)}
	}
	defer part.Close()
	if part.FormName() != "metadata" {
		return newError(http.StatusBadRequest, "metadata_first", "Metadata part must come first",
			"The first part must be named 'metadata' (the JSON request without document data), followed by the 'file' part.")
	}
	body, err := io.ReadAll(io.LimitReader(part, maxMetadataBytes+1))
	if err != nil {
		return bodyReadError(err, maxMetadataBytes)
	}
	if len(body) > maxMetadataBytes {
		return newError(http.StatusRequestEntityTooLarge, "metadata_too_large", "Metadata part too large",
			fmt.Sprintf("The 'metadata' part may be at most %d bytes; send the document itself in the 'file' part.", maxMetadataBytes))
	}
	h.Write(body)
	if err := decodeStrictJSON(body, req); err != nil {
		return &Error{Status: http.StatusBadRequest, Code: "malformed_json", Title: "Malformed metadata JSON",
			Detail: "The 'metadata' part is not a valid Send Document request: " + err.Error(), Err: err}
	}
	return nil
}

// attachFilePart makes the "file" part the primary document's content
// stream and returns its byte counter.
func (s *server) attachFilePart(mr *multipart.Reader, req *itk.SendRequest, h hash.Hash) (*countingReader, error) {
	part, err := mr.NextPart()
	if err != nil {
		return nil, &Error{Status: http.StatusBadRequest, Code: "missing_file", Title: "Missing file part",
			Detail: "A multipart request needs a 'file' part after 'metadata'.", Err: safeMultipartError(err)}
	}
	if part.FormName() != "file" {
		return nil, newError(http.StatusBadRequest, "missing_file", "Missing file part", "The second part must be named 'file'.")
	}
	if len(req.Documents) == 0 {
		req.Documents = []itk.Document{{}}
	}
	doc := &req.Documents[0]
	if len(doc.Data) > 0 {
		return nil, newError(http.StatusBadRequest, "duplicate_content", "Document given twice",
			"documents[0].data must be empty when the content comes in the 'file' part.")
	}
	if doc.ContentType == "" {
		doc.ContentType = part.Header.Get("Content-Type")
	}
	if doc.FileName == "" {
		doc.FileName = part.FileName()
	}
	counted := &countingReader{r: &nonEmptyReader{r: part}}
	doc.Reader = io.TeeReader(counted, h)
	doc.Size = -1
	return counted, nil
}

// drainParts refuses anything after the file part.
func drainParts(mr *multipart.Reader) error {
	if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
		if err == nil {
			return errors.New("unexpected extra multipart part after 'file'")
		}
		return safeMultipartError(err)
	}
	return nil
}

// errMalformedPart stands for multipart parsing errors, whose text quotes
// the offending header line: part headers carry file names, which often
// hold a patient's name or NHS number, and these errors are logged.
var errMalformedPart = errors.New("malformed multipart part (headers or boundary)")

// safeMultipartError keeps the kinds of error the handlers branch on (a
// body cut short, a body over the limit) and drops any other error's text.
func safeMultipartError(err error) error {
	var tooBig *http.MaxBytesError
	switch {
	case err == nil, errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &tooBig):
		return err
	default:
		return errMalformedPart
	}
}

// errUploadBroken marks a multipart upload that could not be read to its
// end (cut short, or extra parts after 'file').
var errUploadBroken = errors.New("the multipart upload ended early or had extra parts")

// nonEmptyReader fails an empty upload so it is not stored as an empty document.
type nonEmptyReader struct {
	r    io.Reader
	seen bool
}

var errEmptyFile = errors.New("the 'file' part is empty")

func (n *nonEmptyReader) Read(p []byte) (int, error) {
	k, err := n.r.Read(p)
	if k > 0 {
		n.seen = true
	}
	if errors.Is(err, io.EOF) && !n.seen {
		return k, errEmptyFile
	}
	return k, err
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

// strictJSON decodes request bodies: unknown fields are errors. sonic (a
// well-kept, encoding/json-compatible decoder already used by gin) decodes a
// 100 KB base64 document several times faster than encoding/json.
var strictJSON = sonic.Config{DisallowUnknownFields: true, ValidateString: true}.Froze()

// readBody reads a whole request body into a buffer sized from
// Content-Length (io.ReadAll would copy a 130 KB body about ten times).
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	var buf bytes.Buffer
	if contentLength > 0 && contentLength <= limit {
		buf.Grow(int(contentLength) + 1)
	}
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// decodeStrictJSON decodes body into v, refusing unknown fields and
// trailing data. Its errors never quote the request: sonic's own messages
// show the input around the fault, which may be an NHS number or a name, and
// these errors are rendered to the caller and logged. On failure the body is
// decoded again with encoding/json, whose messages name the field path, the
// expected type and at most one offending character.
func decodeStrictJSON(body []byte, v any) error {
	err := strictJSON.Unmarshal(body, v)
	if err == nil {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	scratch := reflect.New(reflect.TypeOf(v).Elem()).Interface()
	serr := dec.Decode(scratch)
	var syn *json.SyntaxError
	switch {
	case serr == nil && dec.More():
		return errors.New("unexpected data after the JSON object")
	case errors.As(serr, &syn):
		return fmt.Errorf("%s (at byte %d)", strings.TrimPrefix(syn.Error(), "json: "), syn.Offset)
	case serr != nil:
		return errors.New(strings.TrimPrefix(serr.Error(), "json: "))
	default:
		return errors.New("the body is not valid JSON for this request")
	}
}

func bodyReadError(err error, limit int64) *Error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: "payload_too_large", Title: "Request too large",
			Detail: fmt.Sprintf("The request exceeds this gateway's limit of %d bytes. GP systems recommend documents of at most 5 MB.", limit), Err: err}
	}
	return &Error{Status: http.StatusBadRequest, Code: "unreadable_body", Title: "Unreadable body", Detail: "The request body could not be read.", Err: err}
}

// buildError maps itk.Build failures to 422 with every field problem.
func buildError(err error) *Error {
	var re *itk.RequestError
	if errors.As(err, &re) {
		e := &Error{Status: http.StatusUnprocessableEntity, Code: "invalid_request", Title: "Invalid Send Document request",
			Detail: "Fix every listed field and send again.", Err: err}
		for _, p := range re.Problems {
			e.Problems = append(e.Problems, FieldProblem{Field: p.Field, Message: p.Message})
		}
		return e
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return bodyReadError(err, tooBig.Limit)
	}
	if errors.Is(err, errEmptyFile) {
		return newError(http.StatusUnprocessableEntity, "empty_document", "Empty document", "The 'file' part is empty.")
	}
	return &Error{Status: http.StatusInternalServerError, Code: "build_failed", Title: "Could not build the ITK3 message", Err: err}
}

// storeError maps tracking store failures; a failed Accept means nothing was accepted.
func storeError(err error) *Error {
	switch {
	case errors.Is(err, tracking.ErrIdempotencyConflict):
		return &Error{Status: http.StatusConflict, Code: "idempotency_conflict", Title: "Idempotency-Key reused",
			Detail: "This Idempotency-Key was already used with a different request body.", Err: err}
	case errors.Is(err, errEmptyFile):
		return &Error{Status: http.StatusUnprocessableEntity, Code: "empty_document", Title: "Empty document", Detail: "The 'file' part is empty.", Err: err}
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return bodyReadError(err, tooBig.Limit)
	}
	var re *itk.RequestError
	if errors.As(err, &re) {
		return buildError(err)
	}
	if errors.Is(err, context.Canceled) {
		return &Error{Status: http.StatusBadRequest, Code: "request_cancelled", Title: "Request cancelled", Err: err}
	}
	if errors.Is(err, errUploadBroken) {
		return &Error{Status: http.StatusBadRequest, Code: "malformed_multipart", Title: "Malformed multipart body", Detail: "The upload ended early or had extra parts.", Err: err}
	}
	return &Error{Status: http.StatusServiceUnavailable, Code: "store_unavailable", Title: "Tracking store unavailable",
		Detail: "The message could not be stored durably, so it was NOT accepted; retry later.", Err: err,
		Header: http.Header{"Retry-After": {"5"}}}
}

// requestHasher hashes the request for Idempotency-Key conflict checks; a
// request without a key is never compared, so it is not hashed.
func requestHasher(idemKey string) hash.Hash {
	if idemKey == "" {
		return nopHash{}
	}
	return sha256.New()
}

// nopHash is a hash.Hash that ignores its input.
type nopHash struct{}

func (nopHash) Write(p []byte) (int, error) { return len(p), nil }
func (nopHash) Sum(b []byte) []byte         { return b }
func (nopHash) Reset()                      {}
func (nopHash) Size() int                   { return 0 }
func (nopHash) BlockSize() int              { return 1 }
