package fhir

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecodeXMLToJSON: reading never panics, and a resource that reads with
// no issue at all converts to JSON that reads back clean and identical.
func FuzzDecodeXMLToJSON(f *testing.F) {
	files, _ := filepath.Glob("../testdata/examples/*.xml")
	for _, name := range files {
		if b, err := os.ReadFile(name); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(patientXML))
	f.Fuzz(func(t *testing.T, data []byte) {
		root, issues, err := Decode(data, XML, 0)
		if err != nil || len(issues) != 0 {
			return
		}
		js := ToJSON(root)
		back, issues, err := Decode(js, JSON, 0)
		if err != nil || len(issues) != 0 {
			t.Fatalf("JSON form does not read back clean: %v %+v\n%s", err, issues, js)
		}
		if !bytes.Equal(ToJSON(back), js) {
			t.Fatalf("JSON form changed on re-reading")
		}
	})
}
