package helmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// helmModule is the pinned helm CLI, built from the Go module proxy (no binary download).
const helmModule = "helm.sh/helm/v3/cmd/helm@v3.22.0"

// helmLDFlags stamp what helm's release Makefile stamps: its version and the
// Kubernetes version of its client-go (v0.37 → 1.37), which becomes the default
// .Capabilities.KubeVersion for `helm template` and the lint deprecation target.
// Without them a source build reports Kubernetes v1.20.
const helmLDFlags = "-X helm.sh/helm/v3/internal/version.version=v3.22.0" +
	" -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=37" +
	" -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=37"

// helmTool builds helm once per test binary run, in the background from TestMain,
// so the Dockerfile tests run while it compiles.
type helmTool struct {
	done    chan struct{}
	path    string
	err     error
	skip    string // non-empty: go toolchain unavailable, helm tests are skipped
	elapsed time.Duration
}

// startHelmBuild starts `go install helm@version` into gobin. The first build on a
// cold cache compiles helm and its Kubernetes dependencies (minutes on 2 cores);
// later runs reuse the Go build cache and only relink.
func startHelmBuild(gobin string) *helmTool {
	h := &helmTool{done: make(chan struct{})}
	if prebuilt := os.Getenv("HELMTEST_HELM"); prebuilt != "" {
		// A helm built beforehand (e.g. by CI with the same go install): still pinned.
		h.path, h.err = prebuilt, checkHelmVersion(prebuilt)
		close(h.done)
		return h
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		h.skip = "go toolchain not found on PATH: cannot build helm (" + helmModule + ")"
		close(h.done)
		return h
	}
	go func() {
		defer close(h.done)
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, goBin, "install", "-ldflags="+helmLDFlags, helmModule)
		// GOFLAGS from the caller (e.g. -mod=vendor) must not leak into a module@version install.
		cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=", "CGO_ENABLED=0")
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Run(); err != nil {
			h.err = fmt.Errorf("go install %s: %w\n%s", helmModule, err, out.String())
			return
		}
		name := "helm"
		if runtime.GOOS == "windows" {
			name += ".exe"
		}
		h.path = filepath.Join(gobin, name)
		h.elapsed = time.Since(start)
	}()
	return h
}

// prebuildCommand is the same build TestMain runs; afterwards the test's
// go install finds the binary up to date and returns in seconds.
const prebuildCommand = `GOFLAGS= CGO_ENABLED=0 GOBIN="${XDG_CACHE_HOME:-$HOME/.cache}/mesh-gateway-helmtest/helm-v3.22.0" ` +
	`go install -ldflags="` + helmLDFlags + `" ` + helmModule

// checkHelmVersion keeps a prebuilt helm to the pinned release.
func checkHelmVersion(bin string) error {
	out, err := exec.Command(bin, "version", "--template", "{{.Version}}").Output()
	if err != nil {
		return fmt.Errorf("HELMTEST_HELM=%s: helm version: %w", bin, err)
	}
	if got := strings.TrimSpace(string(out)); got != "v3.22.0" {
		return fmt.Errorf("HELMTEST_HELM=%s is helm %s, want v3.22.0", bin, got)
	}
	return nil
}

// binary waits for the build and returns helm's path, skipping or failing t.
func (h *helmTool) binary(t *testing.T) string {
	t.Helper()
	var expire <-chan time.Time
	if deadline, ok := t.Deadline(); ok {
		// Fail with advice, not a goroutine dump, when go test's -timeout is near.
		timer := time.NewTimer(time.Until(deadline) - 30*time.Second)
		defer timer.Stop()
		expire = timer.C
	}
	select {
	case <-h.done:
	case <-expire:
		t.Fatalf("helm is still being built (%s, cold Go build cache: several minutes on 2 cores); "+
			"rerun with a larger go test -timeout, or pre-build it once with:\n  %s", helmModule, prebuildCommand)
	}
	if h.skip != "" {
		t.Skip(h.skip)
	}
	if h.err != nil {
		t.Fatal(h.err)
	}
	return h.path
}

// helmGOBIN is where helm is installed: a per-user cache dir so an up-to-date
// binary is not even relinked; a temporary dir when no cache dir exists.
func helmGOBIN() (dir string, cleanup func(), err error) {
	if cache, err := os.UserCacheDir(); err == nil {
		dir = filepath.Join(cache, "mesh-gateway-helmtest", "helm-v3.22.0")
		if err := os.MkdirAll(dir, 0o755); err == nil {
			return dir, func() {}, nil
		}
	}
	dir, err = os.MkdirTemp("", "helmtest-gobin-")
	if err != nil {
		return "", nil, fmt.Errorf("os.MkdirTemp: %w", err)
	}
	return dir, func() { os.RemoveAll(dir) }, nil
}

// helm is assigned once in TestMain before any test runs and only read after.
var helm *helmTool

func TestMain(m *testing.M) {
	gobin, cleanup, err := helmGOBIN()
	if err != nil {
		fmt.Fprintln(os.Stderr, "helmtest:", err)
		os.Exit(1)
	}
	helm = startHelmBuild(gobin)
	code := m.Run()
	<-helm.done // never leave the go install running behind us
	cleanup()
	os.Exit(code)
}

// helmResult is one helm invocation's output.
type helmResult struct {
	stdout, stderr string
	err            error // exit status only; the output is in stdout/stderr
}

// failure formats a failed invocation for t.Fatal.
func (r helmResult) failure(args []string) string {
	return fmt.Sprintf("helm %v: %v\nstdout:\n%s\nstderr:\n%s", args, r.err, r.stdout, r.stderr)
}

// runHelm runs the helm binary with args from the chart's parent directory,
// isolated from the user's helm configuration and kubeconfig.
func runHelm(t *testing.T, args ...string) helmResult {
	t.Helper()
	bin := helm.binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = chartParentDir
	home := t.TempDir()
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
		"KUBECONFIG="+filepath.Join(home, "kubeconfig-none"),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("helm %v timed out", args)
	}
	return helmResult{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// chartParentDir is ../ (the helm directory); chart paths are relative to it.
const chartParentDir = ".."
