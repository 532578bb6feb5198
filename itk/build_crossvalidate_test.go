package itk

import (
	"bytes"
	"testing"
)

// Build output must pass the package's own receiver-side validator (written
// independently) with no error or fatal issue, in both formats.
func TestBuildOutputPassesValidate(t *testing.T) {
	for _, gc := range goldenCases() {
		for _, f := range []Format{FormatXML, FormatJSON} {
			t.Run(gc.name+"."+string(f), func(t *testing.T) {
				var buf bytes.Buffer
				if err := gc.build(t).EncodeFormat(&buf, f); err != nil {
					t.Fatal(err)
				}
				r := Validate(buf.Bytes(), f)
				for _, is := range r.Outcome.Issue {
					if is.Severity == "fatal" || is.Severity == "error" {
						t.Errorf("%s %s: %s %v", is.Severity, is.Code, is.Diagnostics, is.Expression)
					} else {
						t.Logf("%s %s: %s", is.Severity, is.Code, is.Diagnostics)
					}
				}
				if !r.Valid || r.InfAckCode != "20013" {
					t.Fatalf("Validate: valid=%v infAck=%s", r.Valid, r.InfAckCode)
				}
			})
		}
	}
}
