// Command meshgw-bench measures a real MESH Gateway deployment on this
// machine: it starts redis-server (AOF on, appendfsync everysec, rewrites from 1 GB:
// the README's production settings),
// `gateway fakemesh` and `gateway serve` on loopback ports, runs the chosen
// scenarios once and prints a results table (or JSON).
//
//	go run ./cmd/meshgw-bench [flags]
//
// Scenarios:
//
//	ceiling      calibration, always run first and before the stack starts: a fresh
//	             redis-server started like the stack's (AOF everysec) and one with
//	             AOF off take SET+DEL of the ITK3 bundle one document stores, from C
//	             go-redis connections (SETs/s, redis-server CPU ms per SET); and a
//	             do-nothing in-process net/http server takes the intake JSON body
//	             from C callers (req/s); and the gateway's MESH client sends the
//	             bundle to an in-process local MESH server (msgs/s). From their
//	             CPU cost per document it prints the most intake and e2e could
//	             reach here if the gateway's own work cost nothing. What the box
//	             can do; no target.
//	intake       N JSON documents (100 KB PDF, base64) from C concurrent callers with
//	             pre-signed JWTs: docs/s and p50/p95/p99 of the 202.
//	             Targets: >= 2,000 docs/s, p99 <= 50 ms.
//	e2e          from the first POST until all N documents are sent (MESH 202):
//	             end-to-end docs/s. Target: >= 1,830 docs/s.
//	upload100mb  one multipart upload of a 100 MB PDF-like file streamed from a
//	             generator to a fresh gateway process; that process's peak RSS
//	             (VmHWM) until the message is sent. Target: <= 1.5 x the document.
//
// Everything runs on 127.0.0.1 and is stopped and removed at the end, also on
// Ctrl-C. Requires redis-server on PATH (apt-get install -y redis-server).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/meshgateway/gateway/cmd/meshgw-bench/stack"
)

// options are the command-line flags.
type options struct {
	gateway     string
	scenarios   []string
	docs        int
	concurrency int
	docSize     int64
	ceilingOps  int
	uploadSize  int64
	jsonOut     bool
	keep        bool
	timeout     time.Duration
	gatewayEnv  map[string]string
}

var allScenarios = []string{"ceiling", "intake", "e2e", "upload100mb"}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "meshgw-bench:", err)
		}
		os.Exit(2)
	}
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("meshgw-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.gateway, "gateway", "", "gateway binary to test (default: go build ./cmd/gateway into a temp dir)")
	scen := fs.String("scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run: ceiling (calibration, always first), intake, e2e, upload100mb")
	fs.IntVar(&o.docs, "n", 5000, "documents per intake and e2e run")
	fs.IntVar(&o.concurrency, "concurrency", 64, "concurrent callers for intake, e2e and ceiling")
	fs.IntVar(&o.ceilingOps, "ceiling-n", 5000, "operations per ceiling (calibration) measurement")
	fs.Int64Var(&o.docSize, "doc-size", 100*1024, "PDF size in bytes for intake, e2e and ceiling (sent base64 in JSON)")
	fs.Int64Var(&o.uploadSize, "upload-size", 100_000_000, "file size in bytes for upload100mb (streamed multipart)")
	fs.BoolVar(&o.jsonOut, "json", false, "print the results as JSON instead of a table")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (process logs, registry) and print its path")
	fs.DurationVar(&o.timeout, "timeout", 20*time.Minute, "upper bound for the whole run")
	o.gatewayEnv = map[string]string{}
	fs.Func("gateway-env", "extra gateway environment variable NAME=VALUE (repeatable), e.g. MESH_CHUNK_SIZE=10485760", func(v string) error {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return errors.New("want NAME=VALUE")
		}
		o.gatewayEnv[k] = val
		return nil
	})
	fs.Usage = func() {
		fmt.Fprint(stderr, `usage: go run ./cmd/meshgw-bench [flags]

Starts redis-server (AOF, appendfsync everysec, auto-aof-rewrite-min-size 1gb as
the README recommends), gateway fakemesh and
gateway serve on loopback, runs each scenario once and prints the figures
next to their targets:
  ceiling      calibration, run first on its own: redis-server alone (AOF everysec as
               the stack runs it, and AOF off) taking SET+DEL of one document's stored
               ITK3 bundle from C connections, a do-nothing loopback HTTP server
               taking the intake body from C callers, and the gateway's MESH client
               sending the bundle to an in-process local MESH server; printed apart
               with the intake and e2e bounds they imply, no target
  intake       N x 100 KB PDF (JSON, base64) from C callers: docs/s, p50/p95/p99 of the 202
               (targets >= 2,000 docs/s, p99 <= 50 ms)
  e2e          first POST until every document is sent to MESH: docs/s (target >= 1,830)
  upload100mb  one streamed 100 MB multipart upload to a fresh gateway: peak RSS (VmHWM)
               until sent (target <= 1.5 x the document)
Everything is stopped and removed at the end, also on Ctrl-C.

flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*scen, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		known := false
		for _, k := range allScenarios {
			known = known || k == s
		}
		if !known {
			return o, fmt.Errorf("unknown scenario %q (want %s)", s, strings.Join(allScenarios, ", "))
		}
		o.scenarios = append(o.scenarios, s)
	}
	switch {
	case len(o.scenarios) == 0:
		return o, errors.New("no scenario selected")
	case o.docs < 1 || o.docs > 1_000_000:
		return o, errors.New("-n must be 1..1000000")
	case o.ceilingOps < 1 || o.ceilingOps > 1_000_000:
		return o, errors.New("-ceiling-n must be 1..1000000")
	case o.concurrency < 1 || o.concurrency > 1024:
		return o, errors.New("-concurrency must be 1..1024")
	case o.docSize < 64 || o.docSize > 50<<20:
		return o, errors.New("-doc-size must be 64 bytes..50 MiB")
	case o.uploadSize < 1024 || o.uploadSize > 2<<30:
		return o, errors.New("-upload-size must be 1 KiB..2 GiB")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()

	dir, err := os.MkdirTemp("", "meshgw-bench-")
	if err != nil {
		return fmt.Errorf("work dir: %w", err)
	}
	if o.keep {
		fmt.Fprintln(stderr, "work directory (kept):", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	host := Host{CPUs: runtime.NumCPU(), GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(), LoadAvgStart: loadAvg()}
	var calibration []Calibration
	var stackScenarios []string
	for _, name := range o.scenarios {
		if name != "ceiling" {
			stackScenarios = append(stackScenarios, name)
			continue
		}
		// Before the stack starts: nothing else of ours runs meanwhile.
		fmt.Fprintln(stderr, "scenario ceiling (calibration) ...")
		c, err := newCeiling(o, stderr)
		if err != nil {
			return err
		}
		calibration = append(calibration, c.run(ctx)...)
	}
	var (
		results  = []Result{} // "results": [] in -json when only ceiling runs
		stackErr error        // reported after the calibration figures are printed
	)
	if len(stackScenarios) > 0 && ctx.Err() == nil {
		results, stackErr = runStack(ctx, o, stackScenarios, dir, stderr)
	}
	host.LoadAvgEnd = loadAvg()
	if o.jsonOut {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.SetEscapeHTML(false)
		if err := enc.Encode(Report{Host: host, Calibration: calibration, Bounds: bounds(calibration, host.CPUs), Results: results}); err != nil {
			return fmt.Errorf("encode results: %w", err)
		}
	} else {
		fmt.Fprintf(stdout, "host: %d CPUs (GOMAXPROCS %d), %s; load average %s at start, %s at end (everything shares these CPUs)\n",
			host.CPUs, host.GOMAXPROCS, host.GoVersion, host.LoadAvgStart, host.LoadAvgEnd)
		if len(calibration) > 0 {
			printCalibration(stdout, calibration)
			printBounds(stdout, bounds(calibration, host.CPUs))
		}
		if len(results) > 0 {
			if len(calibration) > 0 {
				fmt.Fprintln(stdout)
			}
			printTable(stdout, results)
		}
	}
	if stackErr != nil {
		return stackErr
	}
	if ctx.Err() != nil {
		return fmt.Errorf("interrupted: %w", ctx.Err())
	}
	return nil
}

// runStack starts redis-server, fakemesh and the gateway and runs the
// target scenarios against them in order.
func runStack(ctx context.Context, o options, scenarios []string, dir string, stderr io.Writer) ([]Result, error) {
	var err error
	bin := o.gateway
	if bin == "" {
		fmt.Fprintln(stderr, "building the gateway ...")
		if bin, err = stack.BuildGateway(ctx, dir); err != nil {
			return nil, err
		}
	}
	fmt.Fprintln(stderr, "starting redis-server, fakemesh and the gateway ...")
	st, err := stack.Start(ctx, stack.Options{GatewayBin: bin, Dir: dir, AppendFsync: "everysec", GatewayEnv: o.gatewayEnv})
	if err != nil {
		return nil, err
	}
	defer st.Close()

	b := &bench{opts: o, st: st, log: stderr}
	var results []Result
	for _, name := range scenarios {
		fmt.Fprintf(stderr, "scenario %s ...\n", name)
		var r Result
		switch name {
		case "intake":
			r, err = b.intake(ctx)
		case "e2e":
			r, err = b.endToEnd(ctx)
		case "upload100mb":
			r, err = b.upload(ctx)
		}
		if err != nil {
			r = Result{Scenario: name, Target: r.Target, Error: err.Error()}
		}
		results = append(results, r)
		if ctx.Err() != nil {
			break
		}
	}
	return results, nil
}

// Report is the --json output.
type Report struct {
	Host Host `json:"host"`
	// Calibration holds the ceiling scenario's measurements: yardsticks,
	// not targets.
	Calibration []Calibration `json:"calibration,omitempty"`
	// Bounds are what the calibration rows allow at most here (see bounds).
	Bounds  []Bound  `json:"bounds,omitempty"`
	Results []Result `json:"results"`
}

// Host describes the machine the figures come from: the bench, Redis,
// fakemesh and the gateway all share its CPUs.
type Host struct {
	CPUs         int    `json:"cpus"`
	GOMAXPROCS   int    `json:"gomaxprocs"`
	GoVersion    string `json:"goVersion"`
	LoadAvgStart string `json:"loadAvgStart"`
	LoadAvgEnd   string `json:"loadAvgEnd"`
}

// loadAvg is the 1/5/15-minute load average from /proc/loadavg.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// Result is one scenario's figures.
type Result struct {
	Scenario      string  `json:"scenario"`
	Docs          int     `json:"docs,omitempty"`
	Failed        int     `json:"failed,omitempty"`
	Seconds       float64 `json:"seconds,omitempty"`
	DocsPerSec    float64 `json:"docsPerSec,omitempty"`
	P50ms         float64 `json:"p50Ms,omitempty"`
	P95ms         float64 `json:"p95Ms,omitempty"`
	P99ms         float64 `json:"p99Ms,omitempty"`
	DocumentBytes int64   `json:"documentBytes,omitempty"`
	PeakRSSBytes  int64   `json:"peakRssBytes,omitempty"`
	RSSAfter202   int64   `json:"rssPeakAt202Bytes,omitempty"`
	StartRSSBytes int64   `json:"startRssBytes,omitempty"`
	CountedBy     string  `json:"countedBy,omitempty"`
	GatewayCPUms  float64 `json:"gatewayCpuMsPerDoc,omitempty"` // gateway process CPU time per document
	Target        string  `json:"target"`
	Met           bool    `json:"met"`
	Note          string  `json:"note,omitempty"`
	Error         string  `json:"error,omitempty"`
}

func printTable(w io.Writer, results []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tRESULT\tTARGET\tMET")
	for _, r := range results {
		met := "no"
		if r.Met {
			met = "yes"
		}
		var res string
		switch {
		case r.Error != "":
			res, met = "ERROR: "+r.Error, "-"
		case r.Scenario == "intake":
			res = fmt.Sprintf("%d docs in %.2fs = %.0f docs/s; 202 p50 %.1f ms, p95 %.1f ms, p99 %.1f ms; gateway CPU %.2f ms/doc; %d failed",
				r.Docs, r.Seconds, r.DocsPerSec, r.P50ms, r.P95ms, r.P99ms, r.GatewayCPUms, r.Failed)
		case r.Scenario == "e2e":
			res = fmt.Sprintf("%d docs sent in %.2fs = %.0f docs/s (counted by %s); gateway CPU %.2f ms/doc; %d failed",
				r.Docs, r.Seconds, r.DocsPerSec, r.CountedBy, r.GatewayCPUms, r.Failed)
		case r.Scenario == "upload100mb":
			res = fmt.Sprintf("%.1f MB document: peak RSS %.1f MB (%.2fx; %.1f MB at the 202, %.1f MB at start); upload %.2fs",
				mb(r.DocumentBytes), mb(r.PeakRSSBytes), float64(r.PeakRSSBytes)/float64(max(r.DocumentBytes, 1)),
				mb(r.RSSAfter202), mb(r.StartRSSBytes), r.Seconds)
		}
		if r.Note != "" {
			res += " [" + r.Note + "]"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Scenario, res, r.Target, met)
	}
	_ = tw.Flush()
}

func mb(b int64) float64 { return float64(b) / 1e6 }
