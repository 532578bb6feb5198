package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/meshgateway/gateway/cmd/meshgw-bench/stack"
	"github.com/meshgateway/gateway/meshbridge"
	"github.com/meshgateway/gateway/meshbridge/fakemesh"
)

// meshHop is the upper bound for the send half of end to end here: the
// gateway's own MESH client (meshbridge, configured as the gateway
// configures it) sending the stored ITK3 bundle with GP lookup addressing
// to the local MESH server, both in this process, from c.conc callers. No
// Redis, no intake, no tracking: e2e cannot beat this row, and on a shared
// machine both halves take CPU from each other.
func (c *ceiling) meshHop(ctx context.Context) Calibration {
	r := Calibration{Name: "mesh-hop", What: "gateway's MESH client -> local MESH server (fakemesh), both in-process",
		Unit: "msgs/s", ValueBytes: len(c.value), ValueIs: c.valueIs}
	m, value, err := buildBundle(c.body)
	if err != nil {
		r.Error = err.Error()
		return r
	}
	r.ValueBytes = len(value)
	srv, err := fakemesh.New(fakemesh.DefaultConfig())
	if err != nil {
		r.Error = err.Error()
		return r
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		r.Error = err.Error()
		return r
	}
	hs := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: srv.Handler()}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	hc := stack.HTTPClient(c.conc, 60*time.Second)
	defer hc.CloseIdleConnections()
	client, err := meshbridge.New(meshbridge.Config{
		BaseURL: "http://" + ln.Addr().String(), MailboxID: fakemesh.DemoSenderMailbox,
		Password: fakemesh.DemoPassword, SharedKey: fakemesh.DemoSharedKey, HTTPClient: hc,
		Compress: true, CompressThreshold: 20 << 20, // the gateway's MESH_COMPRESS_THRESHOLD default
		Retry: meshbridge.RetryPolicy{Attempts: 1}, ClientName: "meshgw-bench", ClientVersion: "calibration",
	})
	if err != nil {
		r.Error = err.Error()
		return r
	}
	md := m.Metadata
	send := func(ctx context.Context, _ int) error {
		opts := meshbridge.SendOptions{To: md.To, WorkflowID: md.WorkflowID, Subject: md.Subject,
			LocalID: uuid.NewString(), FileName: md.FileName, ContentType: md.ContentType}
		res, err := client.Send(ctx, opts, bytes.NewReader(value), int64(len(value)))
		if err == nil && res.MessageID == "" {
			err = errors.New("MESH answered without a message id")
		}
		return err
	}
	if !c.driveInProcess(ctx, &r, send) {
		return r
	}
	if got := len(srv.Inbox(fakemesh.DemoPracticeMailbox)); got != c.conc+r.Ops && r.Error == "" {
		r.Error = fmt.Sprintf("practice inbox holds %d messages, want %d", got, c.conc+r.Ops)
	}
	r.Note = fmt.Sprintf("%d loopback callers; one-chunk sends with GP lookup addressing, HMAC auth, no TLS; the server keeps every message in memory as MESH would until collected; bench CPU covers client and server; %d warm-up sends untimed", c.conc, c.conc)
	return r
}

// Bound is the most a scenario could reach on this machine if the gateway's
// own logic cost nothing: every CPU busy with only the calibrated parts a
// document must pass through, each at its measured CPU cost per document.
type Bound struct {
	Scenario   string   `json:"scenario"`
	Parts      []string `json:"parts"`       // calibration rows summed
	CPUmsPerOp float64  `json:"cpuMsPerDoc"` // their CPU per document, summed
	DocsPerSec float64  `json:"docsPerSec"`  // CPUs x 1000 / CPUmsPerOp
	Target     float64  `json:"target"`
}

// bounds derives the intake and end-to-end bounds from the calibration
// rows: intake needs the HTTP hop and one Redis write of the bundle (server
// and client side), end to end also the MESH hop. A part missing or failed
// leaves its bound out.
func bounds(cal []Calibration, cpus int) []Bound {
	cost := map[string]float64{}
	for _, r := range cal {
		if r.Error != "" || r.Ops == 0 {
			continue
		}
		switch r.Name {
		case "http-hop", "mesh-hop":
			cost[r.Name] = r.BenchCPUms
		case "redis-aof":
			cost[r.Name] = r.RedisCPUms + r.RedisChildCPUms + r.BenchCPUms
		}
	}
	var out []Bound
	for _, b := range []Bound{
		{Scenario: "intake", Parts: []string{"http-hop", "redis-aof"}, Target: intakeDocsPerSec},
		{Scenario: "e2e", Parts: []string{"http-hop", "redis-aof", "mesh-hop"}, Target: e2eDocsPerSec},
	} {
		complete := true
		for _, p := range b.Parts {
			c, ok := cost[p]
			complete = complete && ok && c > 0
			b.CPUmsPerOp += c
		}
		if complete && cpus > 0 {
			b.DocsPerSec = float64(cpus) * 1000 / b.CPUmsPerOp
			out = append(out, b)
		}
	}
	return out
}

func printBounds(w io.Writer, bs []Bound) {
	for _, b := range bs {
		fmt.Fprintf(w, "bound: %s <= %.0f docs/s here even if the gateway's own work cost nothing (%s: %.3f ms CPU per document on all CPUs; target %.0f)\n",
			b.Scenario, b.DocsPerSec, strings.Join(b.Parts, " + "), b.CPUmsPerOp, b.Target)
	}
}
