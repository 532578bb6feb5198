package fakemesh

import (
	"bytes"
	"compress/gzip"
	"io"
	"math/rand/v2"
	"sort"
	"strconv"
	"time"
)

// Message statuses as tracking reports them (v2 lower case; v1 Title case).
const (
	StatusUploading     = "uploading"
	StatusAccepted      = "accepted"
	StatusAcknowledged  = "acknowledged"
	StatusError         = "error"
	StatusUndeliverable = "undeliverable"
)

// Message types.
const (
	TypeData   = "DATA"
	TypeReport = "REPORT"
)

// message is one stored MESH message. All fields are guarded by Server.mu;
// chunk byte slices are never modified once stored, so a handler may keep a
// reference and write it after unlocking.
type message struct {
	id        string
	sender    string // mailbox id; empty for system reports
	recipient string // mailbox id; empty when demographic routing failed
	workflow  string
	msgType   string

	subject, localID, fileName, partnerID, checksum string
	contentType, mexContentType, contentEncoding    string
	compressed, encrypted                           bool

	totalChunks int
	chunks      [][]byte // as uploaded (gzip if contentEncoding is gzip); nil after ack/expiry
	received    int
	storedBytes int64 // bytes currently held in chunks; 0 once the body is freed
	// fileSize is the message size tracking reports (v1 fileSize): set once
	// when the message is finalised (or, if it never was, when its body is
	// freed), so it survives acknowledgement and expiry.
	fileSize  int64
	sizeFinal bool

	status        string
	statusCode    string
	statusEvent   string
	statusDesc    string
	statusSuccess bool
	linkedID      string
	failed        bool // an error/undeliverable event was recorded

	created    time.Time
	statusTime time.Time
	ackedAt    time.Time

	inboxSeq   uint64 // position in the recipient inbox (0 = not in an inbox)
	deliverSeq uint64 // inbox position at delivery, kept after removal (v1 continue_from by id)

	routeErrCode string // GPPROVIDER lookup failure (EPL-15x) to report when finalised
}

// inbox keeps a mailbox's deliverable messages in arrival order. Acked or
// expired entries are removed lazily (their message's inboxSeq becomes 0);
// the slice is compacted when mostly dead, so listing stays cheap while a
// collector acknowledges from the front.
type inbox struct {
	items []inboxEntry
	live  int
	head  int // items[:head] are all removed
}

type inboxEntry struct {
	seq uint64
	m   *message
}

func (e inboxEntry) alive() bool { return e.m.inboxSeq == e.seq }

func (ib *inbox) add(m *message, seq uint64) {
	m.inboxSeq = seq
	ib.items = append(ib.items, inboxEntry{seq: seq, m: m})
	ib.live++
}

func (ib *inbox) remove(m *message) {
	if m.inboxSeq == 0 {
		return
	}
	m.inboxSeq = 0
	ib.live--
	for ib.head < len(ib.items) && !ib.items[ib.head].alive() {
		ib.items[ib.head] = inboxEntry{}
		ib.head++
	}
	dead := len(ib.items) - ib.head - ib.live
	if (ib.head > 1024 && ib.head > len(ib.items)/2) || (dead > 1024 && dead > ib.live) {
		kept := make([]inboxEntry, 0, ib.live+16)
		for _, e := range ib.items[ib.head:] {
			if e.alive() {
				kept = append(kept, e)
			}
		}
		ib.items, ib.head = kept, 0
	}
}

// after returns the index of the first entry with seq > afterSeq
// (entries are appended in increasing seq order).
func (ib *inbox) after(afterSeq uint64) int {
	rest := ib.items[ib.head:]
	return ib.head + sort.Search(len(rest), func(i int) bool { return rest[i].seq > afterSeq })
}

// newMessageID returns an id in real MESH form: yyyyMMddHHmmssffffff_XXXXXX.
func newMessageID(now time.Time) string {
	const hexdigits = "0123456789ABCDEF"
	b := make([]byte, 0, 27)
	now = now.UTC()
	b = now.AppendFormat(b, "20060102150405")
	micro := now.Nanosecond() / 1000
	var digits [6]byte
	for i := 5; i >= 0; i-- {
		digits[i] = byte('0' + micro%10)
		micro /= 10
	}
	b = append(b, digits[:]...)
	b = append(b, '_')
	r := rand.Uint32()
	for i := 5; i >= 0; i-- {
		b = append(b, hexdigits[(r>>(4*uint(i)))&0xF])
	}
	return string(b)
}

// decodedBody reassembles the message, gunzipping each chunk independently
// (MESH chunks are compressed one by one). A chunk that is not valid gzip is
// returned as stored.
func (m *message) decodedBody() []byte {
	if m.chunks == nil {
		return nil
	}
	var out bytes.Buffer
	for _, c := range m.chunks {
		if m.contentEncoding == "gzip" {
			if plain, err := gunzip(c); err == nil {
				out.Write(plain)
				continue
			}
		}
		out.Write(c)
	}
	return out.Bytes()
}

func gunzip(b []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	return io.ReadAll(zr)
}

func titleStatus(s string) string {
	if s == "" {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

const (
	compactTime = "20060102150405"
	isoNoZone   = "2006-01-02T15:04:05.000000"
	httpDateUTC = "Mon, 02 Jan 2006 15:04:05 UTC"
)

func fmtCompact(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(compactTime)
}

// header is one response header, written with the lower-case name the
// sandbox uses ("All headers will be lowercase").
type header struct{ name, value string }

// downloadHeaders builds the §1.4 response headers for chunk n of m.
func (m *message) downloadHeaders(chunk int) []header {
	h := make([]header, 0, 24)
	add := func(name, value string) {
		if value != "" {
			h = append(h, header{name, value})
		}
	}
	if m.msgType == TypeData {
		add("mex-from", m.sender)
	}
	add("mex-to", m.recipient)
	add("mex-workflowid", m.workflow)
	add("mex-chunk-range", strconv.Itoa(chunk)+":"+strconv.Itoa(m.totalChunks))
	add("mex-total-chunks", strconv.Itoa(m.totalChunks))
	add("mex-addresstype", "ALL")
	add("mex-localid", m.localID)
	add("mex-partnerid", m.partnerID)
	add("mex-filename", m.fileName) // REPORTs carry one only when the admin report set file_name
	add("mex-subject", m.subject)
	add("mex-version", "1.0")
	add("mex-messagetype", m.msgType)
	add("mex-messageid", m.id)
	ts := fmtCompact(m.statusTime)
	if m.msgType == TypeData {
		add("mex-statuscode", "00")
		add("mex-statusevent", "TRANSFER")
		add("mex-statusdescription", "Transferred to recipient mailbox")
		add("mex-statussuccess", "SUCCESS")
	} else {
		add("mex-linkedmsgid", m.linkedID)
		add("mex-statuscode", m.statusCode)
		add("mex-statusevent", m.statusEvent)
		add("mex-statusdescription", m.statusDesc)
		add("mex-statussuccess", "ERROR")
	}
	add("mex-statustimestamp", ts)
	if m.compressed {
		add("mex-content-compressed", "Y")
	}
	if m.encrypted {
		add("mex-content-encrypted", "Y")
	}
	add("mex-content-checksum", m.checksum)
	add("mex-content-type", m.mexContentType)
	add("last-modified", m.statusTime.UTC().Format(httpDateUTC))
	add("etag", `"`+m.id+"-"+strconv.Itoa(chunk)+`"`)
	return h
}

// finaliseSize fixes fileSize at the size of the complete upload.
func (m *message) finaliseSize() {
	if !m.sizeFinal {
		m.fileSize, m.sizeFinal = m.storedBytes, true
	}
}

// freeBody drops the stored chunks (after acknowledgement, failure or
// expiry); metadata, including fileSize, stays for tracking.
func (m *message) freeBody() {
	m.finaliseSize()
	m.chunks, m.storedBytes = nil, 0
}

// trackedSize is the v1 tracking fileSize: the finalised size, or the bytes
// received so far while still uploading.
func (m *message) trackedSize() int64 {
	if m.sizeFinal {
		return m.fileSize
	}
	return m.storedBytes
}

// responseContentType is the decoded content type given to the recipient:
// mex-Content-Type overrides Content-Type (it survives chunking).
func (m *message) responseContentType() string {
	if m.mexContentType != "" {
		return m.mexContentType
	}
	if m.contentType != "" {
		return m.contentType
	}
	return "application/octet-stream"
}
