package itk

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// samplePDF returns a minimal valid PDF 1.4 with one A4 page of Helvetica text.
// Extra lines are appended until the file is at least minSize bytes, which gives
// benchmarks a PDF-shaped payload of any size. Object offsets in the xref table
// are computed exactly so strict readers accept the file.
func samplePDF(lines []string, minSize int) []byte {
	var content bytes.Buffer
	content.WriteString("BT\n/F1 11 Tf\n14 TL\n72 770 Td\n")
	for _, l := range lines {
		fmt.Fprintf(&content, "(%s) Tj T*\n", pdfEscape(l))
	}
	content.WriteString("ET\n")
	if pdf := assemblePDF(content.Bytes()); len(pdf) >= minSize {
		return pdf
	}
	content.Truncate(content.Len() - len("ET\n"))
	const padLine = "(Padding line %08d for size testing - no clinical content.) Tj T*\n"
	pad := minSize - content.Len() - 400 // 400 > the fixed overhead of assemblePDF
	for i := 1; pad > 0; i++ {
		n, _ := fmt.Fprintf(&content, padLine, i)
		pad -= n
	}
	content.WriteString("ET\n")
	return assemblePDF(content.Bytes())
}

func assemblePDF(content []byte) []byte {

	objects := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", len(content), content),
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets := make([]int, len(objects))
	for i, o := range objects {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objects)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objects)+1, xref)
	return b.Bytes()
}

func pdfEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `(`, `\(`, `)`, `\)`).Replace(s)
}

// sampleLetterLines is a fictitious clinic letter (test data only, no real patient).
var sampleLetterLines = []string{
	"Outpatient Clinic Letter - TEST DOCUMENT",
	"",
	"Department: Cardiology, Example NHS Trust (ODS RX1)",
	"Clinic date: 2026-11-20",
	"",
	"Patient: Test Patient (fictitious), NHS Number 9434765919",
	"",
	"Dear Dr Example,",
	"",
	"Thank you for referring this patient, who attended the cardiology clinic today",
	"with intermittent palpitations over three months. Examination was unremarkable.",
	"Blood pressure 128/78 mmHg, pulse 72 regular. 12-lead ECG showed sinus rhythm.",
	"",
	"Plan:",
	"1. 24-hour Holter monitor, to be arranged by the department.",
	"2. Thyroid function tests and full blood count at the practice, please.",
	"3. Review in clinic in eight weeks with the results.",
	"",
	"No medication changes were made today.",
	"",
	"Yours sincerely,",
	"Dr A Example, Consultant Cardiologist",
	"",
	"This document was generated for software testing and contains no real data.",
}

func TestSamplePDF(t *testing.T) {
	want := samplePDF(sampleLetterLines, 0)
	path := filepath.Join("testdata", "sample.pdf")
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s (run with -update to create): %v", path, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from samplePDF output; run with -update", path)
	}
	checkPDFStructure(t, got)
	big := samplePDF(sampleLetterLines, 1<<20)
	if len(big) < 1<<20 {
		t.Fatalf("padded PDF is %d bytes, want >= 1 MiB", len(big))
	}
	checkPDFStructure(t, big)
}

// checkPDFStructure verifies header, trailer and that every xref offset points at its object.
func checkPDFStructure(t *testing.T, pdf []byte) {
	t.Helper()
	if !bytes.HasPrefix(pdf, []byte("%PDF-1.")) || !bytes.HasSuffix(bytes.TrimRight(pdf, "\n"), []byte("%%EOF")) {
		t.Fatal("PDF header/trailer missing")
	}
	i := bytes.LastIndex(pdf, []byte("startxref\n"))
	var xref int
	if _, err := fmt.Sscanf(string(pdf[i+len("startxref\n"):]), "%d", &xref); err != nil {
		t.Fatalf("startxref: %v", err)
	}
	if !bytes.HasPrefix(pdf[xref:], []byte("xref\n0 6\n")) {
		t.Fatalf("startxref %d does not point at the xref table", xref)
	}
	entries := pdf[xref+len("xref\n0 6\n"):]
	for obj := 1; obj <= 5; obj++ {
		entry := string(entries[obj*20 : obj*20+20])
		var off int
		if _, err := fmt.Sscanf(entry, "%d", &off); err != nil {
			t.Fatalf("xref entry %d: %v", obj, err)
		}
		if !bytes.HasPrefix(pdf[off:], []byte(fmt.Sprintf("%d 0 obj\n", obj))) {
			t.Fatalf("xref entry %d offset %d does not point at the object", obj, off)
		}
	}
}
