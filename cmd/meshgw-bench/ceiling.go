package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/meshgateway/gateway/cmd/meshgw-bench/stack"
	"github.com/meshgateway/gateway/internal/redistest"
	"github.com/meshgateway/gateway/itk"
)

// Calibration is one row of the ceiling scenario: what this machine does
// with one piece of the stack alone, as a yardstick for the targets. It is
// not a target and has no pass/fail.
type Calibration struct {
	Name      string  `json:"name"` // redis-aof, redis-aof-default, redis-noaof, http-hop, mesh-hop
	What      string  `json:"what"`
	Ops       int     `json:"ops"`
	Failed    int     `json:"failed,omitempty"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"opsPerSec"`
	Unit      string  `json:"unit"` // what OpsPerSec counts: "SET/s", "req/s" or "msgs/s"
	P50ms     float64 `json:"p50Ms"`
	P99ms     float64 `json:"p99Ms"`
	// ValueBytes is the SET value or the HTTP body; ValueIs says what it
	// stands for.
	ValueBytes int    `json:"valueBytes"`
	ValueIs    string `json:"valueIs"`
	// RedisCPUms is redis-server's own CPU time (utime+stime, all threads,
	// from /proc) per SET; RedisChildCPUms that of its finished AOF-rewrite
	// children (cutime+cstime), also per SET.
	RedisCPUms float64 `json:"redisCpuMsPerSet,omitempty"`
	// RedisMainCPUms is the part of RedisCPUms spent in redis-server's
	// main thread, which executes every command and writes the AOF: one
	// core's worth of it, 1000/RedisMainCPUms SETs/s, is the most one
	// redis-server can take on this machine at this value size.
	RedisMainCPUms  float64 `json:"redisMainThreadCpuMsPerSet,omitempty"`
	RedisChildCPUms float64 `json:"redisChildCpuMsPerSet,omitempty"`
	AOFRewrites     int     `json:"aofRewrites,omitempty"`
	// AOFDelayedFsync counts the times redis-server held back its AOF
	// write because the previous fsync was still running (INFO
	// aof_delayed_fsync): the disk, not the CPU, was the limit then.
	AOFDelayedFsync int `json:"aofDelayedFsync,omitempty"`
	// BenchCPUms is this process's CPU time per operation: the go-redis
	// callers, or the HTTP callers plus the in-process server.
	BenchCPUms float64 `json:"benchCpuMsPerOp"`
	Note       string  `json:"note,omitempty"`
	Error      string  `json:"error,omitempty"`
}

// ceiling measures the machine without the gateway: a fresh redis-server
// started like the stack's, and a do-nothing loopback HTTP hop, each driven
// by the same number of callers with the same payload size.
type ceiling struct {
	ops, conc int
	body      []byte // the intake JSON request body (the HTTP hop sends it)
	value     []byte // what the gateway stores per document (the SET value)
	valueIs   string
	// startRedis starts a redis-server (redistest defaults: no RDB
	// snapshots, AOF everysec) with extra arguments; tests swap it.
	startRedis func(extra ...string) (addr string, stop func(), err error)
	log        io.Writer
}

func newCeiling(o options, log io.Writer) (*ceiling, error) {
	body, err := documentBody(o.docSize)
	if err != nil {
		return nil, err
	}
	value, valueIs := storedPayload(body)
	return &ceiling{ops: o.ceilingOps, conc: o.concurrency, body: body, value: value, valueIs: valueIs,
		startRedis: redistest.StartProcess, log: log}, nil
}

// storedPayload is what the gateway writes to Redis for body: the encoded
// ITK3 message bundle (api builds it with itk.Build and streams
// Message.Encode into the store). If that cannot be built here, the JSON
// body stands in, and valueIs says so.
func storedPayload(body []byte) (value []byte, valueIs string) {
	m, value, err := buildBundle(body)
	if err != nil {
		return body, fmt.Sprintf("the JSON request body (ITK3 bundle not built: %v)", err)
	}
	format := m.Format
	if format == "" {
		format = itk.FormatXML
	}
	return value, fmt.Sprintf("the ITK3 %s bundle the gateway stores per document", strings.ToUpper(string(format)))
}

// buildBundle turns an intake JSON body into the ITK3 message the gateway
// builds for it, and that message's encoded bytes.
func buildBundle(body []byte) (*itk.Message, []byte, error) {
	var req itk.SendRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, nil, fmt.Errorf("decode request: %w", err)
	}
	m, err := itk.Build(&req, itk.BuildOptions{})
	if err != nil {
		return nil, nil, fmt.Errorf("itk.Build: %w", err)
	}
	var buf bytes.Buffer
	if err := m.Encode(&buf); err != nil {
		return nil, nil, fmt.Errorf("encode bundle: %w", err)
	}
	return m, buf.Bytes(), nil
}

// run measures redis-server with AOF as the stack runs it, the same
// without AOF, the HTTP hop and the MESH hop, one after the other, each
// under its own time limit.
func (c *ceiling) run(ctx context.Context) []Calibration {
	steps := []func(context.Context) Calibration{
		func(ctx context.Context) Calibration {
			return c.redis(ctx, "redis-aof", "redis-server, AOF on, appendfsync everysec, rewrites from 1 GB (as the stack)", stack.RedisArgs("everysec")...)
		},
		func(ctx context.Context) Calibration {
			return c.redis(ctx, "redis-aof-default", "redis-server, AOF on, appendfsync everysec, Redis's default rewrite threshold (64 MB)",
				"--appendonly", "yes", "--appendfsync", "everysec")
		},
		func(ctx context.Context) Calibration {
			return c.redis(ctx, "redis-noaof", "redis-server, AOF off (contrast)", "--appendonly", "no")
		},
		c.httpHop,
		c.meshHop,
	}
	var out []Calibration
	for _, step := range steps {
		if ctx.Err() != nil {
			break
		}
		sctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		r := step(sctx)
		cancel()
		fmt.Fprintf(c.log, "  %s: %.0f %s\n", r.Name, r.OpsPerSec, r.Unit)
		out = append(out, r)
	}
	return out
}

// redis drives SET key value; DEL key from c.conc goroutines over one
// go-redis client with a pool of c.conc connections, c.ops times, so the
// live data set stays at most c.conc values (the gateway deletes a payload
// once MESH has it).
func (c *ceiling) redis(ctx context.Context, name, what string, extra ...string) Calibration {
	r := Calibration{Name: name, What: what, Unit: "SET/s", ValueBytes: len(c.value), ValueIs: c.valueIs}
	addr, stop, err := c.startRedis(extra...)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	defer stop()
	rdb := redis.NewClient(&redis.Options{Addr: addr, PoolSize: c.conc, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second})
	defer rdb.Close()
	pid, err := redisInfoInt(ctx, rdb, "server", "process_id")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	setDel := func(prefix string) func(ctx context.Context, i int) error {
		return func(ctx context.Context, i int) error {
			key := prefix + strconv.Itoa(i)
			if err := rdb.Set(ctx, key, c.value, 0).Err(); err != nil {
				return err
			}
			return rdb.Del(ctx, key).Err()
		}
	}
	// Warm-up: one op per caller fills the connection pool, untimed.
	if w := drive(ctx, c.conc, c.conc, setDel("ceiling:warm:")); w.failed > 0 {
		r.Error = fmt.Sprintf("warm-up: %d of %d failed: %v", w.failed, c.conc, w.firstErr)
		return r
	}
	rew0, _ := redisInfoInt(ctx, rdb, "persistence", "aof_rewrites")
	delayed0, _ := redisInfoInt(ctx, rdb, "persistence", "aof_delayed_fsync")
	srv0, child0, err0 := stack.ProcCPU(pid)
	main0, err1 := stack.ThreadCPU(pid, pid)
	self0, _, err2 := stack.ProcCPU(os.Getpid())
	res := drive(ctx, c.ops, c.conc, setDel("ceiling:"))
	srv1, _, err3 := stack.ProcCPU(pid)
	main1, err4 := stack.ThreadCPU(pid, pid)
	self1, _, err5 := stack.ProcCPU(os.Getpid())
	if err := errors.Join(err0, err1, err2, err3, err4, err5); err != nil {
		r.Error = err.Error()
		return r
	}
	// A rewrite child's CPU is only counted once it has exited and been
	// reaped: give one still running a bounded wait.
	for range 100 {
		if n, err := redisInfoInt(ctx, rdb, "persistence", "aof_rewrite_in_progress"); err != nil || n == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, child1, _ := stack.ProcCPU(pid)
	rew1, _ := redisInfoInt(ctx, rdb, "persistence", "aof_rewrites")
	delayed1, _ := redisInfoInt(ctx, rdb, "persistence", "aof_delayed_fsync")

	done := len(res.latencies)
	r.fill(res)
	r.RedisCPUms = cpuPerDoc(srv1-srv0, done)
	r.RedisMainCPUms = cpuPerDoc(main1-main0, done)
	r.RedisChildCPUms = cpuPerDoc(child1-child0, done)
	r.AOFRewrites = rew1 - rew0
	r.AOFDelayedFsync = delayed1 - delayed0
	r.BenchCPUms = cpuPerDoc(self1-self0, done)
	r.Note = fmt.Sprintf("%d go-redis connections; each op is one SET then one DEL of its key (the latency covers both); %d warm-up ops untimed", c.conc, c.conc)
	return r
}

// httpHop is the upper bound for any HTTP intake here: an in-process
// net/http server that reads and discards the body and answers 202, with
// the intake scenario's callers and body.
func (c *ceiling) httpHop(ctx context.Context) Calibration {
	r := Calibration{Name: "http-hop", What: "do-nothing in-process net/http server: reads the body, answers 202",
		Unit: "req/s", ValueBytes: len(c.body), ValueIs: "the intake JSON request body"}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		w.WriteHeader(http.StatusAccepted)
	})}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()
	url := "http://" + ln.Addr().String() + "/v1/documents"
	hc := stack.HTTPClient(c.conc, 60*time.Second)
	defer hc.CloseIdleConnections()
	post := func(ctx context.Context, _ int) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(c.body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	if !c.driveInProcess(ctx, &r, post) {
		return r
	}
	r.Note = fmt.Sprintf("%d loopback callers; no TLS, auth, JSON decoding or storage; bench CPU covers client and server; %d warm-up requests untimed", c.conc, c.conc)
	return r
}

// driveInProcess runs op once per caller untimed (warm-up), then c.ops
// times, and fills r with the figures and this process's CPU per op
// (callers and any in-process server). It reports whether r is usable.
func (c *ceiling) driveInProcess(ctx context.Context, r *Calibration, op func(ctx context.Context, i int) error) bool {
	if w := drive(ctx, c.conc, c.conc, op); w.failed > 0 {
		r.Error = fmt.Sprintf("warm-up: %d of %d failed: %v", w.failed, c.conc, w.firstErr)
		return false
	}
	self0, _, err0 := stack.ProcCPU(os.Getpid())
	res := drive(ctx, c.ops, c.conc, op)
	self1, _, err1 := stack.ProcCPU(os.Getpid())
	if err := errors.Join(err0, err1); err != nil {
		r.Error = err.Error()
		return false
	}
	r.fill(res)
	r.BenchCPUms = cpuPerDoc(self1-self0, len(res.latencies))
	return true
}

func (r *Calibration) fill(res loadResult) {
	r.Ops, r.Failed, r.Seconds = len(res.latencies), res.failed, res.elapsed.Seconds()
	if r.Seconds > 0 {
		r.OpsPerSec = float64(r.Ops) / r.Seconds
	}
	r.P50ms, r.P99ms = percentileMs(res.latencies, 50), percentileMs(res.latencies, 99)
	if res.failed > 0 {
		r.Error = fmt.Sprintf("%d of %d failed; first: %v", res.failed, res.failed+r.Ops, res.firstErr)
	}
}

// loadResult is the outcome of drive.
type loadResult struct {
	elapsed   time.Duration
	latencies []time.Duration // of the successful ops
	failed    int
	firstErr  error
}

// drive runs op(ctx, 0..n-1) from conc goroutines and times each call.
// Ops not started because ctx ended count as failed.
func drive(ctx context.Context, n, conc int, op func(ctx context.Context, i int) error) loadResult {
	type outcome struct {
		lat time.Duration
		err error
		ran bool
	}
	results := make([]outcome, n)
	next := make(chan int)
	var wg sync.WaitGroup
	start := time.Now()
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t0 := time.Now()
				err := op(ctx, i)
				results[i] = outcome{lat: time.Since(t0), err: err, ran: true}
			}
		}()
	}
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		next <- i
	}
	close(next)
	wg.Wait()
	out := loadResult{elapsed: time.Since(start)}
	for _, r := range results {
		switch {
		case !r.ran:
			out.failed++
			if out.firstErr == nil {
				out.firstErr = ctx.Err()
			}
		case r.err != nil:
			out.failed++
			if out.firstErr == nil {
				out.firstErr = r.err
			}
		default:
			out.latencies = append(out.latencies, r.lat)
		}
	}
	return out
}

// redisInfoInt reads one integer field of an INFO section.
func redisInfoInt(ctx context.Context, rdb *redis.Client, section, field string) (int, error) {
	info, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return 0, fmt.Errorf("redis INFO %s: %w", section, err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), field+":"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return 0, fmt.Errorf("redis INFO %s: %s: %w", section, field, err)
			}
			return n, nil
		}
	}
	return 0, fmt.Errorf("redis INFO %s: no %s", section, field)
}

// printCalibration prints the ceiling rows as their own block, before and
// apart from the target table, with what each row sent as footnotes.
func printCalibration(w io.Writer, cal []Calibration) {
	fmt.Fprintln(w, "calibration (ceiling): this machine without the gateway; yardsticks for the targets, not targets")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "CALIBRATION\tSETUP\tRESULT")
	var notes []string // footnotes in order, one per distinct text
	names := map[string][]string{}
	for _, r := range cal {
		var res string
		switch {
		case r.Error != "" && r.Ops == 0:
			res = "ERROR: " + r.Error
		case r.Unit == "SET/s":
			res = fmt.Sprintf("%.0f SETs/s (%d in %.2fs); op p50 %.1f ms, p99 %.1f ms; redis-server CPU %.3f ms/SET (main thread %.3f",
				r.OpsPerSec, r.Ops, r.Seconds, r.P50ms, r.P99ms, r.RedisCPUms, r.RedisMainCPUms)
			if r.RedisMainCPUms > 0 {
				res += fmt.Sprintf(": ~%.0f SETs/s max with a core to itself", 1000/r.RedisMainCPUms)
			}
			res += ")"
			if r.AOFRewrites > 0 || r.RedisChildCPUms > 0 {
				res += fmt.Sprintf(" + %.3f ms/SET in %d AOF-rewrite children", r.RedisChildCPUms, r.AOFRewrites)
			}
			if r.AOFDelayedFsync > 0 {
				res += fmt.Sprintf("; %d writes held back for a slow fsync", r.AOFDelayedFsync)
			}
			res += fmt.Sprintf("; bench (go-redis) CPU %.3f ms/SET", r.BenchCPUms)
		default:
			per := strings.TrimSuffix(strings.TrimSuffix(r.Unit, "/s"), "s") // req/s -> req, msgs/s -> msg
			res = fmt.Sprintf("%.0f %s (%d in %.2fs); p50 %.1f ms, p99 %.1f ms; bench CPU (client+server) %.3f ms/%s",
				r.OpsPerSec, r.Unit, r.Ops, r.Seconds, r.P50ms, r.P99ms, r.BenchCPUms, per)
		}
		if r.Error != "" && r.Ops > 0 {
			res += "; ERROR: " + r.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", r.Name, r.What, res)
		note := fmt.Sprintf("%d-byte value: %s; %s", r.ValueBytes, r.ValueIs, r.Note)
		if _, seen := names[note]; !seen {
			notes = append(notes, note)
		}
		names[note] = append(names[note], r.Name)
	}
	_ = tw.Flush()
	for _, n := range notes {
		fmt.Fprintf(w, "  %s: %s\n", strings.Join(names[n], ", "), n)
	}
}
