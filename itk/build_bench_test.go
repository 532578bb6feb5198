package itk

import (
	"io"
	"runtime"
	"testing"
)

// benchmarkBuildEncode measures Build + Encode to io.Discard of a 5 MB
// PDF-shaped document. Targets: <= 30 ms/op and allocations <= 3x the PDF.
func benchmarkBuildEncode(b *testing.B, f Format) {
	pdf := samplePDF(sampleLetterLines, 5<<20)
	b.SetBytes(int64(len(pdf)))
	b.ReportAllocs()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		req := minimalRequest()
		req.Format = f
		req.Documents[0].Data = pdf
		m, err := Build(req, BuildOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Encode(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/float64(len(pdf)), "alloc/payload")
}

func BenchmarkBuildEncodeXML5MB(b *testing.B)  { benchmarkBuildEncode(b, FormatXML) }
func BenchmarkBuildEncodeJSON5MB(b *testing.B) { benchmarkBuildEncode(b, FormatJSON) }

// BenchmarkEncodedSize: sizing without encoding (used for MESH chunk counts).
func BenchmarkEncodedSize5MB(b *testing.B) {
	req := minimalRequest()
	req.Documents[0].Data = samplePDF(sampleLetterLines, 5<<20)
	m, err := Build(req, BuildOptions{})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok := m.EncodedSize(FormatXML); !ok {
			b.Fatal("size unknown")
		}
	}
}
