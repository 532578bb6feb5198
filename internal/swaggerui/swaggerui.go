// Package swaggerui serves Swagger UI and an OpenAPI document from files
// embedded in the binary: swagger-ui-dist 4.15.5 (Apache-2.0, see assets/LICENSE
// and assets/NOTICE; the files are those of the npm package, the large ones
// gzipped with `gzip -9 -n`) and the gateway's own swagger-initializer.js.
//
// Nothing is copied, decompressed or allocated at start-up: the embedded
// files stay in the binary's read-only data until a page is requested. The
// gzipped files go out as they are to clients that accept gzip (every
// browser) and are decompressed per request for the others.
//
// To move to another Swagger UI version: `npm pack swagger-ui-dist@VERSION`,
// copy index.html, index.css, favicon-16x16.png, favicon-32x32.png, LICENSE
// and NOTICE into assets/, `gzip -9 -n -c FILE > assets/FILE.gz` for
// swagger-ui-bundle.js, swagger-ui-standalone-preset.js and swagger-ui.css,
// and update the version above.
package swaggerui

import (
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io"
	"io/fs"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"
)

//go:embed assets
var assets embed.FS

// DocName is the file name the OpenAPI document is served under (the
// initializer loads it relative to the page).
const DocName = "doc.json"

var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".png":  "image/png",
}

// Handler serves the files of Swagger UI below prefix (e.g. "/swagger/"):
// prefix+"index.html" is the page, prefix+DocName the OpenAPI document
// returned by doc (called per request), prefix itself redirects to the page.
func Handler(prefix string, doc func() string) http.Handler {
	return &handler{prefix: prefix, doc: doc}
}

type handler struct {
	prefix string
	doc    func() string
	etags  sync.Map // stored file name → quoted ETag, computed on first use
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, h.prefix)
	switch {
	case !ok:
		http.NotFound(w, r)
		return
	case name == "":
		http.Redirect(w, r, h.prefix+"index.html", http.StatusFound)
		return
	case name == DocName:
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = io.WriteString(w, h.doc())
		return
	}
	ct, known := contentTypes[path.Ext(name)]
	if !known || strings.Contains(name, "/") || !fs.ValidPath(name) {
		http.NotFound(w, r)
		return
	}
	hdr := w.Header()
	hdr.Set("Content-Type", ct)
	hdr.Set("X-Content-Type-Options", "nosniff")
	hdr.Set("Cache-Control", "no-cache") // revalidate: the files change with the binary
	if h.serveStored(w, r, name+".gz", func() bool {
		hdr.Set("Vary", "Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			hdr.Set("Content-Encoding", "gzip")
			return true
		}
		return false
	}) {
		return
	}
	if !h.serveStored(w, r, name, func() bool { return true }) {
		hdr.Del("Content-Type")
		http.NotFound(w, r)
	}
}

// serveStored serves assets/stored if it exists (else returns false). asIs
// says whether the stored bytes go out unchanged (with an ETag and range
// support); if not, stored is gzip and is decompressed into the response.
func (h *handler) serveStored(w http.ResponseWriter, r *http.Request, stored string, asIs func() bool) bool {
	f, err := assets.Open("assets/" + stored)
	if err != nil {
		return false
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker) // embed's files are
	if !ok {
		return false
	}
	if !asIs() {
		zr, err := gzip.NewReader(rs)
		if err != nil {
			http.Error(w, "corrupt embedded file", http.StatusInternalServerError)
			return true
		}
		if r.Method != http.MethodHead {
			_, _ = io.Copy(w, zr)
		}
		return true
	}
	etag, err := h.etag(stored, rs)
	if err != nil {
		http.Error(w, "unreadable embedded file", http.StatusInternalServerError)
		return true
	}
	w.Header().Set("ETag", etag)
	http.ServeContent(w, r, "", time.Time{}, rs) // no Last-Modified: the ETag decides
	return true
}

// etag hashes a stored file once (on its first request) and leaves rs at
// its start.
func (h *handler) etag(stored string, rs io.ReadSeeker) (string, error) {
	if v, ok := h.etags.Load(stored); ok {
		return v.(string), nil
	}
	sum := sha256.New()
	if _, err := io.Copy(sum, rs); err != nil {
		return "", err
	}
	if _, err := rs.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	tag := strconv.Quote(hex.EncodeToString(sum.Sum(nil)[:16]))
	h.etags.Store(stored, tag)
	return tag, nil
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: named
// (or "*") with a non-zero quality.
func acceptsGzip(header string) bool {
	star := false
	for part := range strings.SplitSeq(header, ",") {
		coding, params, _ := strings.Cut(part, ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "*" {
			continue
		}
		q := 1.0
		for p := range strings.SplitSeq(params, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(p), "q="); ok {
				if f, err := strconv.ParseFloat(v, 64); err == nil {
					q = f
				}
			}
		}
		if coding == "gzip" {
			return q > 0
		}
		star = q > 0
	}
	return star
}
