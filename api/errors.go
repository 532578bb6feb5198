package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/meshgateway/gateway/itk"
)

// Error is every failure a handler reports. The error middleware is the one
// place that turns it into a response: a FHIR OperationOutcome on FHIR routes,
// application/problem+json on /v1. Detail and Problems never carry patient data.
type Error struct {
	Status   int
	Title    string         // short, stable summary ("Document too large")
	Detail   string         // plain-English explanation
	Code     string         // machine-readable code, e.g. "payload_too_large"
	Problems []FieldProblem // per-field problems (problem+json "errors")
	Outcome  *itk.OperationOutcome
	Header   http.Header // extra response headers (Retry-After, WWW-Authenticate)
	// Verbatim makes Detail alone the OperationOutcome diagnostics (no Title
	// prefix): text callers match exactly, like the NHS platform's auth errors.
	Verbatim bool
	Err      error // cause, logged (never rendered)
}

// FieldProblem is one invalid field of a request.
type FieldProblem struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%d %s: %v", e.Status, e.Code, e.Err)
	}
	return fmt.Sprintf("%d %s", e.Status, e.Code)
}

func (e *Error) Unwrap() error { return e.Err }

func newError(status int, code, title, detail string) *Error {
	return &Error{Status: status, Code: code, Title: title, Detail: detail}
}

// Problem is an RFC 9457 problem details body.
type Problem struct {
	Type     string         `json:"type"`
	Title    string         `json:"title"`
	Status   int            `json:"status"`
	Detail   string         `json:"detail,omitempty"`
	Instance string         `json:"instance,omitempty"`
	Code     string         `json:"code,omitempty"`
	Errors   []FieldProblem `json:"errors,omitempty"`
	Issues   []itk.Issue    `json:"issues,omitempty"`
}

// routeKind says how errors are rendered for a route group.
type routeKind int

const (
	kindProblem routeKind = iota
	kindFHIR
)

const kindKey = "mesh-gateway.route-kind"

func fhirRoutes(c *gin.Context) { c.Set(kindKey, kindFHIR) }

// renderErrors renders the last error a handler attached with c.Error.
func (s *server) renderErrors(c *gin.Context) {
	c.Next()
	if len(c.Errors) == 0 || c.Writer.Written() {
		return
	}
	err := c.Errors.Last().Err
	var apiErr *Error
	if !errors.As(err, &apiErr) {
		apiErr = internalError(err)
	}
	s.writeError(c, apiErr)
}

func internalError(err error) *Error {
	return &Error{Status: http.StatusInternalServerError, Code: "internal_error", Title: "Internal error",
		Detail: "The gateway could not complete the request. Nothing was accepted; it is safe to retry.", Err: err}
}

// writeError logs apiErr and renders it in the route's format.
func (s *server) writeError(c *gin.Context, apiErr *Error) {
	log := s.log.With("request_id", requestID(c), "status", apiErr.Status, "code", apiErr.Code)
	if apiErr.Status >= 500 {
		log.ErrorContext(c.Request.Context(), "request failed", "error", apiErr.Err)
	} else {
		log.InfoContext(c.Request.Context(), "request refused", "error", apiErr.Err)
	}
	for k, vs := range apiErr.Header {
		for _, v := range vs {
			c.Writer.Header().Add(k, v)
		}
	}
	if kind, _ := c.Get(kindKey); kind == kindFHIR {
		writeOutcome(c, apiErr.Status, outcomeFor(apiErr))
		return
	}
	c.Header("Content-Type", "application/problem+json")
	body := Problem{
		Type:     "https://mesh-gateway.nhs.uk/problems/" + apiErr.Code,
		Title:    apiErr.Title,
		Status:   apiErr.Status,
		Detail:   apiErr.Detail,
		Instance: c.FullPath(), // the route template: a raw path may carry anything the caller typed
		Code:     apiErr.Code,
		Errors:   apiErr.Problems,
	}
	if apiErr.Outcome != nil {
		body.Issues = apiErr.Outcome.Issue
	}
	c.Render(apiErr.Status, problemRender{body})
}

// outcomeFor maps an Error to a FHIR OperationOutcome.
func outcomeFor(e *Error) *itk.OperationOutcome {
	if e.Outcome != nil {
		return e.Outcome
	}
	issue := itk.Issue{Severity: "error", Code: issueTypeFor(e.Status), Diagnostics: e.Title}
	switch {
	case e.Verbatim && e.Detail != "":
		issue.Diagnostics = e.Detail
	case e.Detail != "":
		issue.Diagnostics = e.Title + ": " + e.Detail
	}
	issue.Details = &itk.CodeableConcept{Text: e.Code}
	var issues []itk.Issue
	if len(e.Problems) == 0 {
		issues = []itk.Issue{issue}
	}
	for _, p := range e.Problems {
		issues = append(issues, itk.Issue{Severity: "error", Code: "invalid", Diagnostics: p.Message, Expression: []string{p.Field}})
	}
	return itk.NewOperationOutcome(issues...)
}

func issueTypeFor(status int) string {
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		return "security"
	case http.StatusNotFound:
		return "not-found"
	case http.StatusConflict:
		return "conflict"
	case http.StatusRequestEntityTooLarge:
		return "too-long"
	case http.StatusUnsupportedMediaType:
		return "not-supported"
	case http.StatusTooManyRequests:
		return "throttled"
	case http.StatusServiceUnavailable:
		return "transient"
	case http.StatusUnprocessableEntity:
		return "processing"
	}
	if status >= 500 {
		return "exception"
	}
	return "invalid"
}
