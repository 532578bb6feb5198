package api

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/meshgateway/gateway/itk"
)

// processMessage godoc
// @Summary      FHIR $process-message: send a ready ITK3 Bundle
// @Description  Accepts a GP Connect Send Document ITK3 message Bundle (FHIR STU3, JSON or XML), validates it against
// @Description  STU3 and every ITK3/Send Document rule, and queues it for MESH. A HAPI-style Parameters wrapper with
// @Description  a `content` parameter is accepted too. Invalid bundles get an OperationOutcome listing every problem,
// @Description  each with the ITK3 response code a receiving practice would return. Answers (OperationOutcome) come
// @Description  in the format the Accept header or `_format` asks for, else in the format of the request.
// @Tags         fhir
// @Accept       application/fhir+json
// @Accept       application/fhir+xml
// @Produce      application/fhir+json
// @Produce      application/fhir+xml
// @Security     BearerAuth
// @Param        Idempotency-Key  header  string  false  "Retry-safe key"
// @Param        async            query   bool    false  "true or absent: the gateway is asynchronous (false gets 422)"
// @Param        response-url     query   string  false  "not used (acknowledgements go to the client's webhook): answered with a warning"
// @Param        _format          query   string  false  "json or xml: the format of the OperationOutcome (overrides Accept)"
// @Param        bundle           body    object  true   "ITK3 message Bundle (type message, MessageHeader event ITK007C)"
// @Success      202  {object}  itk.OperationOutcome  "information outcome carrying the tracking id; Location points at the status resource"
// @Failure      400  {object}  itk.OperationOutcome
// @Failure      401  {object}  itk.OperationOutcome
// @Failure      403  {object}  itk.OperationOutcome
// @Failure      409  {object}  itk.OperationOutcome
// @Failure      413  {object}  itk.OperationOutcome
// @Failure      415  {object}  itk.OperationOutcome
// @Failure      422  {object}  itk.OperationOutcome
// @Failure      429  {object}  itk.OperationOutcome
// @Failure      503  {object}  itk.OperationOutcome
// @Router       /FHIR/STU3/$process-message [post]
// @Router       /FHIR/STU3/MessageHeader/$process-message [post]
func (s *server) processMessage(c *gin.Context) {
	caller := callerOf(c)
	format, ok := fhirFormat(c.GetHeader("Content-Type"))
	if !ok {
		_ = c.Error(newError(http.StatusUnsupportedMediaType, "unsupported_media_type", "Unsupported media type",
			"Send the Bundle as application/fhir+json or application/fhir+xml."))
		return
	}
	responseURL, apiErr := processMessageParams(c.Request)
	if apiErr != nil {
		_ = c.Error(apiErr)
		return
	}
	idemKey, ok := s.idempotencyKey(c)
	if !ok {
		return
	}
	body, err := readBody(http.MaxBytesReader(c.Writer, c.Request.Body, s.MaxBodyBytes), c.Request.ContentLength, s.MaxBodyBytes)
	if err != nil {
		_ = c.Error(bodyReadError(err, s.MaxBodyBytes))
		return
	}
	if len(bytes.TrimSpace(body)) == 0 {
		_ = c.Error(newError(http.StatusBadRequest, "empty_body", "Empty body", "The request body must be an ITK3 message Bundle."))
		return
	}
	bundle, err := unwrapParameters(body, format)
	if err != nil {
		_ = c.Error(&Error{Status: http.StatusBadRequest, Code: "bad_parameters", Title: "Invalid Parameters wrapper",
			Detail: err.Error(), Err: err})
		return
	}

	res := itk.Validate(bundle, format)
	if !res.Valid {
		status := http.StatusUnprocessableEntity
		if res.InfAckCode == "10009" {
			status = http.StatusBadRequest // not readable FHIR at all
		}
		_ = c.Error(&Error{Status: status, Code: "invalid_bundle", Title: "Invalid ITK3 message", Outcome: res.Outcome})
		return
	}
	if apiErr := s.authoriseSender(caller, res.SourceEndpoint, res.SenderODSCode); apiErr != nil {
		_ = c.Error(apiErr)
		return
	}

	md := *res.Metadata
	rec := s.newRecord(caller, res.SourceEndpoint, md, idemKey)
	rec.BundleID = res.BundleIdentifier
	rec.MessageHeaderID = res.MessageHeaderID
	rec.SenderReference = res.SenderReference
	if idemKey != "" { // only a request with a key is ever compared
		sum := sha256.Sum256(body)
		rec.RequestHash = hex.EncodeToString(sum[:])
	}

	// The caller's own bytes go to MESH unchanged (no re-serialisation).
	stored, created, err := s.Store.Accept(c.Request.Context(), rec, bytes.NewReader(bundle))
	if err != nil {
		_ = c.Error(storeError(err))
		return
	}
	s.log.InfoContext(c.Request.Context(), "bundle accepted", "request_id", requestID(c), "message_id", stored.ID,
		"client_id", caller.ClientID, "mailbox", stored.Mailbox, "created", created)

	loc := "/v1/messages/" + stored.ID
	c.Header("Location", loc)
	c.Header("Content-Location", loc)
	if !created {
		c.Header("Idempotent-Replayed", "true")
	}
	issues := []itk.Issue{{
		Severity:    "information",
		Code:        "informational",
		Details:     &itk.CodeableConcept{Coding: []itk.Coding{{System: "https://mesh-gateway.nhs.uk/tracking-id", Code: stored.ID}}, Text: "Tracking id " + stored.ID},
		Diagnostics: "Accepted for delivery through MESH; follow " + loc + " for its status and acknowledgements.",
	}}
	if responseURL {
		issues = append(issues, itk.Issue{Severity: "warning", Code: "not-supported",
			Diagnostics: "response-url is not used: the ITK3 acknowledgements are reported by webhook to the client's registered URL and at " + loc + ".",
			Expression:  []string{"response-url"}})
	}
	// Warnings (e.g. v1-era differences) are passed back so senders can fix them.
	for _, is := range res.Outcome.Issue {
		if is.Severity == "warning" {
			issues = append(issues, is)
		}
	}
	writeOutcome(c, http.StatusAccepted, itk.NewOperationOutcome(issues...))
}

// processMessageParams reads $process-message's URL parameters (STU3 puts
// async and response-url in the URL, never in a Parameters body). The
// gateway is asynchronous by nature: the practice acknowledges hours
// later, so a caller asking for synchronous processing (async=false, which
// needs a response message in the answer) is refused rather than sent a
// 202 it did not ask for. It reports whether response-url was given.
func processMessageParams(r *http.Request) (responseURL bool, _ *Error) {
	q := r.URL.Query()
	switch v := q.Get("async"); v {
	case "", "true":
	case "false":
		e := newError(http.StatusUnprocessableEntity, "synchronous_not_supported", "Synchronous processing not supported",
			"This gateway processes messages asynchronously (MESH delivery, then the practice's ITK3 acknowledgements): "+
				"send without async or with async=true; the 202 answer carries the tracking id.")
		e.Outcome = itk.NewOperationOutcome(itk.Issue{Severity: "error", Code: "not-supported", Details: &itk.CodeableConcept{Text: e.Code},
			Diagnostics: e.Title + ": " + e.Detail, Expression: []string{"async"}})
		return false, e
	default:
		return false, newError(http.StatusBadRequest, "bad_async", "Invalid async parameter", "async must be true or false.")
	}
	return q.Get("response-url") != "", nil
}

// fhirFormat maps a Content-Type to a FHIR wire format.
func fhirFormat(contentType string) (itk.Format, bool) {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || !strings.Contains(mt, "/") { // _format's short "json"/"xml" are no media types
		return "", false
	}
	return formatOf(mt)
}

// unwrapParameters accepts a HAPI-style Parameters{parameter:[{name:"content", resource: Bundle}]}
// and returns the Bundle bytes; any other body is returned as is.
func unwrapParameters(body []byte, f itk.Format) ([]byte, error) {
	if f == itk.FormatJSON {
		var probe struct {
			ResourceType string `json:"resourceType"`
			Parameter    []struct {
				Name     string          `json:"name"`
				Resource json.RawMessage `json:"resource"`
			} `json:"parameter"`
		}
		if json.Unmarshal(body, &probe) != nil || probe.ResourceType != "Parameters" {
			return body, nil
		}
		for _, p := range probe.Parameter {
			if p.Name == "content" && len(p.Resource) > 0 {
				return p.Resource, nil
			}
		}
		return nil, errors.New("Parameters has no 'content' parameter with a resource")
	}
	return unwrapXMLParameters(body)
}

// unwrapXMLParameters cuts the Bundle element out of <Parameters><parameter>
// <name value="content"/><resource><Bundle …/></resource></parameter></Parameters>.
func unwrapXMLParameters(body []byte) ([]byte, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.Strict = true
	var (
		depth       int
		inContent   bool
		inResource  bool
		start       int64
		bundleDepth int
	)
	for {
		before := dec.InputOffset()
		tok, err := dec.RawToken()
		if err != nil {
			if errors.Is(err, io.EOF) {
				if depth == 0 {
					return nil, errors.New("Parameters has no 'content' parameter with a Bundle")
				}
			}
			return body, nil // not a Parameters document we understand: validate as is
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 1 && t.Name.Local != "Parameters" {
				return body, nil
			}
			if depth == 3 && t.Name.Local == "name" {
				for _, a := range t.Attr {
					if a.Name.Local == "value" && a.Value == "content" {
						inContent = true
					}
				}
			}
			if depth == 3 && t.Name.Local == "resource" && inContent {
				inResource = true
			}
			if depth == 4 && inResource && t.Name.Local == "Bundle" {
				start, bundleDepth = before, depth
			}
		case xml.EndElement:
			if bundleDepth != 0 && depth == bundleDepth {
				end := dec.InputOffset()
				return withFHIRNamespace(body[start:end]), nil
			}
			if depth == 2 {
				inContent, inResource = false, false
			}
			depth--
		}
	}
}

// withFHIRNamespace makes sure a cut-out Bundle still declares the FHIR namespace.
func withFHIRNamespace(b []byte) []byte {
	head := b
	if i := bytes.IndexByte(b, '>'); i > 0 {
		head = b[:i]
	}
	if bytes.Contains(head, []byte("xmlns=")) {
		return b
	}
	out := make([]byte, 0, len(b)+32)
	out = append(out, "<Bundle xmlns=\"http://hl7.org/fhir\""...)
	return append(out, b[len("<Bundle"):]...)
}
