package meshbridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/klauspost/compress/gzip"
)

// acceptGzip asks MESH to serve chunks as stored (gzip) rather than
// decompressing them server-side, as PYC does.
func acceptGzip() http.Header { return http.Header{hdrAcceptEncoding: {encodingGzip}} }

// downloader holds the buffers reused across the chunks of one download.
type downloader struct {
	gz  *gzip.Reader
	buf []byte
}

// Download fetches every chunk of an inbox message (200 for the last or only
// chunk, 206 while more remain, as mex-Chunk-Range k:n says), gunzips each
// chunk independently when served with Content-Encoding: gzip, and streams
// the payload to w in order. Memory stays at one copy buffer. A failure
// before a chunk's body starts is retried per the RetryPolicy; a failure
// mid-body is returned (w then holds a partial message). The metadata is
// that of chunk 1. REPORT messages have no body (chunk range 1:0).
func (c *Client) Download(ctx context.Context, messageID string, w io.Writer) (*MessageMetadata, error) {
	if err := validatePathSegment("messageID", messageID); err != nil {
		return nil, err
	}
	base := c.mbxPath + "/inbox/" + url.PathEscape(messageID)
	resp, err := c.do(ctx, request{op: "download", method: http.MethodGet, url: base, header: acceptGzip()})
	if err != nil {
		return nil, err
	}
	meta := parseMetadata(resp.Header)
	first, total, ok := parseChunkRange(meta.ChunkRange)
	if !ok || first != 1 {
		drainClose(resp.Body)
		return meta, fmt.Errorf("meshbridge: download: unexpected mex-Chunk-Range on chunk 1")
	}
	if meta.TotalChunks == 0 {
		meta.TotalChunks = total
	}
	d, _ := c.downloaders.Get().(*downloader)
	if d == nil {
		d = &downloader{buf: make([]byte, 256<<10)}
	}
	defer c.downloaders.Put(d)
	if err := d.copyChunk(resp, 1, total, w); err != nil {
		return meta, err
	}
	for k := 2; k <= total; k++ {
		resp, err := c.do(ctx, request{op: "download chunk", method: http.MethodGet,
			url: base + "/" + strconv.Itoa(k), header: acceptGzip()})
		if err != nil {
			return meta, fmt.Errorf("meshbridge: download chunk %d/%d: %w", k, total, err)
		}
		if v := resp.Header.Get(hdrChunkRange); v != "" {
			if gotK, gotN, ok := parseChunkRange(v); !ok || gotK != k || gotN != total {
				drainClose(resp.Body)
				return meta, fmt.Errorf("meshbridge: download chunk %d/%d: server sent mex-Chunk-Range %q", k, total, v)
			}
		}
		if err := d.copyChunk(resp, k, total, w); err != nil {
			return meta, err
		}
	}
	return meta, nil
}

// copyChunk streams one chunk's body to w, decoding gzip when served so.
func (d *downloader) copyChunk(resp *http.Response, k, total int, w io.Writer) error {
	defer drainClose(resp.Body)
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusPartialContent {
		return fmt.Errorf("meshbridge: download chunk %d/%d: unexpected HTTP %d", k, total, resp.StatusCode)
	}
	if resp.ContentLength == 0 {
		return nil // e.g. a REPORT: no body, whatever Content-Encoding says
	}
	var src io.Reader = resp.Body
	switch enc := strings.ToLower(strings.TrimSpace(resp.Header.Get(hdrContentEncoding))); enc {
	case "", "identity":
	case encodingGzip:
		if d.gz == nil {
			gz, err := gzip.NewReader(resp.Body)
			if err != nil {
				return fmt.Errorf("meshbridge: download chunk %d/%d: gzip: %w", k, total, err)
			}
			d.gz = gz
		} else if err := d.gz.Reset(resp.Body); err != nil {
			return fmt.Errorf("meshbridge: download chunk %d/%d: gzip: %w", k, total, err)
		}
		src = d.gz
	default:
		return fmt.Errorf("meshbridge: download chunk %d/%d: unsupported Content-Encoding %q", k, total, enc)
	}
	var err error
	if src == d.gz {
		_, err = d.gz.WriteTo(w) // writes straight from the inflate window: one copy fewer
	} else {
		_, err = io.CopyBuffer(w, onlyReader{src}, d.buf)
	}
	if err != nil {
		return fmt.Errorf("meshbridge: download chunk %d/%d: %w", k, total, err)
	}
	return nil
}

// onlyReader hides WriterTo so io.CopyBuffer uses the reused buffer.
type onlyReader struct{ io.Reader }

// Head returns a message's metadata without its body (HEAD …/inbox/{id}).
func (c *Client) Head(ctx context.Context, messageID string) (*MessageMetadata, error) {
	if err := validatePathSegment("messageID", messageID); err != nil {
		return nil, err
	}
	resp, err := c.do(ctx, request{op: "head", method: http.MethodHead,
		url: c.mbxPath + "/inbox/" + url.PathEscape(messageID)})
	if err != nil {
		return nil, err
	}
	drainClose(resp.Body)
	if resp.StatusCode/100 != 2 {
		return nil, errors.New("meshbridge: head: unexpected HTTP " + strconv.Itoa(resp.StatusCode))
	}
	return parseMetadata(resp.Header), nil
}
