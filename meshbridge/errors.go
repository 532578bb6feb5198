package meshbridge

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// MESH error codes (SPEC error table and sandbox ErrorCodeMap) that callers
// commonly branch on.
const (
	CodeDataFileMissing       = "02"      // COLLECT: data file missing or inaccessible (empty body)
	CodeMalformedHeaders      = "06"      // TRANSFER: malformed control file / headers
	CodeInvalidFromAddress    = "07"      // SEND: mex-From does not match the authenticated mailbox
	CodeMissingTo             = "08"      // SEND: mex-To missing
	CodeUnregisteredRecipient = "12"      // SEND: unregistered to address
	CodeUndelivered           = "14"      // SEND: not collected by recipient (REPORT)
	CodeWorkflowNotRegistered = "17"      // SEND: workflow id not registered for mailbox
	CodeMessageDoesNotExist   = "20"      // RECEIVE: message does not exist
	CodeMultipleMailboxes     = "EPL-150" // SEND: demographic routing matched several mailboxes
	CodeNoMailboxMatched      = "EPL-151" // SEND: demographic routing matched no mailbox
)

// maxErrorBody bounds the raw response body kept on an Error.
const maxErrorBody = 4096

// maxDescription bounds the description shown by Error().
const maxDescription = 300

// Error is a MESH API error response. Error() shows only the HTTP status and
// what MESH said (event, code, description) — never request data, so it is
// safe to log.
type Error struct {
	HTTPStatus  int
	Event       string
	Code        string
	Description string
	MessageID   string
	// Body is the raw response body, truncated to 4 KiB; nil when empty.
	Body []byte
	// RetryAfter is the server's Retry-After hint, zero when absent.
	RetryAfter time.Duration
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("mesh: HTTP ")
	b.WriteString(strconv.Itoa(e.HTTPStatus))
	if e.Event != "" || e.Code != "" {
		b.WriteString(" [")
		b.WriteString(e.Event)
		if e.Event != "" && e.Code != "" {
			b.WriteByte('/')
		}
		b.WriteString(e.Code)
		b.WriteByte(']')
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(e.Description)
	}
	return b.String()
}

// Temporary reports whether the same request may succeed if repeated later.
func (e *Error) Temporary() bool { return IsRetryableStatus(e.HTTPStatus) }

// IsRetryableStatus reports whether MESH (or a gateway in front of it) uses
// the status for transient conditions: 425, 429, 502, 503, 504 (PYC's list).
func IsRetryableStatus(status int) bool {
	switch status {
	case http.StatusTooEarly, http.StatusTooManyRequests, http.StatusBadGateway,
		http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return true
	}
	return false
}

// AsError returns the *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}

// flexString accepts a JSON string, number or null (MESH error codes are
// strings, but some gateways send numbers).
type flexString string

func (f *flexString) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || string(b) == "null" {
		*f = ""
		return nil
	}
	if b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*f = flexString(s)
		return nil
	}
	*f = flexString(strings.TrimSpace(string(b)))
	return nil
}

// errorBody covers every error shape MESH and its sandbox emit: v1
// (errorEvent/errorCode/errorDescription/messageID), v2 (detail[{event,code,msg}]),
// FastAPI validation (detail[{loc,msg,type}]), FastAPI HTTPException
// (detail:"text") and the bare {"message": ...} of a 423.
type errorBody struct {
	ErrorEvent       flexString      `json:"errorEvent"`
	ErrorCode        flexString      `json:"errorCode"`
	ErrorDescription flexString      `json:"errorDescription"`
	MessageIDv1      flexString      `json:"messageID"`
	MessageID        flexString      `json:"message_id"`
	Detail           json.RawMessage `json:"detail"`
	Message          flexString      `json:"message"`
}

type errorDetail struct {
	Event flexString   `json:"event"`
	Code  flexString   `json:"code"`
	Msg   flexString   `json:"msg"`
	Loc   []flexString `json:"loc"`
}

// newError builds an *Error from a non-success response. Status >= 500 is
// handled before any JSON parsing: MESH answers internal errors with SOAP XML.
func newError(status int, header http.Header, body []byte) *Error {
	e := &Error{HTTPStatus: status, RetryAfter: parseRetryAfter(header.Get("Retry-After"), time.Now())}
	if len(body) > 0 {
		if len(body) > maxErrorBody {
			body = body[:maxErrorBody]
		}
		e.Body = append([]byte(nil), body...)
	}
	if status >= 500 {
		e.Description = http.StatusText(status)
		return e
	}
	decodeErrorBody(e, body)
	if e.Description == "" {
		e.Description = http.StatusText(status)
	}
	e.Description = truncate(e.Description, maxDescription)
	return e
}

func decodeErrorBody(e *Error, body []byte) {
	trimmed := strings.TrimSpace(string(body))
	if trimmed == "" || trimmed[0] != '{' {
		return
	}
	var eb errorBody
	if err := json.Unmarshal(body, &eb); err != nil {
		return
	}
	e.Event, e.Code, e.Description = string(eb.ErrorEvent), string(eb.ErrorCode), string(eb.ErrorDescription)
	e.MessageID = string(eb.MessageID)
	if e.MessageID == "" {
		e.MessageID = string(eb.MessageIDv1)
	}
	if len(eb.Detail) > 0 {
		decodeDetail(e, eb.Detail)
	}
	if e.Description == "" {
		e.Description = string(eb.Message)
	}
}

func decodeDetail(e *Error, raw json.RawMessage) {
	var text string
	if json.Unmarshal(raw, &text) == nil {
		if e.Description == "" {
			e.Description = text
		}
		return
	}
	var details []errorDetail
	if json.Unmarshal(raw, &details) != nil || len(details) == 0 {
		return
	}
	first := details[0]
	if e.Event == "" {
		e.Event = string(first.Event)
	}
	if e.Code == "" {
		e.Code = string(first.Code)
	}
	if e.Description != "" {
		return
	}
	// FastAPI validation errors: "header mex-to: field required; ...". loc
	// names the field (never its value), msg says what is wrong.
	parts := make([]string, 0, len(details))
	for _, d := range details {
		msg := string(d.Msg)
		if len(d.Loc) > 0 {
			locs := make([]string, len(d.Loc))
			for i, l := range d.Loc {
				locs[i] = string(l)
			}
			msg = strings.Join(locs, " ") + ": " + msg
		}
		if msg != "" {
			parts = append(parts, msg)
		}
	}
	e.Description = strings.Join(parts, "; ")
}

// parseRetryAfter accepts delta-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// FirstChunkError reports a failed first-chunk POST /outbox. The first chunk
// is never retried automatically because a repeat could create a duplicate
// message. Uncertain is true when MESH may have created the message anyway
// (the request body had started to go out and no answer came back, the answer
// was lost, or a gateway timed out upstream); the caller must reconcile before
// sending again. Uncertain is false when MESH definitely created nothing.
type FirstChunkError struct {
	Err       error
	Uncertain bool
}

func (e *FirstChunkError) Error() string {
	if e.Uncertain {
		return "mesh: first chunk outcome uncertain: " + e.Err.Error()
	}
	return "mesh: first chunk rejected: " + e.Err.Error()
}

func (e *FirstChunkError) Unwrap() error { return e.Err }

// ChunkError reports a failed chunk k >= 2 after retries. The message exists
// in MESH (status "uploading"); ContinueSend can resume from Chunk.
type ChunkError struct {
	MessageID string
	Chunk     int
	Total     int
	Err       error
}

func (e *ChunkError) Error() string {
	return "mesh: chunk " + strconv.Itoa(e.Chunk) + "/" + strconv.Itoa(e.Total) +
		" of message " + e.MessageID + ": " + e.Err.Error()
}

func (e *ChunkError) Unwrap() error { return e.Err }

// ValidationError reports a request the client refused to send. It names the
// field and the rule, never the value (mex-To and mex-Subject carry patient data).
type ValidationError struct {
	Field  string
	Reason string
}

func (e *ValidationError) Error() string {
	return "mesh: invalid " + e.Field + ": " + e.Reason
}
