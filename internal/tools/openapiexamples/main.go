// Command openapiexamples adds whole-object examples (examples.json) to the
// schema definitions of swag's output, so Swagger UI pre-fills a request the
// gateway accepts. scripts/openapi.sh runs it right after swag, on the same
// output directory, so `openapi.sh --check` covers it too.
//
// Usage: go run ./internal/tools/openapiexamples OPENAPI_DIR
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: openapiexamples OPENAPI_DIR (holding swag's docs.go, swagger.json, swagger.yaml)")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "openapiexamples:", err)
		os.Exit(1)
	}
}

func run(dir string) error {
	examples, err := LoadExamples(examplesJSON)
	if err != nil {
		return err
	}
	paths := [...]string{
		filepath.Join(dir, "docs.go"),
		filepath.Join(dir, "swagger.json"),
		filepath.Join(dir, "swagger.yaml"),
	}
	var in [len(paths)][]byte
	for i, p := range paths {
		if in[i], err = os.ReadFile(p); err != nil {
			return fmt.Errorf("read: %w", err)
		}
	}
	out, err := Apply(Files{DocsGo: in[0], SwaggerJSON: in[1], SwaggerYAML: in[2]}, examples)
	if err != nil {
		return err
	}
	for i, data := range [...][]byte{out.DocsGo, out.SwaggerJSON, out.SwaggerYAML} {
		if bytes.Equal(data, in[i]) {
			continue // leave mtimes alone when nothing changes
		}
		if err := os.WriteFile(paths[i], data, 0o644); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
	return nil
}
