package itk

import (
	"bytes"
	"reflect"
	"testing"
)

// BuildAck output must read back identically through ParseAck (helper D's
// lenient reader), in both formats.
func TestBuildAckParseAckRoundTrip(t *testing.T) {
	for _, code := range []string{"20013", "30001", "30002", "30003", "30004", "20009", "10008", "20007", "20015"} {
		for _, f := range []Format{FormatXML, FormatJSON} {
			t.Run(code+"."+string(f), func(t *testing.T) {
				var buf bytes.Buffer
				built, err := BuildAck(fixedAckRequest(code, "diagnostic for "+code), f, &buf)
				if err != nil {
					t.Fatal(err)
				}
				parsed, err := ParseAck(buf.Bytes())
				if err != nil {
					t.Fatalf("ParseAck: %v", err)
				}
				if parsed.Format != "" && parsed.Format != f {
					t.Fatalf("parsed format %q, want %q", parsed.Format, f)
				}
				if !parsed.Timestamp.Equal(built.Timestamp) {
					t.Fatalf("timestamp %v, want %v", parsed.Timestamp, built.Timestamp)
				}
				want, got := *built, *parsed
				want.Format, got.Format = "", ""
				want.Timestamp, got.Timestamp = want.Timestamp.UTC(), got.Timestamp.UTC()
				if !reflect.DeepEqual(want, got) {
					t.Fatalf("round trip\n got %+v\nwant %+v", got, want)
				}
			})
		}
	}
}
