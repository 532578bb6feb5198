package swaggerui

import (
	"bytes"
	"compress/gzip"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

const prefix = "/swagger/"

func serve(t *testing.T, h http.Handler, method, target string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, target, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func newHandler() http.Handler {
	return Handler(prefix, func() string { return `{"swagger":"2.0"}` })
}

// Every file the page loads is served, with its type, to a browser (gzip)
// and to a client that takes no compression, and both carry the same bytes.
func TestPageAndAssets(t *testing.T) {
	h := newHandler()
	page := serve(t, h, http.MethodGet, prefix+"index.html", nil)
	if page.Code != http.StatusOK || page.Header().Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("index.html: %d %q", page.Code, page.Header().Get("Content-Type"))
	}
	for _, want := range []string{`id="swagger-ui"`, "./swagger-ui-bundle.js", "./swagger-ui-standalone-preset.js",
		"./swagger-initializer.js", "./swagger-ui.css", "index.css", "./favicon-32x32.png", "./favicon-16x16.png"} {
		if !strings.Contains(page.Body.String(), want) {
			t.Errorf("index.html does not reference %s", want)
		}
	}
	assets := map[string]string{
		"swagger-ui-bundle.js":            "text/javascript; charset=utf-8",
		"swagger-ui-standalone-preset.js": "text/javascript; charset=utf-8",
		"swagger-initializer.js":          "text/javascript; charset=utf-8",
		"swagger-ui.css":                  "text/css; charset=utf-8",
		"index.css":                       "text/css; charset=utf-8",
		"favicon-16x16.png":               "image/png",
		"favicon-32x32.png":               "image/png",
	}
	for name, ct := range assets {
		t.Run(name, func(t *testing.T) {
			zipped := serve(t, h, http.MethodGet, prefix+name, map[string]string{"Accept-Encoding": "gzip, deflate, br"})
			plain := serve(t, h, http.MethodGet, prefix+name, map[string]string{"Accept-Encoding": "identity"})
			for _, rec := range []*httptest.ResponseRecorder{zipped, plain} {
				if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != ct {
					t.Fatalf("status %d, Content-Type %q; want 200 %q", rec.Code, rec.Header().Get("Content-Type"), ct)
				}
			}
			if plain.Header().Get("Content-Encoding") != "" {
				t.Fatalf("Content-Encoding %q for a client without gzip", plain.Header().Get("Content-Encoding"))
			}
			got := zipped.Body.Bytes()
			if zipped.Header().Get("Content-Encoding") == "gzip" {
				zr, err := gzip.NewReader(bytes.NewReader(got))
				if err != nil {
					t.Fatal(err)
				}
				if got, err = io.ReadAll(zr); err != nil {
					t.Fatal(err)
				}
			}
			if len(got) == 0 || !bytes.Equal(got, plain.Body.Bytes()) {
				t.Fatalf("gzip and identity bodies differ (%d vs %d bytes)", len(got), plain.Body.Len())
			}
		})
	}
}

// The large files are stored gzipped and sent so to browsers; they
// revalidate with the ETag instead of downloading again.
func TestGzipAndETag(t *testing.T) {
	h := newHandler()
	first := serve(t, h, http.MethodGet, prefix+"swagger-ui-bundle.js", map[string]string{"Accept-Encoding": "gzip"})
	if first.Header().Get("Content-Encoding") != "gzip" || first.Header().Get("Vary") != "Accept-Encoding" {
		t.Fatalf("Content-Encoding %q, Vary %q", first.Header().Get("Content-Encoding"), first.Header().Get("Vary"))
	}
	stored, err := fs.ReadFile(assets, "assets/swagger-ui-bundle.js.gz")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.Body.Bytes(), stored) {
		t.Fatal("gzip body is not the stored file")
	}
	etag := first.Header().Get("ETag")
	if len(etag) < 3 || etag[0] != '"' {
		t.Fatalf("ETag %q", etag)
	}
	again := serve(t, h, http.MethodGet, prefix+"swagger-ui-bundle.js", map[string]string{"Accept-Encoding": "gzip", "If-None-Match": etag})
	if again.Code != http.StatusNotModified || again.Body.Len() != 0 {
		t.Fatalf("revalidation: status %d, %d bytes; want 304", again.Code, again.Body.Len())
	}
}

func TestDocRedirectAndNotFound(t *testing.T) {
	h := newHandler()
	doc := serve(t, h, http.MethodGet, prefix+DocName, nil)
	if doc.Code != http.StatusOK || doc.Body.String() != `{"swagger":"2.0"}` ||
		doc.Header().Get("Content-Type") != "application/json; charset=utf-8" {
		t.Fatalf("doc.json: %d %q %q", doc.Code, doc.Header().Get("Content-Type"), doc.Body.String())
	}
	root := serve(t, h, http.MethodGet, prefix, nil)
	if root.Code != http.StatusFound || root.Header().Get("Location") != prefix+"index.html" {
		t.Fatalf("%s: %d Location %q", prefix, root.Code, root.Header().Get("Location"))
	}
	for _, name := range []string{"LICENSE", "NOTICE", "missing.js", "swagger-ui-bundle.js.gz", "../swaggerui.go",
		"assets/index.html", "x/../index.html", "swagger-ui.css.map"} {
		if rec := serve(t, h, http.MethodGet, prefix+name, nil); rec.Code != http.StatusNotFound {
			t.Errorf("%s: status %d, want 404", name, rec.Code)
		}
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                      false,
		"identity":              false,
		"gzip":                  true,
		"GZIP":                  true,
		"deflate, gzip;q=0.5":   true,
		"gzip;q=0":              false,
		"gzip; q=0.0, *":        false,
		"*":                     true,
		"*;q=0":                 false,
		"br, *;q=0.1":           true,
		"br;q=1.0, gzip;q=0.8 ": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
