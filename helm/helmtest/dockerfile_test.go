package helmtest

import (
	"bufio"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// repoRoot is two levels up from helm/helmtest.
var repoRoot = filepath.Join("..", "..")

// instruction is one Dockerfile instruction with line continuations joined.
type instruction struct {
	cmd  string // upper-case keyword, e.g. FROM
	args string
	line int
}

// parseDockerfile is a small reader for the subset of Dockerfile syntax we use
// (comments, parser directives, backslash continuations). No Docker engine exists
// here, so the build is checked by its text: a full parser (moby/buildkit) would
// be a large dependency for a handful of assertions.
func parseDockerfile(t *testing.T, path string) []instruction {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("open Dockerfile: %v", err)
	}
	defer f.Close()
	var (
		out     []instruction
		buf     strings.Builder
		startLn int
	)
	sc := bufio.NewScanner(f)
	for ln := 1; sc.Scan(); ln++ {
		line := strings.TrimSpace(sc.Text())
		if buf.Len() == 0 && (line == "" || strings.HasPrefix(line, "#")) {
			continue
		}
		if buf.Len() > 0 && strings.HasPrefix(line, "#") {
			continue // comment inside a continued instruction
		}
		if buf.Len() == 0 {
			startLn = ln
		}
		if cont, ok := strings.CutSuffix(line, `\`); ok {
			buf.WriteString(cont + " ")
			continue
		}
		buf.WriteString(line)
		fields := strings.SplitN(buf.String(), " ", 2)
		ins := instruction{cmd: strings.ToUpper(fields[0]), line: startLn}
		if len(fields) == 2 {
			ins.args = strings.Join(strings.Fields(fields[1]), " ")
		}
		out = append(out, ins)
		buf.Reset()
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("read Dockerfile: %v", err)
	}
	if buf.Len() > 0 {
		t.Fatalf("Dockerfile ends inside a continued instruction")
	}
	return out
}

func TestDockerfileInvariants(t *testing.T) {
	t.Parallel()
	ins := parseDockerfile(t, filepath.Join(repoRoot, "Dockerfile"))

	// Split into stages.
	type stage struct {
		from, name string
		body       []instruction
	}
	var stages []*stage
	fromRe := regexp.MustCompile(`^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$`)
	for _, in := range ins {
		if in.cmd == "FROM" {
			m := fromRe.FindStringSubmatch(in.args)
			if m == nil {
				t.Fatalf("line %d: cannot parse FROM %q", in.line, in.args)
			}
			stages = append(stages, &stage{from: m[1], name: strings.ToLower(m[2])})
			continue
		}
		if in.cmd == "HEALTHCHECK" {
			t.Errorf("line %d: HEALTHCHECK present; Kubernetes probes (/healthz, /readyz) are the health check", in.line)
		}
		if len(stages) > 0 {
			stages[len(stages)-1].body = append(stages[len(stages)-1].body, in)
		}
	}
	if len(stages) < 2 {
		t.Fatalf("want a multi-stage build, got %d stage(s)", len(stages))
	}

	build, final := stages[0], stages[len(stages)-1]
	if !regexp.MustCompile(`^golang:(\$\{GO_VERSION\}|1\.26)`).MatchString(build.from) {
		t.Errorf("builder stage FROM %q, want golang:1.26", build.from)
	}
	var goVersionArg bool
	for _, in := range ins {
		if in.cmd == "ARG" && in.args == "GO_VERSION=1.26" {
			goVersionArg = true
		}
	}
	if strings.Contains(build.from, "${GO_VERSION}") && !goVersionArg {
		t.Error("builder uses ${GO_VERSION} but ARG GO_VERSION=1.26 is missing")
	}
	if final.from != "gcr.io/distroless/static-debian12:nonroot" {
		t.Errorf("final stage FROM %q, want gcr.io/distroless/static-debian12:nonroot", final.from)
	}

	var goBuild string
	for _, in := range build.body {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") {
			goBuild = in.args
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", `-ldflags="-s -w"`, "-o /out/gateway", "./cmd/gateway",
		"--mount=type=cache,target=/go/pkg/mod"} {
		if !strings.Contains(goBuild, want) {
			t.Errorf("go build step lacks %q: %q", want, goBuild)
		}
	}

	got := map[string][]string{}
	for _, in := range final.body {
		got[in.cmd] = append(got[in.cmd], in.args)
	}
	if u := got["USER"]; len(u) == 0 || !regexp.MustCompile(`^(nonroot|65532)(:(nonroot|65532))?$`).MatchString(u[len(u)-1]) {
		t.Errorf("final USER = %v, want nonroot/65532", u)
	}
	if strings.Join(got["ENTRYPOINT"], "") != `["/gateway"]` {
		t.Errorf("ENTRYPOINT = %v", got["ENTRYPOINT"])
	}
	if strings.Join(got["CMD"], "") != `["serve"]` {
		t.Errorf("CMD = %v", got["CMD"])
	}
	exposed := strings.Fields(strings.Join(got["EXPOSE"], " "))
	if strings.Join(exposed, " ") != "8080 9090" {
		t.Errorf("EXPOSE = %v, want 8080 9090", exposed)
	}
	var copied bool
	for _, c := range got["COPY"] {
		if regexp.MustCompile(`^--from=` + regexp.QuoteMeta(build.name) + `\s+/out/gateway\s+/gateway$`).MatchString(c) {
			copied = true
		}
	}
	if build.name == "" || !copied {
		t.Errorf("final stage does not COPY --from=<builder> /out/gateway /gateway: %v", got["COPY"])
	}
	for _, in := range final.body {
		if in.cmd == "RUN" {
			t.Errorf("line %d: RUN in the distroless final stage (no shell there)", in.line)
		}
	}
	labels := strings.Join(got["LABEL"], " ")
	for _, l := range []string{"org.opencontainers.image.source", "org.opencontainers.image.version", "org.opencontainers.image.title"} {
		if !strings.Contains(labels, l+"=") {
			t.Errorf("OCI label %s missing", l)
		}
	}
}

// TestDockerignore: the build context must exclude VCS data and tests' data but
// keep everything `go build ./cmd/gateway` reads, including go:embed files.
func TestDockerignore(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join(repoRoot, ".dockerignore"))
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, l)
		}
	}
	has := func(p string) bool {
		for _, q := range patterns {
			if q == p {
				return true
			}
		}
		return false
	}
	for _, p := range []string{".git", "**/node_modules", "**/testdata"} {
		if !has(p) {
			t.Errorf(".dockerignore lacks %q", p)
		}
	}
	for _, p := range patterns {
		for _, needed := range []string{"go.mod", "go.sum", "cmd", "*.go", "**/*.go"} {
			if p == needed {
				t.Errorf(".dockerignore excludes %q, which the build needs", p)
			}
		}
	}
	// go:embed patterns in non-test sources must not point into excluded trees.
	embedRe := regexp.MustCompile(`(?m)^//go:embed\s+(.+)$`)
	err = filepath.WalkDir(repoRoot, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "node_modules" || d.Name() == "testdata") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range embedRe.FindAllStringSubmatch(string(src), -1) {
			for _, pat := range strings.Fields(m[1]) {
				if strings.Contains(pat, "testdata") || strings.HasSuffix(pat, "_test.go") {
					t.Errorf("%s embeds %q, which .dockerignore excludes", path, pat)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
