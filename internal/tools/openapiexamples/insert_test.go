package main

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/swaggo/swag"
	"sigs.k8s.io/yaml"

	"github.com/meshgateway/gateway/itk"
)

// The fixture in testdata/ is a trimmed swag v1.16.6 output: docs.go with
// template placeholders and an escaped backtick, swagger.json, swagger.yaml.
func readFixture(t *testing.T) Files {
	t.Helper()
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	return Files{DocsGo: read("docs.go"), SwaggerJSON: read("swagger.json"), SwaggerYAML: read("swagger.yaml")}
}

func realExamples(t *testing.T) []Example {
	t.Helper()
	examples, err := LoadExamples(examplesJSON)
	if err != nil {
		t.Fatal(err)
	}
	return examples
}

// docTemplate evaluates the docTemplate constant of a swag docs.go (a sum of
// string literals) as the Go compiler would.
func docTemplate(t *testing.T, src []byte) string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "docs.go", src, 0)
	if err != nil {
		t.Fatalf("docs.go does not parse: %v", err)
	}
	var eval func(e ast.Expr) string
	eval = func(e ast.Expr) string {
		switch e := e.(type) {
		case *ast.BasicLit:
			s, err := strconv.Unquote(e.Value)
			if err != nil {
				t.Fatal(err)
			}
			return s
		case *ast.BinaryExpr:
			return eval(e.X) + eval(e.Y)
		}
		t.Fatalf("unexpected expression %T in docTemplate", e)
		return ""
	}
	for _, d := range f.Decls {
		if g, ok := d.(*ast.GenDecl); ok && g.Tok == token.CONST {
			for _, s := range g.Specs {
				if vs := s.(*ast.ValueSpec); vs.Names[0].Name == "docTemplate" {
					return eval(vs.Values[0])
				}
			}
		}
	}
	t.Fatal("no docTemplate in docs.go")
	return ""
}

// servedDoc renders docs.go's template the way gin-swagger serves it.
func servedDoc(t *testing.T, docsGo []byte) []byte {
	t.Helper()
	spec := &swag.Spec{Version: "1.0", BasePath: "/", Title: "Fixture API", Description: "d",
		InfoInstanceName: "swagger", SwaggerTemplate: docTemplate(t, docsGo), LeftDelim: "{{", RightDelim: "}}"}
	return []byte(spec.ReadDoc())
}

// definitionExamples returns every definition's example of a JSON document.
func definitionExamples(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	var d struct {
		Definitions map[string]map[string]any `json:"definitions"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatalf("decode: %v", err)
	}
	out := map[string]any{}
	for name, def := range d.Definitions {
		if ex, ok := def["example"]; ok {
			out[name] = ex
		}
	}
	return out
}

func yamlAsJSON(t *testing.T, y []byte) []byte {
	t.Helper()
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func wantExamples(t *testing.T, examples []Example) map[string]any {
	t.Helper()
	want := map[string]any{}
	for _, ex := range examples {
		var v any
		if err := json.Unmarshal(ex.Value, &v); err != nil {
			t.Fatal(err)
		}
		want[ex.Definition] = v
	}
	return want
}

func TestApplyPutsTheSameExampleInAllThreeFiles(t *testing.T) {
	examples := realExamples(t)
	out, err := Apply(readFixture(t), examples)
	if err != nil {
		t.Fatal(err)
	}
	want := wantExamples(t, examples)
	for name, doc := range map[string][]byte{
		"swagger.json":       out.SwaggerJSON,
		"swagger.yaml":       yamlAsJSON(t, out.SwaggerYAML),
		"docs.go (rendered)": servedDoc(t, out.DocsGo),
	} {
		if got := definitionExamples(t, doc); !reflect.DeepEqual(got, want) {
			t.Errorf("%s examples = %v, want %v", name, got, want)
		}
	}
}

func TestApplyChangesNothingButTheExamples(t *testing.T) {
	in := readFixture(t)
	out, err := Apply(in, realExamples(t))
	if err != nil {
		t.Fatal(err)
	}
	stripped := func(doc []byte) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(doc, &m); err != nil {
			t.Fatal(err)
		}
		for _, def := range m["definitions"].(map[string]any) {
			delete(def.(map[string]any), "example")
		}
		return m
	}
	for name, pair := range map[string][2][]byte{
		"swagger.json": {in.SwaggerJSON, out.SwaggerJSON},
		"swagger.yaml": {yamlAsJSON(t, in.SwaggerYAML), yamlAsJSON(t, out.SwaggerYAML)},
		"docs.go":      {servedDoc(t, in.DocsGo), servedDoc(t, out.DocsGo)},
	} {
		if !reflect.DeepEqual(stripped(pair[0]), stripped(pair[1])) {
			t.Errorf("%s: content other than examples changed", name)
		}
	}
	// Text outside the definitions that got an example is untouched (swag's
	// formatting kept): the Go file keeps its escaped backtick and placeholders.
	for _, keep := range []string{"` + \"`\" + `curl` + \"`\" + `", `"{{escape .Description}}"`, `"schemes": {{ marshal .Schemes }},`} {
		if !bytes.Contains(out.DocsGo, []byte(keep)) {
			t.Errorf("docs.go lost %s", keep)
		}
	}
}

func TestApplyIsIdempotentAndDeterministic(t *testing.T) {
	examples := realExamples(t)
	in := readFixture(t)
	once, err := Apply(in, examples)
	if err != nil {
		t.Fatal(err)
	}
	again, err := Apply(in, examples)
	if err != nil {
		t.Fatal(err)
	}
	twice, err := Apply(once, examples)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name      string
		got, want Files
	}{{"same input twice", again, once}, {"applied twice", twice, once}} {
		if !bytes.Equal(c.got.DocsGo, c.want.DocsGo) || !bytes.Equal(c.got.SwaggerJSON, c.want.SwaggerJSON) ||
			!bytes.Equal(c.got.SwaggerYAML, c.want.SwaggerYAML) {
			t.Errorf("%s: output differs", c.name)
		}
	}
}

func TestApplyReplacesAStaleExample(t *testing.T) {
	stale, err := LoadExamples([]byte(`{"itk.Sender":{"mailbox":"OLD01"},"api.Problem":{"status":400}}`))
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := LoadExamples([]byte(`{"itk.Sender":{"mailbox":"X26ABC1"},"api.Problem":{"status":422}}`))
	if err != nil {
		t.Fatal(err)
	}
	in := readFixture(t)
	withStale, err := Apply(in, stale)
	if err != nil {
		t.Fatal(err)
	}
	replaced, err := Apply(withStale, fresh)
	if err != nil {
		t.Fatal(err)
	}
	direct, err := Apply(in, fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(replaced.SwaggerJSON, direct.SwaggerJSON) || !bytes.Equal(replaced.DocsGo, direct.DocsGo) ||
		!bytes.Equal(replaced.SwaggerYAML, direct.SwaggerYAML) {
		t.Error("re-applying with new examples differs from applying them to swag's output")
	}
}

func TestApplyEscapesBackticksForDocsGo(t *testing.T) {
	examples, err := LoadExamples([]byte("{\"itk.Sender\":{\"mailbox\":\"run `mesh ls` <first>\"}}"))
	if err != nil {
		t.Fatal(err)
	}
	out, err := Apply(readFixture(t), examples)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"itk.Sender": map[string]any{"mailbox": "run `mesh ls` <first>"}}
	if got := definitionExamples(t, servedDoc(t, out.DocsGo)); !reflect.DeepEqual(got, want) {
		t.Errorf("docs.go served example = %v, want %v", got, want)
	}
	if !bytes.Contains(out.SwaggerJSON, []byte(`\u003cfirst\u003e`)) {
		t.Error("swagger.json example not HTML-escaped like the rest of swag's output")
	}
}

func TestApplyRejects(t *testing.T) {
	good := readFixture(t)
	examples := realExamples(t)
	cases := []struct {
		name     string
		files    func() Files
		examples []Example
		want     string
	}{
		{"unknown definition", func() Files { return good },
			[]Example{{Definition: "itk.Missing", Value: json.RawMessage(`{}`)}}, "itk.Missing: not found"},
		{"yaml not from this json", func() Files {
			f := good
			f.SwaggerYAML = append(bytes.Clone(good.SwaggerYAML), "x-extra: 1\n"...)
			return f
		}, examples, "swagger.yaml is not the YAML form"},
		{"docs.go without definitions", func() Files {
			f := good
			f.DocsGo = bytes.Replace(good.DocsGo, []byte(`"definitions": {`), []byte(`"defs": {`), 1)
			return f
		}, examples, "docs.go"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Apply(c.files(), c.examples)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one containing %q", err, c.want)
			}
		})
	}
}

func TestLoadExamplesRejectsTemplateDelimiters(t *testing.T) {
	if _, err := LoadExamples([]byte(`{"itk.Sender":{"name":"{{.Title}}"}}`)); err == nil {
		t.Fatal("an example holding {{ would be executed by docs.go's template; want an error")
	}
}

// The examples must be the gateway's own types, field for field.
func TestExamplesDecodeStrictlyIntoTheirTypes(t *testing.T) {
	var byDef map[string]json.RawMessage
	if err := json.Unmarshal(examplesJSON, &byDef); err != nil {
		t.Fatal(err)
	}
	targets := map[string]any{
		"itk.SendRequest":      &itk.SendRequest{},
		"itk.OperationOutcome": &itk.OperationOutcome{},
	}
	for def, target := range targets {
		dec := json.NewDecoder(bytes.NewReader(byDef[def]))
		dec.DisallowUnknownFields()
		if err := dec.Decode(target); err != nil {
			t.Errorf("%s example: %v", def, err)
		}
	}
}

// The OperationOutcome example is exactly what the gateway's validator says
// about the example request sent with the wrong event code and a preliminary
// Composition: realistic, and it follows the validator's wording.
func TestOperationOutcomeExampleIsTheValidatorsOutput(t *testing.T) {
	var byDef map[string]json.RawMessage
	if err := json.Unmarshal(examplesJSON, &byDef); err != nil {
		t.Fatal(err)
	}
	var req itk.SendRequest
	if err := json.Unmarshal(byDef["itk.SendRequest"], &req); err != nil {
		t.Fatal(err)
	}
	req.Format = itk.FormatJSON
	msg, err := itk.Build(&req, itk.BuildOptions{})
	if err != nil {
		t.Fatalf("example request does not build: %v", err)
	}
	var buf bytes.Buffer
	if err := msg.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, buf.Bytes()); err != nil {
		t.Fatal(err)
	}
	broken := compact.Bytes()
	for _, r := range [][2]string{{`"ITK007C"`, `"ITK008M"`}, {`"status":"final"`, `"status":"preliminary"`}} {
		if bytes.Count(broken, []byte(r[0])) != 1 {
			t.Fatalf("built message has %d × %s, want 1", bytes.Count(broken, []byte(r[0])), r[0])
		}
		broken = bytes.Replace(broken, []byte(r[0]), []byte(r[1]), 1)
	}
	res := itk.Validate(broken, itk.FormatJSON)
	got, err := json.Marshal(res.Outcome)
	if err != nil {
		t.Fatal(err)
	}
	var gotV, wantV any
	if err := json.Unmarshal(got, &gotV); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(byDef["itk.OperationOutcome"], &wantV); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotV, wantV) {
		t.Errorf("validator outcome differs from the example:\n got %s\nwant %s", got, byDef["itk.OperationOutcome"])
	}
}
