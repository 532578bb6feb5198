package itk

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func seedExamples(f *testing.F, pattern string) {
	files, err := filepath.Glob("testdata/examples/" + pattern)
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds for %s", pattern)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// checkResultInvariants: Validate never panics and its summary agrees with
// its issues.
func checkResultInvariants(t *testing.T, r *Result) {
	if r == nil || r.Outcome == nil || r.InfAckCode == "" {
		t.Fatalf("incomplete result %+v", r)
	}
	errs := 0
	for _, is := range r.Outcome.Issue {
		if is.Severity == SeverityError || is.Severity == SeverityFatal {
			errs++
			if itkCode(is) == "" {
				t.Fatalf("error without an ITK3 code: %+v", is)
			}
		}
	}
	if r.Valid != (errs == 0) || r.Valid != (r.InfAckCode == "20013") {
		t.Fatalf("Valid=%v with %d errors and code %s", r.Valid, errs, r.InfAckCode)
	}
}

func FuzzValidateJSON(f *testing.F) {
	seedExamples(f, "*.json")
	f.Add([]byte(`{"resourceType":"Bundle","type":"message","entry":[{"fullUrl":"urn:uuid:a","resource":{"resourceType":"MessageHeader","_id":{"extension":[{"url":"x","valueBoolean":true}]},"name":[{"given":["a",null],"_given":[null,{"id":"g"}]}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkResultInvariants(t, Validate(data, FormatJSON))
	})
}

func FuzzValidateXML(f *testing.F) {
	seedExamples(f, "*.xml")
	f.Add([]byte(`<?xml version="1.0"?><Bundle xmlns="http://hl7.org/fhir"><!-- c --><type value="message"/><entry><resource><Patient><text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p a="&amp;">x<![CDATA[y]]></p></div></text></Patient></resource></entry></Bundle>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		checkResultInvariants(t, Validate(data, FormatXML))
	})
}

func FuzzParseAck(f *testing.F) {
	seedExamples(f, "itk-response-*")
	f.Add([]byte(`{"resourceType":"Bundle","entry":[{"resource":{"resourceType":"MessageHeader","event":{"code":"ITK008M"},"response":{"identifier":"x","code":"ok"}}},{"resource":{"resourceType":"OperationOutcome","issue":[{"details":{"coding":[{"code":"20013"}]}}]}}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ack, err := ParseAck(data)
		if err == nil && (ack == nil || !isResponseCode(ack.Code)) {
			t.Fatalf("ack without a response code: %+v", ack)
		}
	})
}

// fiveMBMessage is the v2 example with a ~5 MB base64 attachment.
func fiveMBMessage(b *testing.B, f Format) []byte {
	b.Helper()
	raw := make([]byte, 3_750_000)
	if _, err := rand.Read(raw); err != nil {
		b.Fatal(err)
	}
	x := readExample(b, "v2-send-document-generic.xml")
	i := bytes.Index(x, []byte(`<content value="`)) + len(`<content value="`)
	j := i + bytes.IndexByte(x[i:], '"')
	big := append(append(append([]byte{}, x[:i]...), base64.StdEncoding.EncodeToString(raw)...), x[j:]...)
	if f == FormatJSON {
		big = toJSONForBench(b, big)
	}
	if r := Validate(big, f); !r.Valid {
		b.Fatalf("benchmark input invalid: %+v", r.Outcome.Issue)
	}
	return big
}

func benchmarkValidate(b *testing.B, f Format) {
	data := fiveMBMessage(b, f)
	b.SetBytes(int64(len(data)))
	cpu0 := processCPU()
	n := 0
	for b.Loop() {
		if r := Validate(data, f); !r.Valid {
			b.Fatal("invalid")
		}
		n++
	}
	// The shared build machine is heavily loaded, so wall-clock MB/s
	// understates throughput; also report MB per CPU-second of this process.
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(len(data))*float64(n)/1e6/cpu.Seconds(), "MB/cpu-s")
	}
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkValidateXML5MB(b *testing.B)  { benchmarkValidate(b, FormatXML) }
func BenchmarkValidateJSON5MB(b *testing.B) { benchmarkValidate(b, FormatJSON) }
