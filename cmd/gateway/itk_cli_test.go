package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshgateway/gateway/itk"
)

const examplesDir = "../../itk/testdata/examples/"

func itkRequestJSON(t *testing.T, format string) string {
	t.Helper()
	pdf, err := os.ReadFile("../../itk/testdata/sample.pdf")
	if err != nil {
		t.Fatal(err)
	}
	return `{
  "patient": {"nhsNumber": "9434765919", "birthDate": "1957-01-09", "name": {"family": "Smith", "given": ["Richard"]}},
  "sender": {"odsCode": "GP0001", "name": "Example Practice", "mailbox": "MESHGP0001"},
  "author": {"device": {"name": "MESH Gateway"}},
  "documents": [{"title": "Discharge summary", "type": {"code": "373942005", "display": "Discharge summary"},
    "contentType": "application/pdf", "data": "` + base64.StdEncoding.EncodeToString(pdf) + `"}]` + format + `
}`
}

func runITKForTest(args []string, stdin string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := runITK(context.Background(), args, func(string) string { return "" }, strings.NewReader(stdin), &out, &errOut)
	return out.String(), errOut.String(), err
}

func exitCodeOf(err error) int {
	if err == nil {
		return 0
	}
	return exitCode(err)
}

func TestITKCLI(t *testing.T) {
	v2 := examplesDir + "v2-send-document-generic.xml"
	v2bytes, err := os.ReadFile(v2)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(v2bytes), `<code value="ITK007C" />`, `<code value="ITK006D" />`, 1)
	cases := []struct {
		name       string
		args       []string
		stdin      string
		exit       int
		stdoutHas  []string
		stderrHas  []string
		stdoutNot  []string
		jsonStdout bool
	}{
		{"validate valid file", []string{"validate", v2}, "", 0, []string{`"resourceType": "OperationOutcome"`}, nil, []string{`"severity": "error"`}, true},
		{"validate json file", []string{"validate", examplesDir + "v2-send-document-generic.json"}, "", 0, []string{"OperationOutcome"}, nil, nil, true},
		{"validate invalid stdin", []string{"validate", "-"}, broken, 1, []string{`"code": "10004"`, "Bundle.entry[0].resource.event.code"}, nil, nil, true},
		{"validate unreadable", []string{"validate", "-"}, "not a message", 1, []string{`"code": "10009"`}, nil, nil, true},
		{"validate forced format", []string{"validate", "--format", "json", v2}, "", 1, []string{`"code": "10009"`}, nil, nil, true},
		{"address valid", []string{"address", v2}, "", 0, []string{`"workflowId": "GPCONNECT_SEND_DOCUMENT"`, `"localId": "FQW30"`}, nil, nil, true},
		{"address invalid", []string{"address", "-"}, broken, 1, nil, []string{"10004"}, []string{"workflowId"}, false},
		{"ack", []string{"ack", examplesDir + "itk-response-20013.xml"}, "", 0, []string{`"code": "20013"`, `"positive": true`}, nil, nil, true},
		{"ack of a send document", []string{"ack", v2}, "", 1, nil, nil, nil, false},
		{"missing file", []string{"validate", "/nonexistent/file.xml"}, "", 1, nil, nil, nil, false},
		{"no command", nil, "", 2, nil, nil, nil, false},
		{"unknown command", []string{"frobnicate"}, "", 2, nil, nil, nil, false},
		{"validate needs a file", []string{"validate"}, "", 2, nil, nil, nil, false},
		{"bad format flag", []string{"validate", "--format", "yaml", v2}, "", 2, nil, nil, nil, false},
		{"build xml", []string{"build"}, itkRequestJSON(t, ""), 0, []string{`<Bundle xmlns="http://hl7.org/fhir">`, "ITK007C"}, nil, nil, false},
		{"build json flag", []string{"build", "--format", "json"}, itkRequestJSON(t, ""), 0, []string{`"resourceType"`}, nil, nil, true},
		{"build metadata to stderr", []string{"build", "--metadata", "-"}, itkRequestJSON(t, ""), 0, []string{"<Bundle"}, []string{"GPPROVIDER_9434765919_19570109_SMITH"}, nil, false},
		{"build unknown field", []string{"build"}, itkRequestJSON(t, `, "colour": "red"`), 1, nil, nil, nil, false},
		{"build invalid request", []string{"build"}, `{"patient": {"nhsNumber": "123"}}`, 1, nil, nil, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, err := runITKForTest(tc.args, tc.stdin)
			if got := exitCodeOf(err); got != tc.exit {
				t.Fatalf("exit %d, want %d (err %v)", got, tc.exit, err)
			}
			for _, s := range tc.stdoutHas {
				if !strings.Contains(stdout, s) {
					t.Errorf("stdout lacks %q:\n%.2000s", s, stdout)
				}
			}
			for _, s := range tc.stdoutNot {
				if strings.Contains(stdout, s) {
					t.Errorf("stdout has %q", s)
				}
			}
			for _, s := range tc.stderrHas {
				if !strings.Contains(stderr, s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr)
				}
			}
			if tc.jsonStdout && !json.Valid([]byte(stdout)) {
				t.Errorf("stdout is not JSON")
			}
			if err != nil && strings.Contains(err.Error(), "9434765919") {
				t.Errorf("error leaks the NHS number: %v", err)
			}
		})
	}
}

// build | validate: the CLI's own output validates, and the metadata file
// is written (0600) only when asked for.
func TestITKBuildThenValidate(t *testing.T) {
	metaFile := filepath.Join(t.TempDir(), "meta.json")
	built, stderr, err := runITKForTest([]string{"build", "--metadata", metaFile}, itkRequestJSON(t, `, "format": "json"`))
	if err != nil {
		t.Fatal(err)
	}
	if stderr != "" {
		t.Errorf("stderr not empty: %q", stderr)
	}
	var meta itk.MeshMetadata
	b, err := os.ReadFile(metaFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &meta); err != nil || meta.ContentType != itk.ContentTypeFHIRJSON {
		t.Fatalf("metadata %+v (%v)", meta, err)
	}
	if st, err := os.Stat(metaFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("metadata file mode %v (%v)", st.Mode(), err)
	}
	out, _, err := runITKForTest([]string{"address", "-"}, built)
	if err != nil {
		t.Fatalf("address of built message: %v", err)
	}
	var derived itk.MeshMetadata
	if err := json.Unmarshal([]byte(out), &derived); err != nil {
		t.Fatal(err)
	}
	if derived != meta {
		t.Errorf("derived %+v\nbuilt   %+v", derived, meta)
	}
	var ie itkInvalidError
	if _, _, err := runITKForTest([]string{"validate", "-"}, strings.Replace(built, "ITK007C", "ITK008M", 1)); !errors.As(err, &ie) {
		t.Errorf("tampered message: err = %v", err)
	}
}
