// Package stack runs a complete local MESH Gateway deployment as real
// processes — redis-server, `gateway fakemesh` and `gateway serve` — on
// loopback ports, for the meshgw-bench command and the crash test
// (test/crash). Everything it starts can be stopped and its files removed.
package stack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// GatewayPackage is the import path of the gateway command.
const GatewayPackage = "github.com/meshgateway/gateway/cmd/gateway"

// BuildGateway compiles the gateway binary into dir and returns its path.
// It must run inside the module (any directory of it).
func BuildGateway(ctx context.Context, dir string) (string, error) {
	out := filepath.Join(dir, "gateway")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, GatewayPackage)
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %w\n%s", GatewayPackage, err, msg)
	}
	return out, nil
}

// FreePort asks the kernel for a free loopback TCP port. Another process can
// take it before it is bound; callers start at most a few servers at a time.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("stack.FreePort: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Process is a child process whose output goes to a log file.
type Process struct {
	Name    string
	LogPath string
	cmd     *exec.Cmd
	logFile *os.File
	done    chan struct{}
	mu      sync.Mutex
	waitErr error
}

// StartProcess runs bin with args and exactly env (nothing is inherited), in
// its own process group so a terminal Ctrl-C reaches only the parent, which
// stops it in order. The child is killed if the parent dies.
func StartProcess(name, bin string, args, env []string, logPath string) (*Process, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("stack: %s log: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("stack: start %s: %w", name, err)
	}
	p := &Process{Name: name, LogPath: logPath, cmd: cmd, logFile: f, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		_ = f.Close()
		close(p.done)
	}()
	return p, nil
}

// Pid is the operating-system process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr is the process's exit error once Done is closed.
func (p *Process) ExitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Kill sends SIGKILL and waits for the exit (a crash, as the kernel OOM
// killer or a node failure would do it).
func (p *Process) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM, waits up to grace for a clean exit, then kills.
func (p *Process) Stop(grace time.Duration) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		p.Kill()
	}
}

// Tail returns up to n bytes from the end of the process's log.
func (p *Process) Tail(n int64) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return ""
	}
	off := max(st.Size()-n, 0)
	b, _ := io.ReadAll(io.NewSectionReader(f, off, st.Size()-off))
	return string(b)
}

// PeakRSS reads VmHWM (the peak resident set size) from /proc in bytes.
func (p *Process) PeakRSS() (int64, error) {
	return procStatusBytes(p.Pid(), "VmHWM:")
}

// CPUTime is the CPU time (user + system) the process has used so far,
// from /proc/<pid>/stat (Linux clock ticks of 10 ms).
func (p *Process) CPUTime() (time.Duration, error) {
	self, _, err := ProcCPU(p.Pid())
	return self, err
}

// ProcCPU reads /proc/<pid>/stat: self is the process's own CPU time, all
// threads together (utime + stime); children is that of its exited and
// reaped children (cutime + cstime), e.g. redis-server's AOF-rewrite forks.
// The resolution is one Linux clock tick (10 ms).
func ProcCPU(pid int) (self, children time.Duration, err error) {
	return statCPU("/proc/" + strconv.Itoa(pid) + "/stat")
}

// ThreadCPU is the CPU time (utime + stime) of one thread tid of process
// pid, from /proc/<pid>/task/<tid>/stat; a process's main thread has
// tid == pid.
func ThreadCPU(pid, tid int) (time.Duration, error) {
	self, _, err := statCPU("/proc/" + strconv.Itoa(pid) + "/task/" + strconv.Itoa(tid) + "/stat")
	return self, err
}

func statCPU(path string) (self, children time.Duration, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, 0, fmt.Errorf("stack: read /proc stat: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after ")" are fixed.
	_, rest, ok := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 15 {
		return 0, 0, errors.New("stack: unexpected /proc stat format")
	}
	var t [4]int64 // utime, stime, cutime, cstime: fields 14-17
	for i := range t {
		if t[i], err = strconv.ParseInt(f[11+i], 10, 64); err != nil {
			return 0, 0, errors.New("stack: unexpected /proc stat values")
		}
	}
	const tick = 10 * time.Millisecond // USER_HZ is 100 on Linux
	return time.Duration(t[0]+t[1]) * tick, time.Duration(t[2]+t[3]) * tick, nil
}

// RSS reads VmRSS (the current resident set size) from /proc in bytes.
func (p *Process) RSS() (int64, error) {
	return procStatusBytes(p.Pid(), "VmRSS:")
}

func procStatusBytes(pid int, field string) (int64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("stack: read /proc status: %w", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				return 0, fmt.Errorf("stack: parse %s: %w", field, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("stack: %s not in /proc/%d/status", field, pid)
}

// WaitHTTP polls url until it answers 200, the process exits, or timeout.
func WaitHTTP(ctx context.Context, url string, p *Process, timeout time.Duration) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if p != nil {
			select {
			case <-p.Done():
				return fmt.Errorf("stack: %s exited while starting (%v); log tail:\n%s", p.Name, p.ExitErr(), p.Tail(4000))
			default:
			}
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("stack: %w", err)
		}
		resp, err := client.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	name := "server"
	if p != nil {
		name = p.Name
	}
	return errors.New("stack: " + name + " not ready at " + url + " after " + timeout.String())
}

// BaseEnv is the minimal environment children get: PATH, HOME and TMPDIR
// only, so MESH_* or REDIS_* variables of the caller never leak in.
func BaseEnv() []string {
	var env []string
	for _, k := range []string{"PATH", "HOME", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}
