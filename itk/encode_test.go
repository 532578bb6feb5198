package itk

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"
)

func TestEncodedSizeMatchesEncoding(t *testing.T) {
	streamed := func(t *testing.T) *SendRequest {
		req := realisticRequest(t)
		pdf := req.Documents[0].Data
		req.Documents[0].Data = nil
		req.Documents[0].Reader, req.Documents[0].Size = bytes.NewReader(pdf), int64(len(pdf))
		return req
	}
	cases := map[string]func(t *testing.T) *SendRequest{
		"realistic": func(t *testing.T) *SendRequest { return realisticRequest(t) },
		"minimal":   func(*testing.T) *SendRequest { return minimalRequest() },
		"streamed":  streamed,
	}
	for name, mk := range cases {
		for _, f := range []Format{FormatXML, FormatJSON} {
			t.Run(name+"."+string(f), func(t *testing.T) {
				m := buildFixture(t, mk(t))
				size, ok := m.EncodedSize(f)
				if !ok {
					t.Fatal("size unknown")
				}
				var buf bytes.Buffer
				if err := m.EncodeFormat(&buf, f); err != nil {
					t.Fatal(err)
				}
				if size != int64(buf.Len()) {
					t.Fatalf("EncodedSize %d, encoded %d bytes", size, buf.Len())
				}
			})
		}
	}
}

func TestEncodeStreamedDocument(t *testing.T) {
	pdf := readSamplePDF(t)
	req := minimalRequest()
	req.Documents[0].Data = nil
	req.Documents[0].Reader, req.Documents[0].Size = bytes.NewReader(pdf), -1
	m := buildFixture(t, req)
	if _, ok := m.EncodedSize(FormatXML); ok {
		t.Fatal("EncodedSize must be unknown for a reader of unknown size")
	}
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(buf.Bytes(), []byte(`<content value="`+base64.StdEncoding.EncodeToString(pdf)+`"/>`)) {
		t.Fatal("streamed content not base64-encoded in place")
	}
	err := m.Encode(io.Discard)
	if !errors.Is(err, errWireReaderConsumed) {
		t.Fatalf("second encode of a streamed document: %v, want errWireReaderConsumed", err)
	}
}

func TestEncodeRejectsWrongStreamSize(t *testing.T) {
	req := minimalRequest()
	req.Documents[0].Data = nil
	req.Documents[0].Reader, req.Documents[0].Size = strings.NewReader("short"), 10
	m := buildFixture(t, req)
	if err := m.Encode(io.Discard); err == nil || !strings.Contains(err.Error(), "declared size 10") {
		t.Fatalf("err = %v, want size mismatch", err)
	}
}

// Hostile text must still give well-formed XML and valid JSON.
func TestEncodeEscapesHostileText(t *testing.T) {
	req := minimalRequest()
	req.Documents[0].Title = "A&B <x> \"q\" 'a' \x01\x1f\t\n\r \xff\xfe \u2028 ]]> é"
	req.Patient.Name.Given = []string{"</given><evil/>"}
	m := buildFixture(t, req)

	var xb bytes.Buffer
	if err := m.EncodeFormat(&xb, FormatXML); err != nil {
		t.Fatal(err)
	}
	parseXML(t, xb.Bytes())
	var title string
	dec := xml.NewDecoder(bytes.NewReader(xb.Bytes()))
	for {
		tok, err := dec.Token()
		if err != nil {
			break
		}
		if se, ok := tok.(xml.StartElement); ok && se.Name.Local == "title" {
			title = se.Attr[0].Value
			break
		}
	}
	if want := "A&B <x> \"q\" 'a' \uFFFD\uFFFD\t\n\r \uFFFD\uFFFD \u2028 ]]> é"; title != want {
		t.Fatalf("XML title round-trip %q, want %q", title, want)
	}

	var jb bytes.Buffer
	if err := m.EncodeFormat(&jb, FormatJSON); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(jb.Bytes(), &doc); err != nil {
		t.Fatalf("JSON invalid: %v", err)
	}
	if !strings.Contains(jb.String(), `"A&B <x> \"q\" 'a' \u0001\u001f\t\n\r `+"\uFFFD\uFFFD"+` \u2028 ]]> é"`) {
		i := strings.Index(jb.String(), `"title": `)
		t.Fatalf("JSON escaping unexpected: %s", jb.String()[i:i+120])
	}
}

func TestEncodeUnknownFormat(t *testing.T) {
	m := buildFixture(t, minimalRequest())
	if err := m.EncodeFormat(io.Discard, "yaml"); err == nil {
		t.Fatal("unknown format accepted")
	}
	if _, ok := m.EncodedSize("yaml"); ok {
		t.Fatal("unknown format sized")
	}
}

// patternReader yields n deterministic bytes without holding them.
type patternReader struct{ remaining int64 }

func (r *patternReader) Read(p []byte) (int, error) {
	if r.remaining == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.remaining {
		p = p[:r.remaining]
	}
	for i := range p {
		p[i] = byte(i*31 + 7)
	}
	r.remaining -= int64(len(p))
	return len(p), nil
}

// TestEncodeMemory100MB: Build+Encode of a 100 MB document must not buffer
// it. Asserted on TotalAlloc (bytes allocated during the call), not timing.
func TestEncodeMemory100MB(t *testing.T) {
	if testing.Short() {
		t.Skip("100 MB encode skipped in -short mode")
	}
	const docSize = 100 << 20
	const limit = docSize * 5 / 2
	measure := func(t *testing.T, run func() error) uint64 {
		t.Helper()
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		if err := run(); err != nil {
			t.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return after.TotalAlloc - before.TotalAlloc
	}
	for _, f := range []Format{FormatXML, FormatJSON} {
		t.Run("reader."+string(f), func(t *testing.T) {
			alloc := measure(t, func() error {
				req := minimalRequest()
				req.Format = f
				req.Documents[0].Data = nil
				req.Documents[0].Reader, req.Documents[0].Size = &patternReader{remaining: docSize}, docSize
				m, err := Build(req, BuildOptions{Now: fixedClock})
				if err != nil {
					return err
				}
				return m.Encode(io.Discard)
			})
			t.Logf("%s streamed 100 MB: TotalAlloc %d bytes (%.4f x document)", f, alloc, float64(alloc)/docSize)
			if alloc > limit {
				t.Fatalf("allocated %d bytes, limit %d", alloc, limit)
			}
		})
	}
	t.Run("data.xml", func(t *testing.T) {
		data := make([]byte, docSize) // the caller's copy, allocated before measuring
		alloc := measure(t, func() error {
			req := minimalRequest()
			req.Documents[0].Data = data
			m, err := Build(req, BuildOptions{Now: fixedClock})
			if err != nil {
				return err
			}
			return m.Encode(io.Discard)
		})
		t.Logf("in-memory 100 MB: TotalAlloc %d bytes (%.4f x document)", alloc, float64(alloc)/docSize)
		if alloc > limit {
			t.Fatalf("allocated %d bytes, limit %d", alloc, limit)
		}
	})
}
