// Package redistest runs a real redis-server on a loopback port for
// integration tests and benchmarks. The server comes from PATH (install it
// with `apt-get install -y redis-server`); tests skip without it, unless
// CI=true, where a missing server is a failure.
package redistest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// durableArgs are the defaults: no RDB snapshots, AOF on with one fsync a
// second (the gateway's recommended production setting).
func durableArgs() []string {
	return []string{"--save", "", "--appendonly", "yes", "--appendfsync", "everysec"}
}

// Start runs redis-server with the durable defaults and extra (later arguments win)
// and stops it when the test ends. It returns "127.0.0.1:<port>".
func Start(t testing.TB, extra ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not on PATH (apt-get install -y redis-server); skipping real-Redis test"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	addr, stop, err := start(bin, t.TempDir(), extra)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return addr
}

// StartCluster runs a one-node Redis Cluster (cluster mode on, every slot
// assigned to the node) so tests can prove multi-key commands stay in one
// slot. Connect with redis.NewClusterClient. It returns "127.0.0.1:<port>".
func StartCluster(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	addr := Start(t, "--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"))
	if _, err := command(addr, "CLUSTER", "ADDSLOTSRANGE", "0", "16383"); err != nil {
		t.Fatalf("redistest: assign slots: %v", err)
	}
	for range 400 {
		info, err := command(addr, "CLUSTER", "INFO")
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			return addr
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatal("redistest: cluster never reached cluster_state:ok")
	return ""
}

// command sends one command in RESP and returns the first reply line (or,
// for a bulk string, its body).
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	switch {
	case strings.HasPrefix(line, "-"):
		return "", errors.New(line[1:])
	case strings.HasPrefix(line, "$"):
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("bad bulk reply %q", line)
		}
		body := make([]byte, n+2)
		if _, err := io.ReadFull(r, body); err != nil {
			return "", err
		}
		return string(body[:n]), nil
	}
	return line, nil
}

// StartProcess is Start for code without a testing.TB (benchmark drivers).
// stop kills the server and removes its data directory.
func StartProcess(extra ...string) (addr string, stop func(), err error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redistest: redis-server not on PATH: %w", err)
	}
	dir, err := os.MkdirTemp("", "redistest-")
	if err != nil {
		return "", nil, fmt.Errorf("redistest: temp dir: %w", err)
	}
	addr, stopServer, err := start(bin, dir, extra)
	if err != nil {
		_ = os.RemoveAll(dir)
		return "", nil, err
	}
	return addr, func() { stopServer(); _ = os.RemoveAll(dir) }, nil
}

func start(bin, dir string, extra []string) (string, func(), error) {
	var lastErr error
	for range 3 { // a free port can be taken between probe and bind
		port, err := freePort()
		if err != nil {
			return "", nil, err
		}
		args := append([]string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
			"--daemonize", "no", "--logfile", ""}, durableArgs()...)
		args = append(args, extra...)
		cmd := exec.Command(bin, args...)
		var out syncBuffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			return "", nil, fmt.Errorf("redistest: start redis-server: %w", err)
		}
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		if err := waitReady(addr, exited); err != nil {
			stop()
			lastErr = fmt.Errorf("redistest: %w; server output:\n%s", err, out.String())
			continue
		}
		return addr, stop, nil
	}
	return "", nil, lastErr
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("redistest: find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitReady PINGs addr until it answers PONG (bounded to about 10 s).
func waitReady(addr string, exited <-chan struct{}) error {
	for range 400 {
		select {
		case <-exited:
			return errors.New("redis-server exited during start-up")
		default:
		}
		if ping(addr) == nil {
			return nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	return errors.New("redis-server did not answer PING")
}

func ping(addr string) error {
	line, err := command(addr, "PING")
	if err != nil {
		return err
	}
	if line != "+PONG" {
		return fmt.Errorf("unexpected PING answer %q", line)
	}
	return nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }
