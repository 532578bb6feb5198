package fakemesh

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// maxRequestBody is the SPEC's 100 MB limit for one request (one chunk).
const maxRequestBody = 100 << 20

const defaultMaxResults = 500

func (s *Server) handleHandshake(c *call) {
	var missing []fieldError
	for _, h := range [...]struct{ canon, lower string }{
		{"Mex-Clientversion", "mex-clientversion"},
		{"Mex-Osname", "mex-osname"},
		{"Mex-Osversion", "mex-osversion"},
	} {
		if c.r.Header.Get(h.canon) == "" {
			missing = append(missing, missingField("header", h.lower))
		}
	}
	if len(missing) > 0 {
		writeValidation(c, missing)
		return
	}
	if c.ver >= 2 {
		writeEmpty(c, http.StatusOK)
		return
	}
	b := append([]byte(`{"mailboxId":`), appendJSONString(nil, c.mailbox.id)...)
	writeJSON(c, http.StatusOK, append(b, '}'))
}

// mexLimits are the SPEC maxLength values of the send headers.
var mexLimits = [...]struct {
	canon, lower string
	max          int
}{
	{"Mex-To", "mex-to", 100},
	{"Mex-Workflowid", "mex-workflowid", 300},
	{"Mex-Chunk-Range", "mex-chunk-range", 20},
	{"Mex-Subject", "mex-subject", 500},
	{"Mex-Localid", "mex-localid", 300},
	{"Mex-Filename", "mex-filename", 300},
	{"Mex-Content-Checksum", "mex-content-checksum", 100},
	{"Mex-Partnerid", "mex-partnerid", 500},
	{"Mex-Content-Type", "mex-content-type", 100},
}

// checkMexHeaders applies the sandbox's mex header rules: control characters
// anywhere, or an http(s):// prefix on mex-To / mex-WorkflowID /
// mex-Content-Checksum, are TRANSFER/06; the checksum charset is restricted.
func checkMexHeaders(c *call) bool {
	var bad []string
	for name, vals := range c.r.Header {
		if len(name) < 4 || !strings.EqualFold(name[:4], "mex-") {
			continue
		}
		for _, v := range vals {
			if hasControl(v) || (isURLHeader(name) && hasURLPrefix(v)) {
				bad = append(bad, strings.ToLower(name))
				break
			}
		}
	}
	if len(bad) > 0 {
		e := errMalformed
		e.fields = bad
		writeError(c, http.StatusBadRequest, e)
		return false
	}
	if cs := c.r.Header.Get("Mex-Content-Checksum"); cs != "" && !validChecksum(cs) {
		writeError(c, http.StatusBadRequest, errChecksum)
		return false
	}
	return true
}

func hasControl(v string) bool {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return true
		}
	}
	return false
}

func isURLHeader(canon string) bool {
	return canon == "Mex-To" || canon == "Mex-Workflowid" || canon == "Mex-Content-Checksum"
}

func hasURLPrefix(v string) bool {
	v = strings.ToLower(strings.TrimSpace(v))
	return strings.HasPrefix(v, "http://") || strings.HasPrefix(v, "https://")
}

func validChecksum(v string) bool {
	for i := 0; i < len(v); i++ {
		ch := v[i]
		switch {
		case ch >= 'a' && ch <= 'z', ch >= 'A' && ch <= 'Z', ch >= '0' && ch <= '9':
		case ch == ' ', ch == ':', ch == '-', ch == '/':
		default:
			return false
		}
	}
	return true
}

// maxChunks bounds the total of mex-Chunk-Range. A message's chunk table is
// allocated from the client's total when chunk 1 arrives, so an unchecked
// total ("1:9999999999999999") would panic or allocate gigabytes. MESH's
// largest chunked message is 100 GB (mesh-api.md §1.7) and the official
// clients use chunks of 20-75 MiB (all but the last should be over 5 MB),
// i.e. at most ~20,000 chunks; 100,000 leaves ample headroom while keeping
// the table under 3 MB. Larger totals get 417 InvalidHeaderChunks like any
// other bad range.
const maxChunks = 100_000

// parseChunkRange follows the sandbox: empty means 1:1 for chunk 1; "n:t"
// needs 0 < n <= t <= maxChunks and n equal to the URL chunk number.
func parseChunkRange(v string, urlChunk int) (no, total int, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 1, 1, urlChunk == 1
	}
	a, b, found := strings.Cut(v, ":")
	if !found {
		return 0, 0, false
	}
	no, err1 := strconv.Atoi(strings.TrimSpace(a))
	total, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || no < 1 || no > total || total > maxChunks || no != urlChunk {
		return 0, 0, false
	}
	return no, total, true
}

var errBodyTooLarge = errors.New("request body too large")

// readBody reads the whole request body, preallocating from Content-Length.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength > maxRequestBody {
		return nil, errBodyTooLarge
	}
	if r.ContentLength >= 0 {
		buf := make([]byte, r.ContentLength)
		if _, err := io.ReadFull(r.Body, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	buf, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	if err != nil {
		return nil, err
	}
	if len(buf) > maxRequestBody {
		return nil, errBodyTooLarge
	}
	return buf, nil
}

func writeBodyError(c *call, err error) {
	if errors.Is(err, errBodyTooLarge) {
		writeError(c, http.StatusRequestEntityTooLarge, errTooLarge)
		return
	}
	writeError(c, http.StatusBadRequest, errMissingData)
}

func (s *Server) handleSend(c *call) {
	h := c.r.Header
	if !checkMexHeaders(c) {
		return
	}
	var verrs []fieldError
	if h.Get("Mex-To") == "" {
		verrs = append(verrs, missingField("header", "mex-to"))
	}
	if h.Get("Mex-Workflowid") == "" {
		verrs = append(verrs, missingField("header", "mex-workflowid"))
	}
	for _, l := range mexLimits {
		if v := h.Get(l.canon); len(v) > l.max {
			verrs = append(verrs, fieldError{
				Loc: []string{"header", l.lower}, Msg: "ensure this value has at most " + strconv.Itoa(l.max) + " characters",
				Type: "value_error.any_str.max_length", Ctx: map[string]int{"limit_value": l.max},
			})
		}
	}
	if len(verrs) > 0 {
		writeValidation(c, verrs)
		return
	}
	encoding := strings.TrimSpace(h.Get("Content-Encoding"))
	if encoding != "" && encoding != "gzip" {
		writeError(c, http.StatusUnprocessableEntity, errEncoding)
		return
	}
	chunkNo, total, ok := parseChunkRange(h.Get("Mex-Chunk-Range"), 1)
	if !ok || chunkNo != 1 {
		writeError(c, http.StatusExpectationFailed, errHeaderChunks)
		return
	}
	sender := c.mailbox.id
	rawTo := strings.TrimSpace(h.Get("Mex-To"))
	var recipient string
	demographic := strings.HasPrefix(rawTo, gpProviderPrefix)
	if !demographic {
		recipient = strings.ToUpper(rawTo)
		if _, ok := s.mailboxes[recipient]; !ok {
			writeError(c, http.StatusExpectationFailed, errUnregistered)
			return
		}
	}
	if from := strings.TrimSpace(h.Get("Mex-From")); from != "" && !strings.EqualFold(from, sender) {
		writeError(c, http.StatusExpectationFailed, errInvalidFrom)
		return
	}
	workflow := strings.TrimSpace(h.Get("Mex-Workflowid"))
	if wf := s.workflows[workflow]; wf != nil && len(wf.senders) > 0 && !wf.senders[sender] {
		writeError(c, http.StatusExpectationFailed, errWorkflowDenied)
		return
	}
	body, err := readBody(c.r)
	if err != nil {
		writeBodyError(c, err)
		return
	}
	if len(body) == 0 {
		writeError(c, http.StatusExpectationFailed, errMissingData)
		return
	}
	var routeErr string
	if demographic {
		recipient, routeErr = s.resolveGPProvider(rawTo)
	}
	contentType := h.Get("Content-Type")
	if contentType == "" {
		contentType = "application/octet-stream"
	}
	now := s.now()
	m := &message{
		sender:          sender,
		recipient:       recipient,
		workflow:        workflow,
		msgType:         TypeData,
		subject:         h.Get("Mex-Subject"),
		localID:         h.Get("Mex-Localid"),
		fileName:        h.Get("Mex-Filename"),
		partnerID:       h.Get("Mex-Partnerid"),
		checksum:        h.Get("Mex-Content-Checksum"),
		contentType:     contentType,
		mexContentType:  h.Get("Mex-Content-Type"),
		contentEncoding: encoding,
		compressed:      yes(h.Get("Mex-Content-Compressed")),
		encrypted:       yes(h.Get("Mex-Content-Encrypted")),
		totalChunks:     total,
		chunks:          make([][]byte, total),
		received:        1,
		storedBytes:     int64(len(body)),
		status:          StatusUploading,
		statusSuccess:   true,
		created:         now,
		statusTime:      now,
		routeErrCode:    routeErr,
	}
	m.chunks[0] = body

	var delivered []MessageInfo
	s.mu.Lock()
	m.id = s.uniqueIDLocked(now)
	if m.fileName == "" {
		m.fileName = m.id + ".dat"
	}
	s.messages[m.id] = m
	if total == 1 {
		delivered = s.finaliseLocked(m, now, delivered)
	}
	s.mu.Unlock()
	s.stats.sends.Add(1)
	s.log.Debug("fakemesh message created", "message_id", m.id, "sender", sender, "chunks", total)
	s.notify(delivered)

	var b []byte
	if c.ver >= 2 {
		b = append([]byte(`{"message_id":`), appendJSONString(nil, m.id)...)
	} else {
		b = append([]byte(`{"messageID":`), appendJSONString(nil, m.id)...)
	}
	writeJSON(c, http.StatusAccepted, append(b, '}'))
}

func yes(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "Y", "YES", "TRUE", "T", "1", "ON":
		return true
	}
	return false
}

func (s *Server) uniqueIDLocked(now time.Time) string {
	for {
		id := newMessageID(now)
		if _, taken := s.messages[id]; !taken {
			return id
		}
	}
}

// finaliseLocked runs when every chunk has arrived: delivers the message to
// its recipient inbox, or, when GPPROVIDER routing failed, marks it error and
// puts an error REPORT in the sender's inbox (real MESH accepts the send and
// reports the lookup failure asynchronously).
func (s *Server) finaliseLocked(m *message, now time.Time, delivered []MessageInfo) []MessageInfo {
	m.statusTime = now
	m.finaliseSize()
	if m.routeErrCode != "" {
		desc := lookupErrorDescriptions[m.routeErrCode]
		m.status, m.statusCode, m.statusEvent, m.statusDesc = StatusError, m.routeErrCode, "SEND", desc
		m.statusSuccess, m.failed = false, true
		s.addReportLocked(now, reportSpec{
			to: m.sender, code: m.routeErrCode, event: "SEND", desc: desc, status: StatusError,
			linkedID: m.id, workflow: m.workflow, localID: m.localID, subject: m.subject,
		})
		return delivered
	}
	m.status = StatusAccepted
	s.deliverLocked(m)
	s.stats.delivered.Add(1)
	return append(delivered, m.info())
}

func (s *Server) deliverLocked(m *message) {
	ib := s.inboxes[m.recipient]
	if ib == nil {
		ib = &inbox{}
		s.inboxes[m.recipient] = ib
	}
	s.seq++
	m.deliverSeq = s.seq
	ib.add(m, s.seq)
}

type reportSpec struct {
	to, code, event, desc, status        string
	linkedID, workflow, localID, subject string
	fileName                             string
}

// addReportLocked puts a REPORT (empty body, chunk range 1:0) into rs.to's inbox.
func (s *Server) addReportLocked(now time.Time, rs reportSpec) *message {
	m := &message{
		recipient:   rs.to,
		workflow:    rs.workflow,
		msgType:     TypeReport,
		subject:     rs.subject,
		localID:     rs.localID,
		fileName:    rs.fileName,
		totalChunks: 0,
		chunks:      [][]byte{},
		status:      StatusAccepted,
		statusCode:  rs.code,
		statusEvent: rs.event,
		statusDesc:  rs.desc,
		linkedID:    rs.linkedID,
		created:     now,
		statusTime:  now,
		failed:      true,
	}
	m.id = s.uniqueIDLocked(now)
	s.messages[m.id] = m
	s.deliverLocked(m)
	s.stats.reports.Add(1)
	return m
}

func (s *Server) handleSendChunk(c *call) {
	id := strings.ToUpper(c.parts[2])
	n, err := strconv.Atoi(c.parts[3])
	if err != nil || n < 1 {
		writeValidation(c, []fieldError{{Loc: []string{"path", "chunk_number"}, Msg: "value is not a valid integer", Type: "type_error.integer"}})
		return
	}
	if !checkMexHeaders(c) {
		return
	}
	chunkNo, total, ok := parseChunkRange(c.r.Header.Get("Mex-Chunk-Range"), n)
	if !ok || strings.TrimSpace(c.r.Header.Get("Mex-Chunk-Range")) == "" {
		e := errHeaderChunks
		e.messageID = id
		writeError(c, http.StatusExpectationFailed, e)
		return
	}
	encoding := strings.TrimSpace(c.r.Header.Get("Content-Encoding"))
	body, err := readBody(c.r)
	if err != nil {
		writeBodyError(c, err)
		return
	}
	now := s.now()
	var delivered []MessageInfo
	status, apiErr := 0, apiError{}
	s.mu.Lock()
	m := s.messages[id]
	switch {
	case m == nil:
		status, apiErr = http.StatusNotFound, errNotExist
	case m.sender != c.mailbox.id:
		status, apiErr = http.StatusForbidden, errForbidden
	case m.status != StatusUploading:
		status, apiErr = http.StatusLocked, errFinalised
	case chunkNo > m.totalChunks || total != m.totalChunks:
		// The reference lists 403/404/417/423/400 for send-chunk (§1.2 row 9):
		// a range that does not fit the message is a bad mex-Chunk-Range.
		status, apiErr = http.StatusExpectationFailed, errHeaderChunks
	case encoding != m.contentEncoding:
		status, apiErr = http.StatusExpectationFailed, errEncodingChanged
	default:
		if m.chunks[chunkNo-1] == nil {
			m.received++
		} else {
			m.storedBytes -= int64(len(m.chunks[chunkNo-1]))
		}
		m.chunks[chunkNo-1] = body
		m.storedBytes += int64(len(body))
		if m.received == m.totalChunks {
			delivered = s.finaliseLocked(m, now, delivered)
		}
	}
	s.mu.Unlock()
	if status != 0 {
		if status != http.StatusNotFound && status != http.StatusForbidden {
			apiErr.messageID = id
		}
		writeError(c, status, apiErr)
		return
	}
	s.stats.chunks.Add(1)
	s.notify(delivered)
	if c.ver >= 2 {
		// The sandbox answers v2 chunk uploads with a JSON null body.
		writeJSON(c, http.StatusAccepted, []byte("null"))
		return
	}
	b := append([]byte(`{"messageID":`), appendJSONString(nil, id)...)
	b = append(b, `,"blockID":`...)
	b = strconv.AppendInt(b, int64(chunkNo), 10)
	writeJSON(c, http.StatusAccepted, append(b, '}'))
}

// handleDownload serves GET chunk 1, GET chunk n and HEAD.
func (s *Server) handleDownload(c *call, rawID, rawChunk string, head bool) {
	id := strings.ToUpper(rawID)
	chunk, err := strconv.Atoi(rawChunk)
	if err != nil {
		writeValidation(c, []fieldError{{Loc: []string{"path", "chunk_number"}, Msg: "value is not a valid integer", Type: "type_error.integer"}})
		return
	}
	mb := c.mailbox.id
	s.mu.Lock()
	m := s.messages[id]
	if m == nil {
		s.mu.Unlock()
		writeError(c, http.StatusNotFound, errNotExist)
		return
	}
	isRecipient := m.recipient == mb
	if head {
		if !isRecipient && m.sender != mb {
			s.mu.Unlock()
			writeError(c, http.StatusNotFound, errNotExist)
			return
		}
		if isRecipient && m.status == StatusUploading {
			s.mu.Unlock()
			writeError(c, http.StatusNotFound, errNotExist)
			return
		}
		if isRecipient && m.status != StatusAccepted && m.status != StatusAcknowledged {
			s.mu.Unlock()
			writeError(c, http.StatusGone, errGone)
			return
		}
		hdrs := m.downloadHeaders(1)
		ctype := m.responseContentType()
		s.mu.Unlock()
		setHeaders(c.w.Header(), hdrs, ctype)
		c.w.WriteHeader(http.StatusOK)
		return
	}
	if !isRecipient {
		s.mu.Unlock()
		writeError(c, http.StatusForbidden, errForbidden)
		return
	}
	if m.status == StatusUploading {
		// Not every chunk is in: the message has not been delivered, so for
		// the recipient it does not exist yet (410 is for acknowledged,
		// expired or failed messages).
		s.mu.Unlock()
		writeError(c, http.StatusNotFound, errNotExist)
		return
	}
	if m.status != StatusAccepted || m.chunks == nil {
		s.mu.Unlock()
		writeError(c, http.StatusGone, errGone)
		return
	}
	if m.msgType == TypeReport {
		hdrs := m.downloadHeaders(chunk)
		s.mu.Unlock()
		setHeaders(c.w.Header(), hdrs, "application/octet-stream")
		c.w.Header()["Content-Length"] = []string{"0"}
		c.w.WriteHeader(http.StatusOK)
		s.stats.downloads.Add(1)
		return
	}
	if chunk < 1 || chunk > m.totalChunks {
		s.mu.Unlock()
		writeError(c, http.StatusNotFound, errNotExist)
		return
	}
	data := m.chunks[chunk-1]
	gz := m.contentEncoding == "gzip"
	total := m.totalChunks
	hdrs := m.downloadHeaders(chunk)
	ctype := m.responseContentType()
	s.mu.Unlock()

	hd := c.w.Header()
	setHeaders(hd, hdrs, ctype)
	if gz {
		if strings.Contains(c.r.Header.Get("Accept-Encoding"), "gzip") {
			hd["Content-Encoding"] = []string{"gzip"}
			hd["mex-content-compressed"] = []string{"Y"}
		} else if plain, err := gunzip(data); err == nil {
			data = plain
		} else {
			// Stored bytes were not valid gzip: serve them as they are, labelled.
			hd["Content-Encoding"] = []string{"gzip"}
		}
	}
	hd["Content-Length"] = []string{strconv.Itoa(len(data))}
	status := http.StatusOK
	if chunk < total {
		status = http.StatusPartialContent
	}
	c.w.WriteHeader(status)
	_, _ = c.w.Write(data)
	s.stats.downloads.Add(1)
}

func setHeaders(h http.Header, hdrs []header, ctype string) {
	h["Content-Type"] = []string{ctype}
	for _, x := range hdrs {
		h[x.name] = []string{x.value}
	}
}

func (s *Server) handleAck(c *call) {
	id := strings.ToUpper(c.parts[2])
	s.mu.Lock()
	m := s.messages[id]
	if m == nil {
		s.mu.Unlock()
		writeError(c, http.StatusNotFound, errNotExist)
		return
	}
	if m.recipient != c.mailbox.id {
		s.mu.Unlock()
		writeError(c, http.StatusForbidden, errForbidden)
		return
	}
	if m.status == StatusAccepted {
		now := s.now()
		m.status, m.ackedAt, m.statusTime = StatusAcknowledged, now, now
		if ib := s.inboxes[m.recipient]; ib != nil {
			ib.remove(m)
		}
		m.freeBody() // metadata (and fileSize) stays for tracking
	}
	s.mu.Unlock()
	s.stats.acks.Add(1)
	if c.ver >= 2 {
		writeEmpty(c, http.StatusOK)
		return
	}
	b := append([]byte(`{"messageId":`), appendJSONString(nil, id)...)
	writeJSON(c, http.StatusOK, append(b, '}'))
}

func (s *Server) handleCount(c *call) {
	s.mu.Lock()
	n := 0
	if ib := s.inboxes[c.mailbox.id]; ib != nil {
		n = ib.live
	}
	s.mu.Unlock()
	b := append([]byte(`{"count":`), strconv.Itoa(n)...)
	if c.ver < 2 {
		b = append(b, `,"internalID":`...)
		b = appendJSONString(b, newMessageID(s.now()))
		b = append(b, `,"allResultsIncluded":true`...)
	}
	writeJSON(c, http.StatusOK, append(b, '}'))
}

// workflowMatcher implements the sandbox's workflow_filter: exact, "!x" not
// equal, "x*" begins with, "*x*" contains (each negatable with "!").
func workflowMatcher(filter string) func(string) bool {
	f := strings.TrimSpace(filter)
	if f == "" {
		return nil
	}
	not := strings.HasPrefix(f, "!")
	if not {
		f = f[1:]
	}
	contains := strings.HasPrefix(f, "*")
	if contains {
		f = strings.TrimSuffix(f[1:], "*")
	}
	begins := !contains && strings.HasSuffix(f, "*")
	if begins {
		f = f[:len(f)-1]
	}
	var match func(string) bool
	switch {
	case contains:
		match = func(w string) bool { return strings.Contains(w, f) }
	case begins:
		match = func(w string) bool { return strings.HasPrefix(w, f) }
	default:
		match = func(w string) bool { return w == f }
	}
	if not {
		return func(w string) bool { return !match(w) }
	}
	return match
}

// continueToken is the opaque v2 continue_from value: base64url("id/seq").
func continueToken(id string, seq uint64) string {
	return base64.RawURLEncoding.EncodeToString([]byte(id + "/" + strconv.FormatUint(seq, 10)))
}

// continueSeqLocked resolves continue_from: our opaque token, or (as v1
// clients send) a plain message id.
func (s *Server) continueSeqLocked(v string) (uint64, bool) {
	if raw, err := base64.RawURLEncoding.DecodeString(v); err == nil {
		if id, seqStr, ok := strings.Cut(string(raw), "/"); ok && id != "" {
			if seq, err := strconv.ParseUint(seqStr, 10, 64); err == nil {
				return seq, true
			}
		}
	}
	if m := s.messages[strings.ToUpper(v)]; m != nil && m.deliverSeq != 0 {
		return m.deliverSeq, true
	}
	return 0, false
}

func (s *Server) handleInbox(c *call) {
	q := c.r.URL.Query()
	maxResults := defaultMaxResults
	var verrs []fieldError
	if v := q.Get("max_results"); v != "" {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			verrs = append(verrs, fieldError{Loc: []string{"query", "max_results"}, Msg: "value is not a valid integer", Type: "type_error.integer"})
		case n < 10:
			verrs = append(verrs, fieldError{Loc: []string{"query", "max_results"}, Msg: "ensure this value is greater than or equal to 10", Type: "value_error.number.not_ge", Ctx: map[string]int{"limit_value": 10}})
		case n > 5000:
			verrs = append(verrs, fieldError{Loc: []string{"query", "max_results"}, Msg: "ensure this value is less than or equal to 5000", Type: "value_error.number.not_le", Ctx: map[string]int{"limit_value": 5000}})
		default:
			maxResults = n
		}
	}
	continueFrom := q.Get("continue_from")
	if _, present := q["continue_from"]; present && (len(continueFrom) < 24 || len(continueFrom) > 1000) {
		verrs = append(verrs, lengthError("continue_from", len(continueFrom), 24, 1000))
	}
	workflowFilter := q.Get("workflow_filter")
	if _, present := q["workflow_filter"]; present && (len(workflowFilter) < 2 || len(workflowFilter) > 255) {
		verrs = append(verrs, lengthError("workflow_filter", len(workflowFilter), 2, 255))
	}
	if len(verrs) > 0 {
		writeValidation(c, verrs)
		return
	}
	match := workflowMatcher(workflowFilter)

	ids := make([]string, 0, min(maxResults, 64))
	var lastSeq uint64
	more := false
	approx := 0
	s.mu.Lock()
	if ib := s.inboxes[c.mailbox.id]; ib != nil {
		approx = ib.live
		start := ib.head
		if continueFrom != "" {
			if seq, ok := s.continueSeqLocked(continueFrom); ok {
				start = ib.after(seq)
			}
		}
		for _, e := range ib.items[start:] {
			if !e.alive() || (match != nil && !match(e.m.workflow)) {
				continue
			}
			if len(ids) == maxResults {
				more = true
				break
			}
			ids = append(ids, e.m.id)
			lastSeq = e.seq
		}
	}
	s.mu.Unlock()

	b := make([]byte, 0, 32+len(ids)*30)
	b = append(b, `{"messages":[`...)
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, id)
	}
	b = append(b, ']')
	if c.ver >= 2 {
		base := "/messageexchange/" + c.mailbox.id + "/inbox"
		query := ""
		if maxResults != defaultMaxResults {
			query += "&max_results=" + strconv.Itoa(maxResults)
		}
		if workflowFilter != "" {
			query += "&workflow_filter=" + url.QueryEscape(workflowFilter)
		}
		b = append(b, `,"links":{"self":`...)
		b = appendJSONString(b, base+queryString(query))
		if more {
			next := query + "&continue_from=" + continueToken(ids[len(ids)-1], lastSeq)
			b = append(b, `,"next":`...)
			b = appendJSONString(b, base+queryString(next))
		}
		b = append(b, `},"approx_inbox_count":`...)
		b = strconv.AppendInt(b, int64(approx), 10)
	}
	writeJSON(c, http.StatusOK, append(b, '}'))
}

func queryString(q string) string {
	if q == "" {
		return ""
	}
	return "?" + q[1:]
}

func lengthError(name string, got, lo, hi int) fieldError {
	if got < lo {
		return fieldError{Loc: []string{"query", name}, Msg: "ensure this value has at least " + strconv.Itoa(lo) + " characters", Type: "value_error.any_str.min_length", Ctx: map[string]int{"limit_value": lo}}
	}
	return fieldError{Loc: []string{"query", name}, Msg: "ensure this value has at most " + strconv.Itoa(hi) + " characters", Type: "value_error.any_str.max_length", Ctx: map[string]int{"limit_value": hi}}
}

// trackingV1 is the deprecated camelCase tracking object (SPEC field list).
type trackingV1 struct {
	AddressType          string  `json:"addressType"`
	Checksum             string  `json:"checksum"`
	ChunkCount           int     `json:"chunkCount"`
	CompressFlag         string  `json:"compressFlag"`
	ContentEncoding      string  `json:"contentEncoding"`
	DownloadTimestamp    string  `json:"downloadTimestamp"`
	DtsID                string  `json:"dtsId"`
	EncryptedFlag        string  `json:"encryptedFlag"`
	ExpiryTime           string  `json:"expiryTime"`
	FailureDate          *string `json:"failureDate"`
	FailureDiagnostic    *string `json:"failureDiagnostic"`
	FileName             string  `json:"fileName"`
	FileSize             int64   `json:"fileSize"`
	IsCompressed         string  `json:"isCompressed"`
	LinkedMsgID          *string `json:"linkedMsgId"`
	LocalID              string  `json:"localId"`
	MeshRecipientOdsCode *string `json:"meshRecipientOdsCode"`
	MessageID            string  `json:"messageId"`
	MessageType          string  `json:"messageType"`
	PartnerID            string  `json:"partnerId"`
	Recipient            *string `json:"recipient"`
	RecipientName        *string `json:"recipientName"`
	RecipientOrgCode     *string `json:"recipientOrgCode"`
	RecipientOrgName     *string `json:"recipientOrgName"`
	RecipientSmtp        string  `json:"recipientSmtp"`
	Sender               string  `json:"sender"`
	SenderName           string  `json:"senderName"`
	SenderOdsCode        string  `json:"senderOdsCode"`
	SenderOrgCode        string  `json:"senderOrgCode"`
	SenderOrgName        string  `json:"senderOrgName"`
	SenderSmtp           string  `json:"senderSmtp"`
	Status               string  `json:"status"`
	StatusCode           *string `json:"statusCode"`
	StatusDescription    *string `json:"statusDescription"`
	StatusEvent          *string `json:"statusEvent"`
	StatusSuccess        string  `json:"statusSuccess"`
	StatusTimestamp      *string `json:"statusTimestamp"`
	Subject              string  `json:"subject"`
	UploadTimestamp      string  `json:"uploadTimestamp"`
	Version              string  `json:"version"`
	WorkflowID           string  `json:"workflowId"`
}

// trackingV2 is the snake_case tracking object.
type trackingV2 struct {
	MessageID         string  `json:"message_id"`
	LocalID           *string `json:"local_id"`
	WorkflowID        string  `json:"workflow_id"`
	Filename          string  `json:"filename"`
	ExpiryTime        string  `json:"expiry_time"`
	UploadTimestamp   string  `json:"upload_timestamp"`
	Recipient         *string `json:"recipient"`
	RecipientName     *string `json:"recipient_name"`
	RecipientOdsCode  *string `json:"recipient_ods_code"`
	RecipientOrgCode  *string `json:"recipient_org_code"`
	RecipientOrgName  *string `json:"recipient_org_name"`
	StatusSuccess     bool    `json:"status_success"`
	Status            string  `json:"status"`
	StatusEvent       *string `json:"status_event"`
	StatusTimestamp   *string `json:"status_timestamp"`
	StatusDescription *string `json:"status_description"`
	StatusCode        *string `json:"status_code"`
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func fmtISO(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(isoNoZone)
}

// trackingLocked renders m's tracking object for API version ver.
func (s *Server) trackingLocked(m *message, ver int) any {
	var rName, rOrg string
	var rODS string
	if rb := s.mailboxes[m.recipient]; rb != nil {
		rName, rODS, rOrg = rb.Name, rb.ODSCode, rb.ODSCode
	}
	expiry := m.created.Add(s.inboxTTL)
	// Every tracking object carries the status fields. A failure reports its
	// own event/code/description; otherwise (uploading, accepted,
	// acknowledged) they are the SPEC example's TRANSFER / "Success" / "01"
	// (mesh-api.md §1.5), unless the admin event endpoint set others.
	code, event, desc := m.statusCode, m.statusEvent, m.statusDesc
	if !m.failed {
		if code == "" {
			code = "01"
		}
		if event == "" {
			event = "TRANSFER"
		}
		if desc == "" {
			desc = "Success"
		}
	}
	statusTS := fmtCompact(m.statusTime)
	if ver >= 2 {
		t := trackingV2{
			MessageID: m.id, LocalID: nullable(m.localID), WorkflowID: m.workflow, Filename: m.fileName,
			ExpiryTime: fmtISO(expiry), UploadTimestamp: fmtISO(m.created),
			Recipient: nullable(m.recipient), RecipientName: nullable(rName), RecipientOdsCode: nullable(rODS),
			RecipientOrgCode: nullable(rOrg), RecipientOrgName: nullable(rName),
			StatusSuccess: !m.failed, Status: m.status,
			StatusEvent: nullable(event), StatusTimestamp: nullable(fmtISO(m.statusTime)),
			StatusDescription: nullable(desc), StatusCode: nullable(code),
		}
		return t
	}
	sb := s.mailboxes[m.sender]
	var sName, sODS string
	if sb != nil {
		sName, sODS = sb.Name, sb.ODSCode
	}
	flag := func(b bool) string {
		if b {
			return "Y"
		}
		return ""
	}
	success := "SUCCESS"
	var failureDate, failureDiag *string
	if m.failed {
		success = "ERROR"
		failureDate, failureDiag = nullable(statusTS), nullable(desc)
	}
	return trackingV1{
		AddressType: "ALL", Checksum: m.checksum, ChunkCount: m.totalChunks, CompressFlag: flag(m.compressed),
		ContentEncoding: m.contentEncoding, DownloadTimestamp: fmtCompact(m.ackedAt), DtsID: m.id,
		EncryptedFlag: flag(m.encrypted), ExpiryTime: fmtCompact(expiry), FailureDate: failureDate,
		FailureDiagnostic: failureDiag, FileName: m.fileName, FileSize: m.trackedSize(),
		IsCompressed: flag(m.compressed), LinkedMsgID: nullable(m.linkedID), LocalID: m.localID,
		MeshRecipientOdsCode: nullable(rODS), MessageID: m.id, MessageType: strings.ToUpper(m.msgType[:1]) + strings.ToLower(m.msgType[1:]),
		PartnerID: m.partnerID, Recipient: nullable(m.recipient), RecipientName: nullable(rName),
		RecipientOrgCode: nullable(rOrg), RecipientOrgName: nullable(rName), Sender: m.sender, SenderName: sName,
		SenderOdsCode: sODS, SenderOrgCode: sODS, SenderOrgName: sName, Status: titleStatus(m.status),
		StatusCode: nullable(code), StatusDescription: nullable(desc), StatusEvent: nullable(event),
		StatusSuccess: success, StatusTimestamp: nullable(statusTS), Subject: m.subject,
		UploadTimestamp: fmtCompact(m.created), Version: "1.0", WorkflowID: m.workflow,
	}
}

func (s *Server) handleTracking(c *call) {
	q := c.r.URL.Query()
	if _, ok := q["messageID"]; !ok {
		writeValidation(c, []fieldError{missingField("query", "messageID")})
		return
	}
	id := strings.ToUpper(strings.TrimSpace(q.Get("messageID")))
	s.mu.Lock()
	m := s.messages[id]
	if m == nil || m.sender != c.mailbox.id {
		// 404 rather than 403 for someone else's message: "intentionally not a 403 (matching spine)".
		s.mu.Unlock()
		writeError(c, http.StatusNotFound, errNotExist)
		return
	}
	t := s.trackingLocked(m, c.ver)
	s.mu.Unlock()
	body, _ := json.Marshal(t)
	writeJSON(c, http.StatusOK, body)
}

// handleTrackingLocalID is the deprecated v1-only lookup by mex-LocalID.
func (s *Server) handleTrackingLocalID(c *call) {
	localID := c.parts[3] // r.URL.Path is already unescaped
	c.ver = 1
	s.mu.Lock()
	var found *message
	count := 0
	for _, m := range s.messages {
		if m.sender == c.mailbox.id && m.localID == localID && m.msgType == TypeData {
			found = m
			count++
		}
	}
	var t any
	if count == 1 {
		t = s.trackingLocked(found, 1)
	}
	s.mu.Unlock()
	switch {
	case count == 0:
		writeError(c, http.StatusNotFound, errNotExist)
	case count > 1:
		writeError(c, http.StatusMultipleChoices, errLocalIDMultiple)
	default:
		body, _ := json.Marshal(t)
		writeJSON(c, http.StatusOK, body)
	}
}

type lookupV1Item struct {
	Address      string `json:"address"`
	Description  string `json:"description"`
	EndpointType string `json:"endpoint_type"`
}

type lookupV2Item struct {
	MailboxID   string `json:"mailbox_id"`
	MailboxName string `json:"mailbox_name"`
}

// handleEndpointLookup answers ODS code + workflow -> receiving mailboxes. No
// Authorization header is needed (the SPEC example sends none; mTLS only).
func (s *Server) handleEndpointLookup(c *call) {
	ods, wfID := strings.TrimSpace(c.parts[1]), strings.TrimSpace(c.parts[2])
	if ods == "" || wfID == "" {
		writeError(c, http.StatusBadRequest, apiError{desc: "ods code or workflow id missing"})
		return
	}
	var matched []*mailboxInfo
	if wf := s.workflows[wfID]; wf != nil {
		for _, id := range wf.receivers {
			if mb := s.mailboxes[id]; mb != nil && strings.EqualFold(mb.ODSCode, ods) {
				matched = append(matched, mb)
			}
		}
	}
	var body []byte
	if c.ver >= 2 {
		items := make([]lookupV2Item, 0, len(matched))
		for _, mb := range matched {
			items = append(items, lookupV2Item{MailboxID: mb.id, MailboxName: mb.Name})
		}
		body, _ = json.Marshal(struct {
			Results []lookupV2Item `json:"results"`
		}{items})
	} else {
		items := make([]lookupV1Item, 0, len(matched))
		for _, mb := range matched {
			items = append(items, lookupV1Item{Address: mb.id, Description: mb.Name, EndpointType: "MESH"})
		}
		body, _ = json.Marshal(struct {
			QueryID string         `json:"query_id"`
			Results []lookupV1Item `json:"results"`
		}{newMessageID(s.now()), items})
	}
	writeJSON(c, http.StatusOK, body)
}

// handleWorkflowSearch lists the mailboxes that receive a workflow (same
// results shape in v1 and v2, as in the sandbox).
func (s *Server) handleWorkflowSearch(c *call) {
	wfID := strings.TrimSpace(c.parts[1])
	if wfID == "" {
		writeError(c, http.StatusBadRequest, apiError{desc: "workflow id missing"})
		return
	}
	items := []lookupV2Item{}
	if wf := s.workflows[wfID]; wf != nil {
		for _, id := range wf.receivers {
			if mb := s.mailboxes[id]; mb != nil {
				items = append(items, lookupV2Item{MailboxID: mb.id, MailboxName: mb.Name})
			}
		}
	}
	body, _ := json.Marshal(struct {
		Results []lookupV2Item `json:"results"`
	}{items})
	writeJSON(c, http.StatusOK, body)
}
