package main

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// examplesJSON maps a definition name (as swag names it, e.g. "itk.SendRequest")
// to the whole-object example that definition gets. It is the one source of
// truth: swag only supports per-field examples, which Swagger UI assembles into
// request bodies the gateway rejects.
//
//go:embed examples.json
var examplesJSON []byte

// Example is one whole-object example for one schema definition.
type Example struct {
	Definition string
	Value      json.RawMessage // field order as written, so Swagger UI shows a readable body
}

// LoadExamples parses an examples document ({"definition": example, ...})
// and returns its examples sorted by definition, so output is deterministic.
func LoadExamples(data []byte) ([]Example, error) {
	var byDefinition map[string]json.RawMessage
	if err := json.Unmarshal(data, &byDefinition); err != nil {
		return nil, fmt.Errorf("parse examples: %w", err)
	}
	examples := make([]Example, 0, len(byDefinition))
	for def, raw := range byDefinition {
		var compact bytes.Buffer
		if err := json.Compact(&compact, raw); err != nil {
			return nil, fmt.Errorf("compact example %s: %w", def, err)
		}
		// Escape <, > and & as encoding/json (and so swag) does.
		var escaped bytes.Buffer
		json.HTMLEscape(&escaped, compact.Bytes())
		// docs.go is a text/template opening actions with "{{": an example
		// holding it would be executed, not shown. (Compact JSON has "{{"
		// only inside strings.)
		if bytes.Contains(escaped.Bytes(), []byte("{{")) {
			return nil, fmt.Errorf("example %s: must not contain the template delimiter {{", def)
		}
		examples = append(examples, Example{Definition: def, Value: escaped.Bytes()})
	}
	slices.SortFunc(examples, func(a, b Example) int { return strings.Compare(a.Definition, b.Definition) })
	return examples, nil
}

// swag writes JSON with json.MarshalIndent(v, "", "    "): definitions sit at
// depth 2, their keys at depth 3.
const (
	jsonIndentUnit     = "    "
	definitionsLine    = jsonIndentUnit + `"definitions": {`
	definitionIndent   = jsonIndentUnit + jsonIndentUnit
	definitionKeyDepth = definitionIndent + jsonIndentUnit
	exampleKeyPrefix   = definitionKeyDepth + `"example": `
)

// goRawBacktick is how swag's docs.go spells a backtick inside the raw-string
// docTemplate (after gofmt).
const goRawBacktick = "` + \"`\" + `"

// InsertJSONExamples sets each definition's "example" in swag-formatted JSON
// (swagger.json, or docs.go when inGoRawString is set). The example becomes
// the definition's last key, where go-openapi's Schema marshalling puts it;
// an existing example is replaced, so running twice equals running once.
func InsertJSONExamples(doc []byte, examples []Example, inGoRawString bool) ([]byte, error) {
	lines := strings.Split(string(doc), "\n")
	for _, ex := range examples {
		var err error
		lines, err = insertJSONExample(lines, ex, inGoRawString)
		if err != nil {
			return nil, err
		}
	}
	return []byte(strings.Join(lines, "\n")), nil
}

func insertJSONExample(lines []string, ex Example, inGoRawString bool) ([]string, error) {
	defs := slices.Index(lines, definitionsLine)
	if defs < 0 {
		return nil, fmt.Errorf("definition %s: no %q line", ex.Definition, strings.TrimSpace(definitionsLine))
	}
	header := definitionIndent + jsonString(ex.Definition) + ": {"
	start := -1
	for i := defs + 1; i < len(lines) && !isClosing(lines[i], jsonIndentUnit); i++ {
		if lines[i] == header {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, fmt.Errorf("definition %s: not found under definitions", ex.Definition)
	}
	end := -1 // line of the definition's closing brace
	for i := start + 1; i < len(lines); i++ {
		if isClosing(lines[i], definitionIndent) {
			end = i
			break
		}
	}
	if end < 0 {
		return nil, fmt.Errorf("definition %s: no closing brace", ex.Definition)
	}

	body := slices.Clone(lines[start+1 : end])
	body = removeTopLevelKey(body, exampleKeyPrefix)
	if n := len(body); n > 0 {
		body[n-1] = strings.TrimSuffix(body[n-1], ",") + ","
	}

	var indented bytes.Buffer
	if err := json.Indent(&indented, ex.Value, definitionKeyDepth, jsonIndentUnit); err != nil {
		return nil, fmt.Errorf("indent example %s: %w", ex.Definition, err)
	}
	text := exampleKeyPrefix + indented.String()
	if inGoRawString {
		text = strings.ReplaceAll(text, "`", goRawBacktick)
	}
	body = append(body, strings.Split(text, "\n")...)

	out := make([]string, 0, len(lines)+len(body))
	out = append(out, lines[:start+1]...)
	out = append(out, body...)
	return append(out, lines[end:]...), nil
}

// removeTopLevelKey drops the key starting with prefix (and its value, which
// runs until the next key at the same depth) from a definition's body lines,
// and the now-dangling comma when it was the last key.
func removeTopLevelKey(body []string, prefix string) []string {
	from := slices.IndexFunc(body, func(l string) bool { return strings.HasPrefix(l, prefix) })
	if from < 0 {
		return body
	}
	to := len(body)
	for i := from + 1; i < len(body); i++ {
		if strings.HasPrefix(body[i], definitionKeyDepth+`"`) {
			to = i
			break
		}
	}
	body = slices.Delete(body, from, to)
	if from == len(body) && from > 0 {
		body[from-1] = strings.TrimSuffix(body[from-1], ",")
	}
	return body
}

// isClosing reports whether line is the closing brace of an object at indent.
func isClosing(line, indent string) bool {
	return line == indent+"}" || line == indent+"},"
}

func jsonString(s string) string {
	b, _ := json.Marshal(s) // a string always marshals
	return string(b)
}

// YAMLFromJSON converts swagger.json exactly as swag v1.16.6 writes
// swagger.yaml (sigs.k8s.io/yaml JSONToYAML of the same document).
func YAMLFromJSON(swaggerJSON []byte) ([]byte, error) {
	y, err := yaml.JSONToYAML(swaggerJSON)
	if err != nil {
		return nil, fmt.Errorf("yaml.JSONToYAML: %w", err)
	}
	return y, nil
}

// Files are swag's three outputs.
type Files struct {
	DocsGo, SwaggerJSON, SwaggerYAML []byte
}

// Apply returns files with every example inserted. It refuses inputs whose
// swagger.yaml is not the YAML form of swagger.json (not straight from swag),
// because swagger.yaml is rewritten from the updated swagger.json.
func Apply(in Files, examples []Example) (Files, error) {
	fromJSON, err := YAMLFromJSON(in.SwaggerJSON)
	if err != nil {
		return Files{}, fmt.Errorf("swagger.json: %w", err)
	}
	if !bytes.Equal(fromJSON, in.SwaggerYAML) {
		return Files{}, fmt.Errorf("swagger.yaml is not the YAML form of swagger.json: regenerate both with swag first")
	}
	var out Files
	if out.SwaggerJSON, err = InsertJSONExamples(in.SwaggerJSON, examples, false); err != nil {
		return Files{}, fmt.Errorf("swagger.json: %w", err)
	}
	if !json.Valid(out.SwaggerJSON) {
		return Files{}, fmt.Errorf("swagger.json: invalid JSON after inserting examples")
	}
	if out.DocsGo, err = InsertJSONExamples(in.DocsGo, examples, true); err != nil {
		return Files{}, fmt.Errorf("docs.go: %w", err)
	}
	if out.SwaggerYAML, err = YAMLFromJSON(out.SwaggerJSON); err != nil {
		return Files{}, fmt.Errorf("swagger.yaml: %w", err)
	}
	return out, nil
}
