package api

import (
	"net/http/httptest"
	"testing"

	"github.com/meshgateway/gateway/itk"
)

func TestResponseFormat(t *testing.T) {
	tests := []struct {
		name, target, accept string
		request              itk.Format
		want                 itk.Format
	}{
		{"nothing asked", "/", "", "", itk.FormatJSON},
		{"nothing asked, XML request", "/", "", itk.FormatXML, itk.FormatXML},
		{"anything", "/", "*/*", itk.FormatXML, itk.FormatXML},
		{"legacy XML type", "/", "application/xml+fhir", "", itk.FormatXML},
		{"plain XML", "/", "application/xml", itk.FormatJSON, itk.FormatXML},
		{"q picks JSON", "/", "application/fhir+xml;q=0.2, application/fhir+json;q=0.8", itk.FormatXML, itk.FormatJSON},
		{"tie goes to the request format", "/", "application/fhir+json, application/fhir+xml", itk.FormatXML, itk.FormatXML},
		{"tie without a request format goes to the first", "/", "application/fhir+json, application/fhir+xml", "", itk.FormatJSON},
		{"q=0 refuses the request's format", "/", "application/fhir+xml;q=0, */*", itk.FormatXML, itk.FormatJSON},
		{"q=0 refuses JSON", "/", "application/fhir+json;q=0", "", itk.FormatXML},
		{"both refused: JSON", "/", "application/fhir+json;q=0, application/fhir+xml;q=0", itk.FormatXML, itk.FormatJSON},
		{"unparseable q ignored", "/", "application/fhir+xml;q=high, application/fhir+json;q=0.1", "", itk.FormatJSON},
		{"garbage Accept", "/", ";;;,", "", itk.FormatJSON},
		{"_format wins over Accept", "/?_format=xml", "application/fhir+json", "", itk.FormatXML},
		{"_format as a media type with an escaped plus", "/?_format=application%2Ffhir%2Bjson", "application/fhir+xml", "", itk.FormatJSON},
		{"_format with a plus read as a space", "/?_format=application/fhir+xml", "", "", itk.FormatXML},
		{"unknown _format ignored", "/?_format=ttl", "", itk.FormatXML, itk.FormatXML},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", tc.target, nil)
			if tc.accept != "" {
				r.Header.Set("Accept", tc.accept)
			}
			if got := responseFormat(r, tc.request); got != tc.want {
				t.Fatalf("responseFormat = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFHIRFormatRefusesShortNames(t *testing.T) {
	for ct, want := range map[string]bool{"application/fhir+json": true, "text/xml; charset=utf-8": true, "json": false, "xml": false, "text/plain": false} {
		if _, ok := fhirFormat(ct); ok != want {
			t.Errorf("fhirFormat(%q) ok = %v, want %v", ct, ok, want)
		}
	}
}
