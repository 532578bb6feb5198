package app

import (
	"net/http/httptest"
	"testing"
)

// Span names never carry what a caller typed into a path.
func TestRouteName(t *testing.T) {
	for path, want := range map[string]string{
		"/v1/documents":                             "/v1/documents",
		"/v1/messages":                              "/v1/messages",
		"/v1/messages/0b6f8e1e":                     "/v1/messages/{id}",
		"/v1/messages/0b6f8e1e/deliveries":          "/v1/messages/{id}/deliveries",
		"/v1/messages/0b6f8e1e/deliveries/replay":   "/v1/messages/{id}/deliveries/replay",
		"/FHIR/STU3/$process-message":               "/FHIR/STU3/$process-message",
		"/FHIR/STU3/MessageHeader/$process-message": "/FHIR/STU3/MessageHeader/$process-message",
		"/FHIR/STU3/Patient/9434765919":             "unmatched",
		"/v1/patients/9434765919/SMITH":             "unmatched",
		"/healthz":                                  "/healthz",
		"/swagger/index.html":                       "/swagger/index.html",
	} {
		if got := routeName(httptest.NewRequest("GET", path, nil)); got != want {
			t.Errorf("routeName(%s) = %q, want %q", path, got, want)
		}
	}
}
