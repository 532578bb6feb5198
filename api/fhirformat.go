package api

import (
	"bytes"
	"mime"
	"net/http"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/meshgateway/gateway/itk"
)

// capabilityStatement godoc
// @Summary      FHIR capabilities (CapabilityStatement)
// @Description  The FHIR STU3 CapabilityStatement of this gateway: FHIR version 3.0.2, JSON and XML, the
// @Description  $process-message operation and the GP Connect Send Document MessageDefinition it receives. No
// @Description  authentication: FHIR clients such as HAPI FHIR read it before their first request. JSON unless the
// @Description  Accept header or `_format` (json | xml) asks for XML.
// @Tags         fhir
// @Produce      application/fhir+json
// @Produce      application/fhir+xml
// @Param        _format  query  string  false  "json or xml (overrides Accept)"
// @Success      200  {object}  object  "CapabilityStatement"
// @Router       /FHIR/STU3/metadata [get]
func (s *server) capabilityStatement(c *gin.Context) {
	f := responseFormat(c.Request, "")
	var buf bytes.Buffer
	err := itk.EncodeCapabilityStatement(&buf, f, itk.CapabilityOptions{
		BaseURL: s.fhirBase(c.Request), SoftwareName: "mesh-gateway", SoftwareVersion: s.Version, Date: s.Started,
		Security: "Every request except this one needs `Authorization: Bearer <JWT>`, a JWT the client signs with a key " +
			"from its registered JWKS (RS512; ES256 or PS512 where configured): `iss` = `sub` = the client id, `aud` = this " +
			"gateway's audience, `exp` at most 5 minutes ahead, a `jti` never used before, `kid` naming the key.",
	})
	if err != nil {
		_ = c.Error(internalError(err))
		return
	}
	c.Header("Vary", "Accept")
	c.Data(http.StatusOK, f.ContentType()+"; charset=utf-8", buf.Bytes())
}

// fhirBase is the FHIR base URL callers use: GATEWAY_PUBLIC_URL when set
// (behind a proxy the request does not know it), else this request's host.
func (s *server) fhirBase(r *http.Request) string {
	if s.PublicURL != "" {
		return strings.TrimRight(s.PublicURL, "/") + "/FHIR/STU3"
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + "/FHIR/STU3"
}

// responseFormat picks the FHIR format of a response: the _format
// parameter first, then the format the Accept header prefers, then the
// request's own format (an XML Bundle gets an XML answer), JSON otherwise;
// a format the Accept header refuses (q=0) is the last resort.
func responseFormat(r *http.Request, request itk.Format) itk.Format {
	if v := r.URL.Query().Get("_format"); v != "" {
		// A literal '+' in a query string arrives as a space.
		if f, ok := formatOf(strings.ReplaceAll(strings.TrimSpace(v), " ", "+")); ok {
			return f
		}
	}
	best, bestQ := itk.Format(""), 0.0
	refused := map[itk.Format]bool{}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		f, ok := formatOf(mt)
		if !ok {
			continue
		}
		q := 1.0
		if v, found := params["q"]; found {
			if q, err = strconv.ParseFloat(v, 64); err != nil {
				continue
			}
		}
		switch {
		case q <= 0:
			refused[f] = true
		case q > bestQ:
			best, bestQ = f, q
		case q == bestQ && f != best && f == request:
			best = f // a tie goes to the request's format
		}
	}
	switch {
	case best != "":
		return best
	case request != "" && !refused[request]:
		return request
	case refused[itk.FormatJSON] && !refused[itk.FormatXML]:
		return itk.FormatXML
	}
	return itk.FormatJSON
}

// formatOf maps a _format value or media type to a FHIR format.
func formatOf(v string) (itk.Format, bool) {
	switch strings.ToLower(v) {
	case "json", "application/fhir+json", "application/json+fhir", "application/json":
		return itk.FormatJSON, true
	case "xml", "application/fhir+xml", "application/xml+fhir", "application/xml", "text/xml":
		return itk.FormatXML, true
	}
	return "", false
}

// writeOutcome renders an OperationOutcome in the format the caller asked for.
func writeOutcome(c *gin.Context, status int, out *itk.OperationOutcome) {
	f := responseFormat(c.Request, requestFormat(c.Request))
	c.Header("Vary", "Accept")
	if f == itk.FormatJSON {
		c.Header("Content-Type", "application/fhir+json; charset=utf-8")
		c.JSON(status, out)
		return
	}
	var buf bytes.Buffer
	if err := out.EncodeFormat(&buf, f); err != nil {
		c.Header("Content-Type", "application/fhir+json; charset=utf-8")
		c.JSON(http.StatusInternalServerError, outcomeFor(internalError(err)))
		return
	}
	c.Data(status, f.ContentType()+"; charset=utf-8", buf.Bytes())
}

// requestFormat is the FHIR format of the request body, if it has one.
func requestFormat(r *http.Request) itk.Format {
	f, _ := fhirFormat(r.Header.Get("Content-Type"))
	return f
}
