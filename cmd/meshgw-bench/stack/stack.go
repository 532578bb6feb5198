package stack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/meshgateway/gateway/internal/redistest"
)

// Options configures Start.
type Options struct {
	GatewayBin  string            // built gateway binary (see BuildGateway)
	Dir         string            // working directory for logs and the registry; created by the caller
	AppendFsync string            // redis appendfsync: "always" or "everysec" (default)
	GatewayEnv  map[string]string // extra gateway environment (MAX_BODY_BYTES, LOG_LEVEL, ...)
}

// RedisArgs are the persistence settings the README recommends for
// production, which the stack runs: AOF with appendfsync (everysec or
// always), and AOF rewrites only once the file reaches 1 GB. Payloads are
// written and deleted minutes later, so the AOF grows fast while the live
// data stays small; with Redis's default 64 MB threshold it forks a rewrite
// every few hundred documents.
func RedisArgs(appendFsync string) []string {
	if appendFsync == "" {
		appendFsync = "everysec"
	}
	return []string{"--appendonly", "yes", "--appendfsync", appendFsync, "--auto-aof-rewrite-min-size", "1gb"}
}

// Stack is a running redis-server + fakemesh + gateway on loopback.
type Stack struct {
	opts         Options
	Caller       *Caller
	RedisAddr    string
	stopRedis    func()
	FakeMesh     *Process
	FakeMeshURL  string
	Gateway      *Process
	GatewayURL   string
	AdminURL     string
	RegistryPath string
	gwPort       int
	adminPort    int
	starts       int
}

// Start launches redis-server (AOF on), `gateway fakemesh` and
// `gateway serve`, and waits until the gateway's /readyz answers. On error
// everything already started is stopped.
func Start(ctx context.Context, o Options) (s *Stack, err error) {
	if o.AppendFsync == "" {
		o.AppendFsync = "everysec"
	}
	s = &Stack{opts: o}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	if s.Caller, err = NewCaller(); err != nil {
		return nil, err
	}
	s.RedisAddr, s.stopRedis, err = redistest.StartProcess(RedisArgs(o.AppendFsync)...)
	if err != nil {
		return nil, fmt.Errorf("stack: redis: %w", err)
	}
	if err = s.startFakeMesh(ctx); err != nil {
		return nil, err
	}
	s.RegistryPath = filepath.Join(o.Dir, "registry.yaml")
	if err = os.WriteFile(s.RegistryPath, []byte(RegistryYAML(s.FakeMeshURL, s.Caller.JWKS)), 0o600); err != nil {
		return nil, fmt.Errorf("stack: write registry: %w", err)
	}
	if s.gwPort, err = FreePort(); err != nil {
		return nil, err
	}
	if s.adminPort, err = FreePort(); err != nil {
		return nil, err
	}
	// Fixed for the stack's life: restarts reuse the ports, so callers can
	// keep using the URLs while another goroutine restarts the gateway.
	s.GatewayURL = "http://127.0.0.1:" + strconv.Itoa(s.gwPort)
	s.AdminURL = "http://127.0.0.1:" + strconv.Itoa(s.adminPort)
	if err = s.StartGateway(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *Stack) startFakeMesh(ctx context.Context) error {
	var lastErr error
	for range 3 { // the probed port can be taken before fakemesh binds it
		port, err := FreePort()
		if err != nil {
			return err
		}
		addr := "127.0.0.1:" + strconv.Itoa(port)
		p, err := StartProcess("fakemesh", s.opts.GatewayBin, []string{"fakemesh", "--addr", addr},
			BaseEnv(), filepath.Join(s.opts.Dir, "fakemesh.log"))
		if err != nil {
			return err
		}
		url := "http://" + addr
		if lastErr = WaitHTTP(ctx, url+"/admin/stats", p, 20*time.Second); lastErr == nil {
			s.FakeMesh, s.FakeMeshURL = p, url
			return nil
		}
		p.Kill()
	}
	return lastErr
}

// StartGateway (re)starts `gateway serve` on the stack's ports with the
// same Redis and fakemesh, and waits for /readyz. A gateway still running
// is killed first.
func (s *Stack) StartGateway(ctx context.Context) error {
	if s.Gateway != nil {
		s.Gateway.Kill()
	}
	env := append(BaseEnv(),
		"HOST=127.0.0.1",
		"PORT="+strconv.Itoa(s.gwPort),
		"ADMIN_PORT="+strconv.Itoa(s.adminPort),
		"REDIS_URL=redis://"+s.RedisAddr+"/0",
		"GATEWAY_CONFIG="+s.RegistryPath,
		"LOG_FORMAT=json",
	)
	if _, ok := s.opts.GatewayEnv["LOG_LEVEL"]; !ok {
		env = append(env, "LOG_LEVEL=warn")
	}
	for k, v := range s.opts.GatewayEnv {
		env = append(env, k+"="+v)
	}
	s.starts++
	p, err := StartProcess("gateway", s.opts.GatewayBin, []string{"serve"}, env,
		filepath.Join(s.opts.Dir, "gateway.log"))
	if err != nil {
		return err
	}
	s.Gateway = p
	return WaitHTTP(ctx, s.GatewayURL+"/readyz", p, 30*time.Second)
}

// SetGatewayEnv replaces one extra gateway variable for the next StartGateway.
func (s *Stack) SetGatewayEnv(key, value string) {
	if s.opts.GatewayEnv == nil {
		s.opts.GatewayEnv = map[string]string{}
	}
	s.opts.GatewayEnv[key] = value
}

// Close stops the gateway (SIGTERM, then SIGKILL after 10 s), fakemesh and
// redis-server, and removes Redis's data directory. Safe to call twice.
func (s *Stack) Close() {
	if s.Gateway != nil {
		s.Gateway.Stop(10 * time.Second)
	}
	if s.FakeMesh != nil {
		s.FakeMesh.Stop(5 * time.Second)
	}
	if s.stopRedis != nil {
		s.stopRedis()
		s.stopRedis = nil
	}
}

// Faults is the body of fakemesh's PUT /admin/faults.
type Faults struct {
	ErrorRate float64 `json:"errorRate"`
	Statuses  []int   `json:"statuses,omitempty"`
	DropRate  float64 `json:"dropRate"`
	Latency   string  `json:"latency,omitempty"`
	Seed      int64   `json:"seed"`
}

// SetFaults changes fakemesh's fault injection at run time.
func (s *Stack) SetFaults(ctx context.Context, f Faults) error {
	body, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("stack.SetFaults: %w", err)
	}
	return s.fakeMeshJSON(ctx, http.MethodPut, "/admin/faults", body, nil)
}

// MeshStats is fakemesh's GET /admin/stats.
type MeshStats struct {
	Requests    map[string]int64
	Sends       int64 // messages created (first chunk accepted)
	Chunks      int64
	Delivered   int64
	FaultErrors int64
	FaultDrops  int64
}

// Stats reads fakemesh's counters.
func (s *Stack) Stats(ctx context.Context) (MeshStats, error) {
	var st MeshStats
	err := s.fakeMeshJSON(ctx, http.MethodGet, "/admin/stats", nil, &st)
	return st, err
}

// MeshMessage is the part of fakemesh's GET /admin/message/{id} used here.
type MeshMessage struct {
	ID             string `json:"id"`
	From           string `json:"from"`
	To             string `json:"to"`
	MessageType    string `json:"messageType"`
	Status         string `json:"status"`
	ChunkCount     int    `json:"chunkCount"`
	ChunksReceived int    `json:"chunksReceived"`
}

// ErrNotFound is a 404 from a fakemesh admin route.
var ErrNotFound = errors.New("not found")

// MeshMessage reads one message's record from fakemesh.
func (s *Stack) MeshMessage(ctx context.Context, id string) (MeshMessage, error) {
	var m MeshMessage
	err := s.fakeMeshJSON(ctx, http.MethodGet, "/admin/message/"+id, nil, &m)
	return m, err
}

// MailboxInbox lists the ids in a fakemesh mailbox's inbox.
func (s *Stack) MailboxInbox(ctx context.Context, mailbox string) ([]string, error) {
	var v struct {
		Inbox []string `json:"inbox"`
	}
	err := s.fakeMeshJSON(ctx, http.MethodGet, "/admin/mailbox/"+mailbox, nil, &v)
	return v.Inbox, err
}

func (s *Stack) fakeMeshJSON(ctx context.Context, method, path string, body []byte, out any) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.FakeMeshURL+path, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("stack: fakemesh %s: %w", path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("stack: fakemesh %s: %w", path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("stack: fakemesh %s: %w", path, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return fmt.Errorf("stack: fakemesh %s: %w", path, ErrNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stack: fakemesh %s: status %d: %.200s", path, resp.StatusCode, data)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("stack: fakemesh %s: decode: %w", path, err)
	}
	return nil
}
