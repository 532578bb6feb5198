package fakemesh

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// apiError is a MESH error response. v1 renders
// {"messageID","errorEvent","errorCode","errorDescription"}, v2 renders
// {"message_id","detail":[{"event","code","msg"}]} (message id only when known,
// as the sandbox does).
type apiError struct {
	event, code, desc string
	messageID         string
	fields            []string // TRANSFER/06: offending header names (v1 "fields")
}

// Send-path errors with the sandbox's event, code and description.
var (
	errUnregistered    = apiError{event: "SEND", code: "12", desc: "Unregistered to address"}
	errMissingData     = apiError{event: "COLLECT", code: "02", desc: "Data file is missing or inaccessible."}
	errInvalidFrom     = apiError{event: "SEND", code: "07", desc: "Invalid From Address in the control file"}
	errWorkflowDenied  = apiError{event: "SEND", code: "17", desc: "Workflow ID not registered for mailbox"}
	errHeaderChunks    = apiError{event: "SEND", code: "InvalidHeaderChunks", desc: "Invalid chunk values sent in mex-Chunk-Range header"}
	errEncoding        = apiError{event: "SEND", code: "UnsupportedContentEncoding", desc: "Unsupported content encoding"}
	errEncodingChanged = apiError{event: "SEND", code: "", desc: "cannot change content encoding"}
	errChecksum        = apiError{event: "SEND", code: "Invalid checksum", desc: "Invalid checksum"}
	errMalformed       = apiError{event: "TRANSFER", code: "06", desc: "MalformedControlFile"}
	errFinalised       = apiError{event: "SEND", code: "", desc: "Messages has been finalised; no more chunks can be uploaded"}
	errNotExist        = apiError{event: "RECEIVE", code: "20", desc: "Message does not exist"}
	errGone            = apiError{event: "SEND", code: "Message already accepted", desc: "Message no longer available for download"}
	errForbidden       = apiError{desc: "Forbidden"}
	errTooLarge        = apiError{event: "SEND", code: "", desc: "Request body too large"}
	errLocalIDMultiple = apiError{event: "TRACKING", code: "", desc: "Multiple Choices, the local_id is not unique"}
)

type v1ErrorBody struct {
	MessageID        string   `json:"messageID,omitempty"`
	ErrorEvent       string   `json:"errorEvent"`
	ErrorCode        string   `json:"errorCode"`
	ErrorDescription string   `json:"errorDescription"`
	Fields           []string `json:"fields,omitempty"`
}

type v2ErrorDetail struct {
	Event string `json:"event"`
	Code  string `json:"code"`
	Msg   string `json:"msg"`
}

type v2ErrorBody struct {
	MessageID string          `json:"message_id,omitempty"`
	Detail    []v2ErrorDetail `json:"detail"`
}

func writeError(c *call, status int, e apiError) {
	var body []byte
	if c.ver >= 2 {
		body, _ = json.Marshal(v2ErrorBody{MessageID: e.messageID, Detail: []v2ErrorDetail{{Event: e.event, Code: e.code, Msg: e.desc}}})
	} else {
		body, _ = json.Marshal(v1ErrorBody{MessageID: e.messageID, ErrorEvent: e.event, ErrorCode: e.code, ErrorDescription: e.desc, Fields: e.fields})
	}
	writeJSON(c, status, body)
}

// fieldError is one FastAPI validation error ({"loc","msg","type"}).
type fieldError struct {
	Loc  []string       `json:"loc"`
	Msg  string         `json:"msg"`
	Type string         `json:"type"`
	Ctx  map[string]int `json:"ctx,omitempty"`
}

func missingField(where, name string) fieldError {
	return fieldError{Loc: []string{where, name}, Msg: "field required", Type: "value_error.missing"}
}

// writeValidation writes the FastAPI 400 shape the sandbox returns for
// missing or out-of-range parameters (the same in v1 and v2).
func writeValidation(c *call, errs []fieldError) {
	body, _ := json.Marshal(struct {
		Detail []fieldError `json:"detail"`
	}{errs})
	writeJSON(c, http.StatusBadRequest, body)
}

func writeNotFound(c *call) {
	writeJSON(c, http.StatusNotFound, []byte(`{"detail":"Not Found"}`))
}

func (c *call) jsonContentType() string {
	if c.ver >= 2 {
		return "application/vnd.mesh.v2+json"
	}
	return "application/vnd.mesh.v1+json"
}

func writeJSON(c *call, status int, body []byte) {
	h := c.w.Header()
	h["Content-Type"] = []string{c.jsonContentType()}
	h["Content-Length"] = []string{strconv.Itoa(len(body))}
	c.w.WriteHeader(status)
	if c.r.Method != http.MethodHead {
		_, _ = c.w.Write(body)
	}
}

func writeEmpty(c *call, status int) {
	c.w.Header()["Content-Length"] = []string{"0"}
	c.w.WriteHeader(status)
}

// appendJSONString appends s as a JSON string. Used on hot paths for ids,
// which are plain ASCII; anything needing escapes goes through encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if ch := s[i]; ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
