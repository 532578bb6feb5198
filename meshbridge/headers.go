package meshbridge

import (
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Header names in canonical MIME form (MESH treats headers case-insensitively).
const (
	hdrAccept            = "Accept"
	hdrAcceptEncoding    = "Accept-Encoding"
	hdrAuthorization     = "Authorization"
	hdrContentType       = "Content-Type"
	hdrContentEncoding   = "Content-Encoding"
	hdrUserAgent         = "User-Agent"
	hdrClientVersion     = "Mex-Clientversion"
	hdrOSName            = "Mex-Osname"
	hdrOSVersion         = "Mex-Osversion"
	hdrOSArchitecture    = "Mex-Osarchitecture"
	hdrJavaVersion       = "Mex-Javaversion"
	hdrTo                = "Mex-To"
	hdrFrom              = "Mex-From"
	hdrWorkflowID        = "Mex-Workflowid"
	hdrSubject           = "Mex-Subject"
	hdrLocalID           = "Mex-Localid"
	hdrFileName          = "Mex-Filename"
	hdrChecksum          = "Mex-Content-Checksum"
	hdrChunkRange        = "Mex-Chunk-Range"
	hdrTotalChunks       = "Mex-Total-Chunks"
	hdrPartnerID         = "Mex-Partnerid"
	hdrMexContentType    = "Mex-Content-Type"
	hdrContentCompressed = "Mex-Content-Compressed"
	hdrContentEncrypted  = "Mex-Content-Encrypted"
	hdrMessageID         = "Mex-Messageid"
	hdrMessageType       = "Mex-Messagetype"
	hdrStatusCode        = "Mex-Statuscode"
	hdrStatusEvent       = "Mex-Statusevent"
	hdrStatusDescription = "Mex-Statusdescription"
	hdrStatusSuccess     = "Mex-Statussuccess"
	hdrStatusTimestamp   = "Mex-Statustimestamp"
	hdrLinkedMsgID       = "Mex-Linkedmsgid"
	hdrAddressType       = "Mex-Addresstype"
	hdrVersion           = "Mex-Version"
)

const (
	acceptV2        = "application/vnd.mesh.v2+json"
	octetStream     = "application/octet-stream"
	encodingGzip    = "gzip"
	flagYes         = "Y"
	defaultClientNm = "mesh-gateway"
	defaultClientV  = "dev"
)

// maxLength is the SPEC maxLength of each send header (0 = unbounded).
func maxLength(name string) int {
	switch name {
	case hdrTo, hdrMexContentType, hdrChecksum:
		return 100
	case hdrWorkflowID, hdrLocalID, hdrFileName:
		return 300
	case hdrSubject, hdrPartnerID:
		return 500
	case hdrChunkRange:
		return 20
	}
	return 0
}

// validateValue applies the sandbox's mex_headers rules to one value: no
// control characters, SPEC maxLength, and (for routing fields) no URL.
func validateValue(name, value string) error {
	if n := maxLength(name); n > 0 && len(value) > n {
		return &ValidationError{Field: name, Reason: "longer than " + strconv.Itoa(n) + " characters"}
	}
	for i := 0; i < len(value); i++ {
		if c := value[i]; c < 0x20 || c == 0x7f {
			return &ValidationError{Field: name, Reason: "contains a control character"}
		}
	}
	switch name {
	case hdrTo, hdrWorkflowID, hdrChecksum:
		lower := strings.ToLower(value)
		if strings.HasPrefix(lower, "http://") || strings.HasPrefix(lower, "https://") {
			return &ValidationError{Field: name, Reason: "must not start with http:// or https://"}
		}
	}
	if name == hdrChecksum {
		// The official sandbox accepts only letters, digits, whitespace and ":-/".
		for _, c := range value {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
				c == ' ' || c == ':' || c == '-' || c == '/') {
				return &ValidationError{Field: name, Reason: "may hold only letters, digits, spaces and :-/"}
			}
		}
	}
	return nil
}

// validatePathSegment guards ids placed in URL paths.
func validatePathSegment(field, v string) error {
	if v == "" {
		return &ValidationError{Field: field, Reason: "is required"}
	}
	if len(v) > 300 {
		return &ValidationError{Field: field, Reason: "longer than 300 characters"}
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c <= 0x20 || c == 0x7f || c == '/' || c == '?' || c == '#' || c == '%' || c == '\\' {
			return &ValidationError{Field: field, Reason: "contains a character not allowed in a URL path"}
		}
	}
	if v == "." || v == ".." {
		return &ValidationError{Field: field, Reason: "is not a valid path segment"}
	}
	return nil
}

// firstChunkHeaders builds and validates the first-chunk headers of a message. The
// map is owned by the single first-chunk request.
func (o *SendOptions) firstChunkHeaders(total int) (http.Header, error) {
	if o.To == "" {
		return nil, &ValidationError{Field: hdrTo, Reason: "is required"}
	}
	if o.WorkflowID == "" {
		return nil, &ValidationError{Field: hdrWorkflowID, Reason: "is required"}
	}
	h := make(http.Header, 12)
	set := func(name, v string) error {
		if v == "" {
			return nil
		}
		if err := validateValue(name, v); err != nil {
			return err
		}
		h[name] = []string{v}
		return nil
	}
	for _, f := range [...]struct{ name, v string }{
		{hdrTo, o.To}, {hdrWorkflowID, o.WorkflowID}, {hdrSubject, o.Subject}, {hdrLocalID, o.LocalID},
		{hdrFileName, o.FileName}, {hdrChecksum, o.Checksum}, {hdrPartnerID, o.PartnerID},
		{hdrMexContentType, o.ContentType},
	} {
		if err := set(f.name, f.v); err != nil {
			return nil, err
		}
	}
	if o.Encrypted {
		h[hdrContentEncrypted] = []string{flagYes}
	}
	if o.Compressed {
		h[hdrContentCompressed] = []string{flagYes}
	}
	// SPEC/PYC: the payload's content type only on a single-chunk message;
	// chunked messages are application/octet-stream and keep mex-Content-Type.
	ct := octetStream
	if total == 1 && o.ContentType != "" {
		ct = o.ContentType
	}
	h[hdrContentType] = []string{ct}
	return h, nil
}

func chunkRange(k, n int) string {
	return strconv.Itoa(k) + ":" + strconv.Itoa(n)
}

// parseChunkRange reads "k:n"; absent means 1:1 (PYC default).
func parseChunkRange(v string) (k, n int, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 1, 1, true
	}
	a, b, found := strings.Cut(v, ":")
	if !found {
		return 0, 0, false
	}
	k, err1 := strconv.Atoi(strings.TrimSpace(a))
	n, err2 := strconv.Atoi(strings.TrimSpace(b))
	if err1 != nil || err2 != nil || k < 0 || n < 0 {
		return 0, 0, false
	}
	return k, n, true
}

// MessageMetadata is every mex-* header of a downloaded (or HEAD) message.
type MessageMetadata struct {
	MessageID         string
	From              string
	To                string
	WorkflowID        string
	Subject           string
	LocalID           string
	FileName          string
	ContentType       string // mex-Content-Type, else Content-Type
	MessageType       string // DATA | REPORT
	StatusCode        string
	StatusEvent       string
	StatusDescription string
	StatusSuccess     string // SUCCESS | ERROR
	StatusTimestamp   time.Time
	LinkedMessageID   string
	ChunkRange        string
	TotalChunks       int
	Checksum          string
	// Compressed is mex-Content-Compressed: Y. Not proof that the sender
	// compressed the content: the MESH sandbox also sets it when it gzips a
	// download on the fly for a client that accepts gzip (as this one does).
	// Either way the client has already removed any transport gzip
	// (Content-Encoding) from what Download writes; only a sender's own
	// compression inside the payload (the passthrough meaning) would remain.
	Compressed  bool
	Encrypted   bool
	AddressType string
	Version     string
	PartnerID   string
	// ContentEncoding is the transfer encoding of the first chunk as served.
	ContentEncoding string
	Raw             http.Header
}

// IsReport reports whether the message is a MESH REPORT (e.g. undelivered).
func (m *MessageMetadata) IsReport() bool { return strings.EqualFold(m.MessageType, "REPORT") }

func parseMetadata(h http.Header) *MessageMetadata {
	m := &MessageMetadata{
		MessageID:         h.Get(hdrMessageID),
		From:              h.Get(hdrFrom),
		To:                h.Get(hdrTo),
		WorkflowID:        h.Get(hdrWorkflowID),
		Subject:           h.Get(hdrSubject),
		LocalID:           h.Get(hdrLocalID),
		FileName:          h.Get(hdrFileName),
		ContentType:       h.Get(hdrMexContentType),
		MessageType:       h.Get(hdrMessageType),
		StatusCode:        h.Get(hdrStatusCode),
		StatusEvent:       h.Get(hdrStatusEvent),
		StatusDescription: h.Get(hdrStatusDescription),
		StatusSuccess:     h.Get(hdrStatusSuccess),
		LinkedMessageID:   h.Get(hdrLinkedMsgID),
		ChunkRange:        h.Get(hdrChunkRange),
		Checksum:          h.Get(hdrChecksum),
		Compressed:        yes(h.Get(hdrContentCompressed)),
		Encrypted:         yes(h.Get(hdrContentEncrypted)),
		AddressType:       h.Get(hdrAddressType),
		Version:           h.Get(hdrVersion),
		PartnerID:         h.Get(hdrPartnerID),
		ContentEncoding:   h.Get(hdrContentEncoding),
		Raw:               h.Clone(),
	}
	if m.ContentType == "" {
		m.ContentType = h.Get(hdrContentType)
	}
	if ts, err := ParseTimestamp(h.Get(hdrStatusTimestamp)); err == nil {
		m.StatusTimestamp = ts
	}
	if n, err := strconv.Atoi(strings.TrimSpace(h.Get(hdrTotalChunks))); err == nil {
		m.TotalChunks = n
	} else if _, n, ok := parseChunkRange(m.ChunkRange); ok {
		m.TotalChunks = n
	}
	return m
}

func yes(v string) bool {
	v = strings.TrimSpace(v)
	return strings.EqualFold(v, "Y") || strings.EqualFold(v, "YES") || strings.EqualFold(v, "TRUE")
}

// staticHeaders are sent on every request (SPEC handshake headers; PYC sends
// them on all calls).
func staticHeaders(clientName, clientVersion string) (http.Header, error) {
	if clientName == "" {
		clientName = defaultClientNm
	}
	if clientVersion == "" {
		clientVersion = defaultClientV
	}
	osName, osVersion, arch := platformInfo()
	ua := clientName + ";mesh_gateway;" + clientVersion + ";" + runtime.Version() + ";" + arch + ";" + osName + ";" + osVersion
	h := http.Header{
		hdrAccept:         {acceptV2},
		hdrClientVersion:  {clientName + ";mesh_gateway==" + clientVersion},
		hdrOSName:         {osName},
		hdrOSVersion:      {osVersion},
		hdrOSArchitecture: {arch},
		hdrJavaVersion:    {"N/A"},
		hdrUserAgent:      {ua},
	}
	for name, v := range h {
		if err := validateValue(name, v[0]); err != nil {
			return nil, err
		}
	}
	return h, nil
}

// platformInfo mirrors Python's platform.system()/release()/machine(), which
// is what PYC reports.
func platformInfo() (osName, osVersion, arch string) {
	switch runtime.GOOS {
	case "linux":
		osName = "Linux"
	case "darwin":
		osName = "Darwin"
	case "windows":
		osName = "Windows"
	default:
		osName = runtime.GOOS
	}
	osVersion = "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		if v := sanitize(strings.TrimSpace(string(b))); v != "" {
			osVersion = v
		}
	}
	switch runtime.GOARCH {
	case "amd64":
		arch = "x86_64"
	case "arm64":
		arch = "aarch64"
	case "386":
		arch = "i686"
	default:
		arch = runtime.GOARCH
	}
	return osName, osVersion, arch
}

// sanitize drops control characters so platform strings never fail validation.
func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// timestampLayouts are the forms MESH uses: ISO with or without a zone and
// fraction (sandbox: 2026-11-29T19:22:52.375137), and yyyyMMddHHmmss.
var timestampLayouts = [...]string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"20060102150405",
	"200601021504",
	"2006-01-02",
}

// ParseTimestamp parses a MESH timestamp leniently; zone-less values are UTC.
func ParseTimestamp(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	var lastErr error
	for _, layout := range timestampLayouts {
		t, err := time.Parse(layout, s)
		if err == nil {
			return t.UTC(), nil
		}
		lastErr = err
	}
	return time.Time{}, lastErr
}
